/**
 * Embedding versions (sql/017): which model's vectors are searched (active),
 * which one is being filled (building), and the backfill's cursor. Every
 * node reads the live versions from here; the re-embed job
 * (src/maintenance/reembed-job.ts) moves a version through its states.
 */
import type pg from "pg";
import type { MessageRole } from "../memory/types.js";
import type { QueuedMessage } from "./index-queue.js";

export type VersionState = "active" | "building" | "previous" | "retired";

/** How a node not configured for a version loads its embedder (no secrets: API keys stay in each node's config). */
export interface EmbedderSpec {
  kind: "transformers" | "openai" | "hash";
  modelId?: string;
  modelPath?: string;
  dtype?: string;
  apiModel?: string;
}

export interface EmbeddingVersion {
  id: number;
  model: string;
  dimensions: number;
  collection: string;
  state: VersionState;
  spec: EmbedderSpec | null;
  backfillCursor: number;
  backfillTarget: number;
  backfillDone: number;
  backfillTotal: number | null;
  completedAt: Date | null;
  activatedAt: Date | null;
  createdAt: Date;
}

/** Woken on every state change, so nodes switch at once instead of at their next poll. */
export const VERSIONS_CHANNEL = "memchat_versions";

const COLUMNS = `id, model, dimensions, collection, state, spec, backfill_cursor, backfill_target, backfill_done, backfill_total,
  completed_at, activated_at, created_at`;

interface VersionRow {
  id: number;
  model: string;
  dimensions: number;
  collection: string;
  state: VersionState;
  spec: EmbedderSpec | null;
  backfill_cursor: string;
  backfill_target: string;
  backfill_done: string;
  backfill_total: string | null;
  completed_at: Date | null;
  activated_at: Date | null;
  created_at: Date;
}

const toVersion = (r: VersionRow): EmbeddingVersion => ({
  id: r.id,
  model: r.model,
  dimensions: r.dimensions,
  collection: r.collection,
  state: r.state,
  spec: r.spec,
  backfillCursor: Number(r.backfill_cursor),
  backfillTarget: Number(r.backfill_target),
  backfillDone: Number(r.backfill_done),
  backfillTotal: r.backfill_total === null ? null : Number(r.backfill_total),
  completedAt: r.completed_at,
  activatedAt: r.activated_at,
  createdAt: r.created_at,
});

export function collectionName(prefix: string, model: string, dimensions: number): string {
  const slug = model.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 60);
  return `${prefix}_${slug}_${dimensions}`;
}

export type RegisterOutcome =
  | { kind: "current"; version: EmbeddingVersion }
  | { kind: "building"; version: EmbeddingVersion; resumed: boolean; abandoned: EmbeddingVersion | null }
  | { kind: "first"; version: EmbeddingVersion };

/**
 * Reconciles the configured model with the stored versions, at start-up:
 * - none active: the configured one becomes active (backfilling whatever
 *   messages exist already);
 * - the active one is the configured one: nothing changes, and a building
 *   version for another model is abandoned (the operator changed back);
 * - otherwise the configured one becomes (or stays) the building version.
 *
 * A SHARE lock on message_index_jobs waits for transactions queueing
 * messages and holds new ones until this commits (milliseconds), so every
 * message is either at or below the backfill target or queued for the new
 * version by sql/017's trigger.
 */
