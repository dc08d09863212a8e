/**
 * Drains the indexing queue: claim a batch, embed it, upsert the vectors,
 * mark the rows. A running loop marks a batch in the statement that claims
 * its next one (at most a linger later; stop() marks what is left), so a
 * batch costs PostgreSQL two statements, the claim and the upsert. Any failure leaves the rows unindexed with a backoff, so
 * messages wait while the embedder or the vector store is down and are
 * indexed when it returns. Point ids derive from message ids: a retried batch
 * overwrites its points instead of duplicating them.
 */
import type { Logger } from "pino";
import type { IndexJobs, PgPassageIndexQueue, QueuedMessage, QueuedPassage } from "../db/index-queue.js";
import { pointIdForMessage, pointIdForPassage } from "./point-id.js";
import type { Embedder, PassagePoint, VectorPoint, VectorStore } from "./types.js";

export interface IndexerOptions {
  batchSize: number;
  /** Poll period when nothing woke us (other nodes' rows, backoffs coming due). */
  pollMs: number;
  /** How long a claimed batch is ours before another node may take it. */
  leaseMs: number;
  /**
   * After a wake-up or a batch that was not full, wait this long before
   * claiming (default 0). Messages arriving meanwhile join the batch, so a
   * steady trickle is indexed in a few batches instead of one claim, upsert
   * and mark per message.
   */
  lingerMs?: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  /**
   * Batches in flight at once (default 2): while one batch is in the database
   * (claim, upsert, mark), the next one keeps the embedder busy.
   */
  concurrency?: number;
}

export interface IndexerStats {
  indexed: number;
  failedBatches: number;
  lastError: string | null;
}

export interface IndexerMetrics {
  onIndexed(count: number, seconds: number): void;
  onFailed(count: number): void;
  /** Texts indexed with the vector a search had already embedded (QueryVectorReuse). */
  onReused?(count: number): void;
}

export class Indexer {
  readonly stats: IndexerStats = { indexed: 0, failedBatches: 0, lastError: null };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly sleepers = new Set<() => void>();
  private readonly lingering = new Set<() => void>();
  private woken = false;

