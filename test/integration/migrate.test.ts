import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, expect, inject, it } from "vitest";
import { appliedMigrationVersion, latestMigrationVersion, loadMigrations, runMigrations } from "../../src/db/migrate.js";
import { withDatabase } from "../support/global-setup.js";
import { silentLogger } from "../support/logger.js";

const name = `memchat_m_${randomBytes(5).toString("hex")}`;
const admin = inject("pgAdminUrl");
const pools: pg.Pool[] = [];

afterAll(async () => {
  for (const p of pools) await p.end();
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
});

it("applies every migration once when several nodes start together", async () => {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = withDatabase(admin, name);
  for (let i = 0; i < 4; i++) {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    // pool.end() resolves before its sockets close, so DROP ... WITH (FORCE) in afterAll
    // can end a connection the pool still holds; unhandled, that error fails the run.
    pool.on("error", () => undefined);
    pools.push(pool);
  }
  expect(await appliedMigrationVersion(pools[0]!)).toBe(0);
  const applied = await Promise.all(pools.map((p) => runMigrations(p, silentLogger)));
  const all = (await loadMigrations()).map((m) => m.version);
  // exactly one starter applied each migration; the others found them done
  expect(applied.flat().sort((x, y) => x - y)).toEqual(all);
  expect(await appliedMigrationVersion(pools[0]!)).toBe(await latestMigrationVersion());
  const { rows } = await pools[0]!.query("SELECT version FROM schema_migrations ORDER BY version");
  expect(rows.map((r) => r.version)).toEqual(all);
  expect(await runMigrations(pools[1]!, silentLogger)).toEqual([]);
});
