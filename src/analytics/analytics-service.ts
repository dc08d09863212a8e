/**
 * What the admin analytics route answers: the daily rows of a date range and,
 * per configuration, its totals over the range, so configurations can be
 * compared side by side over the same days.
 */
import type { AnalyticsRow, PgAnalyticsStore } from "../db/pg-analytics-store.js";
import { addDays, daysBetween, utcDay } from "../chat/utc-days.js";
import { AppError } from "../protocol/errors.js";

/** Longest range one request may ask for, in days. */
export const MAX_RANGE_DAYS = 366;

export interface ConfigurationTotals {
  configId: number;
  /** The configuration's name; null for replies no configuration answered (configId 0) and for a deleted configuration. */
  name: string | null;
  /** Days of the range with any message for this configuration. */
  days: number;
  userMessages: number;
  assistantTurns: number;
  turnsFailed: number;
  turnsCancelled: number;
  turnsInterrupted: number;
  promptTokens: number;
  completionTokens: number;
  feedbackPositive: number;
  feedbackNegative: number;
  feedbackNeutral: number;
  satisfaction: number | null;
  /** Share of ended turns that used retrieved messages. */
  memoryShare: number | null;
  meanContextItems: number | null;
  /** Daily percentiles cannot be merged into a range percentile: these are their means weighted by each day's turns. */
  meanDailyTtftP50Ms: number | null;
  meanDailyTtftP95Ms: number | null;
  meanDailyLatencyP95Ms: number | null;
}

export interface AnalyticsReport {
  from: string;
  to: string;
  configId: number | null;
  days: AnalyticsRow[];
  configurations: ConfigurationTotals[];
}

export class AnalyticsService {
  constructor(
    private readonly store: PgAnalyticsStore,
    private readonly clock: { now(): Date } = { now: () => new Date() },
  ) {}

  /** Defaults: the 30 days up to today (UTC). BAD_REQUEST for a reversed or too long range. */
  async report(q: { from?: string; to?: string; config?: number }): Promise<AnalyticsReport> {
    const to = q.to ?? utcDay(this.clock.now());
    const from = q.from ?? addDays(to, -29);
    const span = daysBetween(from, to);
    if (span < 0) throw new AppError("BAD_REQUEST", "from is after to");
    if (span >= MAX_RANGE_DAYS) throw new AppError("BAD_REQUEST", `at most ${MAX_RANGE_DAYS} days at once`);
    const days = await this.store.rows(from, to, q.config);
    const configurations = totals(days);
    const names = await this.store.configurationNames(configurations.map((c) => c.configId).filter((id) => id !== 0));
    for (const c of configurations) c.name = names.get(c.configId) ?? null;
    return { from, to, configId: q.config ?? null, days, configurations };
  }
}

function totals(rows: AnalyticsRow[]): ConfigurationTotals[] {
  const by = new Map<number, AnalyticsRow[]>();
  for (const r of rows) by.set(r.configId, [...(by.get(r.configId) ?? []), r]);
  return [...by.entries()]
    .sort(([a], [b]) => a - b)
    .map(([configId, list]) => {
      const sum = (f: (r: AnalyticsRow) => number) => list.reduce((n, r) => n + f(r), 0);
      const turns = sum((r) => r.assistantTurns);
      const pos = sum((r) => r.feedbackPositive);
      const neg = sum((r) => r.feedbackNegative);
      const weighted = (f: (r: AnalyticsRow) => number | null) => {
        const withValue = list.filter((r) => f(r) !== null && r.assistantTurns > 0);
        const w = withValue.reduce((n, r) => n + r.assistantTurns, 0);
        return w === 0 ? null : withValue.reduce((n, r) => n + f(r)! * r.assistantTurns, 0) / w;
      };
      return {
        configId,
        name: null as string | null,
        days: list.length,
        userMessages: sum((r) => r.userMessages),
        assistantTurns: turns,
        turnsFailed: sum((r) => r.turnsFailed),
        turnsCancelled: sum((r) => r.turnsCancelled),
        turnsInterrupted: sum((r) => r.turnsInterrupted),
        promptTokens: sum((r) => r.promptTokens),
        completionTokens: sum((r) => r.completionTokens),
        feedbackPositive: pos,
        feedbackNegative: neg,
        feedbackNeutral: sum((r) => r.feedbackNeutral),
        satisfaction: pos + neg > 0 ? pos / (pos + neg) : null,
        memoryShare: turns > 0 ? sum((r) => r.turnsWithMemory) / turns : null,
        meanContextItems: weighted((r) => r.meanContextItems),
        meanDailyTtftP50Ms: weighted((r) => r.ttftP50Ms),
        meanDailyTtftP95Ms: weighted((r) => r.ttftP95Ms),
        meanDailyLatencyP95Ms: weighted((r) => r.latencyP95Ms),
      };
    });
}
