/**
 * Two server processes on one PostgreSQL and one Redis, behind the nginx
 * configuration of docker-compose, with the Qdrant and LLM doubles: fan-out
 * across nodes, limits across nodes, and the faults of a real deployment.
 * Every fault test ends with nothing accepted lost and clients usable again.
 */
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../src/db/pool.js";
import { type EmbeddedPostgresHandle, freePort, startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { silentLogger } from "../support/logger.js";
import { type NginxHandle, startNginx } from "../support/nginx.js";
import { OpenAiLlmDouble } from "../support/openai-llm-double.js";
import { type QdrantDouble, startQdrantDouble } from "../support/qdrant-double.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

let dir: string;
let pgPort: number;
let postgres: EmbeddedPostgresHandle;
let databaseUrl: string;
let pool: pg.Pool;
let redis: RedisServerHandle;
let qdrant: QdrantDouble;
let llm: OpenAiLlmDouble;
let llmUrl: string;
let nodes: ServerProcess[] = [];
let nginx: NginxHandle;
const sockets: Socket[] = [];

const nodeEnv = (i: number) => ({
  DATABASE_URL: databaseUrl,
  REDIS_URL: redis.url,
  QDRANT_URL: qdrant.url,
  OPENAI_BASE_URL: llmUrl,
  EMBEDDER: "hash",
  NODE_ID: `node${i}`,
  DATA_DIR: path.join(dir, `node${i}`),
  JWT_SECRET: "cluster-test-secret-0123456789-0123456789",
  NODE_STALE_MS: "1500",
  SWEEP_INTERVAL_MS: "300",
  PRESENCE_TTL_MS: "1500",
  INDEXER_POLL_MS: "100",
  INDEXER_BASE_BACKOFF_MS: "100",
  INDEXER_MAX_BACKOFF_MS: "500",
  RATE_MESSAGE_BURST: "30",
  RATE_MESSAGE_PER_SEC: "0.2",
  ASSISTANT_CHECKPOINT_MS: "200",
  LLM_IDLE_TIMEOUT_MS: "5000",
});

async function startPostgres() {
  postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), port: pgPort, logger: silentLogger });
  return postgres.ensureDatabase("memchat");
}

async function client(url: string, user: TestUser): Promise<Socket> {
  const s = await connect(url, user.token);
  sockets.push(s);
  return s;
}

async function sharedSession(owner: Socket, members: TestUser[], assistant = false) {
  const { session } = await ok(owner, "session:create", { title: "shared", assistant });
  for (const m of members) await addMember(nodes[1]!.url, owner, session.id, m);
  return session.id as string;
}

