/**
 * all-MiniLM-L6-v2 (or any BERT-like sentence model) through transformers.js,
 * run in a pool of worker threads so the event loop never waits on inference.
 *
 * Requests are queued per text and coalesced: whenever a worker is free it takes
 * up to `maxBatchSize` queued texts, from however many embed() calls they came,
 * and runs them as one padded batch (mean pooling, L2 normalisation).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { EmbedOptions, Embedder } from "./types.js";
import type { FromWorker, ToWorker, TransformersDtype, WorkerInit } from "./transformers-worker.js";

export type { TransformersDtype } from "./transformers-worker.js";

export const DEFAULT_EMBEDDING_MODEL_ID = "Xenova/all-MiniLM-L6-v2";

export interface TransformersEmbedderOptions {
  /**
   * Folder in the hub layout (config.json, tokenizer files, onnx/model_quantized.onnx
   * or onnx/model.onnx). When set, nothing is fetched from the network.
   */
  modelPath?: string;
  /** Hub model id, fetched when `modelPath` is not set. Default Xenova/all-MiniLM-L6-v2. */
  modelId?: string;
  /** Identity stored with every vector. Default: `modelId`. */
  model?: string;
  /** Weights to load; "q8" reads onnx/model_quantized.onnx, "fp32" onnx/model.onnx. Default "q8". */
  dtype?: TransformersDtype;
  /** Worker threads, each with its own copy of the model. Default: the number of cores. */
  poolSize?: number;
  /** Most texts in one inference call. Default 32. */
  maxBatchSize?: number;
  /** onnxruntime threads per worker. Default: cores / poolSize, at least 1. */
  threadsPerWorker?: number;
  /**
   * Nice value of the inference threads on Linux (default 10): embedding is
   * background work and yields the CPU to the event loop and the database.
   * 0 runs them at normal priority.
   */
  nice?: number;
  /** Vector width the model must produce; checked when the model loads. Default 384. */
  dimensions?: number;
  /** Where hub downloads are cached (transformers.js `env.cacheDir`). */
  cacheDir?: string;
  /** Allow hub downloads when `modelPath` is not set. Default true. */
  allowRemoteModels?: boolean;
  /** A worker that has not loaded the model by then counts as failed. Default 5 minutes (hub downloads). */
  loadTimeoutMs?: number;
  /** How long close() lets batches in flight finish. Default 10 s. */
  closeTimeoutMs?: number;
}

/** The model could not be loaded, or the embedder was closed; embedding is unavailable. */
export class EmbedderUnavailableError extends Error {
  override readonly name = "EmbedderUnavailableError";
}

interface Request {
  results: (Float32Array | undefined)[];
  remaining: number;
  settled: boolean;
  resolve(vectors: Float32Array[]): void;
  reject(err: Error): void;
}

interface Item {
  text: string;
  request: Request;
  index: number;
}

interface Batch {
  id: number;
  items: Item[];
}

interface PoolWorker {
  worker: Worker;
  ready: boolean;
  batch: Batch | undefined;
  exited: boolean;
  exitedPromise: Promise<void>;
}

