/**
 * The assistant turn's hot reads run on generic plans
 * (genericPlanPool, src/db/pool.ts) from their first execution, on that
 * pool's connections only, so PostgreSQL does not plan them again on every
 * call; the main pool's connections keep PostgreSQL's own choice, which
 * unnamed statements rely on.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMemoryQueries } from "../../src/db/memory-queries.js";
import { PgAssistantStore } from "../../src/db/pg-assistant-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { createPool } from "../../src/db/pool.js";
import { pointIdForMessage } from "../../src/memory/point-id.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";

let db: TestDatabase;
let main: pg.Pool;
let generic: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase(2);
  // One connection each, so the prepared statements read below are those the calls used.
  main = createPool(db.url, 1, silentLogger);
  generic = createPool(db.url, 1, silentLogger, { genericPlans: true });
});
afterAll(async () => {
  await main?.end();
  await generic?.end();
  await db?.drop();
});

type Prepared = { name: string; generic_plans: number; custom_plans: number };
const prepared = async (pool: pg.Pool): Promise<Prepared[]> =>
  (await pool.query<Prepared>("SELECT name, generic_plans::int, custom_plans::int FROM pg_prepared_statements ORDER BY name")).rows;

describe("generic plans", () => {
  it("takes only whole-number limits, which it writes into the lexical search's text", () => {
    expect(() => new PgMemoryQueries(main, { windowRows: 1.5, termCap: 10 }, generic)).toThrow(RangeError);
    expect(() => new PgMemoryQueries(main, { windowRows: 50, termCap: 0 }, generic)).toThrow(RangeError);
  });

  it("is a setting of the generic pool's connections only", async () => {
    expect((await generic.query("SHOW plan_cache_mode")).rows[0].plan_cache_mode).toBe("force_generic_plan");
    expect((await main.query("SHOW plan_cache_mode")).rows[0].plan_cache_mode).toBe("auto");
  });

  it("runs the lexical search, turn settings, vector sync and rerank on generic plans from the first call", async () => {
    const user = (await new PgUserStore(db.pool).create(`gp_${Date.now()}`, "x"))!;
    const store = new PgMessageStore(db.pool);
    const session = await store.createSession(user.id, "generic plans", false);
    const ids: number[] = [];
    for (const [i, text] of ["the lighthouse keeper's boat", "a boat called Ariel", "lunch at noon"].entries()) {
      const r = await store.insertUserMessage({ sessionId: session.id, userId: user.id, clientMessageId: `gp${i}`, content: text });
      if (r.kind !== "inserted") throw new Error(r.kind);
      ids.push(r.message.id);
    }
    const vectors = new PgVectorStore(main, "generic_plans", 4, {}, generic);
    await vectors.upsert(
      ids.map((id, i) => ({
        id: pointIdForMessage(id),
        vector: Float32Array.from([1, i, 0, 0.5]),
        payload: { sessionId: session.id, userId: user.id, authorId: user.id, messageId: id, role: "user", content: `m${i}`, timestamp: new Date().toISOString(), timestampUnix: 0 },
      })),
    );
    const queries = new PgMemoryQueries(main, { windowRows: 50, termCap: 10 }, generic);
    const assistant = new PgAssistantStore(main, generic);
    for (let round = 0; round < 2; round++) {
      expect((await queries.search({ userId: user.id, sessionIds: null, query: "boat", limit: 5 })).map((h) => h.messageId).sort()).toEqual(ids.slice(0, 2).sort());
      expect((await assistant.turnSettings(session.id, user.id)).window.map((m) => m.id)).toEqual(ids);
      expect((await vectors.search(Float32Array.from([1, 0, 0, 0.5]), { userId: user.id, sessionIds: [session.id] }, 1))[0]?.messageId).toBe(ids[0]);
    }
    const plans = await prepared(generic);
    for (const name of ["memory_lexical_search_50_10", "turn_settings_window", "vector_codes_sync", "vector_rerank"]) {
      expect(plans.find((p) => p.name === name), name).toMatchObject({ custom_plans: 0 });
      expect(plans.find((p) => p.name === name)!.generic_plans, name).toBeGreaterThanOrEqual(1);
    }
    // The writes stay on the main pool, where PostgreSQL chooses.
    expect((await prepared(main)).map((p) => p.name)).toContain("vector_upsert");
    expect(plans.map((p) => p.name)).not.toContain("vector_upsert");
  });
});
