/**
 * Recall@5, recall@10 and MRR of lexical, vector and hybrid retrieval through
 * the server's search path (memory:search on a running server), per question
 * category, on bench/data/memory-eval.json (made by bench/make-memory-eval.ts),
 * beside a plain BM25 (k1 1.2, b 0.75; lower-cased words, no stemming, no
 * stop words) over the same messages computed in the same run.
 *
 * Usage: npm run bench:retrieval [-- --embedders hash,minilm-shape] [--json out.json]
 *   hash          the feature-hashing embedder (EMBEDDER=hash)
 *   minilm-shape  transformers.js on a model of all-MiniLM-L6-v2's exact shape
 *                 with random weights (no real weights can be downloaded here)
 *   model:<dir>   transformers.js on a real model folder, e.g. all-MiniLM-L6-v2
 *   --server-root <dir>  run the server from another checkout (an earlier version)
 *
 * The messages are sent through message:send and then dated across the
 * twelve months before the current one (the server stamps now(); the dates
 * are set in PostgreSQL afterwards), so "in March" questions have an answer.
 */
import { readFile, writeFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { benchServerEnv, table } from "./lib.js";
import type { Category, MemoryEval } from "./make-memory-eval.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const embedders = arg("embedders", "hash,minilm-shape").split(",");
const serverRoot = arg("server-root", "");
const jsonOut = arg("json", "");
/** Also write each question's 30 best lexical and vector hits with scores (for studying fusion). */
const dumpOut = arg("dump", "");
const dump: Record<string, { q: string; category: string; keys: string[]; lexical: [string, number][]; vector: [string, number][] }[]> = {};
const data = JSON.parse(await readFile(fileURLToPath(new URL("./data/memory-eval.json", import.meta.url)), "utf8")) as MemoryEval;
const CATEGORIES: Category[] = ["single", "distractor", "paraphrase", "multihop", "temporal"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

// Simulated month 0 is twelve months before the current one.
const now = new Date();
const monthStart = (k: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 12 + k, 1));
const questions = data.questions.map((q) => ({
  ...q,
  q: q.q.replace(/\{month:(\d+)\}/g, (_, k: string) => MONTHS[monthStart(Number(k)).getUTCMonth()]!),
  keys: q.answers.map(([s, i]) => `${s}:${i}`),
}));

interface Scores { r5: number; r10: number; mrr: number }
type Row = { embedder: string; mode: string; byCategory: Record<string, Scores> };

/** Scores ranked keys ("session:index") against every question. */
function score(ranked: (q: (typeof questions)[number]) => string[]): Record<string, Scores> {
  const acc: Record<string, Scores & { n: number }> = {};
  for (const q of questions) {
    const got = ranked(q);
    const r5 = q.keys.filter((k) => got.slice(0, 5).includes(k)).length / q.keys.length;
    const r10 = q.keys.filter((k) => got.slice(0, 10).includes(k)).length / q.keys.length;
    const first = got.slice(0, 10).findIndex((k) => q.keys.includes(k));
    const rr = first < 0 ? 0 : 1 / (first + 1);
    for (const c of [q.category, "all"]) {
      const a = (acc[c] ??= { r5: 0, r10: 0, mrr: 0, n: 0 });
      a.r5 += r5;
      a.r10 += r10;
      a.mrr += rr;
      a.n++;
    }
  }
  return Object.fromEntries(Object.entries(acc).map(([c, a]) => [c, { r5: a.r5 / a.n, r10: a.r10 / a.n, mrr: a.mrr / a.n }]));
}

/** The reference: Okapi BM25 over every message, computed here. */
function bm25Reference(): Record<string, Scores> {
  const tokenize = (t: string) => t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const docs = data.sessions.flatMap((s) => s.messages.map((m, i) => ({ key: `${s.key}:${i}`, tf: new Map<string, number>(), len: 0, text: m })));
  const df = new Map<string, number>();
  for (const d of docs) {
    const words = tokenize(d.text);
    d.len = words.length;
    for (const w of words) d.tf.set(w, (d.tf.get(w) ?? 0) + 1);
    for (const w of d.tf.keys()) df.set(w, (df.get(w) ?? 0) + 1);
  }
  const n = docs.length;
  const avgdl = docs.reduce((s, d) => s + d.len, 0) / n;
  const k1 = 1.2;
  const b = 0.75;
  return score((q) => {
    const terms = [...new Set(tokenize(q.q))];
    return docs
      .map((d) => ({
        key: d.key,
        s: terms.reduce((s, t) => {
          const f = d.tf.get(t) ?? 0;
          if (f === 0) return s;
          const idf = Math.log(1 + (n - df.get(t)! + 0.5) / (df.get(t)! + 0.5));
          return s + (idf * f * (k1 + 1)) / (f + k1 * (1 - b + (b * d.len) / avgdl));
        }, 0),
      }))
      .filter((x) => x.s > 0)
      .sort((x, y) => y.s - x.s)
      .slice(0, 10)
      .map((x) => x.key);
  });
}

async function envFor(embedder: string): Promise<Record<string, string>> {
  if (embedder === "hash") return { EMBEDDER: "hash" };
  if (embedder === "minilm-shape") return { EMBEDDER: "transformers", EMBEDDING_MODEL_PATH: await ensureFullModel(), EMBEDDING_MODEL_ID: "memchat/minilm-shape-random", EMBEDDING_DTYPE: "fp32" };
  if (embedder.startsWith("model:")) return { EMBEDDER: "transformers", EMBEDDING_MODEL_PATH: embedder.slice(6) };
  throw new Error(`unknown embedder ${embedder}`);
}

const rows: Row[] = [{ embedder: "-", mode: "BM25 reference", byCategory: bm25Reference() }];
for (const embedder of embedders) {
  const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-eval-"));
  const pgPort = await freePort();
  const env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), RATE_LIMITS_ENABLED: "false", INDEXER_POLL_MS: "100", MEMORY_MIN_SIMILARITY: "-1", ...(await envFor(embedder)), ...benchServerEnv() };
  const server = await startServer(env, 180_000, [], undefined, ...(serverRoot ? [serverRoot] : []));
  const db = new pg.Pool({ connectionString: `postgres://postgres:${(await readFile(path.join(dataDir, "pg.password"), "utf8")).trim()}@127.0.0.1:${pgPort}/memchat`, max: 2 });
  db.on("error", () => undefined);
  try {
    const user = await register(server.url);
    const socket = await connect(server.url, user.token);
    const ids = new Map<string, number>();
    const keyOf = new Map<number, string>();
    const dated: { id: number; at: Date }[] = [];
    // Sessions are written side by side; each one's messages in order.
    await Promise.all(
      data.sessions.map(async (s) => {
        const { session } = await ok(socket, "session:create", { title: s.key, assistant: false });
        const start = monthStart(s.month).getTime() + (s.day - 1) * 86_400_000 + 9 * 3_600_000;
        for (const [i, content] of s.messages.entries()) {
          const { message } = await ok(socket, "message:send", { sessionId: session.id, clientMessageId: `${s.key}-${i}`, content });
          ids.set(`${s.key}:${i}`, message.id);
          keyOf.set(message.id, `${s.key}:${i}`);
          dated.push({ id: message.id, at: new Date(start + i * 120_000) });
        }
      }),
    );
    await db.query("UPDATE chat_messages m SET created_at = d.at FROM unnest($1::bigint[], $2::timestamptz[]) d(id, at) WHERE m.id = d.id", [
      dated.map((d) => d.id),
      dated.map((d) => d.at),
    ]);
    // Wait for the indexer: vector retrieval needs every message embedded.
    for (let i = 0; ; i++) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      if (/^chat_index_backlog 0$/m.test(metrics)) break;
      if (i > 6000) throw new Error("indexing did not finish");
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const mode of ["lexical", "vector", "hybrid"] as const) {
      const results = new Map<string, string[]>();
      for (const q of questions) {
        const { hits } = await ok(socket, "memory:search", { query: q.q, mode, limit: 10 });
        results.set(q.q, hits.map((h: { messageId: number }) => keyOf.get(h.messageId) ?? "?"));
      }
      rows.push({ embedder, mode, byCategory: score((q) => results.get(q.q)!) });
    }
    if (dumpOut) {
      dump[embedder] = [];
      for (const q of questions) {
        const legs = await Promise.all((["lexical", "vector"] as const).map((mode) => ok(socket, "memory:search", { query: q.q, mode, limit: 30 })));
        const pairs = (r: { hits: { messageId: number; score: number }[] }) => r.hits.map((h) => [keyOf.get(h.messageId) ?? "?", h.score] as [string, number]);
        dump[embedder].push({ q: q.q, category: q.category, keys: q.keys, lexical: pairs(legs[0]), vector: pairs(legs[1]) });
      }
    }
    socket.close();
  } finally {
    await server.stop();
    await db.end().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const nMessages = data.sessions.reduce((n, s) => n + s.messages.length, 0);
const counts = CATEGORIES.map((c) => `${c} ${questions.filter((q) => q.category === c).length}`).join(", ");
console.log(`\nretrieval evaluation: ${questions.length} questions (${counts}) over ${nMessages} messages in ${data.sessions.length} sessions of one user, searched across all of them${serverRoot ? ` (server: ${serverRoot})` : ""}\n`);
const cell = (s: Scores | undefined) => (s ? `${s.r5.toFixed(2)} / ${s.r10.toFixed(2)} / ${s.mrr.toFixed(2)}` : "-");
console.log("recall@5 / recall@10 / MRR@10\n");
console.log(table(["embedder", "mode", "all", ...CATEGORIES], rows.map((r) => [r.embedder, r.mode, cell(r.byCategory.all), ...CATEGORIES.map((c) => cell(r.byCategory[c]))])));
if (jsonOut) await writeFile(jsonOut, JSON.stringify(rows, null, 2));
if (dumpOut) await writeFile(dumpOut, JSON.stringify(dump));
