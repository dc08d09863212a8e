/**
 * What the quota check adds to an assistant turn, measured on its own: the
 * reservation upsert a turn makes before its rows are written (the only step
 * on the path to the first token), against a trivial query over the same pool
 * (the round trip any statement pays), and the settle upsert as a reply ends.
 * 100 workers (one per concurrent turn), each its own user, on embedded
 * PostgreSQL, the pool of a server node (20 connections).
 *
 * Usage: node --import tsx bench/quota-check.ts [--seconds 5]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { runMigrations } from "../src/db/migrate.js";
import { PgUsageStore } from "../src/db/pg-usage-store.js";
import { silentLogger } from "../test/support/logger.js";
import { closedLoop, fmt, table } from "./lib.js";

const i = process.argv.indexOf("--seconds");
const SECONDS = i >= 0 ? Number(process.argv[i + 1]) : 5;
const WORKERS = 100;
const LEVELS = [1, WORKERS];

const dir = await mkdtemp(path.join(tmpdir(), "memchat-bench-quota-"));
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
const pool = new pg.Pool({ connectionString: await postgres.ensureDatabase("bench"), max: 20 });
try {
  await runMigrations(pool, silentLogger);
  const { rows } = await pool.query<{ id: string }>(
    "INSERT INTO users (username, password_hash) SELECT 'quota' || g, 'x' FROM generate_series(1, $1) g RETURNING id",
    [WORKERS],
  );
  const users = rows.map((r) => r.id);
  const usage = new PgUsageStore(pool);
  const day = new Date().toISOString().slice(0, 10);
  const rowsOut: (string | number)[][] = [];
  for (const workers of LEVELS) {
    const run = (op: (w: number) => Promise<unknown>) => closedLoop(workers, SECONDS * 1000, 1000, async (w) => void (await op(w)));
    const results: [string, Awaited<ReturnType<typeof closedLoop>>][] = [
      ["SELECT 1 (a round trip)", await run(() => pool.query("SELECT 1"))],
      ["reserve (quota on, under the cap)", await run((w) => usage.reserve(users[w]!, day, 1, 1e12))],
      ["reserve (no cap)", await run((w) => usage.reserve(users[w]!, day, 1, null))],
      ["settle (a reply ends)", await run((w) => usage.settle(users[w]!, day, 1, 300, 100))],
    ];
    for (const [name, r] of results) rowsOut.push([workers, name, fmt(r.perSecond), fmt(r.p50), fmt(r.p99)]);
  }
  console.log(`\n${SECONDS} s per row, pool of 20, one user per worker\n`);
  console.log(table(["workers", "statement", "per second", "p50 ms", "p99 ms"], rowsOut));
} finally {
  await pool.end();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
