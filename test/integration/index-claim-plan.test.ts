/**
 * The indexer's claim reads the rows it claims through their keys, whatever
 * the tables' sizes: planned for LIMIT 64 claimed jobs against a table of a
 * few thousand messages, a join of the claimed jobs to chat_messages hashed
 * the whole table (5 ms of a 6 ms claim in auto_explain), and the lease
 * update did the same to message_index_jobs. Checked in the plan's shape
 * (EXPLAIN ANALYZE of the very statement the queue sends, rolled back), not
 * in time.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgIndexQueue } from "../../src/db/index-queue.js";
import { PgVersionJobQueue } from "../../src/db/version-job-queue.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type PlanNode, planNodes, planOf } from "../support/plan-nodes.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(2);
});
afterAll(async () => {
  await db?.drop();
});

/** The statement `claim` sends (to a pool that only records it), run as EXPLAIN ANALYZE and rolled back. */
async function plansOf(claim: (pool: pg.Pool) => Promise<unknown>): Promise<PlanNode[]> {
  const seen: { text: string; values: unknown[] }[] = [];
  const recording = { query: async (text: string, values: unknown[]) => (seen.push({ text, values }), { rows: [] }) } as unknown as pg.Pool;
  await claim(recording);
  expect(seen).toHaveLength(1);
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${seen[0]!.text}`, seen[0]!.values);
    await client.query("ROLLBACK");
    return planNodes(planOf(rows));
  } finally {
    client.release();
  }
}

describe("the indexer's claim", () => {
  it("reads claimed jobs, their messages and sessions by key, with thousands of messages and jobs", async () => {
    const u = await db.pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [`claim_${Date.now()}`]);
    const userId = u.rows[0]!.id;
    const s = await db.pool.query<{ id: string }>("INSERT INTO chat_sessions (owner_id) VALUES ($1) RETURNING id", [userId]);
    const sessionId = s.rows[0]!.id;
    await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [sessionId, userId]);
    // 4,000 messages, 3,000 of them queued but leased out of reach: the claim finds the last 20 due.
    const { rows: ids } = await db.pool.query<{ id: string }>(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content)
       SELECT $1, i, $2, 'user', 'message number ' || i FROM generate_series(1, 4000) i RETURNING id`,
      [sessionId, userId],
    );
    const queued = ids.slice(1000).map((r) => Number(r.id));
    await db.pool.query(
      "INSERT INTO message_index_jobs (message_id, run_at, attempts) SELECT id, CASE WHEN id > $2 THEN now() ELSE now() + interval '1 hour' END, 0 FROM unnest($1::bigint[]) id",
      [queued, queued.at(-21)],
    );
    // A building embedding version with the same jobs in its dual-write queue.
    const v = await db.pool.query<{ id: number }>(
      "INSERT INTO embedding_versions (model, dimensions, collection, state) VALUES ('claim-plan', 8, 'claim_plan_8', 'building') RETURNING id",
    );
    const versionId = v.rows[0]!.id;
    await db.pool.query("INSERT INTO message_version_jobs (message_id, version_id, run_at) SELECT id, $2, now() FROM unnest($1::bigint[]) id", [queued, versionId]);
    await db.pool.query("ANALYZE chat_messages; ANALYZE message_index_jobs; ANALYZE message_version_jobs");

    const plan = await plansOf((pool) => new PgIndexQueue(pool).claimBatch({ limit: 64, leaseMs: 60_000, withPassages: true }));
    const scanned = plan.filter((n) => n["Node Type"] === "Seq Scan").map((n) => n["Relation Name"]);
    expect(scanned).not.toContain("chat_messages");
    expect(scanned).not.toContain("message_index_jobs");
    const claimed = plan.find((n) => n["Node Type"] === "ModifyTable" && n["Relation Name"] === "message_index_jobs" && n["Actual Rows"] > 0);
    expect(claimed?.["Actual Rows"]).toBe(20);

    // A building version's queue claims the same way.
    const vplan = await plansOf((pool) => new PgVersionJobQueue(pool, versionId).claimBatch({ limit: 64, leaseMs: 60_000 }));
    const vscanned = vplan.filter((n) => n["Node Type"] === "Seq Scan").map((n) => n["Relation Name"]);
    expect(vscanned).not.toContain("chat_messages");
    expect(vscanned).not.toContain("message_version_jobs");
    const vclaimed = vplan.find((n) => n["Node Type"] === "ModifyTable" && n["Relation Name"] === "message_version_jobs" && n["Actual Rows"] > 0);
    expect(vclaimed?.["Actual Rows"]).toBe(64);
  });
});
