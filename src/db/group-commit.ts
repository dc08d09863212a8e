/**
 * Group commit: callers submit one item each; items that arrive while
 * `maxInFlight` batches are already running wait and leave together in the
 * next batch (at most `maxBatch` items). An idle queue sends an item at once,
 * so a lone caller pays no added latency; under load a batch carries
 * everything that queued behind the previous one, and the database sees one
 * round trip and one commit for many items.
 */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions {
  /** Most items in one batch. */
  maxBatch: number;
  /** Most batches running at once; further items queue. */
  maxInFlight: number;
  /** Told, as each batch leaves, how long (ms) each of its items waited for it. */
  onQueued?: (waitedMs: number) => void;
}

interface Waiting<T, R> {
  item: T;
  queuedAt: number;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Waiting<T, R>[] = [];
  private inFlight = 0;

  /**
   * `run` gets a batch and settles each item on its own: the result at index
   * i belongs to batch[i]. A rejection of `run` itself fails every item of
   * the batch with that error.
   */
  constructor(
    private readonly run: (batch: T[]) => Promise<Settled<R>[]>,
    private readonly opts: GroupCommitOptions,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, queuedAt: performance.now(), resolve, reject });
      if (this.inFlight < this.opts.maxInFlight) this.flush();
    });
  }

  /** Items waiting for a batch (not those in one). */
  get waiting(): number {
    return this.queue.length;
  }

  private flush(): void {
    const batch = this.queue.splice(0, this.opts.maxBatch);
    if (batch.length === 0) return;
    if (this.opts.onQueued) {
      const now = performance.now();
      for (const w of batch) this.opts.onQueued(now - w.queuedAt);
    }
    this.inFlight++;
    this.run(batch.map((w) => w.item))
      .then(
        (results) => {
          batch.forEach((w, i) => {
            const r = results[i];
            if (!r) w.reject(new Error("group commit: no result for an item"));
            else if (r.ok) w.resolve(r.value);
            else w.reject(r.error);
          });
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.flush();
      });
  }
}
