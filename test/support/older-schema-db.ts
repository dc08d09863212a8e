/**
 * A scratch database migrated only up to a given version, for testing a
 * migration against data written under the schema before it. Dropped after
 * the test file.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, inject } from "vitest";
import { runMigrations } from "../../src/db/migrate.js";
import "../../src/db/pool.js";
import { withDatabase } from "./global-setup.js";
import { silentLogger } from "./logger.js";

export function olderSchemaDatabase(prefix: string): { open(upTo: number): Promise<pg.Pool> } {
  const name = `memchat_${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = inject("pgAdminUrl");
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  return {
    async open(upTo) {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      pool = new pg.Pool({ connectionString: withDatabase(admin, name), max: 3 });
      pool.on("error", () => undefined);
      await runMigrations(pool, silentLogger, upTo);
      return pool;
    },
  };
}
