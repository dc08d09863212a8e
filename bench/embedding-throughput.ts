/**
 * Embedding throughput on the full all-MiniLM-L6-v2-shaped test model
 * (test/support/test-models.ts: exact shape, seeded random weights), in
 * messages per second, for the same corpus of chat messages:
 *
 *   (a) direct transformers.js pipeline in the main thread, one call per
 *       indexer batch, awaited one after another (the naive indexer)
 *   (a1) the same, one call per message (a naive per-message embed)
 *   (b) the same pipeline, batched, at its best batch size and thread count
 *       (its own best case)
 *   (b2) the pool's batching policy (length groups) on that one pipeline: the
 *       difference between (b2) and (c) is what the worker threads add
 *   (c) TransformersEmbedder: worker pool + coalescing batches, fed the way the
 *       server feeds it (indexer batches and single-message queries, concurrently)
 *
 * Rounds interleave the modes so background load on the machine hits them alike;
 * each figure is the median over rounds. The last column is the longest the main
 * event loop was blocked during the run: what chat traffic would have waited.
 *
 *   npx tsx bench/embedding-throughput.ts [--dtype q8|fp32] [--rounds 3] [--batch 16] [--pool N]
 */
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { env, pipeline, type FeatureExtractionPipeline } from "@huggingface/transformers";
import { groupByLength } from "../src/memory/length-groups.js";
import { TransformersEmbedder, type TransformersDtype } from "../src/memory/transformers-embedder.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { makeCorpus } from "./corpus.js";

const { values: args } = parseArgs({
  options: {
    dtype: { type: "string", default: "q8" },
    rounds: { type: "string", default: "3" },
    batch: { type: "string", default: "16" },
    pool: { type: "string", default: String(os.availableParallelism()) },
    messages: { type: "string", default: "500" },
  },
});
const dtype = args.dtype as TransformersDtype;
const rounds = Number(args.rounds);
const indexerBatch = Number(args.batch);
const poolSize = Number(args.pool);
const cores = os.availableParallelism();

// ---------------------------------------------------------------------------
// Measurement

interface Result {
  msgsPerSec: number;
  maxLoopBlockMs: number;
}

async function measure(corpus: readonly string[], run: () => Promise<number>): Promise<Result> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const started = performance.now();
  const embedded = await run();
  const seconds = (performance.now() - started) / 1000;
  loop.disable();
  if (embedded !== corpus.length) throw new Error(`embedded ${embedded} of ${corpus.length} messages`);
  return { msgsPerSec: embedded / seconds, maxLoopBlockMs: loop.max / 1e6 };
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** One pipeline call per chunk, each awaited before the next, as a simple indexer would. */
async function sequentialPipeline(extractor: FeatureExtractionPipeline, corpus: readonly string[], size: number): Promise<number> {
  let n = 0;
  for (const chunk of chunks(corpus, size)) {
    const out = await extractor(chunk, { pooling: "mean", normalize: true });
    n += out.dims[0]!;
  }
  return n;
}

/** The pool's batching policy (batches split into length groups) on one pipeline in the main thread. */
async function groupedPipeline(extractor: FeatureExtractionPipeline, corpus: readonly string[], size: number): Promise<number> {
  let n = 0;
  for (const chunk of chunks(corpus, size)) {
    for (const group of groupByLength(chunk, { maxGroup: size })) {
      const out = await extractor(
        group.map((i) => chunk[i]!),
        { pooling: "mean", normalize: true },
      );
      n += out.dims[0]!;
    }
  }
  return n;
}

/**
 * How the server uses the embedder: the indexer submits batches (several nodes or
 * a backlog mean several at once) while single-message queries (assistant turns,
 * memory:search) arrive on their own.
 */
