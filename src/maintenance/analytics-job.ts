/**
 * The daily analytics roll-up, a maintenance job (one node at a time). Each
 * run recomputes today and every day that can have changed since the last
 * successful run: messages are written at now(), and a reply ends minutes
 * after it starts, so those are the days from the one before the last run
 * to today, plus the days of replies whose feedback changed since. The
 * first run covers every day with messages inside the retention window.
 * Rows and usage days older than ANALYTICS_RETENTION_DAYS are deleted.
 */
import type { PgAnalyticsStore } from "../db/pg-analytics-store.js";
import type { PgUsageStore } from "../db/pg-usage-store.js";
import { addDays, daysBetween, utcDay } from "../chat/utc-days.js";
import type { JobContext, MaintenanceJob } from "./scheduler.js";

export interface AnalyticsJobOptions {
  intervalMs: number;
  retentionDays: number;
}

export interface AnalyticsRunSummary {
  days: number;
  from: string | null;
  deletedRows: number;
  deletedUsageDays: number;
  /** Stopped by shutdown before every day was done: the watermark stays, the next run redoes them. */
  stopped?: true;
}

// Clock skew between this node and PostgreSQL (feedback updated_at is the database's now()).
const SKEW_MS = 5 * 60_000;

export function analyticsJob(store: PgAnalyticsStore, usage: PgUsageStore, opts: AnalyticsJobOptions): MaintenanceJob {
  return { name: "analytics", intervalMs: opts.intervalMs, run: (ctx) => rollUp(store, usage, opts.retentionDays, ctx) };
}

export async function rollUp(store: PgAnalyticsStore, usage: PgUsageStore, retentionDays: number, ctx: Pick<JobContext, "now" | "signal">): Promise<AnalyticsRunSummary> {
  const today = utcDay(ctx.now);
  // Rows of days before this one are past retention.
  const keepFrom = addDays(today, -retentionDays);
  const since = await store.watermark();
  const days = new Set<string>();
  const start = since ? addDays(utcDay(since), -1) : await store.firstMessageDay(keepFrom);
  if (start !== null) {
    const from = start < keepFrom ? keepFrom : start;
    for (let i = 0, n = daysBetween(from, today); i <= n; i++) days.add(addDays(from, i));
  }
  days.add(today);
  if (since) {
    for (const d of await store.feedbackDays(new Date(since.getTime() - SKEW_MS))) if (d >= keepFrom && d <= today) days.add(d);
  }
  const ordered = [...days].sort();
  for (const day of ordered) {
    if (ctx.signal.aborted) {
      return { days: ordered.indexOf(day), from: ordered[0] ?? null, deletedRows: 0, deletedUsageDays: 0, stopped: true };
    }
    await store.rollupDay(day);
  }
  await store.setWatermark(ctx.now);
  const [deletedRows, deletedUsageDays] = await Promise.all([store.deleteBefore(keepFrom), usage.deleteBefore(keepFrom)]);
  return { days: ordered.length, from: ordered[0] ?? null, deletedRows, deletedUsageDays };
}
