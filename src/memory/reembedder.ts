/**
 * The re-embed backfill: fills the building embedding version with every
 * stored message, then switches searches to it, and retires versions beyond
 * the kept ones. It runs as a maintenance job (src/maintenance/
 * reembed-job.ts), so one node at a time works on it across the cluster;
 * each run is a slice of at most `sliceMs`, after which the scheduler gives
 * the other jobs their turn and runs it again.
 *
 * Resumable: the cursor (the last message id embedded) is stored with the
 * version after every batch; a restart, or another node taking the lease,
 * continues from it. Throttled: a batch starts at most every `intervalMs`,
 * embeds at background priority, and waits while live indexing is behind
 * (more than a batch of due jobs), so new messages reach memory first.
 *
 * Messages queued after the version was registered reach it through the
 * dual-write queue (src/db/version-job-queue.ts); the switch waits until
 * that queue is empty too.
 */
import type pg from "pg";
import type { Logger } from "pino";
import {
  advanceCursor,
  backfillBatch,
  completeBackfill,
  countBackfillTotal,
  dropRetiredVectors,
  type EmbeddingVersion,
  goneSessions,
  liveBacklogDue,
  markDropped,
  retireBeyond,
  versionToBackfill,
} from "../db/embedding-versions.js";
import type { EmbeddingVersionSet } from "./embedding-version-set.js";
import { messagePoint } from "./indexer.js";
import { QdrantVectorStore, VectorStoreRequestError } from "./qdrant-vector-store.js";
import type { VectorStore } from "./types.js";

/** Longest the backfill waits for live indexing before it runs one batch anyway. */
const YIELD_MAX_MS = 2_000;

export interface ReembedOptions {
  batchSize: number;
  intervalMs: number;
  keepVersions: number;
  /** Longest run before handing back to the scheduler. */
  sliceMs: number;
  /** Rows per statement when a retired version's vectors are deleted from PostgreSQL. */
  dropBatchSize: number;
}

export interface ReembedSummary {
  version?: number;
  model?: string;
  embedded?: number;
  done?: number;
  total?: number | null;
  /** Messages embedded per second in this run. */
  rate?: number;
  outcome: "idle" | "progress" | "switched" | "completed" | "waiting";
  waitingFor?: string;
  retired?: number[];
}

export interface ReembedMetrics {
  onBatch(versionId: number, embedded: number): void;
}

export class Reembedder {
  constructor(
    private readonly pool: pg.Pool,
    private readonly versions: EmbeddingVersionSet,
    /** A store for a retired version's collection (to drop it). */
    private readonly storeFor: (v: EmbeddingVersion) => VectorStore,
    private readonly opts: ReembedOptions,
    private readonly log: Logger,
    private readonly metrics?: ReembedMetrics,
  ) {}

  /** One slice: backfill batches until done, stopped, or the slice is over; then retire. */
  async run(signal: AbortSignal): Promise<ReembedSummary> {
    const deadline = performance.now() + this.opts.sliceMs;
    const summary = await this.backfill(signal, deadline);
    const retired = await this.retire(signal, Math.max(deadline, performance.now() + 1_000));
    return retired.length > 0 ? { ...summary, retired } : summary;
  }