const eventually = async <T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "memchat-cluster-test-"));
  await chmod(dir, 0o711);
  pgPort = await freePort();
  databaseUrl = await startPostgres();
  pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  pool.on("error", () => undefined);
  redis = await startRedisServer();
  qdrant = await startQdrantDouble();
  llm = new OpenAiLlmDouble({ defaultScript: { tokens: ["ok"] } });
  llmUrl = (await llm.start()).url;
  nodes = [await startServer(nodeEnv(1))];
  nodes.push(await startServer(nodeEnv(2)));
  nginx = await startNginx(nodes.map((n) => n.url));
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await nginx?.stop();
  for (const n of nodes) await n.stop();
  await pool?.end();
  await llm?.close();
  await qdrant?.close();
  await redis?.dispose();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("two nodes on one Redis", () => {
  it("delivers an invitation to the invitee's socket on the other node, and a removal there takes the socket out of the room at once", async () => {
    const [a, b] = [await register(nodes[0]!.url), await register(nodes[0]!.url)];
    const sa = await client(nodes[0]!.url, a);
    const sb = await client(nodes[1]!.url, b);
    const { session } = await ok(sa, "session:create", { title: "across", assistant: false });
    const invited = nextEvent(sb, "session:invitation");
    await ok(sa, "session:invite", { sessionId: session.id, username: b.user.username });
    expect((await invited).invitation.sessionId).toBe(session.id);
    await ok(sb, "invitation:accept", { sessionId: session.id });
    await ok(sa, "session:join", { sessionId: session.id });
    const presence = nextEvent(sa, "presence:join");
    await ok(sb, "session:join", { sessionId: session.id });
    await presence;

    const removed = nextEvent(sb, "session:removed");
    const presenceLeft = nextEvent(sa, "presence:leave");
    await ok(sa, "member:remove", { sessionId: session.id, userId: b.user.id });
    expect(await removed).toEqual({ sessionId: session.id, reason: "removed" });
    expect((await presenceLeft).userId).toBe(b.user.id);
    const leaked: unknown[] = [];
    sb.on("message:new", (e) => leaked.push(e));
    await ok(sa, "message:send", { sessionId: session.id, clientMessageId: "after", content: "not for bob", assistant: false });
    await new Promise((r) => setTimeout(r, 500));
    expect(leaked).toEqual([]);
    expect((await call(sb, "typing", { sessionId: session.id, isTyping: true })).ok).toBe(false);
  });

  it("delivers messages and reply deltas sent on one node to members on the other, once and in order", async () => {
    const [a, b] = [await register(nodes[0]!.url), await register(nodes[0]!.url)];
    const sa = await client(nodes[0]!.url, a);
    const sb = await client(nodes[1]!.url, b);
    const sessionId = await sharedSession(sa, [b], true);
    await ok(sa, "session:join", { sessionId });
    const joinSeen = nextEvent(sa, "presence:join");
    await ok(sb, "session:join", { sessionId });
    expect((await joinSeen).userId).toBe(b.user.id); // presence crosses nodes too
    const seen: number[] = [];
    sb.on("message:new", (e: { message: { seq: number; role: string } }) => {
      if (e.message.role === "user") seen.push(e.message.seq);
    });
    for (let i = 0; i < 20; i++) await ok(sa, "message:send", { sessionId, clientMessageId: `m${i}`, content: `hello ${i}`, assistant: false });
    await eventually(async () => (seen.length >= 20 ? true : undefined), 5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

    llm.enqueue({ tokens: Array.from({ length: 12 }, (_, i) => ` t${i}`), tokenDelayMs: 15 });
    const onB = collectTurn(sb, sessionId);
    const onA = collectTurn(sa, sessionId);
    await ok(sa, "message:send", { sessionId, clientMessageId: "ask", content: "stream to both nodes" });
    const [tb, ta] = await Promise.all([onB, onA]);
    expect(tb.deltas.map((d) => d.seq)).toEqual(tb.deltas.map((_, i) => i + 1));
    expect(tb.text).toBe(Array.from({ length: 12 }, (_, i) => ` t${i}`).join(""));
    expect(tb.text).toBe(ta.text);
    expect(tb.end!.message.status).toBe("complete");
  });

  it("serves clients through nginx, over WebSocket and over long-polling", async () => {
    const u = await register(nginx.url);
    for (const transports of [["websocket"], ["polling"]] as const) {
      const s = io(`${nginx.url}/chat`, { auth: { token: u.token }, transports: [...transports], forceNew: true, reconnection: false });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("connect", () => resolve());
        s.once("connect_error", reject);
      });
      const { session } = await ok(s, "session:create", { assistant: false });
      await ok(s, "session:join", { sessionId: session.id });
      for (let i = 0; i < 5; i++) await ok(s, "message:send", { sessionId: session.id, clientMessageId: `${transports[0]}${i}`, content: `via nginx ${i}` });
      const h = await ok(s, "message:history", { sessionId: session.id });
      expect(h.messages).toHaveLength(5);
      s.close();
    }
    expect((await api(nginx.url, "/readyz")).body.checks.redis.ok).toBe(true);
  });

  it("holds a user's message limit across both nodes together", async () => {
    const u = await register(nodes[0]!.url);
    const s1 = await client(nodes[0]!.url, u);
    const s2 = await client(nodes[1]!.url, u);
    const { session } = await ok(s1, "session:create", { assistant: false });
    const results = [];
    for (let i = 0; i < 40; i++) {
      results.push(await call(i % 2 ? s2 : s1, "message:send", { sessionId: session.id, clientMessageId: `r${i}`, content: `n${i}` }));
    }
    const accepted = results.filter((r) => r.ok).length;
    expect(accepted).toBeGreaterThanOrEqual(30); // the burst, plus at most what refilled meanwhile
    expect(accepted).toBeLessThanOrEqual(31);
    const refused = results.find((r) => !r.ok);
    expect(refused && !refused.ok && refused.error).toMatchObject({ code: "RATE_LIMITED" });
    expect(refused && !refused.ok && refused.error.retryAfterMs).toBeGreaterThan(0);
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [session.id]);
    expect(rows[0].n).toBe(accepted); // refused sends wrote nothing
  });
});

