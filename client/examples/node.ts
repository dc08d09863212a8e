import { connect } from "@memchat/client";

const chat = await connect({ url: process.env.MEMCHAT_URL ?? "http://127.0.0.1:3000", credentials: { username: process.env.MEMCHAT_USER!, password: process.env.MEMCHAT_PASSWORD! } });
const session = await chat.createSession({ title: "From Node" });
session.on("presence", (p) => console.error(`${p.username} ${p.present ? "joined" : "left"}`));
const question = await session.send("What did we decide about the launch date?"); // retried until stored, stored once
const reply = await session.replyTo(question.id);
for await (const piece of reply) process.stdout.write(piece.text); // in order, each piece once, across reconnects
console.log(`\n(${(await reply.result()).status})`);
chat.close();
