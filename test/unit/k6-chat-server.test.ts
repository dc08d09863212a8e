/**
 * What the k6 scripts assume about this chat server, checked against the real
 * server process with the scripts' own protocol code (socketio.js over a
 * plain WebSocket, sessions.js for resuming), since k6 cannot run here:
 * setup's session:create + REST invite, join baselines, fan-out that skips the
 * sender, assistant:false, resuming with afterSeq across truncated pages, and
 * teardown's DELETE.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { checkBacklog, fetchAfter, SeqTracker } from "../../loadtest/k6/lib/sessions.js";
import { ackErrorCode, SioClient, socketUrl } from "../../loadtest/k6/lib/socketio.js";
import { api, register, uniqueName, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

// A small page makes session:join truncate, so paging is exercised with a handful of messages.
const PAGE = 4;
let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-k6-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "k6-protocol-secret-0123456789-0123456789",
    HISTORY_PAGE_SIZE: String(PAGE),
    HISTORY_PAGE_MAX: String(PAGE),
  });
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface Client {
  sio: SioClient;
  ws: WebSocket;
  events: Record<string, any[]>;
  close(): Promise<void>;
}

/** What client.js does over k6/ws, over `ws`: resolves once /chat acknowledged the connect. */
async function connect(user: TestUser): Promise<Client> {
  const ws = new WebSocket(socketUrl(server.url));
  sockets.push(ws);
  const sio = new SioClient({ nsp: "/chat", auth: { token: user.token }, send: (f) => ws.send(f) });
  const events: Record<string, any[]> = {};
  for (const name of ["message:new", "assistant:start"]) sio.on(name, (e) => (events[name] ??= []).push(e));
  ws.on("message", (data) => sio.handleFrame(data.toString()));
  const closed = new Promise<void>((resolve) => ws.on("close", () => resolve()));
  ws.on("close", () => sio.closed("websocket closed", false));
  await new Promise<void>((resolve, reject) => {
    sio.on("connect", () => resolve());
    sio.on("connect_error", (d) => reject(new Error(`refused: ${JSON.stringify(d)}`)));
    ws.on("error", reject);
  });
  return {
    sio,
    ws,
    events,
    close() {
      ws.close();
      return closed;
    },
  };
}

function call(sio: SioClient, event: string, payload: unknown): Promise<any> {
  return new Promise((resolve) => sio.emit(event, payload, (reply) => resolve(reply)));
}

async function ok(sio: SioClient, event: string, payload: unknown): Promise<any> {
  const reply = await call(sio, event, payload);
  if (ackErrorCode(reply) !== null) throw new Error(`${event}: ${JSON.stringify(reply)}`);
  return reply.data;
}

function fetchAll(sio: SioClient, sessionId: string, afterSeq: number) {
  return new Promise<{ session: any; messages: any[]; pages: number }>((resolve, reject) =>
    fetchAfter(sio, sessionId, afterSeq, (code, r) => (code === null ? resolve(r!) : reject(new Error(code)))),
  );
}

async function until(what: string, cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the chat server, driven by the k6 scripts' protocol code", () => {
  let owner: TestUser;
  let member: TestUser;
  let sessionId: string;

  it("lets setup create a session over the socket and invite over REST", async () => {
    owner = await register(server.url, uniqueName("lt_o"));
    member = await register(server.url, uniqueName("lt_m"));
    const o = await connect(owner);
    const created = await ok(o.sio, "session:create", { title: "loadtest protocol" });
    sessionId = created.session.id;
    expect(created.session).toMatchObject({ title: "loadtest protocol", lastSeq: 0 });
    const invite = await api(server.url, `/api/sessions/${sessionId}/members`, {
      method: "POST",
      token: owner.token,
      body: { username: member.user.username },
    });
    expect(invite.status).toBe(201);
    const accepted = await api(server.url, `/api/invitations/${sessionId}/accept`, { method: "POST", token: member.token });
    expect(accepted.status).toBe(200);
    await o.close();
  });

  it("fans a message out to the other members, not the sender, and resumes a dropped member with afterSeq across pages", async () => {
    const o = await connect(owner);
    const m = await connect(member);
    const join = await ok(m.sio, "session:join", { sessionId });
    // chat.js and reconnect-storm.js take the baseline from here.
    expect(join.session.lastSeq).toBe(0);
    expect(join.messages).toEqual([]);
    const tracker = new SeqTracker(join.session.lastSeq);
    m.sio.on("message:new", (e) => tracker.add(e.message.seq));

    for (let i = 1; i <= 3; i++) {
      const sent = await ok(o.sio, "message:send", { sessionId, clientMessageId: `c0-${i}`, content: `lt ${Date.now()} c0-${i}`, assistant: false });
      expect(sent.message).toMatchObject({ seq: i, clientMessageId: `c0-${i}`, role: "user" });
    }
    await until("three message:new", () => (m.events["message:new"] ?? []).length === 3);
    expect(m.events["message:new"]!.map((e) => e.message.content)).toEqual(expect.arrayContaining([expect.stringMatching(/^lt \d+ c0-1$/)]));
    expect(tracker.contiguous).toBe(3);
    expect(o.events["message:new"]).toBeUndefined();

    // The member drops; the owner keeps writing: more than two pages' worth.
    await m.close();
    for (let i = 4; i <= 13; i++) await ok(o.sio, "message:send", { sessionId, clientMessageId: `c0-${i}`, content: `write ${i}`, assistant: false });

    const back = await connect(member);
    const afterSeq = tracker.contiguous;
    const r = await fetchAll(back.sio, sessionId, afterSeq);
    expect(r.session.lastSeq).toBe(13);
    expect(r.pages).toBe(3);
    expect(r.messages.map((x) => x.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(checkBacklog(afterSeq, r.session.lastSeq, r.messages)).toMatchObject({ complete: true, expected: 10 });
    for (const x of r.messages) tracker.add(x.seq);
    expect(tracker.contiguous).toBe(13);

    // Joined again, the member gets the live tail too.
    back.sio.on("message:new", (e) => tracker.add(e.message.seq));
    await ok(o.sio, "message:send", { sessionId, clientMessageId: "c0-14", content: "live again", assistant: false });
    await until("the live tail", () => tracker.contiguous === 14);
    // chat.js's delivery check: nothing after what the member holds.
    expect((await fetchAll(back.sio, sessionId, tracker.contiguous)).messages).toEqual([]);
    // assistant:false means no reply turn, whatever the server's LLM.
    expect(back.events["assistant:start"]).toBeUndefined();
    await o.close();
    await back.close();
  });

  it("refuses a join by a non-member, which a broken setup would show as join errors", async () => {
    const stranger = await register(server.url, uniqueName("lt_x"));
    const s = await connect(stranger);
    const reply = await call(s.sio, "session:join", { sessionId, afterSeq: 0 });
    expect(ackErrorCode(reply)).toBe("NOT_FOUND");
    await s.close();
  });

  it("lets teardown delete the session with the owner's bearer token", async () => {
    const del = await api(server.url, `/api/sessions/${sessionId}`, { method: "DELETE", token: owner.token });
    expect(del.status).toBe(204);
    const m = await connect(member);
    expect(ackErrorCode(await call(m.sio, "session:join", { sessionId }))).toBe("NOT_FOUND");
    await m.close();
  });
});
