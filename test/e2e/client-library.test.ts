/**
 * The client library (@memchat/client) against the real server process: two
 * users chatting, presence and typing, a send whose ack was lost, sends the
 * rate limit pushed back, and replies that stream through a dropped network.
 * The network drops happen in a TCP proxy between client and server, so the
 * library's own reconnect and resume run exactly as they would for an app.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ChatClient, connect, type Emitter, MemchatError, type Message, type ReplyDelta, type ReplyStream } from "@memchat/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { register, type TestUser, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { OpenAiLlmDouble } from "../support/openai-llm-double.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let llm: OpenAiLlmDouble;
const clients: ChatClient[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-client-lib-"));
  llm = new OpenAiLlmDouble();
  const { url: llmUrl } = await llm.start();
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "client-library-secret-0123456789-0123456789",
    EMBEDDER: "hash",
    OPENAI_BASE_URL: llmUrl,
    OPENAI_API_KEY: "test-key",
    OPENAI_MODEL: "double-model",
    ASSISTANT_COALESCE_MS: "0",
    // Small enough that a burst of sends meets RATE_LIMITED, which send() must wait out.
    RATE_MESSAGE_BURST: "3",
    RATE_MESSAGE_PER_SEC: "4",
    ADMIN_USERNAMES: CLIENT_ADMIN,
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of proxies) await p.close();
  await server?.stop();
  await llm?.close();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function client(u: TestUser, url = server.url): Promise<ChatClient> {
  // Websocket only: a cut then refuses the reconnect outright instead of half-opening a polling request.
  const c = await connect({ url, token: u.token, socket: { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 500 } });
  clients.push(c);
  return c;
}

async function proxied(u: TestUser, callTimeoutMs?: number): Promise<{ chat: ChatClient; proxy: TcpProxy }> {
  const proxy = await startTcpProxy(server.url);
  proxies.push(proxy);
  const chat = await connect({ url: proxy.url, token: u.token, callTimeoutMs, socket: { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 500 } });
  clients.push(chat);
  return { chat, proxy };
}

/** Resolves with the first event of `event` on `target` that `match` accepts. */
function next<E, K extends keyof E>(target: Emitter<E>, event: K, match: (p: E[K]) => boolean = () => true): Promise<E[K]> {
  return new Promise((resolve) => {
    const off = target.on(event, (p) => {
      if (!match(p)) return;
      off();
      resolve(p);
    });
  });
}

/** Collects a reply's pieces; `reached(text)` resolves once the text so far equals it. */
function collect(reply: ReplyStream) {
  const pieces: ReplyDelta[] = [];
  const waits: { text: string; resolve(): void }[] = [];
  const done = (async () => {
    for await (const p of reply) {
      pieces.push(p);
      for (const w of waits.filter((w) => w.text === reply.text)) w.resolve();
    }
  })();
  return {
    pieces,
    done,
    reached: (text: string) => (reply.text === text ? Promise.resolve() : new Promise<void>((resolve) => waits.push({ text, resolve }))),
  };
}

function gate() {
  let open!: () => void;
  const until = new Promise<void>((r) => (open = r));
  return { until, open };
}

async function storedCount(sessionId: string, clientMessageId: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1 AND client_message_id = $2", [sessionId, clientMessageId]);
  return rows[0]!.n;
}

const CLIENT_ADMIN = uniqueName("clientadmin");

const TOKENS = ["Once", " upon", " a", " time", " there", " was", " a", " socket", " that", " dropped", " mid", "-sentence", " and", " came", " back", "."];

