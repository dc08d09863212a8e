/**
 * The indexer against a real PostgreSQL and the Qdrant double: a backlog
 * drains, an outage of the vector store mid-backlog loses nothing, and every
 * message ends with exactly one point.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClaimRequest, PgIndexQueue, PgPassageIndexQueue } from "../../src/db/index-queue.js";
import { PgAssistantStore } from "../../src/db/pg-assistant-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { Indexer } from "../../src/memory/indexer.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import { pointIdForMessage } from "../../src/memory/point-id.js";
import { QdrantVectorStore } from "../../src/memory/qdrant-vector-store.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";
import { type QdrantDouble, startQdrantDouble } from "../support/qdrant-double.js";

let db: TestDatabase;
let qdrant: QdrantDouble;

beforeAll(async () => {
  db = await createTestDatabase(8);
  qdrant = await startQdrantDouble();
});
afterAll(async () => {
  await qdrant?.close();
  await db?.drop();
});

async function seed(n: number, prefix: string) {
  const users = new PgUserStore(db.pool);
  const store = new PgMessageStore(db.pool);
  const u = (await users.create(`${prefix}_${Date.now()}`, "x"))!;
  const s = await store.createSession(u.id, prefix, false);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await store.insertUserMessage({ sessionId: s.id, userId: u.id, clientMessageId: `${prefix}${i}`, content: `${prefix} message number ${i} about topic ${i % 7}` });
    if (r.kind === "inserted") ids.push(r.message.id);
  }
  return { user: u, session: s, ids };
}

const waitFor = async (cond: () => Promise<boolean>, timeoutMs: number) => {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not met in time");
};

describe("indexer", () => {
  it("drains a backlog through an outage of the vector store, indexing every message exactly once", async () => {
    const { ids } = await seed(400, "outage");
    const queue = new PgIndexQueue(db.pool);
    const collection = "indexer_outage";
    const store = new QdrantVectorStore({ url: qdrant.url, collection, dimensions: 384, timeoutMs: 1000 });
    await store.ensureReady();
    const embedder = new HashEmbedder({ dimensions: 384 });
    // Slow answers make the backlog last long enough to cut the store mid-way.
    qdrant.setLatency(30);
    const indexer = new Indexer(queue, embedder, store, { batchSize: 20, pollMs: 50, leaseMs: 30_000, baseBackoffMs: 50, maxBackoffMs: 200 }, silentLogger);
    indexer.start();
    try {
      await waitFor(async () => indexer.stats.indexed >= 60, 20_000);
      await qdrant.setDown(true);
      await waitFor(async () => indexer.stats.failedBatches >= 2, 10_000);
      const midway = await queue.backlog();
      expect(midway).toBeGreaterThan(0);
      const { rows: errs } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs WHERE last_error IS NOT NULL");
      expect(errs[0].n).toBeGreaterThan(0);
      await qdrant.setDown(false);
      qdrant.setLatency(0);
      await waitFor(async () => (await queue.backlog()) === 0, 30_000);
    } finally {
      await indexer.stop();
      qdrant.setLatency(0);
    }
    const points = qdrant.points(collection);
    expect(points).toHaveLength(ids.length);
    expect(new Set(points.map((p) => p.payload.message_id))).toEqual(new Set(ids));
    // A retry overwrote, never duplicated: one point per message, at the id derived from it.
    for (const p of points) expect(p.id).toBe(pointIdForMessage(Number(p.payload.message_id)));
    // every job is gone with its message indexed
    const { rows: jobs } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs WHERE message_id = ANY($1)", [ids]);
    expect(jobs[0].n).toBe(0);
  });

  it("lets two indexers share one queue without indexing a message twice", async () => {
    const { ids } = await seed(300, "shared");
    const queue = new PgIndexQueue(db.pool);
    const collection = "indexer_shared";
    const store = new QdrantVectorStore({ url: qdrant.url, collection, dimensions: 384 });
    await store.ensureReady();
    const upserted: number[] = [];
    const counting = { ...store, ensureReady: () => store.ensureReady(), search: store.search.bind(store), deleteBySession: store.deleteBySession.bind(store), close: () => store.close(), upsertPassages: store.upsertPassages.bind(store), searchPassages: store.searchPassages.bind(store), deleteByAttachment: store.deleteByAttachment.bind(store), upsert: async (p: Parameters<typeof store.upsert>[0]) => { upserted.push(...p.map((x) => x.payload.messageId)); await store.upsert(p); } };
    const opts = { batchSize: 16, pollMs: 50, leaseMs: 30_000, baseBackoffMs: 50, maxBackoffMs: 200 };
    const a = new Indexer(queue, new HashEmbedder(), counting, opts, silentLogger);
    const b = new Indexer(queue, new HashEmbedder(), counting, opts, silentLogger);
    a.start();
    b.start();
    try {
      await waitFor(async () => (await queue.backlog()) === 0, 30_000);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    const mine = upserted.filter((id) => ids.includes(id));
    expect(mine.length).toBe(ids.length); // each claimed once: no message upserted by both
    expect(a.stats.indexed).toBeGreaterThan(0);
    expect(b.stats.indexed).toBeGreaterThan(0);
  });

  it("costs PostgreSQL two statements a batch at load (claim with the previous mark, upsert) and tops batches up with passages whoever queued them", async () => {
    await db.pool.query("DELETE FROM message_index_jobs; DELETE FROM passage_index_jobs"); // earlier tests' rows are not this test's
    const { user, session, ids } = await seed(100, "statements");
    // Passages queued straight into the tables, as another node's attachment pipeline leaves them: nothing tells this indexer.
    const { rows: att } = await db.pool.query<{ id: string }>(
      "INSERT INTO attachments (session_id, uploader_id, state, name, sha256, storage_key) VALUES ($1, $2, 'pending', 'notes.txt', 'x', $3) RETURNING id",
      [session.id, user.id, `statements-${Date.now()}`],
    );
    const { rows: passageRows } = await db.pool.query<{ id: string }>(
      `INSERT INTO attachment_passages (attachment_id, session_id, ordinal, char_start, char_end, content)
       SELECT $1, $2, g, 0, 10, 'passage number ' || g FROM generate_series(1, 3) g RETURNING id`,
      [att[0]!.id, session.id],
    );
    const passageIds = passageRows.map((r) => Number(r.id));
    await db.pool.query("INSERT INTO passage_index_jobs (passage_id) SELECT unnest($1::bigint[])", [passageIds]);
    let statements = 0;
    const counted = { query: (...args: unknown[]) => (statements++, (db.pool.query as (...a: unknown[]) => unknown)(...args)) } as unknown as typeof db.pool;
    const store = new PgVectorStore(db.pool, "indexer_statements", 384);
    await store.ensureReady();
    // One loop, no polling, no linger: the run is the same every time.
    const indexer = new Indexer(new PgIndexQueue(counted), new HashEmbedder({ dimensions: 384 }), new PgVectorStore(counted, "indexer_statements", 384), { batchSize: 16, pollMs: 600_000, lingerMs: 0, leaseMs: 30_000, baseBackoffMs: 50, maxBackoffMs: 200, concurrency: 1 }, silentLogger, undefined, new PgPassageIndexQueue(counted));
    indexer.start();
    try {
      await waitFor(async () => {
        const { rows } = await db.pool.query(
          `SELECT (SELECT count(*)::int FROM message_index_jobs WHERE message_id = ANY($1)) AS m,
                  (SELECT count(*)::int FROM attachment_passages WHERE id = ANY($2) AND indexed_at IS NOT NULL) AS p`,
          [ids, passageIds],
        );
        return rows[0].m === 0 && rows[0].p === passageIds.length;
      }, 20_000);
    } finally {
      await indexer.stop();
    }
    // 100 messages and 3 passages in batches of 16: six of messages, then 4 messages and the 3 passages.
    // Each batch: its claim (carrying the previous batch's mark) and the upsert; the passages' upsert and
    // mark; one last claim that marks the last batch and finds nothing. Before: claim, passage claim,
    // upsert and mark a batch (32 statements).
    expect(indexer.stats.indexed).toBe(103);
    expect(statements).toBe(7 * 2 + 2 + 1);
    const { rows: points } = await db.pool.query("SELECT count(*)::int AS n FROM message_vectors WHERE collection = 'indexer_statements'");
    expect(points[0].n).toBe(103);
    const { rows: left } = await db.pool.query("SELECT (SELECT count(*)::int FROM message_index_jobs) + (SELECT count(*)::int FROM passage_index_jobs) AS n");
    expect(left[0].n).toBe(0);
  });

  it("queues a message for indexing when it is stored, and a reply only once it has ended", async () => {
    const users = new PgUserStore(db.pool);
    const store = new PgMessageStore(db.pool);
    const assistant = new PgAssistantStore(db.pool);
    const u = (await users.create(`jobs_${Date.now()}`, "x"))!;
    const s = await store.createSession(u.id, "jobs", true);
    const jobFor = async (id: number) =>
      (await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs WHERE message_id = $1", [id])).rows[0].n as number;
    const q = await store.insertUserMessage({ sessionId: s.id, userId: u.id, clientMessageId: "q1", content: "question", replyOwnerNode: "gone-node" });
    if (q.kind !== "inserted" || !q.reply) throw new Error("expected a message and its reply");
    expect(await jobFor(q.message.id)).toBe(1);
    expect(await jobFor(q.reply.id)).toBe(0); // streaming text is never embedded
    const done = await assistant.complete(q.reply.id, { content: "answer", status: "complete", completionTokens: 1, promptTokens: 1, firstTokenMs: 1, latencyMs: 2, configId: null }, []);
    expect(done?.status).toBe("complete");
    expect(await jobFor(q.reply.id)).toBe(1);
    // a reply whose node is gone is interrupted by the sweeper, and queued too
    const q2 = await store.insertUserMessage({ sessionId: s.id, userId: u.id, clientMessageId: "q2", content: "again", replyOwnerNode: "gone-node" });
    if (q2.kind !== "inserted" || !q2.reply) throw new Error("expected a message and its reply");
    const swept = await assistant.sweepOrphans(1_000);
    expect(swept.map((m) => m.id)).toContain(q2.reply.id);
    expect(await jobFor(q2.reply.id)).toBe(1);
    const queue = new PgIndexQueue(db.pool);
    const id = q2.reply.id;
    const mark = [id];
    // A batch claims the swept reply; before it marks, the sweeper saves the longer buffered text and
    // queues it anew: the batch holds the older text, so its mark (deferred into its next claim) does
    // not close the job, and the next batch embeds the longer text.
    expect((await queue.claimBatch({ limit: 100, leaseMs: 60_000 })).messages.map((m) => m.id)).toContain(id);
    await assistant.setInterruptedContent(id, "the longer text the stream buffer kept");
    await queue.claimBatch({ limit: 0, leaseMs: 60_000, done: mark });
    expect(await jobFor(id)).toBe(1);
    const again = await queue.claimBatch({ limit: 100, leaseMs: 60_000 });
    expect(again.messages.find((m) => m.id === id)?.content).toBe("the longer text the stream buffer kept");
    await queue.markIndexed(mark);
    expect(await jobFor(id)).toBe(0);
    // indexed, then the sweeper saves a longer text again: queued again
    await assistant.setInterruptedContent(id, "the text the stream buffer kept, longer still");
    expect(await jobFor(id)).toBe(1);
  });
  it("lingers after a wake-up, so messages sent one by one are indexed in a few batches", async () => {
    const real = new PgIndexQueue(db.pool);
    let claimsWithWork = 0;
    const queue = Object.assign(Object.create(real) as PgIndexQueue, {
      claimBatch: async (req: ClaimRequest) => {
        const got = await real.claimBatch(req);
        if (got.messages.length > 0) claimsWithWork++;
        return got;
      },
    });
    await db.pool.query("DELETE FROM message_index_jobs"); // what earlier tests left queued is not this test's
    const collection = "indexer_linger";
    const store = new QdrantVectorStore({ url: qdrant.url, collection, dimensions: 384, timeoutMs: 1000 });
    await store.ensureReady();
    // No polling: only wake-ups start a claim, as NOTIFY does in the server.
    const indexer = new Indexer(queue, new HashEmbedder({ dimensions: 384 }), store, { batchSize: 64, pollMs: 600_000, lingerMs: 300, leaseMs: 30_000, baseBackoffMs: 50, maxBackoffMs: 200, concurrency: 1 }, silentLogger);
    indexer.start();
    const users = new PgUserStore(db.pool);
    const messages = new PgMessageStore(db.pool);
    const u = (await users.create(`linger_${Date.now()}`, "x"))!;
    const s = await messages.createSession(u.id, "linger", false);
    const ids: number[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const r = await messages.insertUserMessage({ sessionId: s.id, userId: u.id, clientMessageId: `l${i}`, content: `linger message ${i}` });
        if (r.kind === "inserted") ids.push(r.message.id);
        indexer.wake();
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor(async () => {
        const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs WHERE message_id = ANY($1)", [ids]);
        return rows[0].n === 0;
      }, 10_000);
    } finally {
      await indexer.stop();
    }
    expect(ids).toHaveLength(12);
    // Without the linger each wake-up claims what has arrived: about one claim per message.
    expect(claimsWithWork).toBeLessThanOrEqual(4);
    expect(qdrant.points(collection)).toHaveLength(12);
  });

  it("stops at once while lingering", async () => {
    const store = new QdrantVectorStore({ url: qdrant.url, collection: "indexer_linger_stop", dimensions: 384, timeoutMs: 1000 });
    await store.ensureReady();
    const indexer = new Indexer(new PgIndexQueue(db.pool), new HashEmbedder({ dimensions: 384 }), store, { batchSize: 64, pollMs: 600_000, lingerMs: 60_000, leaseMs: 30_000, baseBackoffMs: 50, maxBackoffMs: 200 }, silentLogger);
    indexer.start();
    indexer.wake();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await indexer.stop();
    expect(performance.now() - t0).toBeLessThan(2_000);
  });
});
