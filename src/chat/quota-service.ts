/**
 * Per-user daily token quotas (issue 15 item 3). A turn reserves an estimate
 * before its reply row exists; the reservation holds only while the user's
 * tokens counted so far plus the reservations of their running turns are
 * under the cap (QUOTA_DAILY_TOKENS, or an admin's override), checked and
 * taken in one upsert so concurrent turns on any number of nodes cannot all
 * pass at the edge. When the turn ends, its real token counts replace the
 * estimate. Quotas reset at midnight UTC.
 */
import type { Settlement } from "../db/pg-assistant-store.js";
import type { PgUsageStore } from "../db/pg-usage-store.js";
import { AppError } from "../protocol/errors.js";
import { addDays, nextUtcMidnight, utcDay } from "./utc-days.js";

export interface QuotaClock {
  now(): Date;
}

/** Tokens held for a running turn on `day`. */
export interface Reservation {
  userId: string;
  day: string;
  tokens: number;
}

export interface QuotaOptions {
  /** QUOTA_DAILY_TOKENS; undefined: no cap unless an admin set one for the user. */
  dailyTokens: number | undefined;
  /** QUOTA_TURN_ESTIMATE_TOKENS. */
  turnEstimateTokens: number;
}

export interface UsageReport {
  today: { day: string; promptTokens: number; completionTokens: number; totalTokens: number; turns: number; reservedTokens: number };
  quota: { dailyTokens: number | null; source: "default" | "override" | "none"; remainingTokens: number | null; resetAt: string };
  /** The last `days` UTC days, today last, every day present (zeros when idle). */
  days: { day: string; promptTokens: number; completionTokens: number; totalTokens: number; turns: number }[];
}

export class QuotaExceededError extends AppError {
  constructor(
    readonly cap: number,
    readonly resetAt: Date,
    now: Date,
  ) {
    super(
      "QUOTA_EXCEEDED",
      `daily token quota of ${cap} reached; it resets at ${resetAt.toISOString()}`,
      Math.max(1, resetAt.getTime() - now.getTime()),
    );
  }
}

export class QuotaService {
  constructor(
    private readonly store: PgUsageStore,
    private readonly opts: QuotaOptions,
    private readonly clock: QuotaClock = { now: () => new Date() },
  ) {}

  /** Whether QUOTA_DAILY_TOKENS caps every user (else only an admin's override caps one). */
  get hasDefaultCap(): boolean {
    return this.opts.dailyTokens !== undefined;
  }

  /** The reservation of a turn no cap applies to: nothing is held, the tokens count on today's row when it ends. */
  unreserved(userId: string): Reservation {
    return { userId, day: utcDay(this.clock.now()), tokens: 0 };
  }

  /** Reserves a turn's estimate; throws QuotaExceededError (QUOTA_EXCEEDED, retryAfterMs to the reset) when over the cap. */
  async reserve(userId: string): Promise<Reservation> {
    const now = this.clock.now();
    const day = utcDay(now);
    const tokens = this.opts.turnEstimateTokens;
    const r = await this.store.reserve(userId, day, tokens, this.opts.dailyTokens ?? null);
    if (!r.ok) throw new QuotaExceededError(r.cap, nextUtcMidnight(now), now);
    return { userId, day, tokens };
  }

  /**
   * A reply whose node died was marked interrupted by another node's sweep:
   * its reservation (made on the day the reply started) goes back. Its
   * tokens are unknown and not counted.
   */
  async releaseOrphan(userId: string, startedAt: Date): Promise<void> {
    await this.store.release(userId, utcDay(startedAt), this.opts.turnEstimateTokens);
  }

  /** The turn never ran: give the estimate back. */
  async release(r: Reservation): Promise<void> {
    if (r.tokens === 0) return;
    await this.store.release(r.userId, r.day, r.tokens);
  }

  /**
   * The turn ended: count its tokens on the reservation's day and drop the
   * estimate (a turn without one, e.g. started before a restart, counts today).
   */
  async settle(userId: string, r: Reservation | undefined, promptTokens: number, completionTokens: number): Promise<void> {
    const s = this.settlement(userId, r, promptTokens, completionTokens);
    await this.store.settle(s.userId, s.day, s.reserved, s.promptTokens, s.completionTokens);
  }

  /** What `settle` writes, for a caller that folds it into another statement (the reply's final write). */
  settlement(userId: string, r: Reservation | undefined, promptTokens: number, completionTokens: number): Settlement {
    return { userId, day: r?.day ?? utcDay(this.clock.now()), reserved: r?.tokens ?? 0, promptTokens, completionTokens };
  }

  async usage(userId: string, days = 30): Promise<UsageReport> {
    const now = this.clock.now();
    const today = utcDay(now);
    const from = addDays(today, -(days - 1));
    const [rows, override] = await Promise.all([this.store.days(userId, from, today), this.store.override(userId)]);
    const byDay = new Map(rows.map((r) => [r.day, r]));
    const series = Array.from({ length: days }, (_, i) => {
      const day = addDays(from, i);
      const r = byDay.get(day);
      const promptTokens = r?.promptTokens ?? 0;
      const completionTokens = r?.completionTokens ?? 0;
      return { day, promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, turns: r?.turns ?? 0 };
    });
    const t = series.at(-1)!;
    const reservedTokens = byDay.get(today)?.reservedTokens ?? 0;
    const cap = override ?? this.opts.dailyTokens ?? null;
    return {
      today: { ...t, reservedTokens },
      quota: {
        dailyTokens: cap,
        source: override !== null ? "override" : cap !== null ? "default" : "none",
        remainingTokens: cap === null ? null : Math.max(0, cap - t.totalTokens),
        resetAt: nextUtcMidnight(now).toISOString(),
      },
      days: series,
    };
  }

  /** An admin sets (or with null removes) a user's cap; NOT_FOUND for an unknown user. */
  async setOverride(userId: string, dailyTokens: number | null, adminId: string): Promise<{ userId: string; dailyTokens: number | null; effectiveDailyTokens: number | null }> {
    if (!(await this.store.setOverride(userId, dailyTokens, adminId))) throw new AppError("NOT_FOUND", "no such account");
    return { userId, dailyTokens, effectiveDailyTokens: dailyTokens ?? this.opts.dailyTokens ?? null };
  }
}
