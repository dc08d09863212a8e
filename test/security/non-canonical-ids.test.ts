/**
 * Issue 13, finding 3 ("Non-canonical ids split rooms"): a session id in
 * upper case (Swift's `UUID().uuidString`) names the same session, the same
 * room and the same everything else as its lower-case spelling.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addMember, api, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: Socket[] = [];

async function client(user: TestUser): Promise<Socket> {
  const s = await connect(server.url, user.token);
  sockets.push(s);
  return s;
}

beforeAll(async () => {
  db = await createTestDatabase(2);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-sec-ids-"));
  server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: "sec-ids-secret-0123456789-0123456789-0123", EMBEDDER: "none" });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("upper-case session ids", () => {
  it("join the same room as the lower-case id: members see each other's messages and typing", async () => {
    const [alice, bob] = await Promise.all([register(server.url), register(server.url)]);
    const a = await client(alice);
    const b = await client(bob);
    const { session } = await ok(a, "session:create", { title: "case" });
    await addMember(server.url, a, session.id, bob);
    const upper = session.id.toUpperCase();
    expect(upper).not.toBe(session.id);

    await ok(a, "session:join", { sessionId: session.id });
    const joined = await ok(b, "session:join", { sessionId: upper });
    expect(joined.session.id).toBe(session.id);

    // Bob (upper case) hears Alice (lower case) ...
    const toBob = nextEvent(b, "message:new");
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "a1", content: "from alice" });
    expect((await toBob).message.content).toBe("from alice");

    // ... and Alice hears Bob, whose events name the session in upper case.
    const toAlice = nextEvent(a, "message:new");
    const sent = await ok(b, "message:send", { sessionId: upper, clientMessageId: "b1", content: "from bob" });
    expect(sent.message.sessionId).toBe(session.id);
    expect((await toAlice).message.content).toBe("from bob");

    const typing = nextEvent(a, "typing");
    await ok(b, "typing", { sessionId: upper, isTyping: true });
    expect((await typing).sessionId).toBe(session.id);

    // A retry with the other spelling is the same message, not a second one.
    const retry = await ok(b, "message:send", { sessionId: session.id, clientMessageId: "b1", content: "from bob" });
    expect(retry.message.id).toBe(sent.message.id);
  });

  it("leaving with the upper-case id leaves the room joined with the lower-case one", async () => {
    const [alice, bob] = await Promise.all([register(server.url), register(server.url)]);
    const a = await client(alice);
    const b = await client(bob);
    const { session } = await ok(a, "session:create", {});
    await addMember(server.url, a, session.id, bob);
    await ok(a, "session:join", { sessionId: session.id });
    await ok(b, "session:join", { sessionId: session.id });
    const left = nextEvent(a, "presence:leave");
    expect(await ok(b, "session:leave", { sessionId: session.id.toUpperCase() })).toEqual({ left: true });
    expect((await left).sessionId).toBe(session.id);
    // Out of the room: typing is refused, as for any connection that has not joined.
    const r = await b.timeout(5000).emitWithAck("typing", { sessionId: session.id, isTyping: true });
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe("FORBIDDEN");
  });

  it("REST routes take the upper-case id and answer with the canonical one", async () => {
    const alice = await register(server.url);
    const a = await client(alice);
    const { session } = await ok(a, "session:create", { title: "rest" });
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "r1", content: "hello" });
    const history = await api(server.url, `/api/sessions/${session.id.toUpperCase()}/messages`, { token: alice.token });
    expect(history.status).toBe(200);
    expect(history.body.messages.length).toBeGreaterThan(0);
    for (const m of history.body.messages as { sessionId: string }[]) expect(m.sessionId).toBe(session.id);

    const renamed = await api(server.url, `/api/sessions/${session.id.toUpperCase()}`, { method: "PATCH", token: alice.token, body: { title: "renamed" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.session.id).toBe(session.id);
  });
});