describe("accounts across nodes", () => {
  it("logout-all and account deletion on one node close the user's connections on the other, whose old tokens then stop working", async () => {
    const u = await register(nodes[0]!.url);
    const bystander = await register(nodes[0]!.url);
    const on1 = await client(nodes[0]!.url, u);
    const on2 = await client(nodes[1]!.url, u);
    const keep = await client(nodes[1]!.url, bystander);
    const closed = [on1, on2].map((s) => new Promise<string>((resolve) => s.once("disconnect", (reason) => resolve(reason))));
    expect((await api(nodes[0]!.url, "/api/auth/logout-all", { method: "POST", token: u.token })).status).toBe(204);
    expect(await Promise.all(closed)).toEqual(["io server disconnect", "io server disconnect"]);
    // Node 2 trusts what it read of the account for AUTH_CACHE_MS (5 s by default), then refuses the old token.
    await eventually(async () => ((await api(nodes[1]!.url, "/api/sessions", { token: u.token })).status === 401 ? true : undefined), 15_000);
    const refused = await connect(nodes[1]!.url, u.token).then(
      (s) => (s.close(), null),
      (err: { data?: { code: string } }) => err.data?.code,
    );
    expect(refused).toBe("UNAUTHENTICATED");

    const again = await api(nodes[1]!.url, "/api/auth/login", { method: "POST", body: { username: u.user.username, password: u.password } });
    const fresh = { ...u, token: again.body.token as string };
    const live = await client(nodes[1]!.url, fresh);
    const gone = new Promise<string>((resolve) => live.once("disconnect", (reason) => resolve(reason)));
    expect((await api(nodes[0]!.url, "/api/me", { method: "DELETE", token: fresh.token })).status).toBe(204);
    expect(await gone).toBe("io server disconnect");
    await eventually(async () => ((await api(nodes[1]!.url, "/api/sessions", { token: fresh.token })).status === 401 ? true : undefined), 15_000);
    expect(keep.connected).toBe(true);
  });
});

