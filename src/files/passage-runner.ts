/**
 * Reads stored attachments for the assistant: claims queued extractions
 * (sql/021 queues every stored attachment), reads the file from the file
 * store, extracts its text off the event loop (extract/text-extractor.ts),
 * splits it into passages and writes them with their indexing jobs; the
 * indexer then embeds them beside messages. It also drains the queue of
 * attachments whose passages were deleted, removing their points from
 * every collection. Any node may run it: claims skip locked rows.
 */
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ExtractionJob, PgPassageStore } from "../db/pg-passage-store.js";
import type { AttachmentVectorPurge } from "../memory/vector-purge.js";
import { splitPassages, type PassageOptions } from "./extract/passages.js";
import type { TextExtractor } from "./extract/text-extractor.js";
import { ExtractionError, extractionKind } from "./extract/types.js";

/** What the runner needs of the file store (FileStore.get). */
export interface FileReader {
  get(key: string): Promise<Readable | null>;
}

export interface PassageRunnerOptions {
  pollMs: number;
  leaseMs: number;
  /** Files larger than this are not read (the upload limit). */
  maxBytes: number;
  passages: PassageOptions;
  /** Attempts before an extraction that keeps failing for a transient reason is given up. */
  maxAttempts: number;
}

export interface PassageRunnerMetrics {
  onExtracted(outcome: "done" | "skipped" | "failed", seconds: number): void;
}

export class PassageRunner {
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;

  constructor(
    private readonly d: {
      store: PgPassageStore;
      extractor: TextExtractor;
      files: FileReader;
      purge: AttachmentVectorPurge | undefined;
      /** Passages were written: wake the indexer. */
      onPassages: () => void;
      opts: PassageRunnerOptions;
      log: Logger;
      metrics?: PassageRunnerMetrics;
    },
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let worked = 0;
      try {
        worked = await this.runOnce();
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message }, "passage runner could not claim work");
      }
      if (worked === 0 && this.running) await this.sleep();
    }
  }

  /** One extraction and one purge batch; how many things it did (0: nothing was due). */
  async runOnce(): Promise<number> {
    let done = 0;
    const [job] = await this.d.store.claimExtractions(1, this.d.opts.leaseMs);
    if (job) {
      await this.extract(job);
      done++;
    }
    if (this.d.purge) {
      const ids = await this.d.store.vectorPurges(100);
      if (ids.length > 0) {
        try {
          await this.d.purge.deleteAttachments(ids);
          await this.d.store.vectorsPurged(ids);
          done += ids.length;
        } catch (err) {
          this.d.log.warn({ err: (err as Error).message }, "could not delete deleted attachments' vectors; will retry");
        }
      }
    }
    return done;
  }

  private async extract(job: ExtractionJob): Promise<void> {
    const started = performance.now();
    const outcome = (o: "done" | "skipped" | "failed") => this.d.metrics?.onExtracted(o, (performance.now() - started) / 1000);
    const kind = extractionKind(job.contentType);
    if (!kind) {
      await this.d.store.settle(job.attachmentId, "skipped", null);
      outcome("skipped");
      return;
    }
    let bytes: Uint8Array;
    try {
      const body = await this.d.files.get(job.storageKey);
      if (!body) {
        await this.d.store.settle(job.attachmentId, "failed", "the file is not in the file store");
        outcome("failed");
        return;
      }
      bytes = await readAll(body, this.d.opts.maxBytes);
    } catch (err) {
      if (err instanceof ExtractionError) {
        await this.d.store.settle(job.attachmentId, "failed", err.message);
        outcome("failed");
      } else await this.transient(job, `could not read the file: ${(err as Error).message}`);
      return;
    }
    try {
      const text = await this.d.extractor.extract(kind, bytes);
      const passages = splitPassages(text.sections, this.d.opts.passages);
      await this.d.store.savePassages(job.attachmentId, passages, { pageCount: text.pageCount, chars: text.chars, truncated: text.truncated });
      outcome("done");
      if (passages.length > 0) this.d.onPassages();
      this.d.log.info({ attachmentId: job.attachmentId, kind, passages: passages.length, pages: text.pageCount, truncated: text.truncated }, "attachment read");
    } catch (err) {
      if (err instanceof ExtractionError && err.reason !== "crashed") {
        await this.d.store.settle(job.attachmentId, "failed", err.message);
        outcome("failed");
        this.d.log.info({ attachmentId: job.attachmentId, reason: err.reason, err: err.message }, "attachment could not be read");
        return;
      }
      await this.transient(job, (err as Error).message);
    }
  }

  private async transient(job: ExtractionJob, message: string): Promise<void> {
    if (job.attempts >= this.d.opts.maxAttempts) {
      await this.d.store.settle(job.attachmentId, "failed", message);
      this.d.metrics?.onExtracted("failed", 0);
      return;
    }
    await this.d.store.retryLater(job.attachmentId, Math.min(1_000 * 2 ** job.attempts, 60_000), message);
  }

  private sleep(): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.d.opts.pollMs);
      timer.unref();
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = undefined;
        self.woken = false;
        resolve();
      }
      this.wakeUp = done;
    });
  }
}

/** The stream's bytes, refusing more than `max`. */
async function readAll(body: Readable, max: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > max) {
      body.destroy();
      throw new ExtractionError(`the file is larger than ${max} bytes`, "too_large");
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, n);
}
