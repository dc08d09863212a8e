/**
 * SQL of per-user token usage and quotas (sql/018_analytics_usage.sql).
 * Days are UTC dates ('YYYY-MM-DD') the caller computes from its clock.
 */
import type pg from "pg";

export interface UsageDay {
  day: string;
  promptTokens: number;
  completionTokens: number;
  turns: number;
  reservedTokens: number;
}

export type ReserveOutcome =
  | { ok: true; cap: number | null }
  | { ok: false; cap: number; used: number; reserved: number };

/**
 * The settle upsert over five parameters from `$first`: user, day, reserved,
 * prompt tokens, completion tokens. Also run as a CTE of the reply's final
 * write (PgAssistantStore.complete), so a turn's end is one statement.
 */
export function settleSql(first: number): string {
  const [user, day, reserved, prompt, completion] = [0, 1, 2, 3, 4].map((i) => `$${first + i}`);
  return `INSERT INTO usage_daily AS u (user_id, day, prompt_tokens, completion_tokens, turns)
             SELECT ${user}::uuid, ${day}::date, ${prompt}::bigint, ${completion}::bigint, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = ${user}::uuid)
             ON CONFLICT (user_id, day) DO UPDATE SET
               prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
               completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
               turns = u.turns + 1,
               reserved_tokens = greatest(0, u.reserved_tokens - ${reserved}::bigint)`;
}

export class PgUsageStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Reserves `estimate` tokens of `day` for a turn when the user's cap (the
   * override, else `defaultCap`; null: none) is not reached yet counting the
   * other turns' reservations. One upsert: the row's lock orders concurrent
   * reservations on every node, and each sees the ones before it.
   */
  async reserve(userId: string, day: string, estimate: number, defaultCap: number | null): Promise<ReserveOutcome> {
    const { rows } = await this.pool.query<{ cap: string | null }>({
      name: "usage_reserve",
      text: `WITH cap AS (
               SELECT coalesce((SELECT daily_tokens FROM user_quotas WHERE user_id = $1), $4::bigint) AS cap
             )
             INSERT INTO usage_daily AS u (user_id, day, reserved_tokens)
             SELECT $1, $2::date, $3 FROM cap WHERE cap.cap IS NULL OR cap.cap > 0
             ON CONFLICT (user_id, day) DO UPDATE SET reserved_tokens = u.reserved_tokens + EXCLUDED.reserved_tokens
              WHERE (SELECT cap FROM cap) IS NULL
                 OR u.prompt_tokens + u.completion_tokens + u.reserved_tokens < (SELECT cap FROM cap)
             RETURNING (SELECT cap FROM cap)::text AS cap`,
      values: [userId, day, estimate, defaultCap],
    });
    if (rows[0]) return { ok: true, cap: rows[0].cap === null ? null : Number(rows[0].cap) };
    const state = await this.pool.query<{ cap: string; used: string; reserved: string }>(
      `SELECT coalesce((SELECT daily_tokens FROM user_quotas WHERE user_id = $1), $3::bigint)::text AS cap,
              coalesce(u.prompt_tokens + u.completion_tokens, 0)::text AS used, coalesce(u.reserved_tokens, 0)::text AS reserved
         FROM (SELECT 1) one LEFT JOIN usage_daily u ON u.user_id = $1 AND u.day = $2::date`,
      [userId, day, defaultCap],
    );
    const s = state.rows[0]!;
    return { ok: false, cap: Number(s.cap ?? 0), used: Number(s.used), reserved: Number(s.reserved) };
  }

  /**
   * A turn ended: its tokens count for `day` and its reservation (0 when it
   * had none) is released, in one statement.
   */
  async settle(userId: string, day: string, reserved: number, promptTokens: number, completionTokens: number): Promise<void> {
    await this.pool.query({
      name: "usage_settle",
      text: settleSql(1),
      values: [userId, day, reserved, promptTokens, completionTokens],
    });
  }

  /** A reservation whose turn never started (the send was refused, the user was busy). */
  async release(userId: string, day: string, reserved: number): Promise<void> {
    await this.pool.query({
      name: "usage_release",
      text: "UPDATE usage_daily SET reserved_tokens = greatest(0, reserved_tokens - $3) WHERE user_id = $1 AND day = $2::date",
      values: [userId, day, reserved],
    });
  }

  /** The user's rows from `from` to `to` (inclusive), oldest first; days without a turn are absent. */
  async days(userId: string, from: string, to: string): Promise<UsageDay[]> {
    const { rows } = await this.pool.query<{ day: string; p: string; c: string; turns: number; r: string }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, prompt_tokens::text AS p, completion_tokens::text AS c, turns, reserved_tokens::text AS r
         FROM usage_daily WHERE user_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day`,
      [userId, from, to],
    );
    return rows.map((r) => ({ day: r.day, promptTokens: Number(r.p), completionTokens: Number(r.c), turns: r.turns, reservedTokens: Number(r.r) }));
  }

  /** The admin's override of the user's cap, or null. */
  async override(userId: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ t: string }>("SELECT daily_tokens::text AS t FROM user_quotas WHERE user_id = $1", [userId]);
    return rows[0] ? Number(rows[0].t) : null;
  }

  /** Sets (a number) or removes (null) the override; false for an unknown user. */
  async setOverride(userId: string, dailyTokens: number | null, setBy: string): Promise<boolean> {
    if (dailyTokens === null) {
      const { rows } = await this.pool.query("SELECT 1 FROM users WHERE id = $1", [userId]);
      if (rows.length === 0) return false;
      await this.pool.query("DELETE FROM user_quotas WHERE user_id = $1", [userId]);
      return true;
    }
    const { rowCount } = await this.pool.query(
      `INSERT INTO user_quotas (user_id, daily_tokens, set_by) SELECT id, $2, $3 FROM users WHERE id = $1
       ON CONFLICT (user_id) DO UPDATE SET daily_tokens = EXCLUDED.daily_tokens, set_by = EXCLUDED.set_by, updated_at = now()`,
      [userId, dailyTokens, setBy],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Deletes usage rows of days before `before` (ANALYTICS_RETENTION_DAYS); the number deleted. */
  async deleteBefore(before: string): Promise<number> {
    const { rowCount } = await this.pool.query("DELETE FROM usage_daily WHERE day < $1::date", [before]);
    return rowCount ?? 0;
  }
}
