/**
 * The PostgreSQL vector store's search over one user's 100,000 vectors, in one
 * run: exact search (every filtered vector scored, the store's `exact` mode)
 * against the code prefilter with exact rerank (the default), query by query
 * on the same data. Prints p50/p99 latency and recall@10 of the prefiltered
 * search against exact search, for all of the user's sessions and for one
 * session of many; also the first search after a start (which loads the
 * user's codes), the `--timed` searches right after it on their own (as a
 * node serves them: p50/p90/p99/max) and searches while another store instance
 * (another node) keeps writing.
 *
 * Data (--data):
 *   clustered  random unit vectors with cluster structure: 1,000 centres (--centres)
 *              scattered around one shared direction (sentence embeddings have
 *              one), each vector a centre plus Gaussian noise; queries drawn
 *              the same way (default)
 *   hash       the feature-hashing embedder over bench/corpus.ts chat messages
 *              (sparse vectors, many near-duplicates)
 *
 * Usage: npm run bench:vectors [-- --vectors 100000 --sessions 200 --queries 30 --timed 300 --depth 400 --max 800 --data clustered --centres 1000]
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { genericPlanPool } from "../src/db/pool.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { runMigrations } from "../src/db/migrate.js";
import { seededRandom } from "./corpus.js";
import { HashEmbedder } from "../src/memory/hash-embedder.js";
import { PgVectorStore } from "../src/memory/pg-vector-store.js";
import type { VectorFilter, VectorHit, VectorPoint } from "../src/memory/types.js";
import { silentLogger } from "../test/support/logger.js";
import { makeCorpus } from "./corpus.js";
import { percentile, table } from "./lib.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const N = Number(arg("vectors", "100000"));
const SESSIONS = Number(arg("sessions", "200"));
const QUERIES = Number(arg("queries", "30"));
/** Prefiltered searches timed on their own, right after the codes load (no exact search to compare). */
const TIMED = Number(arg("timed", "300"));
const DEPTH = Number(arg("depth", "400"));
/** Ties with the last candidate reranked too, up to this many (the store's default: twice the depth). */
const MAX = Number(arg("max", String(2 * DEPTH)));
/** Also measure a second prefilter store with this tie limit, on the same queries (e.g. --compare-max 400: no ties beyond the depth). */
const COMPARE_MAX = arg("compare-max", "");
const DATA = arg("data", "clustered");
/** Fewer points per centre make the true top 10 span several clusters: harder for the codes. */
const CENTRES = Number(arg("centres", "1000"));
const D = 384;
const OTHER_USERS_VECTORS = 10_000;

// Seeded, so runs compare.
const rand = seededRandom(20261202);
const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());

function vectorSource(): () => Float32Array {
  if (DATA === "hash") {
    const embedder = new HashEmbedder({ dimensions: D });
    const corpus = makeCorpus(N + OTHER_USERS_VECTORS + 1000, 11);
    let i = 0;
    return () => embedder.embedOne(corpus[i++ % corpus.length]!);
  }
  const shared = Float32Array.from({ length: D }, gauss);
  const centres = Array.from({ length: CENTRES }, () => Float32Array.from({ length: D }, (_, k) => shared[k]! * 0.7 + gauss()));
  return () => {
    const c = centres[Math.floor(rand() * centres.length)]!;
    return Float32Array.from({ length: D }, (_, k) => c[k]! + gauss() * 0.9);
  };
}

let nextMessageId = 1;
function points(userId: string, sessions: string[], count: number, next: () => Float32Array): VectorPoint[] {
  return Array.from({ length: count }, (_, j) => {
    const messageId = nextMessageId++;
    return {
      id: randomUUID(),
      vector: next(),
      payload: { sessionId: sessions[j % sessions.length]!, userId, messageId, role: "user", content: `message ${messageId}`, authorId: userId, timestamp: new Date().toISOString(), timestampUnix: 0 },
    };
  });
}