export async function registerConfigured(pool: pg.Pool, prefix: string, model: string, dimensions: number, spec: EmbedderSpec | null): Promise<RegisterOutcome> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<VersionRow>(`SELECT ${COLUMNS} FROM embedding_versions ORDER BY id FOR UPDATE`);
    const versions = rows.map(toVersion);
    const active = versions.find((v) => v.state === "active");
    const building = versions.find((v) => v.state === "building");
    const same = (v: EmbeddingVersion | undefined) => v !== undefined && v.model === model && v.dimensions === dimensions;
    let outcome: RegisterOutcome;
    if (same(active)) {
      if (building) await client.query("UPDATE embedding_versions SET state = 'retired', retired_at = now() WHERE id = $1", [building.id]);
      await client.query("UPDATE embedding_versions SET spec = coalesce($2, spec) WHERE id = $1", [active!.id, spec]);
      outcome = { kind: "current", version: active! };
    } else if (same(building)) {
      await client.query("UPDATE embedding_versions SET spec = coalesce($2, spec) WHERE id = $1", [building!.id, spec]);
      outcome = { kind: "building", version: building!, resumed: true, abandoned: null };
    } else {
      await client.query("LOCK TABLE message_index_jobs IN SHARE MODE");
      if (building) await client.query("UPDATE embedding_versions SET state = 'retired', retired_at = now() WHERE id = $1", [building.id]);
      const state: VersionState = active ? "building" : "active";
      // A version used before (kept or retired) is filled again from the start: it missed what came since.
      const { rows: saved } = await client.query<VersionRow>(
        `INSERT INTO embedding_versions AS v (model, dimensions, collection, state, spec, backfill_target, completed_at, activated_at)
         SELECT $1, $2, $3, $4, $5, t.target, CASE WHEN t.target = 0 THEN now() END, CASE WHEN $4 = 'active' THEN now() END
           FROM (SELECT coalesce(max(id), 0) AS target FROM chat_messages) t
         ON CONFLICT (model, dimensions) DO UPDATE
            SET state = EXCLUDED.state, spec = coalesce(EXCLUDED.spec, v.spec), backfill_cursor = 0, backfill_done = 0, backfill_total = NULL,
                backfill_target = EXCLUDED.backfill_target, completed_at = EXCLUDED.completed_at, activated_at = EXCLUDED.activated_at,
                retired_at = NULL, dropped_at = NULL
         RETURNING ${COLUMNS}`,
        [model, dimensions, collectionName(prefix, model, dimensions), state, spec],
      );
      const version = toVersion(saved[0]!);
      outcome = active ? { kind: "building", version, resumed: false, abandoned: building ?? null } : { kind: "first", version };
    }
    await client.query(`SELECT pg_notify('${VERSIONS_CHANNEL}', '')`);
    await client.query("COMMIT");
    return outcome;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Every version not retired, newest first. */
export async function listVersions(pool: pg.Pool, states: readonly VersionState[] = ["active", "building", "previous"]): Promise<EmbeddingVersion[]> {
  const { rows } = await pool.query<VersionRow>(`SELECT ${COLUMNS} FROM embedding_versions WHERE state = ANY($1::text[]) ORDER BY id DESC`, [states]);
  return rows.map(toVersion);
}

/** Every collection that may still hold vectors (all but the retired ones already emptied), with its dimensions. */
export async function allCollections(pool: pg.Pool): Promise<{ collection: string; dimensions: number }[]> {
  const { rows } = await pool.query<{ collection: string; dimensions: number }>("SELECT collection, dimensions FROM embedding_versions WHERE dropped_at IS NULL ORDER BY id");
  return rows;
}

/**
 * The version the backfill works on: the building one, else an active one
 * whose backfill never completed (a database upgraded from before sql/017
 * after a model change).
 */
export async function versionToBackfill(pool: pg.Pool): Promise<EmbeddingVersion | undefined> {
  const { rows } = await pool.query<VersionRow>(
    `SELECT ${COLUMNS} FROM embedding_versions
      WHERE state = 'building' OR (state = 'active' AND completed_at IS NULL)
      ORDER BY state = 'building' DESC LIMIT 1`,
  );
  return rows[0] ? toVersion(rows[0]) : undefined;
}

export async function countBackfillTotal(pool: pg.Pool, v: EmbeddingVersion): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `WITH n AS (SELECT count(*) AS n FROM chat_messages WHERE id <= $2 AND status <> 'streaming')
     UPDATE embedding_versions SET backfill_total = (SELECT n FROM n) WHERE id = $1 RETURNING backfill_total AS n`,
    [v.id, v.backfillTarget],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * The next messages after the cursor, up to the target. A reply still
 * streaming is skipped: it is queued (and so dual-written) when it ends.
 */