export class TransformersEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;

  private readonly init: WorkerInit;
  private readonly poolSize: number;
  private readonly maxBatchSize: number;
  private readonly loadTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private readonly workers = new Set<PoolWorker>();
  private queue: Item[] = [];
  private nextBatchId = 1;
  private dispatchScheduled = false;
  private failure: EmbedderUnavailableError | undefined;
  private closing: Promise<void> | undefined;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private loadedOnce = false;
  private batchesRun = 0;
  private textsEmbedded = 0;
  private readonly idleWaiters: (() => void)[] = [];

  /** Starts the workers at once; await {@link ready} (or use {@link create}) to know the model loaded. */
  constructor(options: TransformersEmbedderOptions = {}) {
    const cores = os.availableParallelism();
    this.poolSize = positiveInt("poolSize", options.poolSize ?? cores);
    this.maxBatchSize = positiveInt("maxBatchSize", options.maxBatchSize ?? 32);
    const threads = positiveInt("threadsPerWorker", options.threadsPerWorker ?? Math.max(1, Math.floor(cores / this.poolSize)));
    this.dimensions = positiveInt("dimensions", options.dimensions ?? 384);
    this.loadTimeoutMs = options.loadTimeoutMs ?? 5 * 60_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    const modelId = options.modelId ?? DEFAULT_EMBEDDING_MODEL_ID;
    this.model = options.model ?? modelId;
    this.init = {
      modelId,
      localDir: options.modelPath === undefined ? undefined : path.resolve(options.modelPath),
      allowRemoteModels: options.allowRemoteModels ?? true,
      cacheDir: options.cacheDir,
      dtype: options.dtype ?? "q8",
      threads,
      nice: options.nice ?? 10,
    };
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody may be awaiting ready(); a load failure is reported through it and embed(), not as an unhandled rejection.
    this.readyPromise.catch(() => undefined);
    for (let i = 0; i < this.poolSize; i++) this.spawn();
  }

  /** Constructs the embedder and waits until every worker has loaded the model. */
  static async create(options: TransformersEmbedderOptions = {}): Promise<TransformersEmbedder> {
    const embedder = new TransformersEmbedder(options);
    try {
      await embedder.ready();
    } catch (err) {
      await embedder.close();
      throw err;
    }
    return embedder;
  }

  /** Resolves when every worker has loaded the model; rejects with the load error otherwise. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Counters for metrics and tests: how much is waiting, running, and done. */
  stats(): { workers: number; readyWorkers: number; queuedTexts: number; busyWorkers: number; batchesRun: number; textsEmbedded: number } {
    const workers = [...this.workers];
    return {
      workers: workers.length,
      readyWorkers: workers.filter((w) => w.ready).length,
      queuedTexts: this.queue.length,
      busyWorkers: this.busyCount(),
      batchesRun: this.batchesRun,
      textsEmbedded: this.textsEmbedded,
    };
  }

  /** Why embedding is unavailable, or undefined while it is (or may become) available. */
  get unavailableReason(): string | undefined {
    return this.failure?.message;
  }

  embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new EmbedderUnavailableError("embedder is closed"));
    if (texts.length === 0) return Promise.resolve([]);
    const bad = texts.findIndex((t) => typeof t !== "string");
    if (bad >= 0) return Promise.reject(new TypeError(`embed() text ${bad} is not a string`));
    return new Promise<Float32Array[]>((resolve, reject) => {
      const request: Request = {
        results: new Array<Float32Array | undefined>(texts.length),
        remaining: texts.length,
        settled: false,
        resolve,
        reject,
      };
      const items = texts.map((text, index) => ({ text, request, index }));
      // A query someone waits on jumps the indexing backlog: it only waits for the batches already running.
      if (options.priority === "interactive") this.queue.unshift(...items);
      else this.queue.push(...items);
      this.scheduleDispatch();
    });
  }

  /**
   * Lets batches in flight finish (up to closeTimeoutMs), rejects queued ones,
   * then stops every worker. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.rejectQueued(new EmbedderUnavailableError("embedder is closed"));
    this.rejectReady(new EmbedderUnavailableError("embedder was closed before the model loaded"));
    if (this.busyCount() > 0) {
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), delay(this.closeTimeoutMs)]);
    }
    await Promise.all([...this.workers].map((w) => this.stopWorker(w)));
  }

  private async stopWorker(w: PoolWorker): Promise<void> {
    if (w.exited) return;
    w.worker.ref();
    w.worker.postMessage({ type: "close" } satisfies ToWorker);
    // The worker releases its onnxruntime session and exits; terminate() covers one that hangs.
    const timedOut = await Promise.race([w.exitedPromise.then(() => false), delay(5_000).then(() => true)]);
    if (timedOut) await w.worker.terminate();
    await w.exitedPromise;
  }

  private spawn(): void {
    let worker: Worker;
    try {
      const entry = workerEntry();
      worker = new Worker(entry.target, { workerData: this.init, eval: entry.eval });
    } catch (err) {
      this.fail(err instanceof EmbedderUnavailableError ? err : new EmbedderUnavailableError(`cannot start an embedding worker: ${String(err)}`));
      return;
    }
    let markExited!: () => void;
    const w: PoolWorker = {
      worker,
      ready: false,
      batch: undefined,
      exited: false,
      exitedPromise: new Promise<void>((r) => (markExited = r)),
    };
    this.workers.add(w);
    const loadTimer = setTimeout(() => {
      this.fail(new EmbedderUnavailableError(`embedding model did not load within ${this.loadTimeoutMs} ms`));
    }, this.loadTimeoutMs);
    loadTimer.unref();

    worker.on("message", (message: FromWorker) => {
      switch (message.type) {
        case "ready":
          clearTimeout(loadTimer);
          if (message.dimensions !== this.dimensions) {
            this.fail(
              new EmbedderUnavailableError(
                `embedding model produces ${message.dimensions}-dimensional vectors, ${this.dimensions} expected`,
              ),
            );
            return;
          }
          w.ready = true;
          this.loadedOnce = true;
          this.updateRef(w);
          if ([...this.workers].every((x) => x.ready)) this.resolveReady();
          this.dispatch();
          return;
        case "load-error":
          clearTimeout(loadTimer);
          this.fail(new EmbedderUnavailableError(message.message));
          return;
        case "result":
          this.complete(w, message.id, message.data, message.dimensions);
          return;
        case "embed-error":
          this.failBatch(w, message.id, new Error(`embedding failed: ${message.message}`));
          return;
        case "closed":
          return;
      }
    });
    worker.on("error", (err) => {
      // An uncaught exception inside the worker; "exit" follows and does the cleanup.
      if (!w.ready) this.fail(new EmbedderUnavailableError(`embedding worker failed while loading: ${err.message}`));
      else if (w.batch) this.failBatch(w, w.batch.id, new Error(`embedding worker crashed: ${err.message}`));
    });
    worker.on("exit", (code) => {
      clearTimeout(loadTimer);
      w.exited = true;
      this.workers.delete(w);
      markExited();
      if (w.batch) this.failBatch(w, w.batch.id, new Error(`embedding worker exited (code ${code}) during a batch`));
      if (this.closing || this.failure) return;
      if (!w.ready) {
        this.fail(new EmbedderUnavailableError(`embedding worker exited (code ${code}) before the model loaded`));
      } else if (this.loadedOnce) {
        // The model is known to load; a replacement keeps the pool at full size.
        this.spawn();
      }
    });
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    // One turn of the loop lets calls made together (e.g. from several resolved promises) share a batch.
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.failure || this.queue.length === 0) return;
    const idle = [...this.workers].filter((w) => w.ready && !w.batch && !w.exited);
    while (this.queue.length > 0 && idle.length > 0) {
      // Spread what is queued over the idle workers rather than filling one and starving the rest.
      const size = Math.min(this.maxBatchSize, Math.ceil(this.queue.length / idle.length));
      const w = idle.shift()!;
      const items = this.queue.splice(0, size);
      const batch: Batch = { id: this.nextBatchId++, items };
      w.batch = batch;
      this.updateRef(w);
      w.worker.postMessage({ type: "embed", id: batch.id, texts: items.map((i) => i.text) } satisfies ToWorker);
    }
  }

  private complete(w: PoolWorker, batchId: number, data: Float32Array, dimensions: number): void {
    const batch = w.batch;
    if (!batch || batch.id !== batchId) return;
    w.batch = undefined;
    if (dimensions !== this.dimensions || data.length !== batch.items.length * dimensions) {
      this.rejectItems(batch.items, new Error(`embedding worker returned ${data.length} values for ${batch.items.length} texts`));
    } else {
      this.batchesRun++;
      this.textsEmbedded += batch.items.length;
      batch.items.forEach((item, i) => {
        const request = item.request;
        if (request.settled) return;
        request.results[item.index] = data.slice(i * dimensions, (i + 1) * dimensions);
        if (--request.remaining === 0) {
          request.settled = true;
          request.resolve(request.results as Float32Array[]);
        }
      });
    }
    this.afterBatch(w);
  }

  private failBatch(w: PoolWorker, batchId: number, err: Error): void {
    const batch = w.batch;
    if (!batch || batch.id !== batchId) return;
    w.batch = undefined;
    this.rejectItems(batch.items, err);
    this.afterBatch(w);
  }

  private afterBatch(w: PoolWorker): void {
    if (!this.closing) this.dispatch();
    if (!w.exited) this.updateRef(w);
    if (this.busyCount() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private rejectItems(items: readonly Item[], err: Error): void {
    const requests = new Set(items.map((i) => i.request));
    for (const request of requests) {
      if (request.settled) continue;
      request.settled = true;
      request.reject(err);
    }
    // The rest of a failed request's texts would be embedded for nobody.
    this.queue = this.queue.filter((i) => !requests.has(i.request));
  }

  private rejectQueued(err: Error): void {
    const items = this.queue;
    this.queue = [];
    this.rejectItems(items, err);
  }

  /** Makes embedding unavailable for good: the model cannot be (or is no longer) served. */
  private fail(err: EmbedderUnavailableError): void {
    if (this.failure || this.closing) return;
    this.failure = err;
    this.rejectReady(err);
    this.rejectQueued(err);
    for (const w of this.workers) {
      if (w.batch) this.failBatch(w, w.batch.id, err);
      void w.worker.terminate();
    }
  }

  private busyCount(): number {
    let n = 0;
    for (const w of this.workers) if (w.batch) n++;
    return n;
  }

  /** A worker holds the process open only while it loads or works: an idle pool must not keep it alive. */
  private updateRef(w: PoolWorker): void {
    if (w.ready && !w.batch) w.worker.unref();
    else w.worker.ref();
  }
}

