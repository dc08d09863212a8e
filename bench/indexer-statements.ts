/**
 * PostgreSQL's CPU for the indexer's statements per batch, this checkout
 * against another (`--before <checkout>`): two single-connection pools drain
 * one queue of messages in batches of `--batch`, alternating batch by batch,
 * and each backend's CPU time is read from /proc. Only the queue's
 * statements run (no embedding, no vector upsert: both versions do the same
 * upsert), with no passages waiting, as at an everyday load. The other
 * checkout's queue is driven through whichever API it has: claim, passage
 * claim and mark as three statements (before the combined claim), or the
 * combined claim carrying marks of ids and vector ids (before sql/031), or
 * of ids.
 *
 * Usage: npm run bench:indexer-statements -- --before /path/to/checkout [--messages 8000 --batch 16]
 */
import { mkdtemp, rm } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import "../src/db/pool.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { PgIndexQueue } from "../src/db/index-queue.js";
import { latestMigrationVersion, runMigrations } from "../src/db/migrate.js";
import { PgMessageStore } from "../src/db/pg-message-store.js";
import { pointIdForMessage } from "../src/memory/point-id.js";
import { silentLogger } from "../test/support/logger.js";
import { processCpuSeconds } from "./server-metrics.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const BEFORE = arg("before", "");
if (!BEFORE) throw new Error("--before <checkout> is required");
const MESSAGES = Number(arg("messages", "8000"));
const BATCH = Number(arg("batch", "16"));
const LEASE_MS = 60_000;

type OldMarks = readonly number[] | { items: readonly { id: number; vectorId: string }[]; model: string };
type OldQueue = {
  claim(limit: number, leaseMs: number): Promise<{ id: number }[]>;
  claimBatch?(req: { limit: number; leaseMs: number; done?: OldMarks; withPassages?: boolean }): Promise<{ messages: { id: number }[] }>;
  markIndexed(...args: unknown[]): Promise<void>;
};
const old = (await import(path.resolve(BEFORE, "src/db/index-queue.ts"))) as {
  PgIndexQueue: new (pool: pg.Pool) => OldQueue;
  PgPassageIndexQueue: new (pool: pg.Pool) => { claim(limit: number, leaseMs: number): Promise<unknown[]> };
};

