import { connect } from "@memchat/client";

const form = document.querySelector("form")!, input = form.querySelector("input")!, list = document.querySelector("ol")!;
const show = (text: string) => list.appendChild(Object.assign(document.createElement("li"), { textContent: text }));
const chat = await connect({ token: localStorage.getItem("token")! }); // same origin as the page; unsent messages wait in localStorage
const session = await chat.join(new URLSearchParams(location.search).get("session")!);
session.on("message", (m) => m.role === "user" && m.userId !== chat.user?.id && show(m.content)); // others' messages
session.on("reply", async (reply) => { const li = show(""); for await (const piece of reply) li.textContent += piece.text; });
input.addEventListener("input", () => session.typing(input.value !== ""));
form.addEventListener("submit", (e) => { e.preventDefault(); show(input.value); void session.send(input.value); input.value = ""; }); input.disabled = false; // enabled once joined