/** Share of the exact top 10 found; a hit tied with the exact 10th counts (the hash data has duplicates). */
function recall(exact: VectorHit[], got: VectorHit[]): number {
  if (exact.length === 0) return 1;
  const kth = exact[exact.length - 1]!.score;
  const ids = new Set(exact.map((h) => h.messageId));
  return got.filter((h) => ids.has(h.messageId) || h.score >= kth - 1e-6).length / exact.length;
}

const ms = (t0: number) => performance.now() - t0;
const dir = await mkdtemp(path.join(tmpdir(), "memchat-bench-vec-"));
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
const url = await postgres.ensureDatabase("bench");
const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on("error", () => undefined);
// The searches' code sync and rerank run on generic plans, as a node runs them (genericPlanPool).
const genericPlans = genericPlanPool(url, 10, silentLogger);
try {
  await runMigrations(pool, silentLogger);
  const next = vectorSource();
  const userId = randomUUID();
  const sessions = Array.from({ length: SESSIONS }, () => randomUUID());
  const writer = new PgVectorStore(pool, "bench", D);
  let t0 = performance.now();
  for (let i = 0; i < N; i += 2000) await writer.upsert(points(userId, sessions, Math.min(2000, N - i), next));
  const fillS = ms(t0) / 1000;
  // Other users' vectors in the same table, as in a real database.
  for (let i = 0; i < OTHER_USERS_VECTORS; i += 2000) await writer.upsert(points(randomUUID(), [randomUUID()], 2000, next));
  await pool.query("VACUUM ANALYZE message_vectors");
  console.log(`filled ${N} vectors of one user over ${SESSIONS} sessions in ${fillS.toFixed(1)} s (${Math.round(N / fillS)}/s), data: ${DATA}${DATA === "clustered" ? ` (${CENTRES} centres)` : ""}; load average ${loadavg()[0]!.toFixed(1)}`);

  const exact = new PgVectorStore(pool, "bench", D, { exact: true });
  const indexed = new PgVectorStore(pool, "bench", D, { rerankDepth: DEPTH, rerankMax: MAX }, genericPlans);
  const compared = COMPARE_MAX ? new PgVectorStore(pool, "bench", D, { rerankDepth: DEPTH, rerankMax: Number(COMPARE_MAX) }, genericPlans) : undefined;
  const queries = Array.from({ length: QUERIES }, next);
  const allSessions: VectorFilter = { userId, sessionIds: sessions };

  // The first search after a start loads the user's codes from the table.
  t0 = performance.now();
  await indexed.search(queries[0]!, allSessions, 10);
  const coldMs = ms(t0);
  await compared?.search(queries[0]!, allSessions, 10);

  // A node's first searches after that load, as it serves them: prefilter only, with no exact
  // search in between (whose 100,000 vectors read in the node would make the collector's work),
  // and enough of them (--timed) for a p99 that is not one search's time.
  const first: number[] = [];
  const timedQueries = [...queries, ...Array.from({ length: Math.max(0, TIMED - QUERIES) }, next)];
  for (const q of timedQueries) {
    t0 = performance.now();
    await indexed.search(q, allSessions, 10);
    first.push(ms(t0));
  }

  const rows: (string | number)[][] = [];
  const run = async (label: string, filter: (q: number) => VectorFilter, during?: () => Promise<void>) => {
    const te: number[] = [];
    const ti: number[] = [];
    const tc: number[] = [];
    let r = 0;
    let rc = 0;
    // Without writes, all exact searches first, then the prefiltered ones on their own: an exact
    // search reads the user's 100,000 vectors into this process, and the collections that follow
    // would land on the next search timed. With another node writing, each query's truth must be
    // taken on the same data as its search, so the two alternate.
    const truths: VectorHit[][] = [];
    const timeSearch = async (store: PgVectorStore, q: number, times: number[]) => {
      t0 = performance.now();
      const hits = await store.search(queries[q]!, filter(q), 10);
      times.push(ms(t0));
      return hits;
    };
    const score = async (q: number) => {
      r += recall(truths[q]!, await timeSearch(indexed, q, ti));
      if (compared) rc += recall(truths[q]!, await timeSearch(compared, q, tc));
    };
    for (let q = 0; q < QUERIES; q++) {
      if (during) await during();
      truths[q] = await timeSearch(exact, q, te);
      if (during) await score(q);
    }
    if (!during) {
      // What the exact pass left behind is collected now, not during the pass timed next
      // (`npm run bench:vectors` runs with --expose-gc).
      (globalThis as { gc?: () => void }).gc?.();
      for (let q = 0; q < QUERIES; q++) await score(q);
    }
    tc.sort((a, b) => a - b);
    te.sort((a, b) => a - b);
    ti.sort((a, b) => a - b);
    const { rows: c } = await pool.query("SELECT count(*)::int AS n FROM message_vectors WHERE collection = 'bench' AND user_id = $1 AND session_id = ANY($2::uuid[])", [
      userId,
      filter(0).sessionIds,
    ]);
    rows.push([label, c[0].n, percentile(te, 50), percentile(te, 99), percentile(ti, 50), percentile(ti, 99), r / QUERIES, `${(percentile(te, 50) / percentile(ti, 50)).toFixed(0)}x`]);
    if (compared) rows.push([`${label} (ties up to ${COMPARE_MAX})`, c[0].n, percentile(te, 50), percentile(te, 99), percentile(tc, 50), percentile(tc, 99), rc / QUERIES, `${(percentile(te, 50) / percentile(tc, 50)).toFixed(0)}x`]);
  };
  await run("all sessions", () => allSessions);
  await run("one session of many", (q) => ({ userId, sessionIds: [sessions[q % SESSIONS]!] }));
  // Another node indexes 20 messages of this user between searches: each search first catches up.
  const otherNode = new PgVectorStore(pool, "bench", D, {}, genericPlans);
  await run("all sessions, another node writing", () => allSessions, () => otherNode.upsert(points(userId, sessions, 20, next)));

  console.log(`\nsearch over one user's vectors, top 10, ${QUERIES} queries per row, rerank depth ${DEPTH} (ties up to ${MAX}); load average ${loadavg()[0]!.toFixed(1)}\n`);
  console.log(table(["filter", "candidates", "exact p50 ms", "exact p99 ms", "prefilter p50 ms", "prefilter p99 ms", "recall@10", "p50 speed-up"], rows));
  console.log(`\nfirst search after a start (loads the user's ${N} codes): ${coldMs.toFixed(0)} ms`);
  const firstSorted = [...first].sort((a, b) => a - b);
  console.log(
    `the ${first.length} searches after it, prefilter only, all sessions: p50 ${percentile(firstSorted, 50).toFixed(1)} / p90 ${percentile(firstSorted, 90).toFixed(1)} / p99 ${percentile(firstSorted, 99).toFixed(1)} / max ${firstSorted[firstSorted.length - 1]!.toFixed(1)} ms; the first 20 in order: ${first
      .slice(0, 20)
      .map((t) => t.toFixed(0))
      .join(" ")} ms`,
  );
  // What sql/010 spends per row when it upgrades a populated database: the code computed in SQL.
  t0 = performance.now();
  await pool.query("SELECT count(message_vector_code(embedding)) FROM message_vectors WHERE collection = 'bench' AND user_id = $1", [userId]);
  console.log(`codes computed in SQL (as sql/010 does for existing rows): ${N} in ${(ms(t0) / 1000).toFixed(1)} s`);
  t0 = performance.now();
  await pool.query("SELECT count(message_vector_magnitude(embedding)) FROM message_vectors WHERE collection = 'bench' AND user_id = $1", [userId]);
  console.log(`size bits computed in SQL (as sql/024 does for existing rows): ${N} in ${(ms(t0) / 1000).toFixed(1)} s`);
} finally {
  await genericPlans.end();
  await pool.end();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
