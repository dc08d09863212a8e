/**
 * The account operations' SQL on real PostgreSQL: account state and token
 * versions, the session page's keyset, batched deletion (with both vector
 * purges) and the export reads.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService, type UserSockets } from "../../src/account/account-service.js";
import { AuthService } from "../../src/auth/auth-service.js";
import { TokenService } from "../../src/auth/tokens.js";
import { pendingDeletions, requestDeletion } from "../../src/db/account-deletion.js";
import { exportMessagesAfter, exportSessionsAfter } from "../../src/db/account-export.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { LIST_SESSIONS_PAGE, listSessionsPage } from "../../src/db/session-page.js";
import { QdrantVectorStore } from "../../src/memory/qdrant-vector-store.js";
import { pointIdForMessage } from "../../src/memory/point-id.js";
import { PgVectorPurge, QdrantVectorPurge, type VectorPurge } from "../../src/memory/vector-purge.js";
import "../../src/db/pool.js"; // bigint ids as numbers
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";
import { type QdrantDouble, startQdrantDouble } from "../support/qdrant-double.js";

let db: TestDatabase;
let users: PgUserStore;
beforeAll(async () => {
  db = await createTestDatabase(6);
  users = new PgUserStore(db.pool);
});
afterAll(() => db?.drop());

const mkUser = async (prefix = "u") => {
  const { id, username } = (await users.create(`${prefix}_${randomUUID().slice(0, 8)}`, "x"))!;
  return { id, username };
};
const count = async (sql: string, params: unknown[] = []) =>
  (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;

async function mkSessions(ownerId: string, n: number, updatedAt?: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO chat_sessions (owner_id, title, assistant_enabled, updated_at)
     SELECT $1, 's' || g, false, coalesce($3::timestamptz, now() - g * interval '1 microsecond') FROM generate_series(1, $2) g RETURNING id`,
    [ownerId, n, updatedAt ?? null],
  );
  const ids = rows.map((r) => r.id);
  await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) SELECT unnest($1::uuid[]), $2, 'owner'", [ids, ownerId]);
  return ids;
}

async function mkMessages(sessionId: string, userId: string, n: number, from = 1): Promise<void> {
  await db.pool.query(
    `INSERT INTO chat_messages (session_id, seq, user_id, role, content) SELECT $1, g, $2, 'user', 'm' || g FROM generate_series($3::int, $3::int + $4::int - 1) g`,
    [sessionId, userId, from, n],
  );
  await db.pool.query("UPDATE chat_sessions SET last_seq = $2, message_count = $2 WHERE id = $1", [sessionId, from + n - 1]);
}

describe("account state and token versions", () => {
  it("reads state, raises the version, and refuses to revive a disabled or missing account", async () => {
    const u = await mkUser();
    expect(await users.accountState(u.id)).toMatchObject({ tokenVersion: 0, disabled: false });
    expect(await users.revokeTokens(u.id)).toBe(1);
    expect(await users.accountState(u.id)).toMatchObject({ tokenVersion: 1, disabled: false });
    expect(await requestDeletion(db.pool, u.id)).toBe(true);
    expect(await users.accountState(u.id)).toMatchObject({ tokenVersion: 2, disabled: true });
    expect(await users.revokeTokens(u.id)).toBeNull();
    expect(await pendingDeletions(db.pool, 1000)).toContain(u.id);
    expect(await users.accountState(randomUUID())).toBeNull();
    expect(await requestDeletion(db.pool, randomUUID())).toBe(false);
  });

  it("authenticates through the cache: a revocation here is seen at once, a change elsewhere once forgotten (or the TTL passes)", async () => {
    const tokens = new TokenService("integration-secret-0123456789-0123456789", 3600);
    const auth = new AuthService(users, tokens, 1024, 60_000);
    const u = await mkUser();
    const t0 = await tokens.sign(u, 0);
    expect(await auth.authenticate(t0)).toEqual(u);
    expect(await auth.revokeAll(u.id)).toBe(1);
    expect(await auth.authenticate(t0)).toBeNull();
    const t1 = await tokens.sign(u, 1);
    expect(await auth.authenticate(t1)).toEqual(u);
    // Another node disables the account: this node's cached state holds until forgotten.
    await db.pool.query("UPDATE users SET disabled_at = now() WHERE id = $1", [u.id]);
    expect(await auth.authenticate(t1)).toEqual(u);
    auth.forget(u.id);
    expect(await auth.authenticate(t1)).toBeNull();
    // A token from before token versions (no tv claim) counts as version 0.
    const v = await mkUser();
    expect(await auth.authenticate(await tokens.sign(v))).toEqual(v);
  });
});

describe("session page keyset", () => {
  it("pages through ties and microsecond differences without skipping or repeating", async () => {
    const u = await mkUser();
    const tied = await mkSessions(u.id, 25, "2026-01-01T00:00:00.000001Z");
    const spread = await mkSessions(u.id, 30); // one microsecond apart: a millisecond cursor would lose rows
    const seen: string[] = [];
    let cursor = null;
    do {
      const page: Awaited<ReturnType<typeof listSessionsPage>> = await listSessionsPage(db.pool, u.id, cursor, 7);
      seen.push(...page.sessions.map((s) => s.id));
      cursor = page.next;
    } while (cursor);
    expect(seen).toHaveLength(55);
    expect(new Set(seen).size).toBe(55);
    expect(seen.slice(0, 30)).toEqual(spread);
    expect(seen.slice(30)).toEqual([...tied].sort());
  });

  // A user with a large share of all sessions gets a hash join instead (the planner's choice, 3,000 of 23,000 here).
  it("is served by the membership index, not a scan of every session (EXPLAIN on a few thousand rows)", async () => {
    const heavy = await mkUser("heavy");
    await mkSessions(heavy.id, 3000);
    for (let i = 0; i < 20; i++) await mkSessions((await mkUser("noise")).id, 1000);
    await db.pool.query("ANALYZE chat_sessions; ANALYZE chat_session_members");
    const light = await mkUser("light");
    await mkSessions(light.id, 40);
    await db.pool.query("ANALYZE chat_session_members");
    const plan = async (userId: string) => {
      const client = await db.pool.connect();
      try {
        await client.query("PREPARE p AS " + LIST_SESSIONS_PAGE);
        const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE p('${userId}', NULL, NULL, 101, false)`);
        await client.query("DEALLOCATE p");
        return rows[0]["QUERY PLAN"][0];
      } finally {
        client.release();
      }
    };
    const lightPlan = JSON.stringify(await plan(light.id));
    expect(lightPlan).toContain("chat_session_members_user");
    // The user's memberships come from their index, never from a scan of everyone's.
    expect(lightPlan).not.toMatch(/"Seq Scan"[^{}]*"Relation Name":"chat_session_members"/);
    const heavyPlan = await plan(heavy.id);
    // Recorded for the README: a page for a user with 3,000 sessions.
    if (process.env.SHOW_PLANS) console.log(lightPlan);
    if (process.env.SHOW_PLANS) console.log(JSON.stringify(heavyPlan.Plan, (k, v) => (["Output", "Parallel Aware", "Async Capable"].includes(k) ? undefined : v), 1));
    console.log(`session page: 40 sessions ${(await plan(light.id))["Execution Time"]} ms, 3000 sessions ${heavyPlan["Execution Time"]} ms`);
  });
});


describe("account deletion in batches", () => {
  const sockets: UserSockets & { calls: string[] } = {
    calls: [],
    disconnectAll(userId) {
      this.calls.push(`all ${userId}`);
    },
    disconnectOlderThan(userId, v) {
      this.calls.push(`older ${userId} ${v}`);
    },
  };
  const service = (vectors: VectorPurge, waitMs?: number) =>
    new AccountService({
      waitMs,
      pool: db.pool,
      auth: new AuthService(users, new TokenService("integration-secret-0123456789-0123456789", 3600), 1024, 0),
      vectors,
      sockets,
      log: silentLogger,
      authCacheMs: 0,
      batches: { sessions: 2, messages: 3 },
    });

  it("deletes owned sessions (messages in chunks), memberships, feedback and vectors of every collection; disowns messages elsewhere", async () => {
    const alice = await mkUser("alice");
    const bob = await mkUser("bob");
    const owned = await mkSessions(alice.id, 5);
    for (const id of owned) await mkMessages(id, alice.id, 7);
    const [bobs] = await mkSessions(bob.id, 1);
    await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'member')", [bobs, alice.id]);
    await mkMessages(bobs!, bob.id, 2);
    await mkMessages(bobs!, alice.id, 8, 3);
    const bobMsg = (await db.pool.query("SELECT id FROM chat_messages WHERE session_id = $1 AND seq = 1", [bobs])).rows[0].id;
    await db.pool.query("INSERT INTO message_feedback (message_id, user_id, rating) VALUES ($1, $2, 1)", [bobMsg, alice.id]);
    for (const collection of ["memchat_a_384", "memchat_b_768"]) {
      await db.pool.query(
        `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
         SELECT $1, gen_random_uuid(), 0, s, $3, 'user', 'x', now(), '\\x00' FROM unnest($2::uuid[]) s`,
        [collection, [...owned, bobs], alice.id],
      );
    }
    await requestDeletion(db.pool, alice.id);
    // The account was marked; resuming finishes it (as a restart would).
    await service(new PgVectorPurge(db.pool)).resumePendingDeletions();
    expect(await count("users WHERE id = $1", [alice.id])).toBe(0);
    expect(await count("chat_sessions WHERE id = ANY ($1::uuid[])", [owned])).toBe(0);
    expect(await count("chat_messages WHERE session_id = ANY ($1::uuid[])", [owned])).toBe(0);
    expect(await count("message_vectors WHERE session_id = ANY ($1::uuid[])", [owned])).toBe(0);
    expect(await count("message_vectors WHERE session_id = $1", [bobs])).toBe(2);
    expect(await count("message_feedback WHERE message_id = $1", [bobMsg])).toBe(0);
    expect(await count("chat_session_members WHERE session_id = $1", [bobs])).toBe(1);
    expect(await count("chat_messages WHERE session_id = $1 AND user_id IS NULL", [bobs])).toBe(8);
    expect(await count("chat_messages WHERE session_id = $1 AND user_id = $2", [bobs, bob.id])).toBe(2);
    expect(await pendingDeletions(db.pool, 1000)).not.toContain(alice.id);
  });

  it("changes nothing but the lock when the vector store fails, and finishes on the next attempt", async () => {
    const carol = await mkUser("carol");
    const [s] = await mkSessions(carol.id, 1);
    await mkMessages(s!, carol.id, 4);
    let failing = true;
    const flaky: VectorPurge = {
      async deleteSessions(ids) {
        if (failing) throw new Error("vector store down");
        await new PgVectorPurge(db.pool).deleteSessions(ids);
      },
    };
    const svc = service(flaky);
    await expect(svc.deleteAccount(carol)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(await pendingDeletions(db.pool, 1000)).toContain(carol.id);
    expect(await users.accountState(carol.id)).toMatchObject({ disabled: true });
    expect(await count("chat_messages WHERE session_id = $1", [s])).toBe(4);
    expect(sockets.calls).toContain(`all ${carol.id}`);
    failing = false;
    expect(await svc.resumePendingDeletions()).toBeGreaterThanOrEqual(1);
    expect(await count("users WHERE id = $1", [carol.id])).toBe(0);
    expect(await count("chat_sessions WHERE id = $1", [s])).toBe(0);
  });
});

describe("account deletion that outlasts the request", () => {
  it("answers pending, locks the account at once and finishes in the background", async () => {
    const dave = await mkUser("dave");
    const [s] = await mkSessions(dave.id, 1);
    await mkMessages(s!, dave.id, 4);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let purges = 0;
    const slow: VectorPurge = {
      async deleteSessions(ids) {
        purges++;
        await gate;
        await new PgVectorPurge(db.pool).deleteSessions(ids);
      },
    };
    const svc = new AccountService({
      pool: db.pool,
      auth: new AuthService(users, new TokenService("integration-secret-0123456789-0123456789", 3600), 1024, 0),
      vectors: slow,
      sockets: { disconnectAll: () => undefined, disconnectOlderThan: () => undefined },
      log: silentLogger,
      authCacheMs: 0,
      waitMs: 0,
    });
    expect(await svc.deleteAccount(dave)).toBe("pending");
    expect(await users.accountState(dave.id)).toMatchObject({ disabled: true });
    expect(await count("chat_messages WHERE session_id = $1", [s])).toBe(4);
    // A sweep meanwhile joins the running deletion instead of starting another.
    const swept = svc.resumePendingDeletions();
    release();
    await swept;
    expect(await count("users WHERE id = $1", [dave.id])).toBe(0);
    expect(await count("chat_sessions WHERE id = $1", [s])).toBe(0);
    expect(purges).toBe(2); // one deletion: its purge before and after the rows, not a second run's too
    svc.stop();
  });
});

describe("Qdrant vector purge", () => {
  let qdrant: QdrantDouble;
  beforeAll(async () => {
    qdrant = await startQdrantDouble();
  });
  afterAll(() => qdrant?.close());

  it("deletes the sessions' points from every collection in embedding_versions, and skips a collection that does not exist", async () => {
    const versions = [
      { model: "m-old", dims: 4, collection: `purge_old_${randomUUID().slice(0, 6)}` },
      { model: "m-new", dims: 8, collection: `purge_new_${randomUUID().slice(0, 6)}` },
      { model: "m-never", dims: 4, collection: `purge_never_${randomUUID().slice(0, 6)}` },
    ];
    const doomed = randomUUID();
    const kept = randomUUID();
    for (const v of versions) {
      await db.pool.query("INSERT INTO embedding_versions (model, dimensions, collection) VALUES ($1, $2, $3)", [v.model, v.dims, v.collection]);
      if (v.model === "m-never") continue;
      const store = new QdrantVectorStore({ url: qdrant.url, collection: v.collection, dimensions: v.dims });
      await store.ensureReady();
      await store.upsert(
        [doomed, doomed, kept].map((sessionId, i) => ({
          id: pointIdForMessage(i + 1),
          vector: Float32Array.from({ length: v.dims }, (_, k) => (k === i % v.dims ? 1 : 0.1)),
          payload: { sessionId, userId: randomUUID(), messageId: i + 1, role: "user" as const, content: "x", authorId: null, timestamp: new Date().toISOString(), timestampUnix: 0 },
        })),
      );
    }
    await new QdrantVectorPurge(db.pool, { url: qdrant.url, apiKey: undefined }, silentLogger).deleteSessions([doomed]);
    for (const v of versions.slice(0, 2)) {
      expect(qdrant.points(v.collection).map((p) => p.payload.session_id)).toEqual([kept]);
    }
  });
});

describe("export reads", () => {
  it("pages the member's sessions by id and their own messages by seq, and nothing of a non-member", async () => {
    const u = await mkUser();
    const other = await mkUser();
    const ids = (await mkSessions(u.id, 5)).sort();
    await mkMessages(ids[0]!, u.id, 5);
    await mkMessages(ids[0]!, other.id, 2, 6);
    const first = await exportSessionsAfter(db.pool, u.id, null, 3);
    const rest = await exportSessionsAfter(db.pool, u.id, first.at(-1)!.id, 3);
    expect([...first, ...rest].map((s) => s.id)).toEqual(ids);
    expect(first[0]).toMatchObject({ role: "owner", messageCount: 7 });
    const m1 = await exportMessagesAfter(db.pool, ids[0]!, u.id, 0, 3);
    const m2 = await exportMessagesAfter(db.pool, ids[0]!, u.id, m1.at(-1)!.seq, 3);
    expect([...m1, ...m2].map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(await exportMessagesAfter(db.pool, ids[0]!, other.id, 0, 100)).toEqual([]);
    expect(await exportSessionsAfter(db.pool, other.id, null, 100)).toEqual([]);
  });
});