  constructor(
    private readonly queue: IndexJobs,
    private readonly embedder: Embedder,
    private readonly store: VectorStore,
    private readonly opts: IndexerOptions,
    private readonly log: Logger,
    private readonly metrics?: IndexerMetrics,
    /** Attachment passages: they top up batches that messages do not fill. */
    private readonly passages?: PgPassageIndexQueue,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: Math.max(1, this.opts.concurrency ?? 2) }, () => this.run());
  }

  /** Something was queued: look now instead of at the next poll. */
  wake(): void {
    if (this.sleepers.size === 0) this.woken = true;
    for (const s of [...this.sleepers]) s();
  }

  /** Finishes the batches in hand, then stops. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    for (const l of [...this.lingering]) l();
    await Promise.all(this.loops);
  }

  private async run(): Promise<void> {
    // Messages upserted but not yet marked: they go with this loop's next claim.
    let done: readonly number[] | undefined;
    while (this.running) {
      let claimed = 0;
      try {
        ({ claimed, done } = await this.batch(done));
      } catch (err) {
        // The claim itself failed (database down): wait for the next poll; the marks in hand go with the next claim.
        this.log.warn({ err: (err as Error).message }, "indexer could not claim work");
      }
      if (claimed >= this.opts.batchSize || !this.running) continue; // a backlog: no waiting
      if (claimed === 0) await this.sleep(this.opts.pollMs);
      await this.linger();
    }
    if (done) await this.mark(done);
  }

  /** Processes one batch and marks it; returns how many messages and passages it claimed (0: nothing was due). */
  async drainOnce(): Promise<number> {
    const { claimed, done } = await this.batch(undefined);
    if (done) await this.mark(done);
    return claimed;
  }

  /** Marks `previous` and claims, embeds and upserts one batch; returns its messages' marks, not yet written. */
  private async batch(previous: readonly number[] | undefined): Promise<{ claimed: number; done: readonly number[] | undefined }> {
    const { messages: batch, passages } = await this.queue.claimBatch({
      limit: this.opts.batchSize,
      leaseMs: this.opts.leaseMs,
      done: previous,
      withPassages: this.passages !== undefined,
    });
    const claimed = batch.length + passages.length;
    if (claimed === 0) return { claimed, done: undefined };
    const started = performance.now();
    let done: readonly number[] | undefined;
    try {
      // One embedding call for both kinds: the batch fills the embedder as one.
      const vectors = await this.embedder.embed([...batch.map((m) => m.content), ...passages.map((p) => p.content)]);
      const points = batch.map((m, i) => messagePoint(m, vectors[i]!));
      const passagePoints = passages.map((p, i) => toPassagePoint(p, vectors[batch.length + i]!));
      if (points.length > 0) await this.store.upsert(points);
      if (passagePoints.length > 0) await this.store.upsertPassages(passagePoints);
      if (points.length > 0) done = batch.map((m) => m.id);
      await this.passages?.markIndexed(
        passagePoints.map((p) => ({ id: p.payload.passageId, vectorId: p.id })),
        this.embedder.model,
      );
      this.stats.indexed += claimed;
      this.metrics?.onIndexed(claimed, (performance.now() - started) / 1000);
      if (this.stats.lastError) this.log.info({ indexed: claimed }, "indexing recovered");
      this.stats.lastError = null;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.stats.failedBatches++;
      if (this.stats.lastError !== message) this.log.warn({ err: message, batch: claimed }, "indexing failed; messages wait and will be retried");
      this.stats.lastError = message;
      this.metrics?.onFailed(claimed);
      const recordFailure = (e: unknown) => this.log.warn({ err: (e as Error).message }, "could not record indexing failure; the lease will expire");
      // Upserted messages of a batch whose passages then failed are still marked (done stays set).
      await this.queue.markFailed(batch.filter((m) => !done).map((m) => ({ id: m.id, retryAfterMs: this.backoff(m.attempts) })), message).catch(recordFailure);
      await this.passages?.markFailed(passages.map((p) => ({ id: p.id, retryAfterMs: this.backoff(p.attempts) })), message).catch(recordFailure);
    }
    return { claimed, done };
  }

  /** Writes marks on their own (a stopping loop, drainOnce); a failure leaves the rows to be indexed again when their lease ends. */
  private async mark(done: readonly number[]): Promise<void> {
    await this.queue.markIndexed(done).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "could not mark indexed messages; they will be indexed again"));
  }

  private backoff(attempts: number): number {
    return Math.min(this.opts.baseBackoffMs * 2 ** Math.max(0, attempts - 1), this.opts.maxBackoffMs);
  }

  /** A pause that wake-ups do not cut short (stop does). */
  private linger(): Promise<void> {
    const ms = this.opts.lingerMs ?? 0;
    if (ms <= 0 || !this.running) return Promise.resolve();
    return pause(ms, this.lingering);
  }

  /** A pause that a wake-up (or stop) ends early. */
  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return pause(ms, this.sleepers);
  }
}

/** Resolves after `ms`, or when its entry in `wakers` is called. */
function pause(ms: number, wakers: Set<() => void>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wakers.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    wakers.add(done);
  });
}

/** A message's point: the indexer and the re-embedding backfill write the same one. */
export function messagePoint(m: Pick<QueuedMessage, "id" | "sessionId" | "ownerId" | "authorId" | "role" | "content" | "createdAt">, vector: Float32Array): VectorPoint {
  return {
    id: pointIdForMessage(m.id),
    vector,
    payload: {
      sessionId: m.sessionId,
      userId: m.ownerId,
      authorId: m.authorId,
      messageId: m.id,
      role: m.role,
      content: m.content,
      timestamp: m.createdAt.toISOString(),
      timestampUnix: Math.floor(m.createdAt.getTime() / 1000),
    },
  };
}

function toPassagePoint(p: QueuedPassage, vector: Float32Array): PassagePoint {
  return {
    id: pointIdForPassage(p.id),
    vector,
    payload: {
      sessionId: p.sessionId,
      userId: p.ownerId,
      authorId: p.authorId,
      passageId: p.id,
      attachmentId: p.attachmentId,
      content: p.content,
      timestamp: p.createdAt.toISOString(),
      timestampUnix: Math.floor(p.createdAt.getTime() / 1000),
    },
  };
}
