/**
 * Issue 13, finding 6 and the session-list part of finding 1, against the
 * real server process: tokens of deleted, disabled or logged-out-everywhere
 * accounts are refused (UNAUTHENTICATED, never INTERNAL); DELETE /api/me
 * removes what the account owns; GET /api/me/export returns what it wrote;
 * GET /api/sessions pages past 100 sessions.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

const JWT_SECRET = "accounts-secret-0123456789-0123456789-0123";
let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: Socket[] = [];

async function client(user: TestUser): Promise<Socket> {
  const s = await connect(server.url, user.token);
  sockets.push(s);
  return s;
}

/** The connect_error's data (the server's error body), or null when the connect succeeded. */
async function connectError(token: string): Promise<{ code: string; message: string } | null> {
  try {
    const s = await connect(server.url, token);
    sockets.push(s);
    return null;
  } catch (err) {
    return (err as { data?: { code: string; message: string } }).data ?? { code: `no data: ${(err as Error).message}`, message: "" };
  }
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return rows[0]!.n;
}

async function indexed(sessionIds: string[]): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const waiting = await count("message_index_jobs j JOIN chat_messages m ON m.id = j.message_id WHERE m.session_id = ANY ($1::uuid[])", [sessionIds]);
    if (waiting === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("indexing did not finish");
}

const disconnected = (s: Socket) => new Promise<string>((resolve) => s.once("disconnect", (reason) => resolve(reason)));

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-accounts-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET,
    EMBEDDER: "hash",
    INDEXER_POLL_MS: "100",
    OFFLINE_TOKEN_DELAY_MS: "0",
    RATE_ACCOUNT_BURST: "6",
    RATE_ACCOUNT_PER_SEC: "0.01",
    // The paging test creates more sessions than a burst of session changes allows.
    RATE_SESSION_BURST: "1000",
  });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("tokens outlive accounts (finding 6)", () => {
  it("refuses a deleted user's token at connect and on REST with UNAUTHENTICATED", async () => {
    const u = await register(server.url);
    await db.pool.query("DELETE FROM users WHERE id = $1", [u.user.id]);
    expect(await connectError(u.token)).toMatchObject({ code: "UNAUTHENTICATED" });
    const r = await api(server.url, "/api/sessions", { token: u.token });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("UNAUTHENTICATED");
    expect(server.logs.filter((l) => l.level === 50 || l.level === 60)).toEqual([]);
  });

  it("answers a connection opened before its account was deleted with UNAUTHENTICATED, not INTERNAL", async () => {
    const u = await register(server.url);
    const s = await client(u);
    await db.pool.query("DELETE FROM users WHERE id = $1", [u.user.id]);
    const r = await call(s, "session:create", { title: "orphan", assistant: false });
    expect(r).toMatchObject({ ok: false, error: { code: "UNAUTHENTICATED" } });
    expect(server.logs.filter((l) => l.level === 50 || l.level === 60)).toEqual([]);
  });

  it("refuses a disabled user's token and password", async () => {
    const u = await register(server.url);
    await db.pool.query("UPDATE users SET disabled_at = now() WHERE id = $1", [u.user.id]);
    expect(await connectError(u.token)).toMatchObject({ code: "UNAUTHENTICATED" });
    expect((await api(server.url, "/api/sessions", { token: u.token })).status).toBe(401);
    const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username: u.user.username, password: u.password } });
    expect(login.status).toBe(401);
    expect(login.body.error.code).toBe("UNAUTHENTICATED");
  });

  it("logout-all revokes every earlier token and closes their connections; a new login works; others are untouched", async () => {
    const u = await register(server.url);
    const other = await register(server.url);
    const second = await api(server.url, "/api/auth/login", { method: "POST", body: { username: u.user.username, password: u.password } });
    expect(second.status).toBe(200);
    const live = await client(u);
    const otherLive = await client(other);
    const closed = disconnected(live);
    const r = await api(server.url, "/api/auth/logout-all", { method: "POST", token: u.token });
    expect(r.status).toBe(204);
    expect(await closed).toBe("io server disconnect");
    for (const token of [u.token, second.body.token as string]) {
      expect(await connectError(token)).toMatchObject({ code: "UNAUTHENTICATED" });
      expect((await api(server.url, "/api/sessions", { token })).status).toBe(401);
    }
    const again = await api(server.url, "/api/auth/login", { method: "POST", body: { username: u.user.username, password: u.password } });
    expect(again.status).toBe(200);
    expect(await connectError(again.body.token)).toBeNull();
    expect((await api(server.url, "/api/sessions", { token: again.body.token })).status).toBe(200);
    // Another user's connection and token are not affected.
    expect(otherLive.connected).toBe(true);
    expect((await ok(otherLive, "session:create", { title: "still here", assistant: false })).session.title).toBe("still here");
    expect((await api(server.url, "/api/sessions", { token: other.token })).status).toBe(200);
  });

  it("account routes need the caller's own valid token", async () => {
    // A character inside the signature: the last one carries two padding bits that base64url
    // decoding ignores, so changing "A" to "B" there leaves the same signature bytes (1 run in 16).
    const token = (await register(server.url)).token;
    const at = token.length - 10;
    const forged = token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1);
    for (const [method, route] of [["POST", "/api/auth/logout-all"], ["DELETE", "/api/me"], ["GET", "/api/me/export"]] as const) {
      for (const token of [undefined, forged, "garbage"]) {
        const r = await api(server.url, route, { method, token });
        expect(r.status, `${method} ${route}`).toBe(401);
        expect(r.body.error.code).toBe("UNAUTHENTICATED");
      }
    }
  });

  it("limits account operations per user", async () => {
    const u = await register(server.url);
    const other = await register(server.url);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await api(server.url, "/api/me/export", { token: u.token })).status);
    expect(statuses.slice(0, 6)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(statuses[6]).toBe(429);
    // The bucket is the user's own.
    expect((await api(server.url, "/api/me/export", { token: other.token })).status).toBe(200);
  });
});

