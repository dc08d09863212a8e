/**
 * What the lexical search reads, on the generic plan it runs on
 * (genericPlanPool), counted in the plan's own row counts, not in time: its
 * index step fetches only rows the scoping rule may return, not every
 * user's matches of a word (sql/030), so a search costs what the user's own
 * history costs however many users share the server.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMemoryQueries, type LexicalSearch } from "../../src/db/memory-queries.js";
import { createPool } from "../../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";
import { planNodes, planOf } from "../support/plan-nodes.js";

let db: TestDatabase;
let generic: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase(2);
  generic = createPool(db.url, 1, silentLogger, { genericPlans: true });
});
afterAll(async () => {
  await generic?.end();
  await db?.drop();
});

let n = 0;
async function userWithSession(): Promise<{ userId: string; sessionId: string }> {
  const u = await db.pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [`lw_${Date.now()}_${n++}`]);
  const userId = u.rows[0]!.id;
  const s = await db.pool.query<{ id: string }>("INSERT INTO chat_sessions (owner_id) VALUES ($1) RETURNING id", [userId]);
  await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [s.rows[0]!.id, userId]);
  return { userId, sessionId: s.rows[0]!.id };
}
/** `count` messages by the session's owner; message i holds `rare` when i % every === 0. */
async function fill(who: { userId: string; sessionId: string }, count: number, rare: string, every: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO chat_messages (session_id, seq, user_id, role, content)
     SELECT $1, i, $2, 'user', 'notes on the garden, entry ' || i || CASE WHEN i % $5 = 0 THEN ' about ' || $4 ELSE '' END
       FROM generate_series(1, $3::int) i`,
    [who.sessionId, who.userId, count, rare, every],
  );
  await db.pool.query("ANALYZE chat_messages");
}

/**
 * Runs the search on the generic pool's one connection, then EXPLAIN ANALYZE
 * of the very prepared statement it ran (its generic plan) with its values.
 */
async function searchAndPlan(queries: (pool: pg.Pool) => PgMemoryQueries, s: LexicalSearch) {
  const client = await generic.connect();
  let sent: pg.QueryConfig | undefined;
  const spy = { query: (config: pg.QueryConfig) => ((sent = config), client.query(config)) } as unknown as pg.Pool;
  try {
    // This table is small enough that a scan of it is the cheaper plan; on a real one the index
    // is, and that index's reads are what is measured here.
    await client.query("SET enable_seqscan = off");
    const hits = await queries(spy).search(s);
    const literal = (v: unknown): string =>
      v === null || v === undefined ? "NULL" : typeof v === "number" ? String(v) : Array.isArray(v) ? client.escapeLiteral(`{${v.join(",")}}`) : client.escapeLiteral(String(v));
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${sent!.name}(${(sent!.values ?? []).map(literal).join(", ")})`);
    return { hits, plan: planNodes(planOf(rows)) };
  } finally {
    await client.query("RESET enable_seqscan");
    client.release();
  }
}

describe("the lexical search's work", () => {
  it("reads from the full-text index only the user's rows, however many other users wrote the word", async () => {
    const me = await userWithSession();
    await fill(me, 300, "zephyr", 10); // 30 of mine hold the rare word
    for (let i = 0; i < 4; i++) await fill(await userWithSession(), 200, "zephyr", 1); // 800 of others'
    // A window of 20 rows estimates the word rarer than the cap: it is read from the index.
    const { hits, plan } = await searchAndPlan((p) => new PgMemoryQueries(db.pool, { windowRows: 20, termCap: 50 }, p), {
      userId: me.userId,
      sessionIds: null,
      query: "zephyr",
      limit: 100,
      homeSessionId: me.sessionId,
    });
    expect(hits).toHaveLength(30);
    const step = plan.find((p) => p["Subplan Name"] === "CTE gin");
    const scans = planNodes(step!).filter((p) => p["Relation Name"] === "chat_messages");
    expect(scans.length).toBeGreaterThan(0);
    // Rows the step's scans of chat_messages looked at: only my 30 (on chat_messages_tsv, all 830
    // matches were fetched and 800 dropped).
    const examined = scans.reduce((a, p) => a + (p["Actual Rows"] + (p["Rows Removed by Filter"] ?? 0) + (p["Rows Removed by Index Recheck"] ?? 0)) * p["Actual Loops"], 0);
    expect(examined).toBe(30);
  });
});
