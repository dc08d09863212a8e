/**
 * sql/015 and sql/018 on a populated database: the oldest account becomes
 * the admin, the others members, and existing replies roll up under
 * configuration 0 (they predate chat_messages.config_id).
 */
import { expect, it } from "vitest";
import { runMigrations } from "../../src/db/migrate.js";
import { PgAnalyticsStore } from "../../src/db/pg-analytics-store.js";
import { olderSchemaDatabase } from "../support/older-schema-db.js";
import { silentLogger } from "../support/logger.js";

const scratch = olderSchemaDatabase("mr");

it("upgrades a database with accounts: the oldest is admin, replies from before count for configuration 0", async () => {
  const pool = await scratch.open(14);
  await pool.query(
    `INSERT INTO users (username, password_hash, created_at) VALUES
       ('newer', 'x', '2026-03-01T00:00:00Z'), ('oldest', 'x', '2025-01-01T00:00:00Z'), ('middle', 'x', '2025-06-01T00:00:00Z')`,
  );
  const owner = (await pool.query("SELECT id FROM users WHERE username = 'middle'")).rows[0].id;
  const session = (await pool.query("INSERT INTO chat_sessions (owner_id) VALUES ($1) RETURNING id", [owner])).rows[0].id;
  await pool.query(
    `INSERT INTO chat_messages (session_id, seq, user_id, role, content, status, prompt_tokens, token_count, first_token_ms, latency_ms, created_at)
     VALUES ($1, 1, $2, 'user', 'q', 'complete', NULL, NULL, NULL, NULL, '2026-02-01T10:00:00Z'),
            ($1, 2, $2, 'assistant', 'a', 'complete', 30, 10, 120, 900, '2026-02-01T10:00:01Z')`,
    [session, owner],
  );

  await runMigrations(pool, silentLogger);
  const roles = (await pool.query("SELECT username, role FROM users ORDER BY username")).rows;
  expect(roles).toEqual([
    { username: "middle", role: "member" },
    { username: "newer", role: "member" },
    { username: "oldest", role: "admin" },
  ]);
  const store = new PgAnalyticsStore(pool);
  await store.rollupDay("2026-02-01");
  expect(await store.rows("2026-02-01", "2026-02-01")).toEqual([
    expect.objectContaining({ configId: 0, userMessages: 1, assistantTurns: 1, promptTokens: 30, completionTokens: 10, ttftP50Ms: 120 }),
  ]);
});