describe("DELETE /api/me", () => {
  it("takes the other members of the deleted user's sessions out of their rooms and tells them", async () => {
    const [alice, bob] = [await register(server.url), await register(server.url)];
    const [a, b] = [await client(alice), await client(bob)];
    const { session } = await ok(a, "session:create", { title: "alice's room", assistant: false });
    await addMember(server.url, a, session.id, bob);
    await ok(b, "session:join", { sessionId: session.id });
    const removed = nextEvent(b, "session:removed");
    expect([204, 202]).toContain((await api(server.url, "/api/me", { method: "DELETE", token: alice.token })).status);
    expect(await removed).toEqual({ sessionId: session.id, reason: "deleted" });
    const r = await call(b, "typing", { sessionId: session.id, isTyping: true });
    expect(r.ok).toBe(false);
  });

  it("deletes the account with its sessions, memberships, feedback, vectors and presence; keeps its words in others' sessions without the author", async () => {
    const alice = await register(server.url);
    const bob = await register(server.url);
    const a = await client(alice);
    const b = await client(bob);

    // Alice's own session, with an assistant reply and her feedback on it.
    const { session: own } = await ok(a, "session:create", { title: "alice's", assistant: true });
    await ok(a, "session:join", { sessionId: own.id });
    const turn = collectTurn(a, own.id);
    await ok(a, "message:send", { sessionId: own.id, clientMessageId: "a1", content: "remember the blue door" });
    const t = await turn;
    await ok(a, "message:feedback", { messageId: t.start.messageId, rating: 1 });
    // Bob's session, where Alice is a member and writes; and Bob's own word there.
    const { session: shared } = await ok(b, "session:create", { title: "bob's", assistant: false });
    await addMember(server.url, b, shared.id, alice);
    await ok(b, "session:join", { sessionId: shared.id });
    await ok(a, "session:join", { sessionId: shared.id });
    await ok(b, "message:send", { sessionId: shared.id, clientMessageId: "b1", content: "bob writes here" });
    await ok(a, "message:send", { sessionId: shared.id, clientMessageId: "a2", content: "alice writes in bob's session" });
    const { session: bobAssisted } = await ok(b, "session:create", { title: "bob assisted", assistant: true });
    await addMember(server.url, b, bobAssisted.id, alice);
    await ok(b, "session:join", { sessionId: bobAssisted.id });
    const bobTurn = collectTurn(b, bobAssisted.id);
    await ok(b, "message:send", { sessionId: bobAssisted.id, clientMessageId: "b2", content: "a question for the assistant" });
    const bt = await bobTurn;
    await ok(a, "message:feedback", { messageId: bt.start.messageId, rating: -1, comment: "alice disagrees" });
    await indexed([own.id, shared.id]);
    // A point in an older embedding version's collection must go too.
    await db.pool.query("INSERT INTO embedding_versions (model, dimensions, collection, active) VALUES ('old-model', 8, 'memchat_old_model_8', false)");
    await db.pool.query(
      `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
       VALUES ('memchat_old_model_8', $1, 1, $2, $3, 'user', 'old', now(), '\\x00')`,
      [randomUUID(), own.id, alice.user.id],
    );
    expect(await count("message_vectors WHERE session_id = $1", [own.id])).toBeGreaterThanOrEqual(3);
    const sharedVectors = await count("message_vectors WHERE session_id = $1", [shared.id]);
    expect(sharedVectors).toBe(2);

    const aliceClosed = disconnected(a);
    const left = nextEvent(b, "presence:leave");
    const r = await api(server.url, "/api/me", { method: "DELETE", token: alice.token });
    expect(r.status).toBe(204);
    expect(await aliceClosed).toBe("io server disconnect");
    expect(await left).toMatchObject({ sessionId: shared.id, userId: alice.user.id });

    expect(await count("users WHERE id = $1", [alice.user.id])).toBe(0);
    expect(await count("chat_sessions WHERE owner_id = $1 OR id = $2", [alice.user.id, own.id])).toBe(0);
    expect(await count("chat_messages WHERE session_id = $1", [own.id])).toBe(0);
    expect(await count("chat_session_members WHERE user_id = $1", [alice.user.id])).toBe(0);
    expect(await count("message_feedback WHERE user_id = $1", [alice.user.id])).toBe(0);
    expect(await count("message_vectors WHERE session_id = $1", [own.id])).toBe(0);
    expect(await count("chat_messages WHERE user_id = $1", [alice.user.id])).toBe(0);
    // Bob's session keeps everything, Alice's message there without its author.
    const { rows } = await db.pool.query("SELECT content, user_id FROM chat_messages WHERE session_id = $1 ORDER BY seq", [shared.id]);
    expect(rows).toEqual([
      { content: "bob writes here", user_id: bob.user.id },
      { content: "alice writes in bob's session", user_id: null },
    ]);
    expect(await count("message_vectors WHERE session_id = $1", [shared.id])).toBe(sharedVectors);
    expect(await count("chat_messages WHERE session_id = $1", [bobAssisted.id])).toBe(2);
    const presence = await ok(b, "session:join", { sessionId: shared.id });
    expect(presence.presence.map((p: { userId: string }) => p.userId)).toEqual([bob.user.id]);

    // The account is gone: no token, no login, no connection; the name is free again.
    expect(await connectError(alice.token)).toMatchObject({ code: "UNAUTHENTICATED" });
    expect((await api(server.url, "/api/me/export", { token: alice.token })).status).toBe(401);
    const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username: alice.user.username, password: alice.password } });
    expect(login.status).toBe(401);
    expect(t.text.length).toBeGreaterThan(0);
    expect(bt.text.length).toBeGreaterThan(0);
  });

  it("one user's token deletes only that user", async () => {
    const a = await register(server.url);
    const b = await register(server.url);
    const bs = await client(b);
    await ok(bs, "session:create", { title: "b keeps this", assistant: false });
    expect((await api(server.url, "/api/me", { method: "DELETE", token: a.token })).status).toBe(204);
    expect(await count("users WHERE id = $1", [b.user.id])).toBe(1);
    expect(await count("chat_sessions WHERE owner_id = $1", [b.user.id])).toBe(1);
    expect(bs.connected).toBe(true);
    expect((await api(server.url, "/api/sessions", { token: b.token })).body.sessions).toHaveLength(1);
  });
});

