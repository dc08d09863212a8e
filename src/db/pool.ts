import pg from "pg";
import type { Logger } from "pino";
import { DEFAULT_POOL_IDLE_MS } from "../config.js";

// bigint ids fit in a double for any realistic table; clients get JSON numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface PoolOptions {
  /**
   * Every statement on these connections runs on a generic plan
   * (plan_cache_mode = force_generic_plan), unnamed ones included, so only
   * the named statements that `genericPlanPool` lists belong here.
   */
  genericPlans?: boolean;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Idle connections close after this many ms; 0: never. Default DB_POOL_IDLE_MS's. */
  idleTimeoutMs?: number;
}

export function createPool(url: string, size: number, logger: Logger, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: opts.idleTimeoutMs ?? DEFAULT_POOL_IDLE_MS,
    // A query stuck behind a dead server must fail instead of holding an ack forever.
    query_timeout: 15_000,
    application_name: opts.applicationName ?? "memchat",
    ...(opts.genericPlans ? { options: "-c plan_cache_mode=force_generic_plan" } : {}),
  });
  // An idle client losing its server emits here; without a listener the process would crash.
  pool.on("error", (err) => logger.warn({ err: err.message }, "idle PostgreSQL connection failed"));
  return pool;
}

/**
 * The pool for the assistant turn's hot reads, whose plans PostgreSQL would
 * otherwise make again on every call. A named statement is planned with its
 * parameters for its first five executions on a connection; after that
 * PostgreSQL keeps one generic plan only if its estimated cost is below the
 * custom plans' average, and planning time barely counts in that estimate.
 * A statement whose parameters sharpen the estimate (a user's rows, an xid
 * horizon, an array of ids) thus loses to its custom plans for good: with
 * 200,000 messages in the database, memory_lexical_search was planned on
 * every call at 6.8 ms of PostgreSQL CPU, against 1.8 ms to execute it.
 * These statements run on generic plans here, each checked at that size to
 * execute no slower than its custom plans (README, "Assistant latency"):
 *
 * - memory_lexical_search_* (PgMemoryQueries.search)
 * - turn_settings_window (PgAssistantStore.turnSettings)
 * - vector_codes_sync and vector_rerank (PgVectorStore)
 *
 * A separate pool, because plan_cache_mode is a connection's setting and
 * applies to unnamed statements too, which elsewhere rely on being planned
 * with their values. As large as the main pool: at half its size the turns'
 * reads queued for connections and time to first token rose; the turns'
 * reads no longer take the main pool's connections from the sends either.
 * A node thus opens up to twice DB_POOL_SIZE connections (the compose
 * file's PostgreSQL allows 200).
 */
export function genericPlanPool(url: string, mainSize: number, logger: Logger, idleTimeoutMs?: number): pg.Pool {
  return createPool(url, mainSize, logger, { genericPlans: true, applicationName: "memchat-generic-plans", idleTimeoutMs });
}