/**
 * The worker entry sits next to this module: transformers-worker.js when compiled
 * to dist/, started as is; transformers-worker.ts when this file runs as TypeScript
 * (tsx, vitest). tsx's `--import` hook only registers on the main thread, so a .ts
 * worker starts from a small bootstrap that registers tsx's ESM hooks inside the
 * worker and then imports the entry. The bootstrap loads transformers.js first:
 * through tsx's hooks its large bundle takes several times longer to load, and the
 * worker's own import of it then comes from the module cache.
 */
let cachedEntry: { target: URL | string; eval: boolean } | undefined;
function workerEntry(): { target: URL | string; eval: boolean } {
  cachedEntry ??= resolveWorkerEntry();
  return cachedEntry;
}

function resolveWorkerEntry(): { target: URL | string; eval: boolean } {
  const here = import.meta.url;
  const tsExt = /\.([cm]?ts)$/.exec(new URL(here).pathname)?.[1];
  if (!tsExt) return { target: new URL("./transformers-worker.js", here), eval: false };
  const entry = new URL(`./transformers-worker.${tsExt}`, here).href;
  const tsx = esmEntryUrl("tsx", "./esm/api", here);
  const transformers = esmEntryUrl("@huggingface/transformers", ".", here);
  const bootstrap =
    `import(${JSON.stringify(transformers)})` +
    `.then(() => import(${JSON.stringify(tsx)}))` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return { target: bootstrap, eval: true };
}