export async function backfillBatch(pool: pg.Pool, v: EmbeddingVersion, limit: number): Promise<QueuedMessage[]> {
  const { rows } = await pool.query<{ id: string; session_id: string; owner_id: string; user_id: string | null; role: MessageRole; content: string; created_at: Date }>(
    `SELECT m.id, m.session_id, s.owner_id, m.user_id, m.role, m.content, m.created_at
       FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
      WHERE m.id > $1 AND m.id <= $2 AND m.status <> 'streaming'
      ORDER BY m.id LIMIT $3`,
    [v.backfillCursor, v.backfillTarget, limit],
  );
  return rows.map((r) => ({ id: Number(r.id), sessionId: r.session_id, ownerId: r.owner_id, authorId: r.user_id, role: r.role, content: r.content, createdAt: r.created_at, attempts: 0 }));
}

/**
 * Records a batch: the cursor moves from `from` to `to`. False when the
 * version moved on meanwhile (abandoned, or another run advanced it).
 */
export async function advanceCursor(pool: pg.Pool, versionId: number, from: number, to: number, embedded: number): Promise<boolean> {
  const r = await pool.query(
    `UPDATE embedding_versions SET backfill_cursor = $3, backfill_done = backfill_done + $4
      WHERE id = $1 AND backfill_cursor = $2 AND (state = 'building' OR (state = 'active' AND completed_at IS NULL))`,
    [versionId, from, to, embedded],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Of these sessions, those gone or being purged (their points must not stay in a new collection). */
export async function goneSessions(pool: pg.Pool, sessionIds: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT u.id FROM unnest($1::uuid[]) AS u(id)
      WHERE NOT EXISTS (SELECT 1 FROM chat_sessions s WHERE s.id = u.id AND s.purging_at IS NULL)`,
    [sessionIds],
  );
  return rows.map((r) => r.id);
}

/** Dual writes waiting, over every version (for /metrics). */
export async function dualWriteBacklog(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_version_jobs");
  return rows[0]!.n;
}

/**
 * Live indexing waiting to run (capped count): the backfill yields while it is
 * behind, so new messages reach memory first.
 */
export async function liveBacklogDue(pool: pg.Pool, cap: number): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM (SELECT 1 FROM message_index_jobs WHERE run_at <= now() LIMIT $1) a)::int
          + (SELECT count(*) FROM (SELECT 1 FROM message_version_jobs WHERE run_at <= now() LIMIT $1) b)::int AS n`,
    [cap],
  );
  return rows[0]!.n;
}

/**
 * Ends a version's backfill once the cursor reached the target: a building
 * version becomes active and the active one previous, in one transaction
 * (holding new queueing for its milliseconds), so every search and every
 * indexing claim after the commit uses the new version. Returns false when
 * not ready.
 *
 * It does not wait for the dual writes to drain: under steady traffic one is
 * nearly always in flight, and a switch that waited for none could wait
 * for ever (the e2e test's re-embedding took 32 s instead of 11 at one
 * message every 60 ms). The ones still
 * queued become jobs of the main queue, which the new active version drains
 * like any new message; claims the old version holds are void (their marks
 * no longer land, PgIndexQueue), so every job is due again at once.
 */
export async function completeBackfill(pool: pg.Pool, versionId: number): Promise<"switched" | "completed" | false> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // As at registration: a transaction queueing a message (and, by the trigger, its dual write)
    // finishes first, so its dual write is seen below; one queueing after this commit sees the new
    // version active, and its job is claimed for it.
    await client.query("LOCK TABLE message_index_jobs IN SHARE MODE");
    const { rows } = await client.query<{ state: VersionState }>(
      `SELECT state FROM embedding_versions
        WHERE id = $1 AND backfill_cursor >= backfill_target AND completed_at IS NULL
        FOR UPDATE`,
      [versionId],
    );
    const state = rows[0]?.state;
    if (state !== "building" && state !== "active") {
      await client.query("ROLLBACK");
      return false;
    }
    if (state === "building") {
      await client.query("UPDATE embedding_versions SET state = 'previous' WHERE state = 'active'");
      await client.query("UPDATE embedding_versions SET state = 'active', activated_at = now(), completed_at = now() WHERE id = $1", [versionId]);
      // Attachment passages are not backfilled: only the active version's indexer embeds them, so the
      // switch queues them all again and the new version's indexer takes them (lexical search finds
      // them meanwhile).
      await client.query("INSERT INTO passage_index_jobs (passage_id) SELECT id FROM attachment_passages ON CONFLICT DO NOTHING");
      // A message is indexed or queued: one whose dual write is still queued is queued for the new active version.
      await client.query(
        `WITH moved AS (
           DELETE FROM message_version_jobs WHERE version_id = $1 RETURNING message_id
         )
         INSERT INTO message_index_jobs (message_id) SELECT message_id FROM moved ON CONFLICT (message_id) DO NOTHING`,
        [versionId],
      );
      await client.query("UPDATE message_index_jobs SET run_at = now() WHERE run_at > now()");
    } else {
      await client.query("UPDATE embedding_versions SET completed_at = now() WHERE id = $1", [versionId]);
    }
    await client.query(`SELECT pg_notify('${VERSIONS_CHANNEL}', '')`);
    await client.query("COMMIT");
    return state === "building" ? "switched" : "completed";
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Keeps the newest `keep` versions (building and active first, then the
 * previous ones by when they were last active) and retires the rest; returns
 * the retired versions whose vectors are still to be deleted.
 */
export async function retireBeyond(pool: pg.Pool, keep: number): Promise<EmbeddingVersion[]> {
  await pool.query(
    `WITH ranked AS (
       SELECT id, row_number() OVER (ORDER BY state = 'building' DESC, state = 'active' DESC, activated_at DESC NULLS LAST, id DESC) AS n
         FROM embedding_versions WHERE state <> 'retired'
     )
     UPDATE embedding_versions v SET state = 'retired', retired_at = now()
       FROM ranked WHERE ranked.id = v.id AND ranked.n > $1 AND v.state = 'previous'`,
    [keep],
  );
  // Jobs of versions no longer building are done by the queue of the active version (or not needed).
  await pool.query("DELETE FROM message_version_jobs j WHERE NOT EXISTS (SELECT 1 FROM embedding_versions v WHERE v.id = j.version_id AND v.state = 'building')");
  const { rows } = await pool.query<VersionRow>(`SELECT ${COLUMNS} FROM embedding_versions WHERE state = 'retired' AND dropped_at IS NULL ORDER BY id`);
  return rows.map(toVersion);
}

/** Deletes up to `limit` of a retired version's vectors from the PostgreSQL store; returns how many. */
export async function dropRetiredVectors(pool: pg.Pool, collection: string, limit: number): Promise<number> {
  const r = await pool.query(
    `DELETE FROM message_vectors WHERE ctid IN (
       SELECT ctid FROM message_vectors
        WHERE collection = $1 AND EXISTS (SELECT 1 FROM embedding_versions WHERE collection = $1 AND state = 'retired')
        LIMIT $2)`,
    [collection, limit],
  );
  return r.rowCount ?? 0;
}

export async function markDropped(pool: pg.Pool, versionId: number): Promise<void> {
  await pool.query("UPDATE embedding_versions SET dropped_at = now() WHERE id = $1 AND state = 'retired'", [versionId]);
}

/** Asks the re-embed maintenance job to run at the next tick (a version was registered). */
export async function reembedDueNow(pool: pg.Pool, jobName: string): Promise<void> {
  await pool.query("UPDATE maintenance_jobs SET next_run_at = now() WHERE name = $1", [jobName]);
}
