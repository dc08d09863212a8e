/**
 * Daily token quotas against two real server processes on one database
 * (issue 15 item 3): tokens are counted as turns end; past the cap a send
 * is still stored but starts no reply (QUOTA_EXCEEDED with the reset time,
 * on the ack and to the user's other sockets), a regenerate is refused;
 * concurrent turns on both nodes at the edge of the cap: exactly one starts;
 * /api/me/usage shows today and the last 30 days; the token counter counts.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

const CAP = 100_000;
let db: TestDatabase;
let nodes: ServerProcess[] = [];
const dirs: string[] = [];
const sockets: Socket[] = [];
let admin: TestUser;

async function client(node: ServerProcess, u: TestUser) {
  const s = await connect(node.url, u.token, { forceNew: true });
  sockets.push(s);
  return s;
}

const nextMidnightUtc = () => {
  const t = new Date();
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() + 1)).toISOString();
};

beforeAll(async () => {
  db = await createTestDatabase(8);
  for (let i = 0; i < 2; i++) {
    const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-quota-"));
    dirs.push(dataDir);
    nodes.push(
      await startServer({
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        NODE_ID: `quota-node-${i}`,
        JWT_SECRET: "quota-secret-0123456789-0123456789-0123",
        EMBEDDER: "hash",
        OFFLINE_TOKEN_DELAY_MS: "0",
        QUOTA_DAILY_TOKENS: String(CAP),
        QUOTA_TURN_ESTIMATE_TOKENS: "50000",
        RATE_SESSION_BURST: "200",
        RATE_TURN_BURST: "200",
        RATE_MESSAGE_BURST: "200",
        SWEEP_INTERVAL_MS: "300",
        NODE_STALE_MS: "3000",
      }),
    );
  }
  admin = await register(nodes[0]!.url);
  expect(admin.role).toBe("admin");
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await Promise.all(nodes.map((n) => n.stop()));
  await db?.drop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const usageRow = async (userId: string) =>
  (await db.pool.query("SELECT prompt_tokens::int AS p, completion_tokens::int AS c, turns, reserved_tokens::int AS r FROM usage_daily WHERE user_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date", [userId])).rows[0];

describe("daily token quotas", () => {
  it("count a finished turn's tokens; past the cap the message is stored without a reply and the user hears QUOTA_EXCEEDED", async () => {
    const u = await register(nodes[0]!.url);
    const [s, otherTab] = [await client(nodes[0]!, u), await client(nodes[0]!, u)];
    const { session } = await ok(s, "session:create", { title: "quota" });
    await ok(s, "session:join", { sessionId: session.id });
    const turn = collectTurn(s, session.id);
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: randomUUID(), content: "hello there" });
    const { end } = await turn;
    const spent = end!.usage.promptTokens + end!.usage.completionTokens;
    expect(spent).toBeGreaterThan(0);
    await expect.poll(() => usageRow(u.user.id)).toEqual({ p: end!.usage.promptTokens, c: end!.usage.completionTokens, turns: 1, r: 0 });

    const usage = await api(nodes[1]!.url, "/api/me/usage", { token: u.token });
    expect(usage.status).toBe(200);
    expect(usage.body.today).toMatchObject({ totalTokens: spent, turns: 1, reservedTokens: 0 });
    expect(usage.body.quota).toEqual({ dailyTokens: CAP, source: "default", remainingTokens: CAP - spent, resetAt: nextMidnightUtc() });
    expect(usage.body.days).toHaveLength(30);
    expect(usage.body.days.at(-1)).toMatchObject({ totalTokens: spent });
    expect(usage.body.days.slice(0, 29).every((d: { totalTokens: number }) => d.totalTokens === 0)).toBe(true);
    expect((await api(nodes[1]!.url, "/api/me/usage")).status).toBe(401);

    // The admin caps this user at what they have spent: the next turn would start over it.
    const set = await api(nodes[1]!.url, `/api/admin/users/${u.user.id}/quota`, { method: "PUT", token: admin.token, body: { dailyTokens: spent } });
    expect(set.body).toEqual({ userId: u.user.id, dailyTokens: spent, effectiveDailyTokens: spent });
    expect((await api(nodes[1]!.url, `/api/admin/users/${u.user.id}/quota`, { method: "PUT", token: u.token, body: { dailyTokens: 1e9 } })).status).toBe(403);
    expect((await api(nodes[1]!.url, `/api/admin/users/${u.user.id}/quota`, { method: "PUT", token: admin.token, body: { dailyTokens: -1 } })).status).toBe(400);
    expect((await api(nodes[1]!.url, `/api/admin/users/${randomUUID()}/quota`, { method: "PUT", token: admin.token, body: { dailyTokens: 5 } })).status).toBe(404);

    const heard = nextEvent(otherTab, "assistant:error");
    const refused = await call(s, "message:send", { sessionId: session.id, clientMessageId: randomUUID(), content: "one more please" });
    expect(refused.ok).toBe(true);
    if (!refused.ok) return;
    expect(refused.data.replyRefused).toEqual({ code: "QUOTA_EXCEEDED", message: expect.stringContaining(String(spent)), resetAt: nextMidnightUtc() });
    expect(await heard).toMatchObject({ sessionId: session.id, messageId: null, replyToId: refused.data.message.id, code: "QUOTA_EXCEEDED", resetAt: nextMidnightUtc() });
    const history = await ok(s, "message:history", { sessionId: session.id });
    expect(history.messages.map((m: { role: string; content: string }) => [m.role, m.content]).slice(-2)).toEqual([["assistant", expect.any(String)], ["user", "one more please"]]);

    const regen = await call(s, "assistant:regenerate", { sessionId: session.id, messageId: refused.data.message.id });
    expect(regen.ok ? undefined : regen.error).toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: expect.any(Number) });
    expect(await usageRow(u.user.id)).toMatchObject({ turns: 1, r: 0 });

    // Lifting the override gives the default cap back.
    const lifted = await api(nodes[0]!.url, `/api/admin/users/${u.user.id}/quota`, { method: "PUT", token: admin.token, body: { dailyTokens: null } });
    expect(lifted.body).toEqual({ userId: u.user.id, dailyTokens: null, effectiveDailyTokens: CAP });
    const again = collectTurn(s, session.id);
    const sent = await ok(s, "message:send", { sessionId: session.id, clientMessageId: randomUUID(), content: "and now?" });
    expect(sent.replyRefused).toBeUndefined();
    expect((await again).end).toBeDefined();

    const metrics = await api(nodes[0]!.url, "/metrics");
    expect(metrics.body).toMatch(/chat_llm_tokens_total\{model="[^"]+",kind="completion"\} [1-9]/);
  });

  it("at the edge of the cap, of concurrent turns on two nodes exactly one starts, and every message is stored", async () => {
    for (let round = 0; round < 3; round++) {
      const u = await register(nodes[round % 2]!.url);
      // One token left today.
      await db.pool.query("INSERT INTO usage_daily (user_id, day, prompt_tokens, turns) VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2, 1)", [u.user.id, CAP - 1]);
      const perNode = 4;
      const conns = await Promise.all(nodes.flatMap((n) => Array.from({ length: perNode }, () => client(n, u))));
      const sessions = await Promise.all(conns.map(async (s) => (await ok(s, "session:create", { title: "edge" })).session.id as string));
      const acks = await Promise.all(
        conns.map((s, i) => ok(s, "message:send", { sessionId: sessions[i], clientMessageId: randomUUID(), content: `race ${i}` })),
      );
      const started = acks.filter((a) => a.replyRefused === undefined);
      expect(started, `round ${round}`).toHaveLength(1);
      expect(acks.filter((a) => a.replyRefused?.code === "QUOTA_EXCEEDED")).toHaveLength(conns.length - 1);
      const stored = await db.pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE user_id = $1 AND role = 'user'", [u.user.id]);
      expect(stored.rows[0].n).toBe(conns.length);
      // The one turn ends and settles: its estimate is released, its tokens counted.
      await expect.poll(async () => (await usageRow(u.user.id))?.turns, { timeout: 15_000 }).toBe(2);
      expect((await usageRow(u.user.id)).r).toBe(0);
      const replies = await db.pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE user_id = $1 AND role = 'assistant'", [u.user.id]);
      expect(replies.rows[0].n).toBe(1);
    }
  });

  it("without a default cap, an uncapped turn holds no reservation, and an admin's override still caps the user at the edge, concurrently", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-quota-"));
    dirs.push(dataDir);
    const uncapped = await startServer({
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      NODE_ID: "quota-node-nocap",
      JWT_SECRET: "quota-secret-0123456789-0123456789-0123",
      EMBEDDER: "hash",
      OFFLINE_TOKEN_DELAY_MS: "0",
      QUOTA_TURN_ESTIMATE_TOKENS: "50000",
      RATE_SESSION_BURST: "200",
      RATE_TURN_BURST: "200",
      RATE_MESSAGE_BURST: "200",
    });
    nodes.push(uncapped);
    const u = await register(uncapped.url);
    const s = await client(uncapped, u);
    const { session } = await ok(s, "session:create", { title: "no cap" });
    await ok(s, "session:join", { sessionId: session.id });
    const turn = collectTurn(s, session.id);
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: randomUUID(), content: "hello without a cap" });
    const { end } = await turn;
    await expect.poll(() => usageRow(u.user.id)).toEqual({ p: end!.usage.promptTokens, c: end!.usage.completionTokens, turns: 1, r: 0 });

    // An override one token over what was spent: of concurrent sends, exactly one starts a reply.
    const spent = end!.usage.promptTokens + end!.usage.completionTokens;
    expect((await api(uncapped.url, `/api/admin/users/${u.user.id}/quota`, { method: "PUT", token: admin.token, body: { dailyTokens: spent + 1 } })).status).toBe(200);
    const conns = await Promise.all(Array.from({ length: 6 }, () => client(uncapped, u)));
    const sessions = await Promise.all(conns.map(async (c) => (await ok(c, "session:create", { title: "edge" })).session.id as string));
    const acks = await Promise.all(conns.map((c, i) => ok(c, "message:send", { sessionId: sessions[i], clientMessageId: randomUUID(), content: `race ${i}` })));
    expect(acks.filter((a) => a.replyRefused === undefined)).toHaveLength(1);
    expect(acks.filter((a) => a.replyRefused?.code === "QUOTA_EXCEEDED")).toHaveLength(conns.length - 1);
    await expect.poll(async () => (await usageRow(u.user.id))?.turns, { timeout: 15_000 }).toBe(2);
    expect((await usageRow(u.user.id)).r).toBe(0);
  });

  it("a reply whose node died gives its reservation back when another node's sweep ends it", async () => {
    const u = await register(nodes[0]!.url);
    const s = await client(nodes[0]!, u);
    const { session } = await ok(s, "session:create", { title: "orphan" });
    // As a node that reserved, wrote the streaming row and died would leave them.
    await db.pool.query("INSERT INTO usage_daily (user_id, day, reserved_tokens) VALUES ($1, (now() AT TIME ZONE 'UTC')::date, 50000)", [u.user.id]);
    await db.pool.query(
      "INSERT INTO chat_messages (session_id, seq, user_id, role, content, status, owner_node) VALUES ($1, 1, $2, 'assistant', 'half a', 'streaming', 'quota-dead-node')",
      [session.id, u.user.id],
    );
    await expect.poll(async () => (await usageRow(u.user.id))?.r, { timeout: 15_000 }).toBe(0);
    const row = await db.pool.query("SELECT status FROM chat_messages WHERE session_id = $1", [session.id]);
    expect(row.rows[0].status).toBe("interrupted");
    expect((await usageRow(u.user.id)).turns).toBe(0);
  });
});