/**
 * The file an ESM `import` of `pkg` + `subpath` loads in Node, read from the
 * package's exports map (require.resolve would pick the CommonJS build).
 */
export function esmEntryUrl(pkg: string, subpath: string, from: string): string {
  let resolved: string;
  try {
    resolved = createRequire(from).resolve(pkg);
  } catch {
    throw new EmbedderUnavailableError(`cannot start embedding workers from TypeScript sources: package ${pkg} is not installed`);
  }
  let root = path.dirname(resolved);
  let manifest: { name?: string; exports?: unknown } | undefined;
  for (;;) {
    try {
      manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { name?: string; exports?: unknown };
      if (manifest.name === pkg) break;
    } catch {
      // No package.json at this level; keep climbing.
    }
    const parent = path.dirname(root);
    if (parent === root) throw new EmbedderUnavailableError(`cannot find the package.json of ${pkg} above ${resolved}`);
    root = parent;
  }
  const exportsField = manifest.exports;
  const subpaths =
    exportsField && typeof exportsField === "object" && Object.keys(exportsField).some((k) => k.startsWith("."))
      ? (exportsField as Record<string, unknown>)
      : { ".": exportsField };
  const target = pickCondition(subpaths[subpath], ["node", "import", "default"]);
  if (!target) throw new EmbedderUnavailableError(`package ${pkg} exports no ESM entry for ${subpath}`);
  return pathToFileURL(path.join(root, target)).href;
}

function pickCondition(target: unknown, conditions: readonly string[]): string | undefined {
  if (typeof target === "string") return target;
  if (!target || typeof target !== "object" || Array.isArray(target)) return undefined;
  // Node takes the first key, in the map's own order, whose condition applies.
  for (const [key, value] of Object.entries(target)) {
    if (!conditions.includes(key)) continue;
    const picked = pickCondition(value, conditions);
    if (picked) return picked;
  }
  return undefined;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
