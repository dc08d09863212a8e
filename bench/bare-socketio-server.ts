/**
 * Baseline for bench/fanout.ts: a bare Socket.IO server with the same Redis
 * adapter, relaying the same payloads to the room, with no auth, no
 * validation and no persistence. Prints its URL on stdout once listening.
 * Usage: node --import tsx bench/bare-socketio-server.ts [redisUrl]
 * (without one: a single node on the in-memory adapter).
 */
import http from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const redisUrl = process.argv[2];
const pub = redisUrl ? new Redis(redisUrl) : undefined;
const sub = pub?.duplicate();
if (pub && sub) await Promise.all([new Promise((r) => pub.once("ready", r)), new Promise((r) => sub.once("ready", r))]);
const httpServer = http.createServer();
const io = new Server(httpServer, pub && sub ? { adapter: createAdapter(pub, sub, { key: "bare" }) } : {});
let seq = 0;
io.of("/chat").on("connection", (socket) => {
  socket.on("session:join", (p: { sessionId: string }, ack: (r: unknown) => void) => {
    void socket.join(`session:${p.sessionId}`);
    ack({ ok: true, data: {} });
  });
  socket.on("message:send", (p: { sessionId: string; clientMessageId: string; content: string }, ack: (r: unknown) => void) => {
    const message = { id: ++seq, sessionId: p.sessionId, seq, role: "user", content: p.content, status: "complete", clientMessageId: p.clientMessageId, createdAt: new Date().toISOString() };
    socket.to(`session:${p.sessionId}`).emit("message:new", { message });
    ack({ ok: true, data: { message } });
  });
});
httpServer.listen(0, "127.0.0.1", () => {
  const { port } = httpServer.address() as import("node:net").AddressInfo;
  console.log(JSON.stringify({ msg: "server listening", url: `http://127.0.0.1:${port}` }));
});
process.on("SIGTERM", () => {
  io.close();
  pub?.disconnect();
  sub?.disconnect();
  process.exit(0);
});