describe("GET /api/me/export", () => {
  it("returns the caller's profile, sessions with their role, their messages and the replies to them, and nobody else's words", async () => {
    const alice = await register(server.url);
    const bob = await register(server.url);
    const a = await client(alice);
    const b = await client(bob);
    const { session: own } = await ok(a, "session:create", { title: "diary", assistant: true });
    await ok(a, "session:join", { sessionId: own.id });
    const turn = collectTurn(a, own.id);
    await ok(a, "message:send", { sessionId: own.id, clientMessageId: "d1", content: "dear diary" });
    const t = await turn;
    const { session: shared } = await ok(b, "session:create", { title: "bob's room", assistant: false });
    await addMember(server.url, b, shared.id, alice);
    await ok(b, "message:send", { sessionId: shared.id, clientMessageId: "b1", content: "bob's private thought" });
    await ok(a, "message:send", { sessionId: shared.id, clientMessageId: "a1", content: "alice answers bob" });
    const { session: bobOnly } = await ok(b, "session:create", { title: "bob alone", assistant: false });
    await ok(b, "message:send", { sessionId: bobOnly.id, clientMessageId: "b2", content: "nobody else sees this" });
    // Her rating of the reply, with a comment; her daily usage (an earlier day, and today's turn once it is counted).
    await ok(a, "message:feedback", { messageId: t.end!.message.id, rating: 1, comment: "a kind diary" });
    await db.pool.query("INSERT INTO usage_daily (user_id, day, prompt_tokens, completion_tokens, turns) VALUES ($1, '2026-01-15', 1200, 340, 3)", [alice.user.id]);

    const r = await api(server.url, "/api/me/export", { token: alice.token });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    expect(r.headers.get("content-disposition")).toContain("attachment");
    const doc = r.body;
    expect(doc.format).toBe("memchat-export/1");
    expect(doc.user).toMatchObject({ id: alice.user.id, username: alice.user.username });
    const byId = new Map<string, any>(doc.sessions.map((s: any) => [s.id, s]));
    expect([...byId.keys()].sort()).toEqual([own.id, shared.id].sort());
    expect(byId.get(own.id)).toMatchObject({ title: "diary", role: "owner", archived: false, messageCount: 2 });
    expect(byId.get(own.id).messages.map((m: any) => [m.role, m.content])).toEqual([
      ["user", "dear diary"],
      ["assistant", t.end!.message.content],
    ]);
    expect(byId.get(shared.id)).toMatchObject({ title: "bob's room", role: "member", ownerId: bob.user.id });
    expect(byId.get(shared.id).messages.map((m: any) => m.content)).toEqual(["alice answers bob"]);
    expect(JSON.stringify(doc)).not.toContain("bob's private thought");
    expect(JSON.stringify(doc)).not.toContain("nobody else sees this");
    expect(doc.feedback).toEqual([
      { messageId: t.end!.message.id, sessionId: own.id, rating: 1, comment: "a kind diary", createdAt: expect.any(String), updatedAt: expect.any(String) },
    ]);
    const usage = await db.pool.query<{ day: string; promptTokens: number; completionTokens: number; turns: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, prompt_tokens::int AS "promptTokens", completion_tokens::int AS "completionTokens", turns
         FROM usage_daily WHERE user_id = $1 ORDER BY day`,
      [alice.user.id],
    );
    expect(usage.rows[0]).toEqual({ day: "2026-01-15", promptTokens: 1200, completionTokens: 340, turns: 3 });
    expect(doc.usage).toEqual(usage.rows);

    // Bob's export is his own: Alice's diary is not in it.
    const bobDoc = (await api(server.url, "/api/me/export", { token: bob.token })).body;
    expect(bobDoc.user.id).toBe(bob.user.id);
    expect(bobDoc.sessions.map((s: any) => s.id).sort()).toEqual([shared.id, bobOnly.id].sort());
    expect(JSON.stringify(bobDoc)).not.toContain("dear diary");
    expect(JSON.stringify(bobDoc)).not.toContain("alice answers bob");
    expect(bobDoc.feedback).toEqual([]);
    expect(bobDoc.usage).toEqual([]);
  });

  it("streams a history larger than one page of sessions and messages", async () => {
    const u = await register(server.url);
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO chat_sessions (owner_id, title, assistant_enabled) SELECT $1, 'bulk ' || g, false FROM generate_series(1, 105) g RETURNING id`,
      [u.user.id],
    );
    await db.pool.query(`INSERT INTO chat_session_members (session_id, user_id, role) SELECT unnest($1::uuid[]), $2, 'owner'`, [rows.map((r) => r.id), u.user.id]);
    await db.pool.query(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content) SELECT $1, g, $2, 'user', 'line ' || g FROM generate_series(1, 1201) g`,
      [rows[0]!.id, u.user.id],
    );
    const doc = (await api(server.url, "/api/me/export", { token: u.token })).body;
    expect(doc.sessions).toHaveLength(105);
    const big = doc.sessions.find((s: any) => s.id === rows[0]!.id);
    expect(big.messages).toHaveLength(1201);
    expect(big.messages.map((m: any) => m.seq)).toEqual(Array.from({ length: 1201 }, (_, i) => i + 1));
  });
});

describe("GET /api/sessions paging (finding 1)", () => {
  it("returns every session across pages, newest activity first, with messageCount, lastMessageAt and archived", async () => {
    const u = await register(server.url);
    const s = await client(u);
    const created: string[] = [];
    for (let i = 0; i < 130; i++) created.push((await ok(s, "session:create", { title: `s${i}`, assistant: false })).session.id);
    await ok(s, "message:send", { sessionId: created[5], clientMessageId: "m1", content: "hello" });

    // The old client's call: no parameters, the first 100 (as before) and a cursor for more.
    const first = await api(server.url, "/api/sessions", { token: u.token });
    expect(first.status).toBe(200);
    expect(first.body.sessions).toHaveLength(100);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    expect(first.body.sessions[0]).toMatchObject({ id: created[5], messageCount: 1, lastMessageAt: expect.any(String), archived: false, role: "owner" });
    expect(first.body.sessions[1]).toMatchObject({ id: created[129], messageCount: 0, lastMessageAt: null, archived: false });

    const seen: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `?limit=40&cursor=${encodeURIComponent(cursor)}` : "?limit=40";
      const r = await api(server.url, `/api/sessions${q}`, { token: u.token });
      expect(r.status).toBe(200);
      seen.push(...r.body.sessions);
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen.map((x) => x.id)).toEqual([created[5], ...created.filter((_, i) => i !== 5).reverse()]);
    for (let i = 1; i < seen.length; i++) expect(seen[i].updatedAt <= seen[i - 1].updatedAt).toBe(true);
  });

  it("refuses a forged cursor and a bad limit, and pages only the caller's sessions", async () => {
    const u = await register(server.url);
    const other = await register(server.url);
    const os = await client(other);
    await ok(os, "session:create", { title: "other's", assistant: false });
    for (const q of ["?cursor=nope", `?cursor=${Buffer.from('{"t":"x","i":"y"}').toString("base64url")}`, "?limit=0", "?limit=201", "?limit=abc"]) {
      const r = await api(server.url, `/api/sessions${q}`, { token: u.token });
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const r = await api(server.url, "/api/sessions", { token: u.token });
    expect(r.body).toEqual({ sessions: [], nextCursor: null });
  });
});
