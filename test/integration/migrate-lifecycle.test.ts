import { expect, it } from "vitest";
import { latestMigrationVersion, runMigrations } from "../../src/db/migrate.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { olderSchemaDatabase } from "../support/older-schema-db.js";
import { silentLogger } from "../support/logger.js";

const scratch = olderSchemaDatabase("ml");

it("upgrades a populated database from before the lifecycle migration in place", async () => {
  const pool = await scratch.open(13);
  const { rows: users } = await pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ('ann', 'x'), ('ben', 'x') RETURNING id");
  const [ann, ben] = users.map((u) => u.id);
  // a live session with history, and one the old schema already flagged archived
  const { rows: sessions } = await pool.query<{ id: string }>(
    "INSERT INTO chat_sessions (owner_id, title, archived, last_seq, message_count) VALUES ($1, 'live', false, 3, 3), ($1, 'flagged', true, 0, 0) RETURNING id",
    [ann],
  );
  const [live, flagged] = sessions.map((s) => s.id);
  await pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $3, 'owner'), ($1, $4, 'member'), ($2, $3, 'owner')", [live, flagged, ann, ben]);
  await pool.query("INSERT INTO chat_messages (session_id, seq, user_id, role, content, client_message_id) SELECT $1, g, $2, 'user', 'm' || g, 'c' || g FROM generate_series(1, 3) g", [
    live,
    ben,
  ]);

  const applied = await runMigrations(pool, silentLogger);
  expect(applied[0]).toBe(14);
  expect(applied.at(-1)).toBe(await latestMigrationVersion());

  const { rows } = await pool.query("SELECT title, archived, archived_at IS NOT NULL AS has_time, successor_id, purging_at FROM chat_sessions ORDER BY title");
  expect(rows).toEqual([
    { title: "flagged", archived: true, has_time: true, successor_id: null, purging_at: null },
    { title: "live", archived: false, has_time: false, successor_id: null, purging_at: null },
  ]);
  const store = new PgMessageStore(pool);
  expect((await store.listMessagesBefore(live!, ben!, undefined, 10)).map((m) => m.content)).toEqual(["m1", "m2", "m3"]);
  // the replaced send function keeps working on the old rows, and knows about archiving
  const { rows: out } = await pool.query<{ outcome: string; seq: number | null }>(
    "SELECT outcome, (msg).seq FROM chat_insert_user_messages($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) ORDER BY idx",
    [[live, live, flagged], [ben, ben, ann], ["c3", "c4", "c5"], ["dup", "new", "refused"], [null, null, null]],
  );
  expect(out).toEqual([
    { outcome: "duplicate", seq: 3 },
    { outcome: "inserted", seq: 4 },
    { outcome: "archived", seq: null },
  ]);
});
