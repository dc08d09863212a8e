/**
 * Logical backups that need no pg_dump (the embedded profile ships none):
 * one directory, one JSON-lines file per table, and manifest.json with the
 * schema version, row counts and a sha256 per file.
 *
 * Consistency: every table is read in one REPEATABLE READ, READ ONLY
 * transaction, so the files are one snapshot of the database however many
 * writes run meanwhile (a message and its session's counters always agree).
 *
 * Portability: rows are JSON objects keyed by column name. A restore creates
 * the schema the backup was taken from (the numbered migrations up to its
 * version), loads the rows, then applies the newer migrations, which upgrade
 * the data in place as they do a live database: a newer server restores an
 * older backup.
 *
 * Derived and runtime tables are left out: vectors (rebuilt by the indexer
 * from the restored messages), the indexing queue (every message is queued
 * again), live nodes and maintenance leases.
 *
 * Attachments: the rows (names, types, sizes, hashes, which message carries
 * which file) are in the backup; the files themselves are not. They live in
 * the file store (DATA_DIR/files or the S3 bucket), backed up beside the
 * database (README, "Backup and restore"). An attachment whose file is missing
 * after a restore answers NOT_FOUND on download; its sha256 tells a restored
 * file from another.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type pg from "pg";
import type { Logger } from "pino";
import { appliedMigrationVersion, runMigrations } from "./migrate.js";

export const BACKUP_FORMAT = "memchat-backup";
export const BACKUP_FORMAT_VERSION = 1;

/** Not backed up, and why (the manifest says so too). */
export const DERIVED_TABLES: Record<string, string> = {
  message_vectors: "vectors: rebuilt by the indexer from the restored messages",
  message_index_jobs: "indexing queue: every restored message is queued again",
  message_version_jobs: "a building embedding version's dual writes: queued again with every restored message",
  lexical_doc_stats: "lexical term statistics: kept by triggers as the messages are restored",
  message_vector_deletions: "the vector code caches' change log: vectors are rebuilt",
  message_vector_deletions_pruned: "the vector code caches' change log: vectors are rebuilt",
  chat_nodes: "live server nodes",
  maintenance_jobs: "maintenance leases and last runs",
  attachment_object_purge: "stored files waiting to be deleted: their rows are gone, a restore does not bring them back",
  passage_index_jobs: "indexing queue of attachment passages: every restored passage is queued again",
  attachment_vector_purge: "vectors of deleted attachments waiting to be deleted: vectors are rebuilt",
  schema_migrations: "recorded as schemaVersion; the restore runs the migrations",
};

/**
 * Columns not backed up, and why (listed in the manifest's `excluded` as
 * "table.column"): a restore leaves them at their defaults.
 */
export const DERIVED_COLUMNS: Record<string, Record<string, string>> = {
  chat_sessions: {
    lex_docs: "lexical term statistics of the owner's sends: a restore's inserts count every message in lexical_doc_stats instead",
    lex_len: "lexical term statistics of the owner's sends: a restore's inserts count every message in lexical_doc_stats instead",
  },
};

export interface TableManifest {
  name: string;
  file: string;
  columns: string[];
  rows: number;
  sha256: string;
}

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  createdAt: string;
  schemaVersion: number;
  postgresVersion: string;
  tables: TableManifest[];
  excluded: Record<string, string>;
}

interface TableInfo {
  name: string;
  columns: string[];
  identity: string[];
  orderBy: string[];
  dependsOn: string[];
}

const FETCH = 2000;
const q = (ident: string) => `"${ident.replaceAll('"', '""')}"`;

