/**
 * Issue 13, finding 4 ("Unlimited events"): every socket event and REST route
 * draws from a rate-limit family, and an exhausted family answers
 * RATE_LIMITED with retryAfterMs. Two nodes share PostgreSQL and Redis (the
 * buckets are Redis Lua scripts, as in a cluster), with buckets of 3 that
 * practically never refill, behind TRUST_PROXY, so each test speaks from its
 * own X-Forwarded-For address and per-address buckets do not collide.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ack, ErrorBody } from "../../src/protocol/errors.js";
import { api, call, connect, ok, register, type TestUser, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

const BURST = 3;
const FAMILIES = ["message", "turn", "connect", "login", "session", "invite", "typing", "read", "search", "feedback", "cancel", "admin"];
/** Named in ADMIN_USERNAMES: an admin, for the admin family. */
const ADMIN = uniqueName("limitadmin");
/** Per address, and registering a test user spends one too. */
const REST_BURST = 10;

let db: TestDatabase;
let server: ServerProcess;
let other: ServerProcess;
let redis: RedisServerHandle;
let dataDir: string;
const sockets: Socket[] = [];

let nextAddress = 1;
/** A client address of its own (the server trusts X-Forwarded-For). */
const freshAddress = () => ({ "x-forwarded-for": `10.13.${nextAddress >> 8}.${nextAddress++ & 255}` });

interface Client {
  user: TestUser;
  socket: Socket;
  headers: Record<string, string>;
}

async function client(headers: Record<string, string> = freshAddress()): Promise<Client> {
  const user = await register(server.url, uniqueName(), headers);
  const socket = await connect(server.url, user.token, { headers });
  sockets.push(socket);
  return { user, socket, headers };
}

function expectRateLimited(r: { ok: boolean; error?: ErrorBody }) {
  expect(r.ok).toBe(false);
  expect(r.error?.code).toBe("RATE_LIMITED");
  expect(r.error?.retryAfterMs).toBeGreaterThan(0);
}

/** Spends the family's burst with `act` (whatever each answers), then expects the next one refused. */
async function exhaust(act: () => Promise<Ack<unknown>>) {
  for (let i = 0; i < BURST; i++) {
    const r = await act();
    expect(!r.ok && r.error.code).not.toBe("RATE_LIMITED");
  }
  expectRateLimited(await act());
}

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-sec-limits-"));
  redis = await startRedisServer();
  const rates = Object.fromEntries(FAMILIES.flatMap((f) => [[`RATE_${f.toUpperCase()}_BURST`, String(BURST)], [`RATE_${f.toUpperCase()}_PER_SEC`, "0.001"]]));
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    REDIS_URL: redis.url,
    JWT_SECRET: "sec-limits-secret-0123456789-0123456789",
    EMBEDDER: "hash",
    TRUST_PROXY: "true",
    ADMIN_USERNAMES: ADMIN,
    ...rates,
    RATE_REST_BURST: String(REST_BURST),
    RATE_REST_PER_SEC: "0.001",
  };
  [server, other] = await Promise.all([startServer({ ...env, NODE_ID: "limits-a" }), startServer({ ...env, NODE_ID: "limits-b" })]);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await Promise.all([server?.stop(), other?.stop()]);
  await redis?.dispose();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("socket events: each family answers RATE_LIMITED with retryAfterMs once spent", () => {
  it("session: create, join, rename and leave share one bucket", async () => {
    const { socket } = await client();
    const { session } = await ok(socket, "session:create", { title: "limits" });
    await ok(socket, "session:join", { sessionId: session.id });
    await ok(socket, "session:rename", { sessionId: session.id, title: "renamed" });
    expectRateLimited(await call(socket, "session:leave", { sessionId: session.id }));
    expectRateLimited(await call(socket, "session:create", {}));
  });

  it("invite: per user, and per address, so a second account on the same address cannot keep probing usernames", async () => {
    const a = await client();
    const { session } = await ok(a.socket, "session:create", {});
    await exhaust(() => call(a.socket, "session:invite", { sessionId: session.id, username: uniqueName("nobody") }));

    // Same address, fresh user: the address bucket is already empty.
    const b = await client(a.headers);
    const { session: other } = await ok(b.socket, "session:create", {});
    expectRateLimited(await call(b.socket, "session:invite", { sessionId: other.id, username: uniqueName("nobody") }));

    // REST invites draw from the same buckets.
    const rest = await api(server.url, `/api/sessions/${other.id}/members`, { method: "POST", token: b.user.token, body: { username: a.user.user.username }, headers: b.headers });
    expect(rest.status).toBe(429);
    expect(rest.body.error.code).toBe("RATE_LIMITED");
  });

  it("session: session:configure draws from it too", async () => {
    const { socket } = await client();
    const { session } = await ok(socket, "session:create", {});
    // session:create spent one token of the burst
    for (let i = 1; i < BURST; i++) await ok(socket, "session:configure", { sessionId: session.id, configurationId: null });
    expectRateLimited(await call(socket, "session:configure", { sessionId: session.id, configurationId: null }));
  });

  it("admin: the configuration editor's routes, per admin", async () => {
    const headers = freshAddress();
    const admin = await register(server.url, ADMIN, headers);
    for (let i = 0; i < BURST; i++) {
      expect((await api(server.url, "/api/admin/configurations", { token: admin.token, headers })).status).toBe(200);
    }
    const refused = await api(server.url, "/api/admin/configurations", { method: "POST", token: admin.token, body: { name: "late", systemPrompt: "x" }, headers });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("RATE_LIMITED");
    expect((await db.pool.query("SELECT count(*)::int AS n FROM assistant_configurations WHERE name = 'late'")).rows[0].n).toBe(0);
  });

  it("typing", async () => {
    const { socket } = await client();
    const { session } = await ok(socket, "session:create", {});
    await ok(socket, "session:join", { sessionId: session.id });
    await exhaust(() => call(socket, "typing", { sessionId: session.id, isTyping: true }));
  });

  it("read: message:history, message:context and GET /api/sessions share one bucket", async () => {
    const c = await client();
    const { session } = await ok(c.socket, "session:create", {});
    await ok(c.socket, "message:history", { sessionId: session.id });
    const context = await call(c.socket, "message:context", { messageId: 1 });
    expect(!context.ok && context.error.code).not.toBe("RATE_LIMITED");
    expect((await api(server.url, "/api/sessions", { token: c.user.token, headers: c.headers })).status).toBe(200);
    const refused = await api(server.url, "/api/sessions", { token: c.user.token, headers: c.headers });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expectRateLimited({ ok: false, ...refused.body });
    expectRateLimited(await call(c.socket, "message:history", { sessionId: session.id }));
  });

  it("search", async () => {
    const { socket } = await client();
    await exhaust(() => call(socket, "memory:search", { query: "anything" }));
  });

  it("feedback", async () => {
    const { socket } = await client();
    await exhaust(() => call(socket, "message:feedback", { messageId: 999_999, rating: 1 }));
  });

  it("cancel", async () => {
    const { socket } = await client();
    await exhaust(() => call(socket, "assistant:cancel", { sessionId: randomUUID(), messageId: 1 }));
  });

  it("turn: regenerations", async () => {
    const { socket } = await client();
    await exhaust(() => call(socket, "assistant:regenerate", { sessionId: randomUUID(), messageId: 1 }));
  });

  it("message", async () => {
    const { socket } = await client();
    const { session } = await ok(socket, "session:create", {});
    let i = 0;
    await exhaust(() => call(socket, "message:send", { sessionId: session.id, clientMessageId: `m${i++}`, content: "hello", assistant: false }));
  });
});

