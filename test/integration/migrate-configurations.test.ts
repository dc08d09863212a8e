import { expect, it } from "vitest";
import { runMigrations } from "../../src/db/migrate.js";
import { PgAssistantStore } from "../../src/db/pg-assistant-store.js";
import { olderSchemaDatabase } from "../support/older-schema-db.js";
import { silentLogger } from "../support/logger.js";

const scratch = olderSchemaDatabase("mc");

it("turns the old default row into the default configuration and each per-session row into a configuration its session uses", async () => {
  const pool = await scratch.open(18);
  const { rows: users } = await pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id");
  const ann = users[0]!.id;
  const { rows: sessions } = await pool.query<{ id: string }>(
    "INSERT INTO chat_sessions (owner_id, title) VALUES ($1, 'tuned'), ($1, 'plain'), ($1, 'silent') RETURNING id",
    [ann],
  );
  const [tuned, plain, silent] = sessions.map((s) => s.id);
  await pool.query("UPDATE rag_configurations SET system_prompt = 'Be kind.', temperature = 0.4, similarity_threshold = 1.5 WHERE session_id IS NULL");
  await pool.query(
    `INSERT INTO rag_configurations (session_id, system_prompt, top_k, temperature, max_tokens, history_window)
     VALUES ($1, 'Talk like a travel agent.', 4, 0.2, 5, 500), ($2, 'No memory.', 0, 1, 512, 12)`,
    [tuned, silent],
  );
  const { rows: old } = await pool.query<{ id: number; session_id: string | null }>("SELECT id, session_id FROM rag_configurations ORDER BY id");
  const { rows: reply } = await pool.query<{ id: number }>("INSERT INTO chat_messages (session_id, seq, role, content) VALUES ($1, 1, 'assistant', 'hi') RETURNING id", [plain]);
  await pool.query("INSERT INTO message_feedback (message_id, user_id, rating, comment) VALUES ($1, $2, -1, 'meh')", [reply[0]!.id, ann]);

  expect(await runMigrations(pool, silentLogger)).toContain(19);

  const { rows: configs } = await pool.query(
    `SELECT id, name, system_prompt, temperature, top_k, max_tokens, similarity_threshold, history_window, retrieval_mode, is_default, active
       FROM assistant_configurations ORDER BY is_default DESC, name`,
  );
  const tunedRow = old.find((r) => r.session_id === tuned)!.id;
  const silentRow = old.find((r) => r.session_id === silent)!.id;
  expect(configs).toEqual([
    { id: old.find((r) => r.session_id === null)!.id, name: "Default", system_prompt: "Be kind.", temperature: expect.closeTo(0.4, 5), top_k: 8, max_tokens: 512, similarity_threshold: 1, history_window: 12, retrieval_mode: "hybrid", is_default: true, active: true },
    ...[
      // values outside the new bounds are brought inside them; top_k 0 meant no retrieval
      { id: tunedRow, name: `Migrated settings #${tunedRow}`, system_prompt: "Talk like a travel agent.", temperature: expect.closeTo(0.2, 5), top_k: 4, max_tokens: 16, similarity_threshold: expect.closeTo(0.3, 5), history_window: 100, retrieval_mode: "hybrid", is_default: false, active: true },
      { id: silentRow, name: `Migrated settings #${silentRow}`, system_prompt: "No memory.", temperature: 1, top_k: 1, max_tokens: 512, similarity_threshold: expect.closeTo(0.3, 5), history_window: 12, retrieval_mode: "none", is_default: false, active: true },
    ].sort((a, b) => a.name.localeCompare(b.name)),
  ]);
  expect((await pool.query("SELECT to_regclass('rag_configurations') AS t")).rows[0].t).toBeNull();

  const store = new PgAssistantStore(pool);
  expect(await store.ragConfig(tuned!)).toMatchObject({ systemPrompt: "Talk like a travel agent.", topK: 4, temperature: 0.2, retrievalMode: "hybrid" });
  expect(await store.ragConfig(silent!)).toMatchObject({ systemPrompt: "No memory.", retrievalMode: "none" });
  expect(await store.ragConfig(plain!)).toMatchObject({ systemPrompt: "Be kind.", temperature: 0.4, similarityThreshold: 1 });
  const { rows: picks } = await pool.query("SELECT title, c.name FROM chat_sessions s LEFT JOIN assistant_configurations c ON c.id = s.configuration_id ORDER BY title");
  expect(picks).toEqual([
    { title: "plain", name: null },
    { title: "silent", name: `Migrated settings #${silentRow}` },
    { title: "tuned", name: `Migrated settings #${tunedRow}` },
  ]);
  // feedback keeps its rows and takes neutral ratings now
  expect((await pool.query("SELECT count(*)::int AS n FROM message_feedback")).rows[0].n).toBe(1);
  await pool.query("UPDATE message_feedback SET rating = 0");
  await expect(pool.query("UPDATE message_feedback SET rating = 2")).rejects.toThrow(/message_feedback_rating_check/);
  await expect(pool.query("UPDATE assistant_configurations SET is_default = true")).rejects.toThrow(/assistant_configurations_one_default/);
  // new configurations are numbered after the migrated ones
  const { rows: fresh } = await pool.query<{ id: number }>("INSERT INTO assistant_configurations (name, system_prompt) VALUES ('new', 'x') RETURNING id");
  expect(fresh[0]!.id).toBeGreaterThan(Math.max(...old.map((r) => r.id)));
});