/** Base tables of `public` with their stored (not generated) columns, parents before children. */
async function tables(client: pg.ClientBase): Promise<TableInfo[]> {
  const { rows } = await client.query<{ name: string; columns: string[]; identity: string[]; pk: string[] | null; deps: string[] }>(`
    SELECT c.relname AS name,
           ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                  ORDER BY a.attnum)::text[] AS columns,
           ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''
                  ORDER BY a.attnum)::text[] AS identity,
           (SELECT ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
                           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n)::text[]
              FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p') AS pk,
           ARRAY(SELECT DISTINCT f.relname FROM pg_constraint con JOIN pg_class f ON f.oid = con.confrelid
                  WHERE con.conrelid = c.oid AND con.contype = 'f' AND con.confrelid <> c.oid)::text[] AS deps
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'r'
     ORDER BY c.relname`);
  const infos = rows
    .filter((r) => !(r.name in DERIVED_TABLES))
    .map((r) => ({ name: r.name, columns: r.columns.filter((c) => !(c in (DERIVED_COLUMNS[r.name] ?? {}))), identity: r.identity, orderBy: r.pk ?? r.columns, dependsOn: r.deps.filter((d) => !(d in DERIVED_TABLES)) }));
  // Parents first, so a restore's foreign keys always find their row.
  const ordered: TableInfo[] = [];
  const placed = new Set<string>();
  while (ordered.length < infos.length) {
    const next = infos.filter((t) => !placed.has(t.name) && t.dependsOn.every((d) => placed.has(d)));
    if (next.length === 0) throw new Error(`foreign keys between ${infos.filter((t) => !placed.has(t.name)).map((t) => t.name).join(", ")} form a cycle`);
    for (const t of next) {
      ordered.push(t);
      placed.add(t.name);
    }
  }
  return ordered;
}

