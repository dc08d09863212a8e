import pg from "pg";
import type { Logger } from "pino";

// bigint ids fit in a double for any realistic table; clients get JSON numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export function createPool(url: string, size: number, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A query stuck behind a dead server must fail instead of holding an ack forever.
    query_timeout: 15_000,
    application_name: "memchat",
  });
  // An idle client losing its server emits here; without a listener the process would crash.
  pool.on("error", (err) => logger.warn({ err: err.message }, "idle PostgreSQL connection failed"));
  return pool;
}