async function poolAsServer(embedder: TransformersEmbedder, corpus: readonly string[], size: number): Promise<number> {
  const queries = corpus.filter((_, i) => i % 10 === 0);
  const indexed = corpus.filter((_, i) => i % 10 !== 0);
  const results = await Promise.all([
    ...chunks(indexed, size).map((chunk) => embedder.embed(chunk)),
    ...queries.map((q) => embedder.embed([q])),
  ]);
  return results.reduce((n, r) => n + r.length, 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// ---------------------------------------------------------------------------

const modelDir = await ensureFullModel();
const corpus = makeCorpus(Number(args.messages), 20240611);

env.allowLocalModels = true;
env.allowRemoteModels = false;
env.localModelPath = path.dirname(modelDir);
const modelId = path.basename(modelDir);

const loadStarted = performance.now();
const mainDefault = await pipeline("feature-extraction", modelId, { dtype, device: "cpu" });
const mainThreads = await pipeline("feature-extraction", modelId, {
  dtype,
  device: "cpu",
  session_options: { intraOpNumThreads: cores, interOpNumThreads: 1 },
});
const pool = await TransformersEmbedder.create({ modelPath: modelDir, dtype, poolSize, maxBatchSize: 32, model: "bench" });
const loadMs = performance.now() - loadStarted;

const lengths = corpus.map((t) => (mainDefault.tokenizer.encode(t) as number[]).length);
const meanTokens = lengths.reduce((a, b) => a + b, 0) / lengths.length;

// onnxruntime plans memory per input shape; one pass over the corpus meets the shapes the runs will.
for (const size of [1, 8, 16, 32, 64]) {
  await sequentialPipeline(mainDefault, corpus, size);
  await sequentialPipeline(mainThreads, corpus, size);
}
await groupedPipeline(mainDefault, corpus, 32);
await poolAsServer(pool, corpus, indexerBatch);
await Promise.all(corpus.map((t) => pool.embed([t])));

type Mode = { key: string; label: string; run: () => Promise<number> };
const bestCaseSweep: Mode[] = [];
for (const [name, extractor] of [
  ["ORT default threads", mainDefault],
  [`intraOp ${cores} threads`, mainThreads],
] as const) {
  for (const size of [8, 16, 32, 64]) {
    bestCaseSweep.push({
      key: `b:${name}:${size}`,
      label: `(b) main thread, batch ${size}, ${name}`,
      run: () => sequentialPipeline(extractor, corpus, size),
    });
  }
}
const modes: Mode[] = [
  {
    key: "a",
    label: `(a) main thread, 1 call per indexer batch (${indexerBatch})`,
    run: () => sequentialPipeline(mainDefault, corpus, indexerBatch),
  },
  { key: "a1", label: "(a1) main thread, 1 call per message", run: () => sequentialPipeline(mainDefault, corpus, 1) },
  ...bestCaseSweep,
  {
    key: "b2",
    label: "(b2) main thread, batches of 32 split into length groups",
    run: () => groupedPipeline(mainDefault, corpus, 32),
  },
  {
    key: "c",
    label: `(c) worker pool ${poolSize}x1 thread, batches ≤32, as server`,
    run: () => poolAsServer(pool, corpus, indexerBatch),
  },
  {
    key: "c1",
    label: `(c1) worker pool, ${corpus.length} single-message calls at once`,
    run: async () => (await Promise.all(corpus.map((t) => pool.embed([t])))).length,
  },
];

const samples = new Map<string, Result[]>();
for (let round = 0; round < rounds; round++) {
  for (const mode of modes) {
    const result = await measure(corpus, mode.run);
    samples.set(mode.key, [...(samples.get(mode.key) ?? []), result]);
    process.stderr.write(`round ${round + 1}/${rounds} ${mode.label}: ${result.msgsPerSec.toFixed(0)} msg/s\n`);
  }
}

const summary = new Map(
  modes.map((m) => {
    const rs = samples.get(m.key)!;
    return [m.key, { label: m.label, msgsPerSec: median(rs.map((r) => r.msgsPerSec)), maxLoopBlockMs: Math.max(...rs.map((r) => r.maxLoopBlockMs)) }];
  }),
);
const bestB = bestCaseSweep.map((m) => ({ key: m.key, ...summary.get(m.key)! })).sort((x, y) => y.msgsPerSec - x.msgsPerSec)[0]!;
const a = summary.get("a")!.msgsPerSec;
const c = summary.get("c")!.msgsPerSec;

console.log(
  `\nEmbedding throughput — full MiniLM-L6 shape (6 layers, hidden 384, 12 heads, ffn 1536), dtype ${dtype}, ` +
    `${corpus.length} messages (mean ${meanTokens.toFixed(1)} tokens, max ${Math.max(...lengths)}), ` +
    `${cores} cores (${os.cpus()[0]?.model ?? "?"}), load avg ${os.loadavg()[0]!.toFixed(2)}, ` +
    `median of ${rounds} interleaved rounds, models loaded in ${(loadMs / 1000).toFixed(1)} s\n`,
);
const rows = modes.map((m) => {
  const s = summary.get(m.key)!;
  return { mode: s.label + (m.key === bestB.key ? "  ← best (b)" : ""), "msg/s": s.msgsPerSec.toFixed(0), "vs (a)": `${(s.msgsPerSec / a).toFixed(2)}x`, "max loop block ms": s.maxLoopBlockMs.toFixed(0) };
});
console.table(rows);
console.log(
  `\n(c) pool / (a) one call per batch: ${(c / a).toFixed(2)}x (target ≥ 1.8x)\n` +
    `(c) pool / (b) best batched pipeline: ${(c / bestB.msgsPerSec).toFixed(2)}x (target ≥ 0.9x)`,
);

await pool.close();
await mainDefault.dispose();
await mainThreads.dispose();