/** Writes a snapshot of the database into `dir` (created; must hold no earlier backup). */
export async function backupDatabase(pool: pg.Pool, dir: string, log: Logger): Promise<Manifest> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).includes("manifest.json")) throw new Error(`${dir} already holds a backup: choose an empty directory`);
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const schemaVersion = (await client.query<{ v: number }>("SELECT coalesce(max(version), 0)::int AS v FROM schema_migrations")).rows[0]!.v;
    const postgresVersion = (await client.query<{ v: string }>("SHOW server_version")).rows[0]!.v;
    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      schemaVersion,
      postgresVersion,
      tables: [],
      excluded: { ...DERIVED_TABLES, ...Object.fromEntries(Object.entries(DERIVED_COLUMNS).flatMap(([t, cols]) => Object.entries(cols).map(([c, why]) => [`${t}.${c}`, why]))) },
    };
    for (const t of await tables(client)) {
      const file = `${t.name}.jsonl`;
      const out = createWriteStream(path.join(dir, file));
      const hash = createHash("sha256");
      let rows = 0;
      const cols = t.columns.map(q).join(", ");
      await client.query(`DECLARE dump NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM (SELECT ${cols} FROM ${q(t.name)} ORDER BY ${t.orderBy.map(q).join(", ")}) t`);
      for (;;) {
        const { rows: batch } = await client.query<{ j: string }>(`FETCH ${FETCH} FROM dump`);
        if (batch.length === 0) break;
        const chunk = batch.map((r) => `${r.j}\n`).join("");
        hash.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
        rows += batch.length;
      }
      await client.query("CLOSE dump");
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      manifest.tables.push({ name: t.name, file, columns: t.columns, rows, sha256: hash.digest("hex") });
      log.info({ table: t.name, rows }, "table backed up");
    }
    await client.query("COMMIT");
    await writeFile(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export async function readManifest(dir: string): Promise<Manifest> {
  const m = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as Manifest;
  if (m.format !== BACKUP_FORMAT) throw new Error(`${dir} does not hold a ${BACKUP_FORMAT}`);
  if (m.formatVersion > BACKUP_FORMAT_VERSION) throw new Error(`backup format ${m.formatVersion} is newer than this server reads (${BACKUP_FORMAT_VERSION})`);
  return m;
}

/** Checks every file against the manifest (rows and sha256) before anything is written. */
export async function verifyBackup(dir: string, m: Manifest): Promise<void> {
  for (const t of m.tables) {
    const hash = createHash("sha256");
    let rows = 0;
    for await (const chunk of createReadStream(path.join(dir, t.file))) {
      hash.update(chunk as Buffer);
      for (const b of chunk as Buffer) if (b === 10) rows++;
    }
    const sha = hash.digest("hex");
    if (sha !== t.sha256) throw new Error(`${t.file}: checksum mismatch (the backup is damaged)`);
    if (rows !== t.rows) throw new Error(`${t.file}: ${rows} rows, the manifest says ${t.rows}`);
  }
}

async function isEmpty(pool: pg.Pool): Promise<boolean> {
  if ((await appliedMigrationVersion(pool)) === 0) {
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'");
    return rows[0]!.n === 0;
  }
  const { rows } = await pool.query<{ n: number }>("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM chat_sessions) AS n");
  return Number(rows[0]!.n) === 0;
}

export interface RestoreOptions {
  /** Replace a database that holds data (everything in it is lost). */
  force?: boolean;
}

/**
 * Restores a backup into an empty database (or, with force, over a
 * non-empty one): schema at the backup's version, rows in one transaction,
 * identity sequences moved past the restored ids, every message queued for
 * indexing, then the newer migrations.
 */
export async function restoreDatabase(pool: pg.Pool, dir: string, log: Logger, opts: RestoreOptions = {}): Promise<Manifest> {
  const m = await readManifest(dir);
  await verifyBackup(dir, m);
  if (!(await isEmpty(pool)) && !opts.force) {
    throw new Error("the target database holds data: restore refuses to overwrite it (use --force to replace everything in it)");
  }
  if ((await appliedMigrationVersion(pool)) > 0) {
    // Empty or replaced: start from no schema, so the backup's version can be rebuilt exactly.
    await pool.query("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
  }
  await runMigrations(pool, log, m.schemaVersion);
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET CONSTRAINTS ALL DEFERRED");
    const present = new Set((await tables(client)).map((t) => t.name));
    // Seed rows of the migrations (the default settings row...) make way for the backup's.
    const names = m.tables.filter((t) => present.has(t.name)).map((t) => q(t.name));
    if (names.length > 0) await client.query(`TRUNCATE ${names.join(", ")} CASCADE`);
    const info = new Map((await tables(client)).map((t) => [t.name, t]));
    for (const t of m.tables) {
      const target = info.get(t.name);
      if (!target) throw new Error(`table ${t.name} of the backup does not exist at schema version ${m.schemaVersion}`);
      const cols = t.columns.filter((c) => target.columns.includes(c)).map(q).join(", ");
      const insert = `INSERT INTO ${q(t.name)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM json_populate_recordset(NULL::${q(t.name)}, $1::json)`;
      let batch: string[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        await client.query(insert, [`[${batch.join(",")}]`]);
        batch = [];
      };
      const lines = createInterface({ input: createReadStream(path.join(dir, t.file)), crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        if (line.length === 0) continue;
        batch.push(line);
        if (batch.length >= 1000) await flush();
      }
      await flush();
      for (const col of target.identity) {
        await client.query(
          `SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max(${q(col)}) FROM ${q(t.name)}), 1), (SELECT max(${q(col)}) FROM ${q(t.name)}) IS NOT NULL)`,
          [t.name, col],
        );
      }
      log.info({ table: t.name, rows: t.rows }, "table restored");
    }
    if (present.has("chat_messages") && (await client.query("SELECT to_regclass('message_index_jobs') AS t")).rows[0].t) {
      await client.query("INSERT INTO message_index_jobs (message_id) SELECT id FROM chat_messages WHERE status <> 'streaming' ON CONFLICT DO NOTHING");
    }
    if (present.has("attachment_passages") && (await client.query("SELECT to_regclass('passage_index_jobs') AS t")).rows[0].t) {
      await client.query("INSERT INTO passage_index_jobs (passage_id) SELECT id FROM attachment_passages ON CONFLICT DO NOTHING");
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  const applied = await runMigrations(pool, log);
  if (applied.length > 0) log.info({ from: m.schemaVersion, applied }, "restored data migrated to the current schema");
  return m;
}
