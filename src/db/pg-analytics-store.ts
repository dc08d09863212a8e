/**
 * SQL of the daily analytics roll-up (sql/018_analytics_usage.sql): each
 * (day, configuration) row is recomputed whole from the message rows of that
 * UTC day, so running a day twice gives the same row.
 */
import type pg from "pg";

export interface AnalyticsRow {
  day: string;
  configId: number;
  sessionsActive: number;
  userMessages: number;
  assistantMessages: number;
  systemMessages: number;
  assistantTurns: number;
  turnsFailed: number;
  turnsCancelled: number;
  turnsInterrupted: number;
  promptTokens: number;
  completionTokens: number;
  ttftP50Ms: number | null;
  ttftP95Ms: number | null;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  feedbackPositive: number;
  feedbackNegative: number;
  feedbackNeutral: number;
  satisfaction: number | null;
  turnsWithMemory: number;
  meanContextItems: number | null;
}

/*
 * One day, every configuration. A user message counts for the configuration
 * of the reply that answered it (0 when none did); TTFT and latency
 * percentiles are over the day's complete replies; tokens over every ended
 * reply (a cancelled one spent them too).
 */
const ROLLUP_DAY = `
WITH bounds AS (
  SELECT ($1::date)::timestamp AT TIME ZONE 'UTC' AS lo, ($1::date + 1)::timestamp AT TIME ZONE 'UTC' AS hi
), msgs AS (
  SELECT m.id, m.session_id, m.role, m.status, m.token_count, m.prompt_tokens, m.first_token_ms, m.latency_ms,
         CASE WHEN m.role = 'assistant' THEN coalesce(m.config_id, 0)
              ELSE coalesce((SELECT r.config_id FROM chat_messages r
                              WHERE r.reply_to_id = m.id AND r.role = 'assistant' AND r.config_id IS NOT NULL
                              ORDER BY r.id LIMIT 1), 0)
         END AS config_id
    FROM chat_messages m, bounds b
   WHERE m.created_at >= b.lo AND m.created_at < b.hi
), turns AS (
  SELECT t.*, (SELECT count(*) FROM message_context c WHERE c.message_id = t.id) AS items
    FROM msgs t WHERE t.role = 'assistant' AND t.status <> 'streaming'
), m_agg AS (
  SELECT config_id,
         count(DISTINCT session_id)::int AS sessions_active,
         count(*) FILTER (WHERE role = 'user')::int AS user_messages,
         count(*) FILTER (WHERE role = 'assistant')::int AS assistant_messages,
         count(*) FILTER (WHERE role = 'system')::int AS system_messages
    FROM msgs GROUP BY config_id
), t_agg AS (
  SELECT config_id,
         count(*)::int AS assistant_turns,
         count(*) FILTER (WHERE status = 'error')::int AS turns_failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS turns_cancelled,
         count(*) FILTER (WHERE status = 'interrupted')::int AS turns_interrupted,
         coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
         coalesce(sum(token_count), 0)::bigint AS completion_tokens,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY first_token_ms) FILTER (WHERE status = 'complete') AS ttft_p50_ms,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY first_token_ms) FILTER (WHERE status = 'complete') AS ttft_p95_ms,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'complete') AS latency_p50_ms,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'complete') AS latency_p95_ms,
         count(*) FILTER (WHERE items > 0)::int AS turns_with_memory,
         avg(items)::double precision AS mean_context_items
    FROM turns GROUP BY config_id
), f_agg AS (
  SELECT t.config_id,
         count(*) FILTER (WHERE f.rating > 0)::int AS pos,
         count(*) FILTER (WHERE f.rating < 0)::int AS neg,
         count(*) FILTER (WHERE f.rating = 0)::int AS neu
    FROM msgs t JOIN message_feedback f ON f.message_id = t.id
   WHERE t.role = 'assistant'
   GROUP BY t.config_id
)
INSERT INTO analytics_daily (
  day, config_id, sessions_active, user_messages, assistant_messages, system_messages,
  assistant_turns, turns_failed, turns_cancelled, turns_interrupted, prompt_tokens, completion_tokens,
  ttft_p50_ms, ttft_p95_ms, latency_p50_ms, latency_p95_ms,
  feedback_positive, feedback_negative, feedback_neutral, satisfaction, turns_with_memory, mean_context_items)
SELECT $1::date, m.config_id, m.sessions_active, m.user_messages, m.assistant_messages, m.system_messages,
       coalesce(t.assistant_turns, 0), coalesce(t.turns_failed, 0), coalesce(t.turns_cancelled, 0), coalesce(t.turns_interrupted, 0),
       coalesce(t.prompt_tokens, 0), coalesce(t.completion_tokens, 0),
       t.ttft_p50_ms, t.ttft_p95_ms, t.latency_p50_ms, t.latency_p95_ms,
       coalesce(f.pos, 0), coalesce(f.neg, 0), coalesce(f.neu, 0),
       CASE WHEN coalesce(f.pos, 0) + coalesce(f.neg, 0) > 0 THEN f.pos::double precision / (f.pos + f.neg) END,
       coalesce(t.turns_with_memory, 0), t.mean_context_items
  FROM m_agg m LEFT JOIN t_agg t USING (config_id) LEFT JOIN f_agg f USING (config_id)`;

