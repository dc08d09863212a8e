/**
 * Text extraction off the event loop: a few worker threads (extract-worker.ts),
 * each with a heap limit, read files one at a time; a file not done within
 * the timeout has its worker terminated and fails with reason "timeout", so
 * a hostile PDF costs at most one worker for `timeoutMs`. Jobs beyond the
 * workers wait in order. Idle workers do not keep the process alive.
 */
import { Worker } from "node:worker_threads";
import { esmEntryUrl } from "../../memory/transformers-embedder.js";
import type { ExtractJob, ExtractReply } from "./extract-worker.js";
import { ExtractionError, type ExtractedText, type ExtractKind, type ExtractLimits } from "./types.js";

export interface TextExtractorOptions {
  /** Worker threads (files read at once). Default 1. */
  workers?: number;
  /** Longest one file may take. */
  timeoutMs: number;
  /** Heap of each worker, MiB. */
  maxHeapMb: number;
  limits: ExtractLimits;
}

interface Slot {
  worker: Worker | undefined;
  busy: boolean;
}

interface Pending {
  kind: ExtractKind;
  bytes: Uint8Array;
  resolve: (r: ExtractedText) => void;
  reject: (e: Error) => void;
}

export class TextExtractor {
  private readonly slots: Slot[];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: TextExtractorOptions) {
    this.slots = Array.from({ length: Math.max(1, opts.workers ?? 1) }, () => ({ worker: undefined, busy: false }));
  }

  /** The file's text; rejects with ExtractionError when it cannot be read within the bounds. */
  extract(kind: ExtractKind, bytes: Uint8Array): Promise<ExtractedText> {
    if (this.closed) return Promise.reject(new ExtractionError("the extractor is closed", "crashed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, bytes, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new ExtractionError("the extractor is closed", "crashed"));
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const job = this.queue.shift();
      if (!job) return;
      this.run(slot, job);
    }
  }

  private run(slot: Slot, job: Pending): void {
    slot.busy = true;
    const worker = (slot.worker ??= this.spawn());
    worker.ref();
    const id = this.nextId++;
    let settled = false;
    const finish = (err: Error | null, result?: ExtractedText) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("exit", onExit);
      worker.off("error", onError);
      if (err) job.reject(err);
      else job.resolve(result!);
      slot.busy = false;
      if (slot.worker === worker) worker.unref();
      this.pump();
    };
    const kill = (err: ExtractionError) => {
      if (slot.worker === worker) slot.worker = undefined;
      void worker.terminate();
      finish(err);
    };
    const onMessage = (m: ExtractReply) => {
      if (m.id !== id) return;
      if (m.ok) finish(null, m.result);
      else finish(new ExtractionError(m.message, "unreadable"));
    };
    const onError = (err: Error) => {
      const oom = (err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY";
      kill(new ExtractionError(oom ? `reading the file needed more than ${this.opts.maxHeapMb} MiB` : `the extraction worker failed: ${err.message}`, oom ? "too_large" : "crashed"));
    };
    const onExit = () => kill(new ExtractionError("the extraction worker exited", "crashed"));
    const timer = setTimeout(() => kill(new ExtractionError(`reading the file took longer than ${this.opts.timeoutMs} ms`, "timeout")), this.opts.timeoutMs);
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
    // The bytes are copied once into the worker; the caller keeps its buffer.
    worker.postMessage({ id, kind: job.kind, bytes: job.bytes, limits: this.opts.limits } satisfies ExtractJob);
  }

  private spawn(): Worker {
    const entry = workerEntry();
    const worker = new Worker(entry.target, {
      eval: entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: this.opts.maxHeapMb, maxYoungGenerationSizeMb: Math.min(64, this.opts.maxHeapMb) },
    });
    worker.unref();
    // Errors outside a job (none expected) must not crash the process.
    worker.on("error", () => undefined);
    return worker;
  }
}

/** extract-worker.js beside this file when compiled; from TypeScript sources, a bootstrap that registers tsx in the worker first. */
let cachedEntry: { target: URL | string; eval: boolean } | undefined;
function workerEntry(): { target: URL | string; eval: boolean } {
  if (cachedEntry) return cachedEntry;
  const here = import.meta.url;
  const tsExt = /\.([cm]?ts)$/.exec(new URL(here).pathname)?.[1];
  if (!tsExt) return (cachedEntry = { target: new URL("./extract-worker.js", here), eval: false });
  const entry = new URL(`./extract-worker.${tsExt}`, here).href;
  const tsx = esmEntryUrl("tsx", "./esm/api", here);
  return (cachedEntry = {
    target: `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`,
    eval: true,
  });
}
