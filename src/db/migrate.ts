/**
 * Numbered plain-SQL migrations from sql/, applied in order and recorded in
 * `schema_migrations`. A session-level advisory lock makes concurrent starters
 * wait, so two nodes starting together migrate once.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import type { Logger } from "pino";

const SQL_DIR = fileURLToPath(new URL("../../sql/", import.meta.url));
const MIGRATION_LOCK_KEY = 7_311_942_001; // arbitrary, constant across releases

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const version = Number.parseInt(file, 10);
    if (migrations.some((m) => m.version === version)) throw new Error(`duplicate migration number in ${file}`);
    migrations.push({ version, name: file.replace(/\.sql$/, ""), sql: await readFile(`${dir}/${file}`, "utf8") });
  }
  return migrations;
}

export async function latestMigrationVersion(dir = SQL_DIR): Promise<number> {
  const all = await loadMigrations(dir);
  return all.at(-1)?.version ?? 0;
}

/**
 * Applies pending migrations; returns the versions it applied. `upTo` stops
 * after that version (a restore loads a backup into the schema it was taken
 * from, then migrates the data forward).
 */
export async function runMigrations(pool: pg.Pool, logger: Logger, upTo = Number.POSITIVE_INFINITY): Promise<number[]> {
  const migrations = (await loadMigrations()).filter((m) => m.version <= upTo);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      }
      applied.push(m.version);
      logger.info({ migration: m.name }, "migration applied");
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
  return applied;
}

/** The highest applied version, or 0 when the table is missing. */
export async function appliedMigrationVersion(pool: pg.Pool): Promise<number> {
  const exists = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists.rows[0]?.t) return 0;
  const { rows } = await pool.query<{ v: number }>("SELECT coalesce(max(version), 0)::int AS v FROM schema_migrations");
  return rows[0]?.v ?? 0;
}