describe("across nodes", () => {
  it("a bucket spent on one node is spent on the other", async () => {
    const c = await client();
    for (let i = 0; i < BURST; i++) await ok(c.socket, "memory:search", { query: "anything" });
    const elsewhere = await connect(other.url, c.user.token, { headers: c.headers });
    sockets.push(elsewhere);
    expectRateLimited(await call(elsewhere, "memory:search", { query: "anything" }));
    const rest = await api(other.url, "/api/memory/search?q=x", { token: c.user.token, headers: c.headers });
    expect(rest.status).toBe(429);
  });
});

describe("REST routes and connections", () => {
  it("search and session changes over REST answer 429 with the envelope", async () => {
    const c = await client();
    for (let i = 0; i < BURST; i++) expect((await api(server.url, "/api/memory/search?q=x", { token: c.user.token, headers: c.headers })).status).toBe(200);
    const search = await api(server.url, "/api/memory/search?q=x", { token: c.user.token, headers: c.headers });
    expect(search.status).toBe(429);
    expectRateLimited({ ok: false, ...search.body });

    const { session } = await ok(c.socket, "session:create", {});
    for (let i = 0; i < BURST - 1; i++) {
      expect((await api(server.url, `/api/sessions/${session.id}`, { method: "PATCH", token: c.user.token, body: { title: `t${i}` }, headers: c.headers })).status).toBe(200);
    }
    const rename = await api(server.url, `/api/sessions/${session.id}`, { method: "PATCH", token: c.user.token, body: { title: "late" }, headers: c.headers });
    expect(rename.status).toBe(429);
    expect(rename.body.error.code).toBe("RATE_LIMITED");
  });

  it("public routes are limited per address (rest)", async () => {
    const headers = freshAddress();
    for (let i = 0; i < REST_BURST; i++) expect((await api(server.url, "/healthz", { headers })).status).toBe(200);
    const r = await api(server.url, "/healthz", { headers });
    expect(r.status).toBe(429);
    expectRateLimited({ ok: false, ...r.body });
    // Another address is unaffected.
    expect((await api(server.url, "/healthz", { headers: freshAddress() })).status).toBe(200);
  });

  it("connections are counted at the engine.io handshake, before any namespace or token", async () => {
    const headers = freshAddress();
    const user = await register(server.url, uniqueName(), freshAddress());
    // Bare handshakes that never connect to a namespace spend the address's tokens.
    for (let i = 0; i < BURST; i++) {
      const r = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers });
      expect(r.status).toBe(200);
      expect(await r.text()).toMatch(/^0\{"sid"/);
    }
    const refused = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("too many connections");
    await expect(connect(server.url, user.token, { headers })).rejects.toThrow();
  });
});
