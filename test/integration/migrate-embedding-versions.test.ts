/**
 * sql/017 upgrades a populated database in place: of the versions a model
 * change left behind (each registered active by the old code), the newest
 * becomes the active one and, because the older one holds the messages
 * indexed before the change, gets a backfill; the dual-write trigger works
 * on the upgraded tables.
 */
import { expect, it } from "vitest";
import { listVersions, registerConfigured, versionToBackfill } from "../../src/db/embedding-versions.js";
import { PgIndexQueue } from "../../src/db/index-queue.js";
import { runMigrations } from "../../src/db/migrate.js";
import { olderSchemaDatabase } from "../support/older-schema-db.js";
import { silentLogger } from "../support/logger.js";

const scratch = olderSchemaDatabase("mev");

it("upgrades the embedding versions of a database that changed models before sql/017", async () => {
  const pool = await scratch.open(14);
  const { rows: users } = await pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id");
  const ann = users[0]!.id;
  const { rows: sessions } = await pool.query<{ id: string }>("INSERT INTO chat_sessions (owner_id, title, last_seq, message_count) VALUES ($1, 't', 3, 3) RETURNING id", [ann]);
  await pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [sessions[0]!.id, ann]);
  const { rows: msgs } = await pool.query<{ id: number }>(
    "INSERT INTO chat_messages (session_id, seq, user_id, role, content, client_message_id) SELECT $1, g, $2, 'user', 'm' || g, 'c' || g FROM generate_series(1, 3) g RETURNING id",
    [sessions[0]!.id, ann],
  );
  // What the old code did: each model in turn registered (and left) active.
  await pool.query("INSERT INTO embedding_versions (model, dimensions, collection) VALUES ('old-model', 8, 'mev_old_8'), ('new-model', 8, 'mev_new_8')");

  await runMigrations(pool, silentLogger);
  const versions = await listVersions(pool);
  expect(versions.map((v) => [v.model, v.state])).toEqual([
    ["new-model", "active"],
    ["old-model", "previous"],
  ]);
  // The messages from before the change are backfilled into the active version.
  const repair = await versionToBackfill(pool);
  expect(repair).toMatchObject({ model: "new-model", state: "active", backfillCursor: 0, backfillTarget: Math.max(...msgs.map((m) => m.id)), completedAt: null });

  // The server starting with the new model finds it current; a third model then builds, and is dual-written.
  expect((await registerConfigured(pool, "mev", "new-model", 8, null)).kind).toBe("current");
  const third = await registerConfigured(pool, "mev", "third-model", 8, { kind: "hash" });
  expect(third.kind).toBe("building");
  await pool.query("INSERT INTO message_index_jobs (message_id) VALUES ($1) ON CONFLICT DO NOTHING", [msgs[0]!.id]);
  const { rows: jobs } = await pool.query("SELECT message_id, version_id FROM message_version_jobs");
  expect(jobs).toEqual([{ message_id: msgs[0]!.id, version_id: third.version.id }]);

  // Queued again while its job waits (a reply that ended again): queued again for the building version.
  const versionJobs = async () => (await pool!.query("SELECT message_id FROM message_version_jobs ORDER BY 1")).rows.map((r) => r.message_id);
  await pool.query("DELETE FROM message_version_jobs");
  await pool.query("INSERT INTO message_index_jobs (message_id) VALUES ($1) ON CONFLICT (message_id) DO UPDATE SET run_at = now()", [msgs[0]!.id]);
  expect(await versionJobs()).toEqual([msgs[0]!.id]);
  // A claim or a recorded failure is not queueing again.
  await pool.query("DELETE FROM message_version_jobs");
  const claimed = await new PgIndexQueue(pool).claim(10, 60_000);
  expect(claimed.map((m) => m.id)).toEqual([msgs[0]!.id]);
  await new PgIndexQueue(pool).markFailed([{ id: msgs[0]!.id, retryAfterMs: 0 }], "embedder down");
  expect(await versionJobs()).toEqual([]);
});
