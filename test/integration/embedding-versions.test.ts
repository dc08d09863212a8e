/**
 * Embedding versions against a real PostgreSQL: the state machine of
 * registration (first, current, building, abandoned, reused), the dual write
 * of the indexing queue, a backfill stopped half way and resumed from its
 * stored cursor by a fresh runner (a restart), the atomic switch reaching
 * two nodes' views, and retirement beyond the kept versions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  completeBackfill,
  listVersions,
  registerConfigured,
  versionToBackfill,
  type EmbeddingVersion,
} from "../../src/db/embedding-versions.js";
import { PgIndexQueue } from "../../src/db/index-queue.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { EmbeddingVersionSet } from "../../src/memory/embedding-version-set.js";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import { Reembedder } from "../../src/memory/reembedder.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";

let db: TestDatabase;
const sets: EmbeddingVersionSet[] = [];

beforeAll(async () => {
  db = await createTestDatabase(12);
});
afterAll(async () => {
  for (const s of sets) await s.stop();
  await db?.drop();
});

const hashModel = (dims: number) => `lexical-hash-v1-${dims}`;
const register = (dims: number) => registerConfigured(db.pool, "ev", hashModel(dims), dims, { kind: "hash" });

/** A node's view of the versions, with hash embedders for any width and indexers draining both queues. */
async function nodeView(refreshMs = 60_000): Promise<EmbeddingVersionSet> {
  const set = new EmbeddingVersionSet({
    pool: db.pool,
    databaseUrl: db.url,
    queue: new PgIndexQueue(db.pool),
    embedderFor: (v) => ({ embedder: new HashEmbedder({ dimensions: v.dimensions }), ready: Promise.resolve(), owned: true }),
    storeFor: (v) => new PgVectorStore(db.pool, v.collection, v.dimensions),
    indexer: { enabled: true, batchSize: 16, pollMs: 50, leaseMs: 10_000, baseBackoffMs: 50, maxBackoffMs: 500, lingerMs: 0 },
    refreshMs,
    log: silentLogger,
  });
  await set.start();
  sets.push(set);
  return set;
}

async function seed(n: number, prefix: string) {
  const users = new PgUserStore(db.pool);
  const store = new PgMessageStore(db.pool);
  const u = (await users.create(`${prefix}_${Date.now()}`, "x"))!;
  const s = await store.createSession(u.id, prefix, false);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await store.insertUserMessage({ sessionId: s.id, userId: u.id, clientMessageId: `${prefix}${i}`, content: `${prefix} message ${i} about topic ${i % 5}` });
    if (r.kind === "inserted") ids.push(r.message.id);
  }
  return { user: u, session: s, ids, store };
}

const points = async (collection: string): Promise<number[]> =>
  (await db.pool.query<{ message_id: number }>("SELECT message_id FROM message_vectors WHERE collection = $1 ORDER BY message_id", [collection])).rows.map((r) => r.message_id);