const dir = await mkdtemp(path.join(tmpdir(), "memchat-bench-indexer-"));
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
const url = await postgres.ensureDatabase("bench");
const pool = new pg.Pool({ connectionString: url, max: 8 });
const before = new pg.Pool({ connectionString: url, max: 1 });
const after = new pg.Pool({ connectionString: url, max: 1 });
for (const p of [pool, before, after]) p.on("error", () => undefined);
const backendPid = async (p: pg.Pool) => Number((await p.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);

try {
  // The schema of the older of the two checkouts: this one's statements run on it (they read no column a later
  // migration adds), and the other's would not run on a schema that dropped a column it writes (sql/031).
  await runMigrations(pool, silentLogger, Math.min(await latestMigrationVersion(), await latestMigrationVersion(path.resolve(BEFORE, "sql"))));
  const { rows: u } = await pool.query("INSERT INTO users (username, password_hash) VALUES ('bench', 'x') RETURNING id");
  const userId = u[0].id as string;
  const store = new PgMessageStore(pool);
  const session = await store.createSession(userId, "bench", false);
  for (let i = 0; i < MESSAGES; i += 8) {
    await Promise.all(
      Array.from({ length: Math.min(8, MESSAGES - i) }, (_, j) =>
        store.insertUserMessage({ sessionId: session.id, userId, clientMessageId: `m${i + j}`, content: `message ${i + j} about topic ${(i + j) % 13}` }),
      ),
    );
  }
  await pool.query("VACUUM ANALYZE");
  const oldQueue = new old.PgIndexQueue(before);
  const oldPassages = new old.PgPassageIndexQueue(before);
  const newQueue = new PgIndexQueue(after);
  const pids = { before: await backendPid(before), after: await backendPid(after) };
  const cpu = { before: 0, after: 0 };
  const wall = { before: 0, after: 0 };
  const batches = { before: 0, after: 0 };
  const statements = { before: 0, after: 0 };
  // How the other checkout takes a batch's marks: ids and vector ids with a model (markIndexed(items, model)), or ids.
  const oldTakesVectorIds = oldQueue.markIndexed.length === 2;
  const oldMarks = (ids: readonly number[]): OldMarks => (oldTakesVectorIds ? { items: ids.map((id) => ({ id, vectorId: pointIdForMessage(id) })), model: "bench" } : ids);
  const oldMark = (ids: readonly number[]) => (oldTakesVectorIds ? oldQueue.markIndexed((oldMarks(ids) as { items: unknown }).items, "bench") : oldQueue.markIndexed(ids));
  let pending: readonly number[] | undefined;
  let oldPending: readonly number[] | undefined;
  const timed = async (side: "before" | "after", run: () => Promise<number>) => {
    const c0 = processCpuSeconds(pids[side]);
    const t0 = performance.now();
    const n = await run();
    wall[side] += performance.now() - t0;
    cpu[side] += processCpuSeconds(pids[side]) - c0;
    if (n > 0) batches[side]++;
    return n;
  };
  /** --explain: planning and execution time of each side's statements, for one more batch (rolled back). */
  const explain = async () => {
    await store.insertUserMessage({ sessionId: session.id, userId, clientMessageId: "explain", content: "explain" });
    const oldRun = oldQueue.claimBatch
      ? () => oldQueue.claimBatch!({ limit: BATCH, leaseMs: LEASE_MS, done: oldMarks([1, 2, 3]), withPassages: true })
      : () => oldQueue.claim(BATCH, LEASE_MS).then((g) => oldPassages.claim(BATCH, LEASE_MS).then(() => oldMark(g.map((m) => m.id))));
    for (const [side, p, run] of [["before", before, oldRun], ["after", after, () => newQueue.claimBatch({ limit: BATCH, leaseMs: LEASE_MS, done: [1, 2, 3], withPassages: true })]] as const) {
      const seen: { text: string; values: unknown[] }[] = [];
      const q = p.query.bind(p);
      (p as unknown as { query: unknown }).query = (text: string, values: unknown[]) => (seen.push({ text, values }), q(text, values));
      await (run as () => Promise<unknown>)();
      (p as unknown as { query: unknown }).query = q;
      const c = await pool.connect();
      try {
        for (const s of seen) {
          await c.query("BEGIN");
          const { rows } = await c.query(`EXPLAIN (ANALYZE, SUMMARY) ${s.text}`, s.values);
          await c.query("ROLLBACK");
          console.log(side, rows.filter((r) => /Planning Time|Execution Time/.test(r["QUERY PLAN"])).map((r) => r["QUERY PLAN"]).join(", "));
        }
      } finally {
        c.release();
      }
    }
  };
  for (;;) {
    const a = await timed("before", async () => {
      if (oldQueue.claimBatch) {
        // One statement marks the previous batch and claims the next, passages included.
        const got = await oldQueue.claimBatch({ limit: BATCH, leaseMs: LEASE_MS, done: oldPending ? oldMarks(oldPending) : undefined, withPassages: true });
        statements.before++;
        oldPending = got.messages.length > 0 ? got.messages.map((m) => m.id) : undefined;
        return got.messages.length;
      }
      // Claim, passage claim, mark (each its own statement).
      const got = await oldQueue.claim(BATCH, LEASE_MS);
      await oldPassages.claim(BATCH - got.length, LEASE_MS);
      statements.before += 2;
      if (got.length > 0) {
        await oldMark(got.map((m) => m.id));
        statements.before++;
      }
      return got.length;
    });
    const b = await timed("after", async () => {
      const got = await newQueue.claimBatch({ limit: BATCH, leaseMs: LEASE_MS, done: pending, withPassages: true });
      statements.after++;
      pending = got.messages.length > 0 ? got.messages.map((m) => m.id) : undefined;
      return got.messages.length;
    });
    if (a === 0 && b === 0 && !pending && !oldPending) break;
  }
  const { rows: left } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_index_jobs");
  if (left[0]!.n !== 0) throw new Error(`${left[0]!.n} messages were left unmarked`);
  if (process.argv.includes("--explain")) await explain();
  const row = (side: "before" | "after") =>
    `${side.padEnd(6)} ${batches[side]} batches, ${(statements[side] / batches[side]).toFixed(2)} statements a batch, backend CPU ${((cpu[side] / batches[side]) * 1e6).toFixed(0)} µs a batch, wall ${((wall[side] / batches[side]) * 1e3).toFixed(0)} µs a batch`;
  console.log(`indexer queue statements, ${MESSAGES} messages in batches of ${BATCH}, alternating batch by batch (load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")})`);
  console.log(row("before"));
  console.log(row("after"));
} finally {
  await Promise.all([pool.end(), before.end(), after.end()]).catch(() => undefined);
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