describe("two clients", () => {
  it("send, receive, presence and typing between two users", async () => {
    const alice = await register(server.url);
    const bob = await register(server.url);
    const a = await client(alice);
    const b = await client(bob);
    const sa = await a.createSession({ title: "two clients", assistant: false });
    const invited = next(b, "invitation");
    expect(await sa.invite(bob.user.username)).toMatchObject({ pending: true, member: { userId: bob.user.id } });
    expect(await invited).toMatchObject({ sessionId: sa.id, inviter: { userId: alice.user.id } });
    expect((await b.invitations()).map((i) => i.sessionId)).toEqual([sa.id]);

    const bobMember = next(sa, "member", (m) => m.joined);
    const bobHere = next(sa, "presence", (p) => p.userId === bob.user.id && p.present);
    const sb = await b.acceptInvitation(sa.id);
    expect((await bobMember).member.userId).toBe(bob.user.id);
    expect((await bobHere).username).toBe(bob.user.username);
    expect(sa.present.has(bob.user.id)).toBe(true);
    expect(sb.present).toEqual(new Set([alice.user.id, bob.user.id]));

    const received = next(sb, "message", (m) => m.role === "user");
    const sent = await sa.send("hello bob", { assistant: false });
    expect(sent).toMatchObject({ content: "hello bob", role: "user", userId: alice.user.id, status: "complete" });
    expect(await received).toEqual(sent);

    // Three keystrokes in a row send one "typing" (throttled), then one "stopped".
    const seen: boolean[] = [];
    sa.on("typing", (t) => seen.push(t.isTyping));
    const stopped = next(sa, "typing", (t) => !t.isTyping);
    sb.typing(true);
    sb.typing(true);
    sb.typing(true);
    sb.typing(false);
    expect(await stopped).toMatchObject({ userId: bob.user.id, username: bob.user.username });
    expect(seen).toEqual([true, false]);

    const bobGone = next(sa, "presence", (p) => p.userId === bob.user.id && !p.present);
    await sb.leave();
    await bobGone;
    expect(sa.present.has(bob.user.id)).toBe(false);

    // Removed by the owner: bob's handle (joined again) closes with FORBIDDEN, and he cannot come back.
    const again = await b.join(sa.id);
    const lost = next(again, "lost");
    expect(await sa.removeMember(bob.user.id)).toBe(true);
    expect((await lost).code).toBe("FORBIDDEN");
    await expect(again.send("still here?")).rejects.toMatchObject({ code: "CLOSED" });
    await expect(b.join(sa.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("an outsider cannot join, and the handle reports why", async () => {
    const owner = await register(server.url);
    const outsider = await register(server.url);
    const o = await client(owner);
    const s = await o.createSession({ assistant: false });
    const x = await client(outsider);
    const err = await x.join(s.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemchatError);
    expect((err as MemchatError).code).toBe("NOT_FOUND");
  });

  it("connect() logs in with credentials, and refuses a bad password with the server's code", async () => {
    const u = await register(server.url);
    const c = await connect({ url: server.url, credentials: { username: u.user.username, password: u.password } });
    clients.push(c);
    expect(c.user).toEqual(u.user);
    const err = await connect({ url: server.url, credentials: { username: u.user.username, password: "wrong password" } }).catch((e: unknown) => e);
    expect((err as MemchatError).code).toBe("UNAUTHENTICATED");
  });

  it("sends the rate limit pushed back go out again after retryAfterMs, each stored once", async () => {
    const u = await register(server.url);
    const c = await client(u);
    const s = await c.createSession({ assistant: false });
    const sends = Array.from({ length: 7 }, (_, i) => s.send(`burst ${i}`, { assistant: false }));
    const stored = await Promise.all(sends);
    expect(stored.map((m) => m.content)).toEqual(Array.from({ length: 7 }, (_, i) => `burst ${i}`));
    const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [s.id]);
    expect(rows[0]!.n).toBe(7);
  });
});

describe("replies", () => {
  it("cancel() stops a reply: the iteration ends with the text so far, and the row is cancelled", async () => {
    const u = await register(server.url);
    const c = await client(u);
    const s = await c.createSession();
    const held = gate();
    llm.enqueue({ tokens: TOKENS, holds: [{ afterTokens: 4, until: held.until }] });
    const reply = await s.replyTo((await s.send("start and stop")).id);
    const seen = collect(reply);
    await seen.reached(TOKENS.slice(0, 4).join(""));
    expect(await s.cancel(reply.messageId)).toBe(true);
    const final = await reply.result();
    held.open();
    await seen.done;
    expect(final.status).toBe("cancelled");
    expect(seen.pieces.map((p) => p.text).join("")).toBe(final.content);
    expect(final.content.startsWith(TOKENS.slice(0, 4).join(""))).toBe(true);
  });

  it("a failed reply ends its iteration with the assistant's error", async () => {
    const u = await register(server.url);
    const c = await client(u);
    const s = await c.createSession();
    llm.enqueue({ failure: { type: "http-error", status: 400, message: "scripted refusal" } });
    const reply = await s.replyTo((await s.send("this one fails")).id);
    const err = await collect(reply).done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemchatError);
    await expect(reply.result()).rejects.toBe(err);
    expect(reply.status).toBe("error");
  });

  it("regenerate() answers the same message again as a new reply stream", async () => {
    const u = await register(server.url);
    const c = await client(u);
    const s = await c.createSession();
    llm.enqueue({ tokens: ["first"] }, { tokens: ["second"] });
    const question = await s.send("say something");
    expect((await (await s.replyTo(question.id)).result()).content).toBe("first");
    const again = await s.regenerate(question.id);
    expect(again.replyToId).toBe(question.id);
    expect((await again.result()).content).toBe("second");
  });
});

describe("through a dropped network", () => {
  it("a send whose ack was lost before a disconnect is settled after the reconnect and stored once", async () => {
    const u = await register(server.url);
    const { chat, proxy } = await proxied(u);
    const s = await chat.createSession({ assistant: false });
    const watcher = await (await client(u)).join(s.id);

    proxy.swallowReplies();
    const arrived = next(watcher, "message", (m) => m.content === "sent into the void");
    const sending = s.send("sent into the void", { assistant: false });
    const stored = await arrived; // the server has it; the sender never heard back
    expect(chat.outbox.list().map((i) => i.clientMessageId)).toEqual([stored.clientMessageId]);
    proxy.cut();
    const back = next(chat, "reconnected");
    proxy.restore();
    await back;
    const acked = await sending;
    expect(acked.id).toBe(stored.id);
    expect(acked.clientMessageId).toBe(stored.clientMessageId);
    expect(await storedCount(s.id, stored.clientMessageId!)).toBe(1);
    expect(chat.outbox.list()).toEqual([]);
  });

  it("a send whose ack timed out goes out again with the same clientMessageId, and the server answers with the row it stored", async () => {
    const u = await register(server.url);
    const { chat, proxy } = await proxied(u, 300);
    const s = await chat.createSession({ assistant: false });
    const watcher = await (await client(u)).join(s.id);

    proxy.swallowReplies();
    const arrived = next(watcher, "message", (m) => m.content === "answer me");
    const timedOut = next(chat, "outbox", () => chat.outbox.list()[0]?.error?.code === "TIMEOUT");
    const sending = s.send("answer me", { assistant: false });
    const stored = await arrived;
    await timedOut;
    expect(chat.outbox.list()[0]!.attempts).toBeGreaterThanOrEqual(1);
    proxy.restore();
    // Still connected: no rejoin backlog can settle it, only a resend's ack.
    const acked = await sending;
    expect(acked).toEqual(stored);
    expect(await storedCount(s.id, stored.clientMessageId!)).toBe(1);
  });

  it("a send written while offline goes out on reconnect", async () => {
    const u = await register(server.url);
    const { chat, proxy } = await proxied(u);
    const s = await chat.createSession({ assistant: false });
    proxy.cut();
    await next(chat, "state", (st) => st.kind !== "online");
    const sending = s.send("written offline", { assistant: false });
    expect(chat.outbox.forSession(s.id).map((i) => i.state)).toEqual(["waiting"]);
    proxy.restore();
    const m = await sending;
    expect(m.content).toBe("written offline");
    expect(await storedCount(s.id, m.clientMessageId!)).toBe(1);
  });

  it("a reply cut in the middle continues after the reconnect, with no piece missing or repeated", async () => {
    const u = await register(server.url);
    const { chat, proxy } = await proxied(u);
    const s = await chat.createSession({ title: "mid-reply" });
    const watcher = await (await client(u)).join(s.id);
    const first = gate();
    const second = gate();
    llm.enqueue({ tokens: TOKENS, holds: [{ afterTokens: 3, until: first.until }, { afterTokens: 10, until: second.until }] });

    const question = await s.send("tell me a story");
    const reply = await s.replyTo(question.id);
    const seen = collect(reply);
    const watched = collect(await watcher.replyTo(question.id));
    await seen.reached(TOKENS.slice(0, 3).join(""));

    proxy.cut();
    first.open();
    // Tokens 3..9 go out while this client is away: the watcher sees them, this client cannot.
    await watched.reached(TOKENS.slice(0, 10).join(""));
    expect(reply.text).toBe(TOKENS.slice(0, 3).join(""));
    const back = next(chat, "reconnected");
    proxy.restore();
    await back;
    // The rejoin's activeStreams filled the gap while the reply is still held.
    expect(reply.text).toBe(TOKENS.slice(0, 10).join(""));
    expect(reply.ended).toBe(false);

    second.open();
    const final = await reply.result();
    await seen.done;
    expect(final.status).toBe("complete");
    expect(final.content).toBe(TOKENS.join(""));
    expect(seen.pieces.map((p) => p.text).join("")).toBe(TOKENS.join(""));
    const seqs = seen.pieces.map((p) => p.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(reply.end?.usage.completionTokens).toBe(TOKENS.length);
  });

  it("a reply that ended while the client was away is completed from the rejoin's backlog", async () => {
    const u = await register(server.url);
    const { chat, proxy } = await proxied(u);
    const s = await chat.createSession({ title: "ended while away" });
    const watcher = await (await client(u)).join(s.id);
    const held = gate();
    llm.enqueue({ tokens: TOKENS, holds: [{ afterTokens: 5, until: held.until }] });

    const question = await s.send("tell me another one");
    const reply = await s.replyTo(question.id);
    const seen = collect(reply);
    const watchedReply = await watcher.replyTo(question.id);
    await seen.reached(TOKENS.slice(0, 5).join(""));

    proxy.cut();
    held.open();
    const ended: Message = await watchedReply.result();
    expect(reply.ended).toBe(false);
    proxy.restore();
    const final = await reply.result();
    await seen.done;
    expect(final).toEqual(ended);
    expect(seen.pieces.map((p) => p.text).join("")).toBe(TOKENS.join(""));
    expect(reply.text).toBe(TOKENS.join(""));
  });
});

describe("configurations and feedback", () => {
  it("an admin saves configurations (VALIDATION with its issues), an owner picks one for the next reply, and rates it neutral", async () => {
    const admin = await client(await register(server.url, CLIENT_ADMIN));
    const err = await admin.saveConfiguration({ name: "Hot", systemPrompt: "Be bold.", temperature: 7 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemchatError);
    expect(err).toMatchObject({ code: "VALIDATION", issues: [{ field: "temperature", message: "temperature must be between 0 and 2" }] });
    const hot = await admin.saveConfiguration({ name: "Hot", systemPrompt: "Be bold.", temperature: 1.5 });
    expect(hot).toMatchObject({ name: "Hot", temperature: 1.5, active: true, isDefault: false });
    expect((await admin.saveConfiguration({ temperature: 1.4 }, hot.id)).temperature).toBe(1.4);
    expect((await admin.configurationAction(hot.id, "retire")).active).toBe(false);
    expect((await admin.adminConfigurations({ retired: true })).map((c) => c.id)).toContain(hot.id);
    expect((await admin.configurationAction(hot.id, "activate")).active).toBe(true);

    const owner = await client(await register(server.url));
    expect((await owner.configurations()).map((c) => c.name)).toEqual(["Default", "Hot"]);
    await expect(owner.adminConfigurations()).rejects.toMatchObject({ code: "FORBIDDEN" });
    const s = await owner.createSession();
    const picked = await s.configure(hot.id);
    expect(picked.configuration.name).toBe("Hot");
    expect(s.info.configurationId).toBe(hot.id);
    llm.enqueue({ tokens: ["bold"] });
    const reply = await (await s.replyTo((await s.send("be bold")).id)).result();
    expect(llm.requests.at(-1)!.body!.temperature).toBe(1.4);
    expect(await s.feedback(reply.id, 0, "meh")).toMatchObject({ messageId: reply.id, rating: 0, comment: "meh" });
    const history = await owner.call("message:history", { sessionId: s.id });
    expect(history.messages.find((m) => m.id === reply.id)?.ownFeedback).toMatchObject({ rating: 0, comment: "meh" });
  });
});
