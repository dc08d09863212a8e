/**
 * Issue 14 against the real server process: archiving over the socket and
 * REST is the owner's alone (an outsider learns nothing, a member is
 * refused), rate limited per user, and an archived session refuses sends
 * with ARCHIVED while it stays readable and searchable. A full session
 * continues in a successor its members hear about.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: Socket[] = [];
let owner: TestUser;
let member: TestUser;
let outsider: TestUser;

const errCode = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? undefined : r.error?.code);

async function client(u: TestUser) {
  const s = await connect(server.url, u.token);
  sockets.push(s);
  return s;
}

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-lifecycle-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "lifecycle-secret-0123456789-0123456789",
    EMBEDDER: "hash",
    OFFLINE_TOKEN_DELAY_MS: "0",
    MEMORY_MIN_SIMILARITY: "0",
    SESSION_MAX_MESSAGES: "10",
    RATE_SESSION_BURST: "6",
    RATE_SESSION_PER_SEC: "0.01",
  });
  [owner, member, outsider] = await Promise.all([register(server.url), register(server.url), register(server.url)]);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("archiving", () => {
  it("is the owner's alone, over the socket and REST: an outsider gets NOT_FOUND, a member FORBIDDEN, and nothing changes", async () => {
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "private", assistant: false });
    await addMember(server.url, o, session.id, member);
    const m = await client(member);
    const x = await client(outsider);

    expect(errCode(await call(x, "session:archive", { sessionId: session.id, archived: true }))).toBe("NOT_FOUND");
    expect(errCode(await call(m, "session:archive", { sessionId: session.id, archived: true }))).toBe("FORBIDDEN");
    expect((await api(server.url, `/api/sessions/${session.id}/archive`, { method: "POST", token: outsider.token })).status).toBe(404);
    expect((await api(server.url, `/api/sessions/${session.id}/archive`, { method: "POST", token: member.token })).status).toBe(403);
    expect((await api(server.url, `/api/sessions/${session.id}/archive`, { method: "POST" })).status).toBe(401);
    expect(errCode(await call(x, "session:archive", { sessionId: "not-a-uuid", archived: true }))).toBe("BAD_REQUEST");
    expect(errCode(await call(x, "session:archive", { sessionId: session.id, archived: "yes" }))).toBe("BAD_REQUEST");
    const { rows } = await db.pool.query("SELECT archived FROM chat_sessions WHERE id = $1", [session.id]);
    expect(rows[0].archived).toBe(false);
    // the outsider's list shows it under no filter
    for (const f of ["true", "false", "all"]) {
      const list = await api(server.url, `/api/sessions?archived=${f}`, { token: outsider.token });
      expect(list.body.sessions.map((s: { id: string }) => s.id)).not.toContain(session.id);
    }
    expect((await api(server.url, "/api/sessions?archived=maybe", { token: owner.token })).status).toBe(400);
  });

  it("refuses sends to an archived session with ARCHIVED, keeps it readable and searchable, and tells the room", async () => {
    const o = await client(owner);
    const m = await client(member);
    const { session } = await ok(o, "session:create", { title: "finished project", assistant: false });
    await addMember(server.url, o, session.id, member);
    await ok(m, "session:join", { sessionId: session.id });
    await ok(m, "message:send", { sessionId: session.id, clientMessageId: "before", content: "the zanzibar contract is signed" });

    const told = nextEvent(m, "session:archived");
    const archived = await api(server.url, `/api/sessions/${session.id}/archive`, { method: "POST", token: owner.token });
    expect(archived.status).toBe(200);
    expect(archived.body.session).toMatchObject({ id: session.id, archived: true });
    expect(await told).toMatchObject({ sessionId: session.id, archived: true, successorId: null });

    const refused = await call(m, "message:send", { sessionId: session.id, clientMessageId: "after", content: "one more thing" });
    expect(refused).toMatchObject({ ok: false, error: { code: "ARCHIVED" } });
    // a retry of the message stored before still gets its row
    const retry = await call(m, "message:send", { sessionId: session.id, clientMessageId: "before", content: "the zanzibar contract is signed" });
    expect(retry.ok).toBe(true);
    // readable, listed under the filter only, and found by search with archived: true
    expect((await ok(m, "message:history", { sessionId: session.id })).messages).toHaveLength(1);
    const live = await api(server.url, "/api/sessions", { token: member.token });
    expect(live.body.sessions.map((s: { id: string }) => s.id)).not.toContain(session.id);
    const arch = await api(server.url, "/api/sessions?archived=true", { token: member.token });
    expect(arch.body.sessions.map((s: { id: string }) => s.id)).toContain(session.id);
    const hits = (await ok(m, "memory:search", { query: "zanzibar contract", mode: "lexical" })).hits;
    expect(hits[0]).toMatchObject({ sessionId: session.id, archived: true });
    // the outsider's search finds nothing of it
    const xs = await client(outsider);
    expect((await ok(xs, "memory:search", { query: "zanzibar contract", mode: "lexical" })).hits).toEqual([]);

    const back = await ok(o, "session:archive", { sessionId: session.id, archived: false });
    expect(back.session.archived).toBe(false);
    expect((await call(m, "message:send", { sessionId: session.id, clientMessageId: "after", content: "one more thing" })).ok).toBe(true);
  });

  it("continues a session that reaches SESSION_MAX_MESSAGES in a successor with the same members", async () => {
    const o = await client(owner);
    const m = await client(member);
    const { session } = await ok(o, "session:create", { title: "marathon", assistant: false });
    await addMember(server.url, o, session.id, member);
    await ok(m, "session:join", { sessionId: session.id });
    const continued = nextEvent(m, "session:continued", 10_000);
    const archivedEvent = nextEvent(m, "session:archived", 10_000);
    for (let i = 0; i < 10; i++) await ok(i % 2 ? m : o, "message:send", { sessionId: session.id, clientMessageId: `x${i}`, content: `message ${i}` });
    const c = await continued;
    expect(c).toMatchObject({ sessionId: session.id, successor: { role: "member", archived: false, title: "marathon (continued)" } });
    expect(await archivedEvent).toMatchObject({ sessionId: session.id, archived: true, successorId: c.successor.id });
    const old = await ok(m, "message:history", { sessionId: session.id });
    expect(old.messages.at(-1)).toMatchObject({ role: "system", seq: 11 });
    expect(errCode(await call(o, "message:send", { sessionId: session.id, clientMessageId: "x10", content: "too late" }))).toBe("ARCHIVED");
    // the member is in the successor without an invitation; the outsider is not
    expect((await ok(m, "message:send", { sessionId: c.successor.id, clientMessageId: "y0", content: "carrying on" })).message.seq).toBe(1);
    const xs = await client(outsider);
    expect(errCode(await call(xs, "session:join", { sessionId: c.successor.id }))).toBe("NOT_FOUND");
  });

  it("is rate limited per user", async () => {
    // A fresh user: the burst of 6 is theirs alone; the earlier tests spent the owner's.
    const someone = await register(server.url);
    const s = await client(someone);
    const { session } = await ok(s, "session:create", { title: "flip-flop", assistant: false });
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++) codes.push(errCode(await call(s, "session:archive", { sessionId: session.id, archived: i % 2 === 0 })));
    expect(codes.slice(0, 6)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
    expect(codes.slice(6)).toEqual(["RATE_LIMITED", "RATE_LIMITED"]);
    const rest = await api(server.url, `/api/sessions/${session.id}/unarchive`, { method: "POST", token: someone.token });
    expect(rest.status).toBe(429);
  });
});
