/**
 * Indexing, side by side in one run on the MiniLM-shaped model (random
 * weights, real compute):
 *   1. the embedder alone (worker pool) on N messages;
 *   2. the whole drain: N unindexed messages in PostgreSQL through the indexer
 *      (claim, embed, upsert into the PostgreSQL vector store, mark) — target
 *      at least 0.8x the embedder alone;
 *   3. exact search of the PostgreSQL vector store over one user's 10k and
 *      100k vectors.
 * Usage: npm run bench:indexing [-- --messages 4000]
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import "../src/db/pool.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { PgIndexQueue } from "../src/db/index-queue.js";
import { runMigrations } from "../src/db/migrate.js";
import { Indexer } from "../src/memory/indexer.js";
import { PgVectorStore } from "../src/memory/pg-vector-store.js";
import { TransformersEmbedder } from "../src/memory/transformers-embedder.js";
import { silentLogger } from "../test/support/logger.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { makeCorpus } from "./corpus.js";
import { percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg("messages", 4000);
const BATCH = arg("batch", 64);

const dir = await mkdtemp(path.join(tmpdir(), "memchat-bench-idx-"));
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
const pool = new pg.Pool({ connectionString: await postgres.ensureDatabase("bench"), max: 10 });
// The embedded PostgreSQL stops at the end while this pool may still hold sockets.
pool.on("error", () => undefined);
const embedder = new TransformersEmbedder({ modelPath: await ensureFullModel(), model: "minilm-shape", maxBatchSize: 32 });
const rows: (string | number)[][] = [];
try {
  await runMigrations(pool, silentLogger);
  await embedder.ready();
  const corpus = makeCorpus(N, 7);
  await embedder.embed(corpus.slice(0, 64)); // warm the workers

  // 1. the embedder alone, fed in the indexer's batch size
  let t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) await embedder.embed(corpus.slice(i, i + BATCH));
  const alone = N / ((performance.now() - t0) / 1000);
  rows.push(["embedder alone (worker pool)", N, alone, "-"]);

  // 2. the drain, through PostgreSQL and the vector store
  const { rows: users } = await pool.query("INSERT INTO users (username, password_hash) VALUES ('bench', 'x') RETURNING id");
  const userId = users[0].id as string;
  const { rows: sessions } = await pool.query("INSERT INTO chat_sessions (owner_id, title) VALUES ($1, 'bench') RETURNING id", [userId]);
  const sessionId = sessions[0].id as string;
  await pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [sessionId, userId]);
  await pool.query(
    `WITH ins AS (
       INSERT INTO chat_messages (session_id, seq, user_id, role, content, client_message_id)
       SELECT $1, g, $2, 'user', c, 'b' || g FROM unnest($3::text[]) WITH ORDINALITY AS u(c, g)
       RETURNING id
     )
     INSERT INTO message_index_jobs (message_id) SELECT id FROM ins`,
    [sessionId, userId, corpus],
  );
  const queue = new PgIndexQueue(pool);
  const store = new PgVectorStore(pool, "bench_drain", 384);
  const indexer = new Indexer(queue, embedder, store, { batchSize: BATCH, pollMs: 50, leaseMs: 60_000, baseBackoffMs: 100, maxBackoffMs: 1000 }, silentLogger);
  t0 = performance.now();
  indexer.start();
  while ((await queue.backlog()) > 0) await new Promise((r) => setTimeout(r, 20));
  const drain = N / ((performance.now() - t0) / 1000);
  await indexer.stop();
  rows.push(["drain: PostgreSQL -> indexer -> vector store", N, drain, `${(drain / alone).toFixed(2)}x`]);

  // 3. exact search over one user's 10k and 100k vectors (random unit vectors stand in for embeddings)
  const search: (string | number)[][] = [];
  // Exact on purpose: the code prefilter is measured against it in bench/vector-search.ts.
  const exact = new PgVectorStore(pool, "bench_search", 384, { exact: true });
  let have = 0;
  for (const size of [10_000, 100_000]) {
    for (let i = have; i < size; i += 2000) {
      const points = Array.from({ length: Math.min(2000, size - i) }, (_, j) => {
        const v = new Float32Array(384);
        for (let k = 0; k < 384; k++) v[k] = Math.random() - 0.5;
        return { id: randomUUID(), vector: v, payload: { sessionId, userId, authorId: userId, messageId: i + j + 1, role: "user" as const, content: `m${i + j}`, timestamp: new Date().toISOString(), timestampUnix: 0 } };
      });
      await exact.upsert(points);
    }
    have = size;
    const times: number[] = [];
    for (let q = 0; q < 20; q++) {
      const v = new Float32Array(384).map(() => Math.random() - 0.5);
      const s = performance.now();
      await exact.search(v, { userId, sessionIds: [sessionId] }, 10);
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    search.push([size, percentile(times, 50), percentile(times, 99)]);
  }
  console.log(`\nindexing on the MiniLM-shaped model (q8), ${N} chat messages, batches of ${BATCH}\n`);
  console.log(table(["path", "messages", "messages/s", "vs embedder alone"], rows));
  console.log(`\nexact search in PostgreSQL (one user's vectors, top 10)\n`);
  console.log(table(["vectors", "search p50 ms", "search p99 ms"], search));
} finally {
  await embedder.close();
  await pool.end();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
