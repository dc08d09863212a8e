/**
 * The dual-write queue of a building embedding version (sql/017,
 * message_version_jobs): messages queued while it builds, embedded into it
 * by an Indexer of its own. Claims and backoff work as in the main queue
 * (src/db/index-queue.ts); a failure here is retried without touching the
 * active version's job, and the other way round.
 */
import type pg from "pg";
import { type ClaimedBatch, type ClaimRequest, type ClaimRow, claimedBatch, type IndexJobs, type QueuedMessage } from "./index-queue.js";

/** Marks the previous batch ($4) and claims the next, in one statement as the main queue does (rows read by id arrays, as there). */
const CLAIM = `
WITH done AS (
  DELETE FROM message_version_jobs WHERE version_id = $3 AND message_id = ANY($4::bigint[])
), due AS (
  SELECT message_id FROM message_version_jobs
   WHERE version_id = $3 AND run_at <= now() AND message_id <> ALL($4::bigint[])
     AND EXISTS (SELECT 1 FROM embedding_versions WHERE id = $3 AND state = 'building')
   ORDER BY run_at, message_id
   LIMIT $1
   FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE message_version_jobs j
     SET attempts = j.attempts + 1,
         run_at = now() + make_interval(secs => $2::double precision / 1000)
   WHERE j.version_id = $3 AND j.message_id = ANY (ARRAY(SELECT message_id FROM due))
  RETURNING j.message_id, j.attempts
)
SELECT false AS passage, m.id, NULL::uuid AS attachment_id, m.session_id, s.owner_id, m.user_id AS author_id, m.role, m.content, m.created_at, c.attempts
  FROM chat_messages m
  JOIN claimed c ON c.message_id = m.id
  JOIN chat_sessions s ON s.id = m.session_id
 WHERE m.id = ANY (ARRAY(SELECT message_id FROM claimed))`;

export class PgVersionJobQueue implements IndexJobs {
  constructor(
    private readonly pool: pg.Pool,
    readonly versionId: number,
  ) {}

  async claim(limit: number, leaseMs: number): Promise<QueuedMessage[]> {
    return (await this.claimBatch({ limit, leaseMs })).messages;
  }

  /** Passages are the active version's: a building one never claims them. */
  async claimBatch(req: ClaimRequest): Promise<ClaimedBatch> {
    const { rows } = await this.pool.query<ClaimRow>(CLAIM, [req.limit, req.leaseMs, this.versionId, req.done ?? []]);
    return claimedBatch(rows);
  }

  async markIndexed(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query("DELETE FROM message_version_jobs WHERE version_id = $1 AND message_id = ANY($2::bigint[])", [this.versionId, ids]);
  }

  async markFailed(items: readonly { id: number; retryAfterMs: number }[], error: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE message_version_jobs j SET last_error = left($4, 500), run_at = now() + make_interval(secs => u.delay / 1000)
         FROM unnest($2::bigint[], $3::double precision[]) AS u(id, delay)
        WHERE j.version_id = $1 AND j.message_id = u.id`,
      [this.versionId, items.map((i) => i.id), items.map((i) => i.retryAfterMs), error],
    );
  }
}
