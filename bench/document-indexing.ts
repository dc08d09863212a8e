/**
 * Reading attachments, in one run on this machine:
 *   1. a generated 200-page PDF (about 40 lines of prose a page) through the
 *      whole path: extraction in the worker thread, splitting into passages,
 *      storing them, and the indexer embedding them into the PostgreSQL
 *      vector store; with the hash embedder and with the MiniLM-shaped test
 *      model (random weights, real compute, q8);
 *   2. what passages add to a turn before its first token: the reads of a
 *      turn (ContextBuilder.gather: window, memory search, passage search)
 *      in a session of 2,000 indexed messages, without documents and with
 *      that PDF's passages beside them.
 * Usage: npm run bench:documents [-- --pages 200 --questions 40]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import "../src/db/pool.js";
import { ContextBuilder } from "../src/chat/context-builder.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { PgIndexQueue, PgPassageIndexQueue } from "../src/db/index-queue.js";
import { PgMemoryQueries } from "../src/db/memory-queries.js";
import { runMigrations } from "../src/db/migrate.js";
import { PgPassageQueries } from "../src/db/passage-queries.js";
import { PgPassageStore } from "../src/db/pg-passage-store.js";
import { splitPassages } from "../src/files/extract/passages.js";
import { TextExtractor } from "../src/files/extract/text-extractor.js";
import { HashEmbedder } from "../src/memory/hash-embedder.js";
import { Indexer } from "../src/memory/indexer.js";
import { MemoryService } from "../src/memory/memory-service.js";
import { PassageSearch } from "../src/memory/passage-search.js";
import { PgVectorStore } from "../src/memory/pg-vector-store.js";
import { TransformersEmbedder } from "../src/memory/transformers-embedder.js";
import type { Embedder } from "../src/memory/types.js";
import { silentLogger } from "../test/support/logger.js";
import { fillerPages, writePdf } from "../test/support/pdf-writer.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { makeCorpus } from "./corpus.js";
import { percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAGES = arg("pages", 200);
const QUESTIONS = arg("questions", 40);
const MESSAGES = 2000;

const dir = await mkdtemp(path.join(tmpdir(), "memchat-bench-docs-"));
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
const pool = new pg.Pool({ connectionString: await postgres.ensureDatabase("bench"), max: 10 });
pool.on("error", () => undefined);
const extractor = new TextExtractor({ workers: 1, timeoutMs: 120_000, maxHeapMb: 512, limits: { maxChars: 5_000_000, maxPages: 1000, maxDepth: 64 } });
const model = new TransformersEmbedder({ modelPath: await ensureFullModel(), model: "minilm-shape", maxBatchSize: 32 });
const ms = (t0: number) => performance.now() - t0;

try {
  await runMigrations(pool, silentLogger);
  await model.ready();
  const { rows: u } = await pool.query("INSERT INTO users (username, password_hash) VALUES ('bench', 'x') RETURNING id");
  const userId = u[0].id as string;

  const pdf = writePdf(fillerPages(PAGES, 40, (p) => (p === 137 ? "The harbour master keeps the spare keys in locker 42." : undefined)));
  await extractor.extract("text", new TextEncoder().encode("warm")); // the worker thread, started once per node
  await extractor.extract("pdf", writePdf([["warm"]])); // PDF.js, loaded once per worker

  /** One PDF through extraction, splitting, storing and indexing into `collection`; times in ms. */
  async function ingest(embedder: Embedder, collection: string) {
    const { rows: s } = await pool.query("INSERT INTO chat_sessions (owner_id, title) VALUES ($1, $2) RETURNING id", [userId, collection]);
    const sessionId = s[0].id as string;
    await pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [sessionId, userId]);
    const { rows: a } = await pool.query(
      "INSERT INTO attachments (session_id, uploader_id, name, storage_key, state, content_type, size_bytes, sha256) VALUES ($1, $2, 'manual.pdf', $3, 'pending', 'application/pdf', $4, 'x') RETURNING id",
      [sessionId, userId, `bench/${collection}`, pdf.length],
    );
    const attachmentId = a[0].id as string;
    let t0 = performance.now();
    const text = await extractor.extract("pdf", pdf);
    const extractMs = ms(t0);
    t0 = performance.now();
    const passages = splitPassages(text.sections, { size: 800, overlap: 160 });
    const splitMs = ms(t0);
    t0 = performance.now();
    await new PgPassageStore(pool).savePassages(attachmentId, passages, { pageCount: text.pageCount, chars: text.chars, truncated: text.truncated });
    const storeMs = ms(t0);
    const passageQueue = new PgPassageIndexQueue(pool);
    const indexer = new Indexer(new PgIndexQueue(pool), embedder, new PgVectorStore(pool, collection, embedder.dimensions), { batchSize: 64, pollMs: 50, leaseMs: 60_000, baseBackoffMs: 100, maxBackoffMs: 1000 }, silentLogger, undefined, passageQueue);
    t0 = performance.now();
    while ((await indexer.drainOnce()) > 0);
    const indexMs = ms(t0);
    return { sessionId, text, passages: passages.length, extractMs, splitMs, storeMs, indexMs };
  }

  const hash = new HashEmbedder({ dimensions: 384 });
  const rows: (string | number)[][] = [];
  let modelRun: Awaited<ReturnType<typeof ingest>> | undefined;
  for (const [name, embedder, collection] of [["hash", hash, "bench_docs_hash"], ["MiniLM-shaped (q8)", model, "bench_docs_model"]] as const) {
    const r = await ingest(embedder, collection);
    if (embedder === model) modelRun = r;
    const total = r.extractMs + r.splitMs + r.storeMs + r.indexMs;
    rows.push([name, r.text.sections.length, r.text.chars, r.passages, Math.round(r.extractMs), Math.round(r.splitMs), Math.round(r.storeMs), Math.round(r.indexMs), Math.round(total), (r.text.sections.length / (total / 1000)).toFixed(1), (r.passages / (r.indexMs / 1000)).toFixed(0)]);
  }
  console.log(`\nreading a generated ${PAGES}-page PDF (${(pdf.length / 1024).toFixed(0)} KiB), passages of 800 characters with 160 overlap\n`);
  console.log(table(["embedder", "pages", "characters", "passages", "extract ms", "split ms", "store ms", "embed+index ms", "total ms", "pages/s", "passages/s indexed"], rows));

  // 2. the reads of a turn, without and with the document's passages in the session
  const sessionId = modelRun!.sessionId;
  const corpus = makeCorpus(MESSAGES, 11);
  await pool.query(
    `WITH ins AS (
       INSERT INTO chat_messages (session_id, seq, user_id, role, content)
       SELECT $1, g, $2, 'user', c FROM unnest($3::text[]) WITH ORDINALITY AS u(c, g) RETURNING id
     )
     INSERT INTO message_index_jobs (message_id) SELECT id FROM ins`,
    [sessionId, userId, corpus],
  );
  await pool.query("UPDATE chat_sessions SET last_seq = $2 WHERE id = $1", [sessionId, MESSAGES]);
  const store = new PgVectorStore(pool, "bench_docs_model", 384);
  const indexer = new Indexer(new PgIndexQueue(pool), model, store, { batchSize: 64, pollMs: 50, leaseMs: 60_000, baseBackoffMs: 100, maxBackoffMs: 1000 }, silentLogger);
  while ((await indexer.drainOnce()) > 0);
  const memoryQueries = new PgMemoryQueries(pool);
  const memory = new MemoryService({ queries: memoryQueries, vectors: () => ({ embedder: model, store }), purge: undefined, defaultMode: "hybrid", defaultMinSimilarity: 0.3, log: silentLogger });
  const passages = new PassageSearch({ passages: new PgPassageQueries(pool), memory: memoryQueries, vectors: () => ({ embedder: model, store }), defaultMinSimilarity: 0.3, log: silentLogger });
  const config = { id: 1, retrievalMode: "hybrid" as const, systemPrompt: "You are helpful.", model: null, temperature: 0.7, maxTokens: 256, topK: 8, similarityThreshold: 0.3, historyWindow: 12, contextTokenBudget: 2000, crossSession: true };
  const questions = makeCorpus(QUESTIONS, 99).map((q, i) => (i % 4 === 0 ? "where are the spare keys kept by the harbour master?" : q));
  const turnRows: (string | number)[][] = [];
  for (const [name, builder] of [
    ["messages only", new ContextBuilder(memory, async () => "bench")],
    ["messages + 200-page PDF passages", new ContextBuilder(memory, async () => "bench", { search: passages, topK: 4 })],
  ] as const) {
    const window = () => pool.query("SELECT 1").then(() => []);
    for (const q of questions.slice(0, 5)) await builder.gather({ userId, sessionId, query: q, config, window }); // warm
    const times: number[] = [];
    let usedPassages = 0;
    for (const q of questions) {
      const t0 = performance.now();
      const g = await builder.gather({ userId, sessionId, query: q, config, window });
      times.push(ms(t0));
      usedPassages += g.passages?.length ?? 0;
    }
    times.sort((a, b) => a - b);
    turnRows.push([name, questions.length, percentile(times, 50).toFixed(1), percentile(times, 95).toFixed(1), (usedPassages / questions.length).toFixed(1)]);
  }
  console.log(`\nreads of a turn before its first token (one session, ${MESSAGES} indexed messages, MiniLM-shaped model, hybrid)\n`);
  console.log(table(["retrieval", "turns", "p50 ms", "p95 ms", "passages found per turn"], turnRows));
} finally {
  await extractor.close();
  await model.close();
  await pool.end();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