const waitFor = async (cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000) => {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const state = async (id: number) => (await db.pool.query<{ state: string }>("SELECT state FROM embedding_versions WHERE id = $1", [id])).rows[0]?.state;

describe("embedding versions", () => {
  let a: EmbeddingVersion;
  let b: EmbeddingVersion;
  let allIds: number[] = [];

  it("registers the first model as active, and the same model again as current", async () => {
    const first = await register(64);
    expect(first.kind).toBe("first");
    expect(first.version.state).toBe("active");
    a = first.version;
    const again = await register(64);
    expect(again).toMatchObject({ kind: "current", version: { id: a.id } });
    expect(await versionToBackfill(db.pool)).toBeUndefined();
  });

  it("a new model becomes the building version over the messages stored so far; messages queued after it are dual-written", async () => {
    const node = await nodeView();
    const { ids, store, session, user } = await seed(40, "before");
    await waitFor(async () => (await points(a.collection)).length === 40, "the active version's indexing");
    const r = await register(32);
    expect(r.kind).toBe("building");
    b = r.version;
    expect(b.state).toBe("building");
    expect(b.backfillTarget).toBe(ids.at(-1));
    expect(b.backfillCursor).toBe(0);
    // Registered again (a second node with the same configuration): the same build goes on.
    expect(await register(32)).toMatchObject({ kind: "building", resumed: true, version: { id: b.id } });

    const later = await store.insertUserMessage({ sessionId: session.id, userId: user.id, clientMessageId: "after0", content: "after the change: the lighthouse keeper" });
    if (later.kind !== "inserted") throw new Error(later.kind);
    // The building version's own indexer drains its dual write; the active one its queue, each into its collection.
    await waitFor(async () => (await points(b.collection)).includes(later.message.id) && (await points(a.collection)).includes(later.message.id), "the dual write");
    expect(await points(b.collection)).toEqual([later.message.id]);
    allIds = [...ids, later.message.id];
    // Searches keep using the active version meanwhile.
    await node.refresh();
    expect(node.active()?.version.id).toBe(a.id);
    expect(node.building()?.version.id).toBe(b.id);
  });

  it("a backfill stopped half way resumes from its stored cursor after a restart, then switches every node at once", async () => {
    const viewA = await nodeView();
    const viewB = await nodeView();
    const stop = new AbortController();
    const embeddedFirst: number[] = [];
    const opts = { batchSize: 8, intervalMs: 0, keepVersions: 3, sliceMs: 20_000, dropBatchSize: 100 };
    const storeFor = (v: EmbeddingVersion) => new PgVectorStore(db.pool, v.collection, v.dimensions);
    const first = new Reembedder(db.pool, viewA, storeFor, opts, silentLogger, {
      onBatch: (_v, n) => {
        embeddedFirst.push(n);
        if (embeddedFirst.length === 2) stop.abort(); // the node stops after two batches
      },
    });
    const s1 = await first.run(stop.signal);
    expect(s1).toMatchObject({ version: b.id, outcome: "progress", embedded: 16, done: 16, total: 40 });
    const [stored] = await listVersions(db.pool, ["building"]);
    expect(stored!.backfillCursor).toBe(allIds[15]);
    expect(stored!.backfillDone).toBe(16);
    expect(await state(b.id)).toBe("building");

    // A fresh runner (another process after a restart) goes on from the cursor: 24 more, not 40.
    const embeddedSecond: number[] = [];
    const second = new Reembedder(db.pool, viewB, storeFor, opts, silentLogger, { onBatch: (_v, n) => embeddedSecond.push(n) });
    const s2 = await second.run(new AbortController().signal);
    expect(s2.outcome).toBe("switched");
    expect(embeddedSecond.reduce((x, y) => x + y, 0)).toBe(24);
    expect(await state(b.id)).toBe("active");
    expect(await state(a.id)).toBe("previous");
    expect(await points(b.collection)).toEqual(allIds);

    // Both views (refreshing only every minute) switched through NOTIFY.
    await waitFor(() => viewA.active()?.version.id === b.id && viewB.active()?.version.id === b.id, "both nodes to switch");
    // After the switch the main queue writes the new version only.
    const { store, session, user } = await seed(1, "post");
    const m = await store.insertUserMessage({ sessionId: session.id, userId: user.id, clientMessageId: "post1", content: "after the switch" });
    if (m.kind !== "inserted") throw new Error(m.kind);
    await waitFor(async () => (await points(b.collection)).includes(m.message.id), "indexing into the new active version");
    expect(await points(a.collection)).not.toContain(m.message.id);
  });

  it("the switch does not wait for pending dual writes: they are queued for the new active version", async () => {
    const { ids } = await seed(3, "pending");
    const c = await register(48);
    expect(c.kind).toBe("building");
    await db.pool.query("UPDATE embedding_versions SET backfill_cursor = backfill_target WHERE id = $1", [c.version.id]);
    // A dual write that is not done (backing off for an hour): under steady traffic one nearly always is.
    await db.pool.query("INSERT INTO message_version_jobs (message_id, version_id, run_at) VALUES ($1, $2, now() + interval '1 hour')", [ids[0], c.version.id]);
    expect(await completeBackfill(db.pool, c.version.id)).toBe("switched");
    expect((await listVersions(db.pool)).map((v) => [v.id, v.state])).toEqual([
      [c.version.id, "active"],
      [b.id, "previous"],
      [a.id, "previous"],
    ]);
    expect((await db.pool.query("SELECT 1 FROM message_version_jobs WHERE version_id = $1", [c.version.id])).rowCount).toBe(0);
    // Queued on the main queue and due at once: the nodes' indexers put it in the new version.
    // An indexer closes a batch's jobs with its next claim, after the points: wait for the mark, not the point.
    const queued = async () => (await db.pool.query("SELECT 1 FROM message_index_jobs WHERE message_id = $1", [ids[0]])).rowCount;
    await waitFor(async () => (await queued()) === 0, "the pending dual write marked by the new active version's indexer");
    expect(await points(c.version.collection)).toContain(ids[0]);
  });

  it("a mark written for a version that is no longer active does not land: the job stays for the active one", async () => {
    const { ids } = await seed(1, "stale");
    const id = ids[0]!;
    await waitFor(async () => (await db.pool.query("SELECT 1 FROM message_index_jobs WHERE message_id = $1", [id])).rowCount === 0, "the message indexed");
    const active = (await listVersions(db.pool, ["active"]))[0]!;
    const previous = (await listVersions(db.pool, ["previous"]))[0]!;
    // Queued again, out of the running indexers' reach (an hour's lease), as a batch claimed by the old version.
    await db.pool.query("INSERT INTO message_index_jobs (message_id, run_at, attempts) VALUES ($1, now() + interval '1 hour', 1)", [id]);
    const queued = async () => (await db.pool.query("SELECT 1 FROM message_index_jobs WHERE message_id = $1", [id])).rowCount === 1;
    const queue = new PgIndexQueue(db.pool);
    await queue.forVersion(previous.id).markIndexed([id]);
    expect(await queued()).toBe(true);
    // The same through a claim statement carrying the previous batch's marks.
    await queue.forVersion(previous.id).claimBatch({ limit: 0, leaseMs: 1000, done: [id] });
    expect(await queued()).toBe(true);
    // The active version's mark lands.
    await queue.forVersion(active.id).claimBatch({ limit: 0, leaseMs: 1000, done: [id] });
    expect(await queued()).toBe(false);
  });

  it("going back to the active model abandons a building version; versions beyond the kept three are retired and their vectors deleted", async () => {
    const active = (await listVersions(db.pool, ["active"]))[0]!;
    const d = await register(24);
    expect(d.kind).toBe("building");
    const back = await registerConfigured(db.pool, "ev", active.model, active.dimensions, { kind: "hash" });
    expect(back.kind).toBe("current");
    expect(await state(d.version.id)).toBe("retired");

    const view = await nodeView();
    const r = new Reembedder(db.pool, view, (v) => new PgVectorStore(db.pool, v.collection, v.dimensions), { batchSize: 8, intervalMs: 0, keepVersions: 3, sliceMs: 20_000, dropBatchSize: 7 }, silentLogger);
    // Three kept (c active, b and a previous): only the abandoned one goes.
    expect((await r.run(new AbortController().signal)).retired).toEqual([d.version.id]);
    expect(await state(a.id)).toBe("previous");

    // A fifth model: once it is built and active, a is the fourth newest and is retired.
    expect((await points(a.collection)).length).toBeGreaterThan(0);
    const deletionsBefore = (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_vector_deletions WHERE collection = $1", [a.collection])).rows[0]!.n;
    const e = await register(16);
    const s = await r.run(new AbortController().signal);
    expect(s).toMatchObject({ version: e.version.id, outcome: "switched", retired: [a.id] });
    expect(await state(a.id)).toBe("retired");
    expect(await points(a.collection)).toEqual([]);
    // Dropping a retired version logs no deletions for the code caches.
    const deletionsAfter = (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_vector_deletions WHERE collection = $1", [a.collection])).rows[0]!.n;
    expect(deletionsAfter).toBe(deletionsBefore);
    expect((await db.pool.query("SELECT dropped_at IS NOT NULL AS dropped FROM embedding_versions WHERE id = $1", [a.id])).rows[0].dropped).toBe(true);
    expect((await points(b.collection)).length).toBeGreaterThan(0);

    // The retired model configured again: the same row builds again, from the start.
    const again = await register(64);
    expect(again).toMatchObject({ kind: "building", resumed: false, version: { id: a.id, state: "building", backfillCursor: 0, backfillDone: 0 } });
  });
});