describe("faults", () => {
  it("survives a Redis restart: sends succeed or fail with UNAVAILABLE, then fan-out resumes", async () => {
    const [a, b] = [await register(nodes[0]!.url), await register(nodes[0]!.url)];
    const sa = await client(nodes[0]!.url, a);
    const sb = await client(nodes[1]!.url, b);
    const sessionId = await sharedSession(sa, [b]);
    await ok(sa, "session:join", { sessionId });
    await ok(sb, "session:join", { sessionId });
    await redis.stop();
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await call(sa, "message:send", { sessionId, clientMessageId: `out${i}`, content: `during outage ${i}` }));
    for (const r of during) {
      if (!r.ok) expect(r.error.code).toBe("UNAVAILABLE");
    }
    await redis.restart();
    // fan-out comes back by itself once the adapters have resubscribed
    await eventually(async () => {
      const got = nextEvent(sb, "message:new", 1000);
      await ok(sa, "message:send", { sessionId, clientMessageId: randomUUID(), content: "after restart" });
      return (await got.catch(() => undefined)) ? true : undefined;
    }, 20_000);
    const okDuring = during.filter((r) => r.ok).length;
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1 AND content LIKE 'during outage%'", [sessionId]);
    expect(rows[0].n).toBe(okDuring); // never half-done: stored exactly when acknowledged
    // Readiness pings on the node's command client, which reconnects on its own backoff: fan-out
    // (the adapter's clients) can be back a moment before it.
    await eventually(async () => ((await api(nodes[0]!.url, "/readyz")).body.checks.redis.ok === true ? true : undefined), 20_000);
  });

  it("survives PostgreSQL going away for a few seconds: sends fail with UNAVAILABLE, none half-written, service returns", async () => {
    const u = await register(nodes[0]!.url);
    const s = await client(nodes[0]!.url, u);
    const { session } = await ok(s, "session:create", { assistant: false });
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: "before", content: "before" });
    await pool.end();
    await postgres.stop();
    const during = [];
    for (let i = 0; i < 3; i++) during.push(await call(s, "message:send", { sessionId: session.id, clientMessageId: `pg${i}`, content: `pg down ${i}` }, 30_000));
    for (const r of during) expect(!r.ok && r.error.code).toBe("UNAVAILABLE");
    const ready = await api(nodes[0]!.url, "/readyz");
    expect(ready.status).toBe(503);
    await startPostgres();
    pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    pool.on("error", () => undefined);
    await eventually(async () => ((await api(nodes[0]!.url, "/readyz")).status === 200 ? true : undefined), 20_000);
    await eventually(async () => {
      const r = await call(s, "message:send", { sessionId: session.id, clientMessageId: "after", content: "after" });
      return r.ok ? true : undefined;
    }, 20_000);
    const { rows } = await pool.query("SELECT client_message_id FROM chat_messages WHERE session_id = $1 ORDER BY seq", [session.id]);
    expect(rows.map((r) => r.client_message_id)).toEqual(["before", "after"]);
    const seqs = await pool.query("SELECT seq FROM chat_messages WHERE session_id = $1 ORDER BY seq", [session.id]);
    expect(seqs.rows.map((r) => r.seq)).toEqual([1, 2]);
  });

  it("keeps chatting while the vector store is down and indexes everything once it is back", async () => {
    const u = await register(nodes[0]!.url);
    const s = await client(nodes[1]!.url, u);
    const { session } = await ok(s, "session:create", { assistant: false });
    await qdrant.setDown(true);
    for (let i = 0; i < 10; i++) await ok(s, "message:send", { sessionId: session.id, clientMessageId: `v${i}`, content: `vector outage message ${i}` });
    const r = await ok(s, "memory:search", { query: "vector outage message" });
    expect(r.hits.length).toBeGreaterThan(0); // lexical keeps answering
    await qdrant.setDown(false);
    await eventually(async () => {
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM message_index_jobs j JOIN chat_messages m ON m.id = j.message_id WHERE m.session_id = $1", [session.id]);
      return rows[0].n === 0 ? true : undefined;
    }, 30_000);
    const points = qdrant.points("chat_history_lexical_hash_v1_384_384").filter((p) => p.payload.session_id === session.id);
    expect(points).toHaveLength(10);
  });

  it("ends a reply as interrupted when its node is killed, and the client carries on through nginx on the other node", async () => {
    const u = await register(nginx.url);
    const s = io(`${nginx.url}/chat`, { auth: { token: u.token }, transports: ["websocket"], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once("connect", () => resolve());
      s.once("connect_error", reject);
    });
    const { session } = await ok(s, "session:create", {});
    await ok(s, "session:join", { sessionId: session.id });
    let lastSeq = 0;
    s.on("message:new", (e: { message: { seq: number } }) => (lastSeq = Math.max(lastSeq, e.message.seq)));
    // after a reconnect, rejoin and catch up
    s.io.on("reconnect", () => void call(s, "session:join", { sessionId: session.id, afterSeq: lastSeq }));
    llm.enqueue({ tokens: Array.from({ length: 200 }, (_, i) => ` w${i}`), tokenDelayMs: 50 });
    let received = "";
    let replyId = 0;
    const someDeltas = new Promise<void>((resolve) => {
      s.on("assistant:delta", (e: { messageId: number; text: string; seq: number }) => {
        replyId = e.messageId;
        received += e.text;
        if (e.seq >= 3) resolve();
      });
    });
    const interrupted = new Promise<{ message: { id: number; status: string; content: string } }>((resolve) =>
      s.on("assistant:end", (e: { message: { id: number; status: string; content: string } }) => {
        if (e.message.status === "interrupted") resolve(e);
      }),
    );
    const q = await ok(s, "message:send", { sessionId: session.id, clientMessageId: "long", content: "tell me a very long story" });
    await someDeltas;
    const { rows } = await pool.query("SELECT owner_node FROM chat_messages WHERE id = $1", [replyId]);
    const victim = nodes.findIndex((_, i) => `node${i + 1}` === rows[0].owner_node);
    expect(victim).toBeGreaterThanOrEqual(0);
    await nodes[victim]!.stop("SIGKILL");
    // the surviving node's sweeper ends it; the client hears it live or finds it when it rejoins
    const ended = await Promise.race([
      interrupted.then((e) => e.message),
      eventually(async () => {
        const r = await call(s, "message:history", { sessionId: session.id });
        const m = r.ok && r.data.messages.find((x: { id: number; status: string }) => x.id === replyId && x.status === "interrupted");
        return m || undefined;
      }, 30_000),
    ]);
    expect(ended.status).toBe("interrupted");
    expect(ended.content.startsWith(received.slice(0, 20))).toBe(true);
    expect(ended.content.length).toBeGreaterThanOrEqual(received.length - 10);
    // the user's message was never lost, and the reply can be regenerated on the surviving node
    llm.enqueue({ tokens: ["second", " try"] });
    const turn = collectTurn(s, session.id);
    await eventually(async () => {
      const r = await call(s, "assistant:regenerate", { sessionId: session.id, messageId: q.message.id });
      return r.ok ? true : undefined;
    }, 15_000);
    expect((await turn).end!.message).toMatchObject({ status: "complete", content: "second try", replyToId: q.message.id });
  });
});
