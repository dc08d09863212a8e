/**
 * The real server as a child process on a private PostgreSQL database,
 * driven with socket.io-client and fetch as a client would. Sessions here
 * have no assistant: replies are covered in assistant.test.ts.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

const JWT_SECRET = "e2e-secret-0123456789-0123456789-0123456789";
let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: Socket[] = [];

const env = () => ({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET, MAX_MESSAGE_CHARS: "2000" });

async function counts() {
  const { rows } = await db.pool.query<{ users: number; sessions: number; members: number; messages: number }>(
    `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM chat_sessions)::int AS sessions,
            (SELECT count(*) FROM chat_session_members)::int AS members, (SELECT count(*) FROM chat_messages)::int AS messages`,
  );
  return rows[0]!;
}

async function client(user: TestUser): Promise<Socket> {
  const s = await connect(server.url, user.token);
  sockets.push(s);
  return s;
}

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-e2e-"));
  server = await startServer(env());
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("health, readiness, metrics", () => {
  it("answers /healthz, /readyz and /metrics", async () => {
    expect((await api(server.url, "/healthz")).status).toBe(200);
    const ready = await api(server.url, "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database.ok).toBe(true);
    const m = await api(server.url, "/metrics");
    expect(m.status).toBe(200);
    for (const series of ["chat_sockets_connected gauge", "chat_messages_accepted_total counter", "chat_ack_latency_seconds histogram", "chat_errors_total counter"]) {
      expect(m.body).toContain(`# TYPE ${series}`);
    }
    expect(m.body).toContain('chat_errors_total{code="RATE_LIMITED"} 0');
    // Where tails come from, as a Grafana user reads them: event-loop delay and GC pauses (prom-client's
    // default metrics), and the send path's phases.
    for (const series of [
      "memchat_nodejs_eventloop_lag_p99_seconds gauge",
      "memchat_nodejs_gc_duration_seconds histogram",
      "chat_send_queue_seconds histogram",
      "chat_db_pool_wait_seconds histogram",
      "chat_send_statement_seconds histogram",
    ]) {
      expect(m.body).toContain(`# TYPE ${series}`);
    }
  });

  it("times every send's phases in /metrics", async () => {
    const count = (body: string, name: string) => Number(new RegExp(`^${name}_count(?:\\{[^}]*\\})? (\\d+)$`, "m").exec(body)?.[1] ?? 0);
    const before = (await api(server.url, "/metrics")).body as string;
    const u = await register(server.url);
    const s = await client(u);
    const { session } = await ok(s, "session:create", { title: "timed", assistant: false });
    await Promise.all([1, 2, 3].map((i) => ok(s, "message:send", { sessionId: session.id, clientMessageId: `timed-${i}`, content: `timed ${i}`, assistant: false })));
    s.close();
    const after = (await api(server.url, "/metrics")).body as string;
    expect(count(after, "chat_send_queue_seconds") - count(before, "chat_send_queue_seconds")).toBe(3);
    const statements = count(after, "chat_send_statement_seconds") - count(before, "chat_send_statement_seconds");
    expect(statements).toBeGreaterThanOrEqual(1);
    expect(statements).toBeLessThanOrEqual(3);
    expect(count(after, "chat_db_pool_wait_seconds") - count(before, "chat_db_pool_wait_seconds")).toBe(statements);
  });

  it("answers unknown routes with NOT_FOUND", async () => {
    const r = await api(server.url, "/api/nope");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("NOT_FOUND");
  });
});

describe("auth", () => {
  it("registers, refuses a taken name, logs in, refuses a wrong password", async () => {
    const name = `auth_${randomUUID().slice(0, 8)}`;
    const u = await register(server.url, name);
    expect(u.user.username).toBe(name);
    const dup = await api(server.url, "/api/auth/register", { method: "POST", body: { username: name.toUpperCase(), password: "whatever123" } });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe("CONFLICT");
    const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username: name, password: u.password } });
    expect(login.status).toBe(200);
    expect(login.body.user).toEqual(u.user);
    const bad = await api(server.url, "/api/auth/login", { method: "POST", body: { username: name, password: "wrong-password" } });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe("UNAUTHENTICATED");
    const unknown = await api(server.url, "/api/auth/login", { method: "POST", body: { username: "no_such_user_x", password: "wrong-password" } });
    expect(unknown.status).toBe(401);
  });

  it("refuses malformed registration bodies and writes nothing", async () => {
    const before = await counts();
    for (const body of [
      "not json",
      { username: "ab", password: "password123" },
      { username: "good_name", password: "short" },
      { username: "bad name!", password: "password123" },
      { username: 12345, password: "password123" },
      { username: "good_name" },
      { username: "good_name", password: "password123", extra: 1 },
      [],
    ]) {
      const r = await api(server.url, "/api/auth/register", { method: "POST", body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    expect(await counts()).toEqual(before);
  });

  it("refuses sockets with a missing, forged, malformed or expired token", async () => {
    const u = await register(server.url);
    const forged = await new SignJWT({ name: u.user.username })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.user.id)
      .setIssuer("memchat")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("some-other-secret-some-other-secret-0000"));
    const expired = await new SignJWT({ name: u.user.username })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.user.id)
      .setIssuer("memchat")
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(JWT_SECRET));
    for (const token of [undefined, "", "garbage", forged, expired, u.token.slice(0, -3) + "abc"]) {
      const err = await connect(server.url, token).then(
        (s) => {
          s.close();
          return null;
        },
        (e: Error & { data?: { code: string } }) => e,
      );
      expect(err?.message).toBe("UNAUTHENTICATED");
      expect(err?.data?.code).toBe("UNAUTHENTICATED");
    }
    const s = await client(u);
    expect(s.connected).toBe(true);
  });

  it("survives a flood of connects without a token", async () => {
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => connect(server.url, undefined)));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    expect((await api(server.url, "/healthz")).status).toBe(200);
    const m = await api(server.url, "/metrics");
    expect(m.body).toMatch(/chat_socket_auth_failures_total \d{3}/);
  });
});

describe("sessions and messages over /chat", () => {
  let alice: TestUser;
  let bob: TestUser;
  let a: Socket;
  let b: Socket;

  beforeAll(async () => {
    alice = await register(server.url);
    bob = await register(server.url);
    a = await client(alice);
    b = await client(bob);
  });

  it("creates, joins, sends; the room gets message:new, presence and typing", async () => {
    const { session } = await ok(a, "session:create", { title: "Plans", assistant: false });
    expect(session).toMatchObject({ title: "Plans", ownerId: alice.user.id, role: "owner" });
    const joinedA = await ok(a, "session:join", { sessionId: session.id });
    expect(joinedA.messages).toEqual([]);
    expect(joinedA.presence).toEqual([{ userId: alice.user.id }]);

    // bob cannot join until invited
    const refused = await call(b, "session:join", { sessionId: session.id });
    expect(!refused.ok && refused.error.code).toBe("NOT_FOUND");
    const inv = await ok(a, "session:invite", { sessionId: session.id, username: bob.user.username });
    expect(inv.member).toEqual({ userId: bob.user.id, username: bob.user.username });
    expect(inv.pending).toBe(true);
    // invited is not a member: bob still cannot join until he accepts
    const early = await call(b, "session:join", { sessionId: session.id });
    expect(!early.ok && early.error.code).toBe("NOT_FOUND");
    await ok(b, "invitation:accept", { sessionId: session.id });
    const presenceSeen = nextEvent(a, "presence:join");
    const joinedB = await ok(b, "session:join", { sessionId: session.id });
    expect(joinedB.presence.map((p: { userId: string }) => p.userId).sort()).toEqual([alice.user.id, bob.user.id].sort());
    expect(await presenceSeen).toMatchObject({ sessionId: session.id, userId: bob.user.id, username: bob.user.username });

    const typingSeen = nextEvent(b, "typing");
    expect(await ok(a, "typing", { sessionId: session.id, isTyping: true })).toEqual({ sent: true });
    expect(await typingSeen).toMatchObject({ sessionId: session.id, userId: alice.user.id, isTyping: true });

    const newSeen = nextEvent(b, "message:new");
    const sent = await ok(a, "message:send", { sessionId: session.id, clientMessageId: "m1", content: "Hello Bob", assistant: false });
    expect(sent.message).toMatchObject({ sessionId: session.id, seq: 1, role: "user", content: "Hello Bob", status: "complete", clientMessageId: "m1", userId: alice.user.id });
    expect((await newSeen).message).toEqual(sent.message);

    // rejoin with afterSeq gets only what was missed
    await ok(b, "message:send", { sessionId: session.id, clientMessageId: "m2", content: "Hi Alice" });
    const rejoin = await ok(a, "session:join", { sessionId: session.id, afterSeq: 1 });
    expect(rejoin.messages.map((m: { content: string }) => m.content)).toEqual(["Hi Alice"]);

    const left = nextEvent(a, "presence:leave");
    await ok(b, "session:leave", { sessionId: session.id });
    expect(await left).toMatchObject({ userId: bob.user.id });
  });

  it("gives 50 clients sending at once into one session seqs 1..50", async () => {
    const { session } = await ok(a, "session:create", { assistant: false });
    const users = await Promise.all(Array.from({ length: 10 }, () => register(server.url)));
    for (const u of users) await addMember(server.url, a, session.id, u);
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => client(users[i % users.length]!)));
    const acks = await Promise.all(
      clients.map((c, i) => ok(c, "message:send", { sessionId: session.id, clientMessageId: `c-${i}`, content: `message ${i}` })),
    );
    const seqs = acks.map((x) => x.message.seq).sort((x: number, y: number) => x - y);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const { rows } = await db.pool.query("SELECT seq FROM chat_messages WHERE session_id = $1 ORDER BY seq", [session.id]);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const c of clients) c.close();
  });

  it("stores one row when the same clientMessageId is sent twice, also at once", async () => {
    const { session } = await ok(a, "session:create", { assistant: false });
    const payload = { sessionId: session.id, clientMessageId: "retry-1", content: "only once" };
    const [r1, r2] = await Promise.all([ok(a, "message:send", payload), ok(b, "message:send", payload).catch((e) => e)]);
    expect(r2).toBeInstanceOf(Error); // bob is not a member: NOT_FOUND, nothing written
    const r3 = await ok(a, "message:send", payload);
    const a2 = await client(alice);
    const [r4, r5] = await Promise.all([ok(a2, "message:send", payload), ok(a, "message:send", payload)]);
    for (const r of [r3, r4, r5]) expect(r.message).toEqual(r1.message);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [session.id]);
    expect(rows[0].n).toBe(1);
  });

  it("pages history with message:history and REST", async () => {
    const { session } = await ok(a, "session:create", { assistant: false });
    for (let i = 1; i <= 12; i++) await ok(a, "message:send", { sessionId: session.id, clientMessageId: `h${i}`, content: `line ${i}` });
    const p1 = await ok(a, "message:history", { sessionId: session.id, limit: 5 });
    expect(p1.messages.map((m: { seq: number }) => m.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(p1.nextBeforeSeq).toBe(8);
    const p2 = await ok(a, "message:history", { sessionId: session.id, beforeSeq: 8, limit: 5 });
    expect(p2.messages.map((m: { seq: number }) => m.seq)).toEqual([3, 4, 5, 6, 7]);
    const p3 = await ok(a, "message:history", { sessionId: session.id, beforeSeq: 3, limit: 5 });
    expect(p3.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2]);
    expect(p3.nextBeforeSeq).toBeNull();
    const rest = await api(server.url, `/api/sessions/${session.id}/messages?beforeSeq=8&limit=5`, { token: alice.token });
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual(p2);
    const list = await api(server.url, "/api/sessions", { token: alice.token });
    expect(list.body.sessions.map((s: { id: string }) => s.id)).toContain(session.id);
  });

  it("never lets another user join, read, write or delete a session, and writes nothing", async () => {
    const mallory = await register(server.url);
    const m = await client(mallory);
    const { session } = await ok(a, "session:create", { title: "private", assistant: false });
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "s1", content: "my secret" });
    const before = await counts();
    for (const [event, payload] of [
      ["session:join", { sessionId: session.id }],
      ["session:join", { sessionId: session.id, afterSeq: 0 }],
      ["message:history", { sessionId: session.id }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "intrusion" }],
      ["message:send", { sessionId: session.id, clientMessageId: "s1", content: "replay" }],
      ["session:invite", { sessionId: session.id, username: mallory.user.username }],
      ["typing", { sessionId: session.id, isTyping: true }],
    ] as const) {
      const r = await call(m, event, payload);
      expect(r.ok, `${event} ${JSON.stringify(payload)}`).toBe(false);
      expect(["NOT_FOUND", "FORBIDDEN"]).toContain(!r.ok && r.error.code);
      if (event !== "typing") expect(!r.ok && r.error.code).toBe("NOT_FOUND");
    }
    expect((await api(server.url, `/api/sessions/${session.id}/messages`, { token: mallory.token })).status).toBe(404);
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: mallory.token })).status).toBe(404);
    const listed = await api(server.url, "/api/sessions", { token: mallory.token });
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).not.toContain(session.id);
    expect(await counts()).toEqual(before);
  });

  it("refuses every malformed payload with BAD_REQUEST and changes nothing", async () => {
    const { session } = await ok(a, "session:create", { assistant: false });
    const before = await counts();
    const cases: [string, unknown][] = [
      ["message:send", undefined],
      ["message:send", "hello"],
      ["message:send", 42],
      ["message:send", null],
      ["message:send", []],
      ["message:send", { sessionId: session.id, content: "no client id" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "   \n " }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "a".repeat(2001) }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: 5 }],
      ["message:send", { sessionId: "not-a-uuid", clientMessageId: "x", content: "hi" }],
      ["message:send", { sessionId: session.id, clientMessageId: "", content: "hi" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x".repeat(101), content: "hi" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "hi", assistant: "yes" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "hi", admin: true }],
      ["message:send", { sessionId: session.id, clientMessageId: "x", content: "nul \u0000 byte" }],
      ["message:send", { sessionId: session.id, clientMessageId: "x\u0000", content: "hi" }],
      ["session:rename", { sessionId: session.id, title: "a\u0000b" }],
      ["session:join", { sessionId: 123 }],
      ["session:join", { sessionId: session.id, afterSeq: -1 }],
      ["session:join", { sessionId: session.id, afterSeq: 1.5 }],
      ["message:history", { sessionId: session.id, limit: 0 }],
      ["message:history", { sessionId: session.id, limit: 100000 }],
      ["session:create", { title: 7 }],
      ["session:create", { title: "t".repeat(201) }],
      ["typing", { sessionId: session.id }],
      ["no:such:event", { anything: 1 }],
    ];
    for (const [event, payload] of cases) {
      const r = await call(a, event, payload);
      expect(r.ok, `${event} ${JSON.stringify(payload)?.slice(0, 80)}`).toBe(false);
      expect(!r.ok && r.error.code).toBe("BAD_REQUEST");
    }
    // an unknown but well-formed id is NOT_FOUND
    const r = await call(a, "message:send", { sessionId: randomUUID(), clientMessageId: "x", content: "hi" });
    expect(!r.ok && r.error.code).toBe("NOT_FOUND");
    expect(await counts()).toEqual(before);
    expect((await api(server.url, "/api/sessions/not-a-uuid/messages", { token: alice.token })).status).toBe(400);
    expect((await api(server.url, `/api/sessions/${session.id}/messages?limit=abc`, { token: alice.token })).status).toBe(400);
    expect((await api(server.url, "/api/sessions", {})).status).toBe(401);
    // the socket is still usable
    expect((await call(a, "message:history", { sessionId: session.id })).ok).toBe(true);
  });

  it("closes a socket that sends a packet over the size limit, and the server stays up", async () => {
    const s = await client(alice);
    const closed = new Promise<string>((r) => s.once("disconnect", (reason) => r(reason)));
    s.emit("message:send", { sessionId: randomUUID(), clientMessageId: "big", content: "x".repeat(200_000) });
    expect(await closed).toBe("transport close");
    expect((await api(server.url, "/healthz")).status).toBe(200);
  });

  it("renames a session (owner only) and tells the room", async () => {
    const { session } = await ok(a, "session:create", { title: "before", assistant: false });
    await addMember(server.url, a, session.id, bob);
    await ok(b, "session:join", { sessionId: session.id });
    const heard = nextEvent(b, "session:updated");
    const r = await ok(a, "session:rename", { sessionId: session.id, title: "after" });
    expect(r.session).toMatchObject({ id: session.id, title: "after" });
    expect(await heard).toMatchObject({ sessionId: session.id, title: "after" });
    const refused = await call(b, "session:rename", { sessionId: session.id, title: "mine now" });
    expect(!refused.ok && refused.error.code).toBe("FORBIDDEN");
    const rest = await api(server.url, `/api/sessions/${session.id}`, { method: "PATCH", token: alice.token, body: { title: "via REST" } });
    expect(rest.status).toBe(200);
    expect(rest.body.session.title).toBe("via REST");
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "PATCH", token: alice.token, body: { title: 5 } })).status).toBe(400);
  });

  it("deletes a session and its messages over REST (owner only)", async () => {
    const { session } = await ok(a, "session:create", { assistant: false });
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "d1", content: "to be deleted" });
    await addMember(server.url, a, session.id, bob);
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: bob.token })).status).toBe(403);
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: alice.token })).status).toBe(204);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [session.id]);
    expect(rows[0].n).toBe(0);
    expect((await call(a, "session:join", { sessionId: session.id })).ok).toBe(false);
  });
});

describe("restart", () => {
  it("stops gracefully on SIGTERM and keeps every session and message", async () => {
    const u = await register(server.url);
    const s = await client(u);
    const { session } = await ok(s, "session:create", { title: "durable", assistant: false });
    for (let i = 0; i < 5; i++) await ok(s, "message:send", { sessionId: session.id, clientMessageId: `r${i}`, content: `keep ${i}` });
    const before = await api(server.url, `/api/sessions/${session.id}/messages`, { token: u.token });
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.logs.some((l) => l.msg === "shutdown complete")).toBe(true);
    server = await startServer(env());
    const after = await api(server.url, `/api/sessions/${session.id}/messages`, { token: u.token });
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
  });
});