const COLUMNS = `to_char(day, 'YYYY-MM-DD') AS "day", config_id AS "configId", sessions_active AS "sessionsActive",
  user_messages AS "userMessages", assistant_messages AS "assistantMessages", system_messages AS "systemMessages",
  assistant_turns AS "assistantTurns", turns_failed AS "turnsFailed", turns_cancelled AS "turnsCancelled",
  turns_interrupted AS "turnsInterrupted", prompt_tokens::float8 AS "promptTokens", completion_tokens::float8 AS "completionTokens",
  ttft_p50_ms AS "ttftP50Ms", ttft_p95_ms AS "ttftP95Ms", latency_p50_ms AS "latencyP50Ms", latency_p95_ms AS "latencyP95Ms",
  feedback_positive AS "feedbackPositive", feedback_negative AS "feedbackNegative", feedback_neutral AS "feedbackNeutral",
  satisfaction, turns_with_memory AS "turnsWithMemory", mean_context_items AS "meanContextItems"`;

export class PgAnalyticsStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Recomputes `day` (UTC, 'YYYY-MM-DD'): its rows are replaced in one
   * transaction, so a reader sees either the old rows or the new ones, and a
   * configuration whose messages are gone loses its row for the day.
   */
  async rollupDay(day: string): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("DELETE FROM analytics_daily WHERE day = $1::date", [day]);
      await client.query(ROLLUP_DAY, [day]);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The start of the last successful run, or null before the first. */
  async watermark(): Promise<Date | null> {
    const { rows } = await this.pool.query<{ t: Date }>("SELECT last_run_start AS t FROM analytics_rollup_state");
    return rows[0]?.t ?? null;
  }

  async setWatermark(t: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO analytics_rollup_state (id, last_run_start) VALUES (true, $1)
       ON CONFLICT (id) DO UPDATE SET last_run_start = EXCLUDED.last_run_start`,
      [t],
    );
  }

  /** The UTC day of the oldest message at or after `notBefore`, or null when there is none. */
  async firstMessageDay(notBefore: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ d: string | null }>(
      `SELECT to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d FROM chat_messages
        WHERE created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'`,
      [notBefore],
    );
    return rows[0]?.d ?? null;
  }

  /** UTC days of replies whose feedback changed after `since`. */
  async feedbackDays(since: Date): Promise<string[]> {
    const { rows } = await this.pool.query<{ d: string }>(
      `SELECT DISTINCT to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d
         FROM message_feedback f JOIN chat_messages m ON m.id = f.message_id
        WHERE f.updated_at > $1 ORDER BY 1`,
      [since],
    );
    return rows.map((r) => r.d);
  }

  /** Deletes rows of days before `before`; the number deleted. */
  async deleteBefore(before: string): Promise<number> {
    const { rowCount } = await this.pool.query("DELETE FROM analytics_daily WHERE day < $1::date", [before]);
    return rowCount ?? 0;
  }

  /** The names of these configurations (retired ones too); an id that names none is absent. */
  async configurationNames(ids: readonly number[]): Promise<Map<number, string>> {
    if (ids.length === 0) return new Map();
    const { rows } = await this.pool.query<{ id: number; name: string }>("SELECT id, name FROM assistant_configurations WHERE id = ANY ($1::int[])", [ids]);
    return new Map(rows.map((r) => [Number(r.id), r.name]));
  }

  /** Rows from `from` to `to` inclusive, by day then configuration; one configuration when `configId` is given. */
  async rows(from: string, to: string, configId?: number): Promise<AnalyticsRow[]> {
    const { rows } = await this.pool.query<AnalyticsRow>(
      `SELECT ${COLUMNS} FROM analytics_daily
        WHERE day BETWEEN $1::date AND $2::date AND ($3::int IS NULL OR config_id = $3)
        ORDER BY day, config_id`,
      [from, to, configId ?? null],
    );
    return rows;
  }
}