  private async backfill(signal: AbortSignal, sliceEnd: number): Promise<ReembedSummary> {
    let v = await versionToBackfill(this.pool);
    if (!v) return { outcome: "idle" };
    await this.versions.refresh().catch(() => undefined);
    const target = this.versions.handle(v.id);
    const base = { version: v.id, model: v.model };
    if (!target?.embedder) return { ...base, outcome: "waiting", waitingFor: `the embedder on this node: ${target?.status ?? "version not loaded"}` };
    const { embedder, store } = { embedder: target.embedder, store: target.store };
    if (v.backfillTotal === null) v = { ...v, backfillTotal: await countBackfillTotal(this.pool, v) };

    const started = performance.now();
    let embedded = 0;
    let lastLog = started;
    let yieldingSince = Number.POSITIVE_INFINITY;
    const progress = (): ReembedSummary => ({
      ...base,
      embedded,
      done: v!.backfillDone,
      total: v!.backfillTotal,
      rate: Math.round((embedded / Math.max(0.001, (performance.now() - started) / 1000)) * 10) / 10,
      outcome: "progress",
    });
    while (!signal.aborted && performance.now() < sliceEnd) {
      const batchStart = performance.now();
      if (v.backfillCursor >= v.backfillTarget) {
        const done = await completeBackfill(this.pool, v.id);
        if (done) {
          this.log.info({ ...progress(), outcome: done }, done === "switched" ? "re-embedding complete: searches now use the new version" : "backfill complete");
          await this.versions.refresh().catch(() => undefined);
          return { ...progress(), outcome: done };
        }
        // Another node switched it, or the version changed state meanwhile.
        return { ...progress(), outcome: "waiting", waitingFor: "the version changed meanwhile" };
      }
      if (yieldingSince === Number.POSITIVE_INFINITY) yieldingSince = performance.now();
      // Live indexing first; but never for so long that a busy cluster starves the backfill.
      if (performance.now() - yieldingSince < YIELD_MAX_MS && (await liveBacklogDue(this.pool, this.opts.batchSize)) >= this.opts.batchSize) {
        await pause(Math.max(50, this.opts.intervalMs), signal);
        continue;
      }
      yieldingSince = Number.POSITIVE_INFINITY;
      const batch = await backfillBatch(this.pool, v, this.opts.batchSize);
      if (batch.length > 0) {
        const vectors = await embedder.embed(batch.map((m) => m.content), { priority: "background" });
        await store.upsert(batch.map((m, i) => messagePoint(m, vectors[i]!)));
        // A session deleted while this batch was read: its points must not outlive it here.
        for (const sessionId of await goneSessions(this.pool, [...new Set(batch.map((m) => m.sessionId))])) await store.deleteBySession(sessionId);
      }
      const to: number = batch.length > 0 ? batch.at(-1)!.id : v.backfillTarget;
      if (!(await advanceCursor(this.pool, v.id, v.backfillCursor, to, batch.length))) {
        return { ...progress(), outcome: "waiting", waitingFor: "the version changed meanwhile" };
      }
      v = { ...v, backfillCursor: to, backfillDone: v.backfillDone + batch.length };
      embedded += batch.length;
      this.metrics?.onBatch(v.id, batch.length);
      if (performance.now() - lastLog >= 10_000) {
        lastLog = performance.now();
        this.log.info(progress(), "re-embedding progress");
      }
      const rest = this.opts.intervalMs - (performance.now() - batchStart);
      if (rest > 0) await pause(rest, signal);
    }
    return progress();
  }

  /** Retires versions beyond the kept ones and deletes their vectors (a Qdrant collection at once, PostgreSQL rows in batches). */
  private async retire(signal: AbortSignal, deadline: number): Promise<number[]> {
    const dropped: number[] = [];
    const over = () => signal.aborted || performance.now() >= deadline;
    for (const v of await retireBeyond(this.pool, this.opts.keepVersions)) {
      if (over()) break;
      const store = this.storeFor(v);
      try {
        if (store instanceof QdrantVectorStore) {
          try {
            await store.dropCollection();
          } catch (err) {
            if (!(err instanceof VectorStoreRequestError && err.status === 404)) throw err;
          }
        } else {
          // Short statements with a pause between: sends get the database in between (as retention does).
          let more = true;
          while (more && !over()) {
            more = (await dropRetiredVectors(this.pool, v.collection, this.opts.dropBatchSize)) > 0;
            if (more) await pause(20, signal);
          }
          if (more) break; // the next run goes on
        }
      } finally {
        await store.close();
      }
      await markDropped(this.pool, v.id);
      dropped.push(v.id);
      this.log.info({ version: v.id, model: v.model, collection: v.collection }, "retired embedding version: its vectors are deleted");
    }
    return dropped;
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener("abort", done);
  });
}
