/**
 * One scheduler for all periodic work. Each job runs on exactly one node at
 * a time across the cluster, once per interval: a node runs a job only after
 * claiming its lease row (src/db/pg-maintenance-store.ts) while the job is
 * due, renews the lease while the job runs, and on release records the run
 * (when, how long, outcome) and when it is next due. A node that dies
 * mid-run leaves a lease that expires, and the job runs elsewhere.
 *
 * Time comes from an injectable clock: the lease and due times are the
 * clock's, so a test moves time instead of waiting for it.
 */
import type { Logger } from "pino";
import type { JobStatus, PgMaintenanceStore } from "../db/pg-maintenance-store.js";

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface JobContext {
  /** The clock's time when the run started. */
  now: Date;
  /** Aborted when the scheduler stops: a job ends at its next batch boundary. */
  signal: AbortSignal;
  log: Logger;
}

export interface MaintenanceJob {
  name: string;
  intervalMs: number;
  /** Returns a summary for the logs and the lease row. */
  run(ctx: JobContext): Promise<unknown>;
  /**
   * When the job is next due after a run with this summary, instead of
   * `intervalMs` (a job working through a backlog in slices asks for 0, so
   * the scheduler runs it again as soon as the other due jobs had their turn).
   */
  intervalAfter?(summary: unknown): number;
  /** A run with this summary did nothing worth an info line (logged at debug). */
  quiet?(summary: unknown): boolean;
}

export interface RunRecord {
  job: string;
  outcome: "ok" | "error";
  durationMs: number;
  summary?: unknown;
  error?: string;
}

export interface SchedulerOptions {
  nodeId: string;
  leaseMs: number;
  /** How often the scheduler looks for due jobs; defaults to min(interval)/4, at most 15 s. */
  tickMs?: number;
  clock?: Clock;
  onRun?: (r: RunRecord) => void;
}

export class MaintenanceScheduler {
  private readonly jobs: MaintenanceJob[] = [];
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly store: PgMaintenanceStore,
    private readonly opts: SchedulerOptions,
    private readonly log: Logger,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  register(job: MaintenanceJob): this {
    if (this.jobs.some((j) => j.name === job.name)) throw new Error(`maintenance job ${job.name} registered twice`);
    this.jobs.push(job);
    return this;
  }

  start(): void {
    if (this.timer || this.jobs.length === 0) return;
    const tick = this.opts.tickMs ?? Math.min(15_000, Math.max(250, Math.min(...this.jobs.map((j) => j.intervalMs)) / 4));
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
    void this.tick();
  }

  /**
   * Runs every job that is due and whose lease this node gets, one after
   * another. Overlapping calls share the run in progress.
   */
  tick(): Promise<void> {
    this.running ??= this.runDue().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No new runs; waits for the one in progress, which is asked to stop at its next batch. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.running;
  }

  statuses(): Promise<JobStatus[]> {
    return this.store.statuses();
  }

  private async runDue(): Promise<void> {
    let soonest: number | undefined;
    for (const job of this.jobs) {
      if (this.abort.signal.aborted) return;
      try {
        if (!(await this.store.claim(job.name, this.opts.nodeId, this.clock.now(), this.opts.leaseMs))) continue;
      } catch (err) {
        this.log.warn({ job: job.name, err: (err as Error).message }, "could not claim a maintenance job");
        continue;
      }
      const next = await this.runClaimed(job);
      if (next < (this.opts.tickMs ?? 15_000)) soonest = Math.min(soonest ?? next, next);
    }
    // A job due again before the next tick (a backlog in slices) does not wait for it.
    if (soonest !== undefined && this.timer && !this.abort.signal.aborted) setTimeout(() => void this.tick(), Math.max(10, soonest)).unref();
  }

  /** Runs a job whose lease this node holds; returns in how many ms it is due again. */
  private async runClaimed(job: MaintenanceJob): Promise<number> {
    const startedAt = this.clock.now();
    const t0 = performance.now();
    const jlog = this.log.child({ job: job.name });
    const renew = setInterval(() => {
      this.store.renew(job.name, this.opts.nodeId, this.clock.now(), this.opts.leaseMs).catch((err) => jlog.warn({ err: (err as Error).message }, "could not renew a maintenance lease"));
    }, Math.max(100, this.opts.leaseMs / 3));
    renew.unref();
    let record: RunRecord;
    try {
      const summary = await job.run({ now: startedAt, signal: this.abort.signal, log: jlog });
      record = { job: job.name, outcome: "ok", durationMs: performance.now() - t0, summary };
      if (job.quiet?.(summary)) jlog.debug({ durationMs: Math.round(record.durationMs), summary }, "maintenance job ran");
      else jlog.info({ durationMs: Math.round(record.durationMs), summary }, "maintenance job ran");
    } catch (err) {
      record = { job: job.name, outcome: "error", durationMs: performance.now() - t0, error: (err as Error).message };
      jlog.error({ durationMs: Math.round(record.durationMs), err: record.error }, "maintenance job failed");
    } finally {
      clearInterval(renew);
    }
    this.opts.onRun?.(record);
    const intervalMs = record.outcome === "ok" && job.intervalAfter ? job.intervalAfter(record.summary) : job.intervalMs;
    await this.store
      .release(job.name, this.opts.nodeId, {
        startedAt,
        durationMs: record.durationMs,
        outcome: record.outcome,
        error: record.error ?? null,
        summary: record.summary,
        intervalMs,
      })
      .catch((err) => jlog.warn({ err: (err as Error).message }, "could not record a maintenance run; its lease expires"));
    return intervalMs;
  }
}
