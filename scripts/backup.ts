/**
 * npm run backup -- <dir>: a consistent snapshot of the database into <dir>
 * (see src/db/backup.ts). Reads the server's configuration (DATABASE_URL, or
 * the embedded profile under DATA_DIR, running or not).
 */
import { backupDatabase } from "../src/db/backup.js";
import { openOpsDatabase } from "../src/db/ops-database.js";
import { createPool } from "../src/db/pool.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";

const dir = process.argv.slice(2).find((a) => !a.startsWith("--"));
if (!dir) {
  process.stderr.write("usage: npm run backup -- <dir>\n");
  process.exit(2);
}
const config = loadConfig();
const log = createLogger(config.logLevel, "backup");
const db = await openOpsDatabase(config, log);
const pool = createPool(db.url, 2, log);
try {
  const m = await backupDatabase(pool, dir, log);
  log.info({ dir, database: db.profile, schemaVersion: m.schemaVersion, tables: Object.fromEntries(m.tables.map((t) => [t.name, t.rows])) }, "backup written");
} catch (err) {
  log.error({ err: (err as Error).message }, "backup failed");
  process.exitCode = 1;
} finally {
  await pool.end();
  await db.close();
}
