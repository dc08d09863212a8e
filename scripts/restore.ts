/**
 * npm run restore -- <dir> [--force]: restores a backup into an empty
 * database (or data directory); with --force, replaces one that holds data.
 * Stop the server first. Vectors are rebuilt by the indexer when the server
 * starts (every message is queued).
 */
import { restoreDatabase } from "../src/db/backup.js";
import { openOpsDatabase } from "../src/db/ops-database.js";
import { createPool } from "../src/db/pool.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith("--"));
if (!dir) {
  process.stderr.write("usage: npm run restore -- <dir> [--force]\n");
  process.exit(2);
}
const config = loadConfig();
const log = createLogger(config.logLevel, "restore");
const db = await openOpsDatabase(config, log);
const pool = createPool(db.url, 2, log);
try {
  const m = await restoreDatabase(pool, dir, log, { force: args.includes("--force") });
  log.info({ dir, database: db.profile, fromSchema: m.schemaVersion, tables: Object.fromEntries(m.tables.map((t) => [t.name, t.rows])) }, "backup restored; the indexer rebuilds vectors when the server starts");
} catch (err) {
  log.error({ err: (err as Error).message }, "restore failed");
  process.exitCode = 1;
} finally {
  await pool.end();
  await db.close();
}
