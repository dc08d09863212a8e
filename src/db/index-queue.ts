/**
 * The indexing queue: one row in message_index_jobs per message waiting to be
 * embedded (sql/004_index_jobs.sql says why it is not chat_messages itself).
 * Invariant: a message that is not a streaming reply (one gets its job when
 * it ends) is indexed in the active version exactly when it has no job;
 * closing the job is the whole mark (sql/031 says why nothing is written on
 * the message row).
 * Claims use FOR UPDATE SKIP LOCKED so any number of nodes can drain it; a
 * claim counts the attempt and pushes run_at out by a lease, so a node that
 * dies mid-batch only delays those jobs.
 */
import type pg from "pg";
import type { MessageRole } from "../memory/types.js";

export interface QueuedMessage {
  id: number;
  sessionId: string;
  /** Session owner: the tenant under which the vector is stored. */
  ownerId: string;
  /** chat_messages.user_id: author, or the user whose turn an assistant row answered. */
  authorId: string | null;
  role: MessageRole;
  content: string;
  createdAt: Date;
  attempts: number;
}

/**
 * A queue bound to a version (`param`, an int, NULL for none) marks only
 * while that version is active: a batch claimed and embedded for the old
 * version just before a switch is not indexed in the new one, so its jobs
 * stay (completeBackfill makes them due again) and the new version's indexer
 * takes them.
 */
const MARKS_LAND = (param: string) => `(${param}::int IS NULL OR EXISTS (SELECT 1 FROM embedding_versions WHERE id = ${param}::int AND state = 'active'))`;

/**
 * The marks of a batch (ids, version: parameter names) that may land: the
 * version is active, and the message's job, if it still has one, has been
 * claimed since it was queued (attempts > 0). Queueing a message
 * again (an interrupted reply's longer text, setInterruptedContent) resets
 * its job's attempts to 0: a batch that claimed it before holds the old text,
 * so it must not close the job, which is claimed and embedded again. The
 * delete re-checks attempts on a row changed while it runs, so a queueing
 * that commits meanwhile is not lost either.
 */
const MARKABLE = (ids: string, version: string) => `SELECT id FROM unnest(${ids}::bigint[]) AS u(id)
   WHERE ${MARKS_LAND(version)}
     AND NOT EXISTS (SELECT 1 FROM message_index_jobs j WHERE j.message_id = u.id AND j.attempts = 0)`;
const CLOSE_JOBS = "DELETE FROM message_index_jobs j USING u WHERE j.message_id = u.id AND j.attempts > 0";

/*
 * Claim and mark are sent unnamed, so each is planned with its real batch
 * size and the tables' current size. Prepared once per connection, their
 * generic plans were made while the tables were small and kept as they grew:
 * hash joins over every job and every message, 20-30 ms a claim at 36,000
 * messages against about 1 ms planned afresh. Planning the claim costs
 * 1.1-1.6 ms (EXPLAIN), and there are a few dozen claims a second at most.
 */
/**
 * One statement per batch for the rest of the round trip: it marks the
 * previous batch's messages indexed ($4 ids, as MARK_INDEXED does), then
 * claims the next messages and, when $5, tops the batch up with attachment
 * passages (messages first, as before). At load each statement costs
 * PostgreSQL about a millisecond whatever it carries (README, Tails at a
 * fixed load), so claim, passage claim and mark were three of a batch's
 * four. The mark's rows are left out of the claim: one statement may not
 * lock and delete the same row.
 *
 * Rows are fetched by `id = ANY (ARRAY(SELECT ...))`, not by joining the
 * claimed jobs: planned with LIMIT $1 (64) claimed rows against a table of
 * a few thousand messages, a join hashed the whole of chat_messages (5 ms of
 * a 6 ms claim, auto_explain), as it did message_index_jobs for the lease
 * update; an array of ids is read through the primary key whatever the
 * tables' sizes.
 */
const CLAIM = `
WITH u AS (
  ${MARKABLE("$4", "$3")}
), done AS (
  ${CLOSE_JOBS}
), due AS (
  SELECT message_id FROM message_index_jobs
   WHERE run_at <= now()
     AND message_id <> ALL($4::bigint[])
     -- Bound to a version ($3): nothing is claimed once it is no longer the active one (sql/017).
     AND ($3::int IS NULL OR EXISTS (SELECT 1 FROM embedding_versions WHERE id = $3 AND state = 'active'))
   ORDER BY run_at, message_id
   LIMIT $1
   FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE message_index_jobs j
     SET attempts = j.attempts + 1,
         run_at = now() + make_interval(secs => $2::double precision / 1000)
   WHERE j.message_id = ANY (ARRAY(SELECT message_id FROM due))
  RETURNING j.message_id, j.attempts
), pdue AS (
  SELECT passage_id FROM passage_index_jobs
   WHERE $5::boolean AND run_at <= now()
   ORDER BY run_at, passage_id
   LIMIT greatest($1 - (SELECT count(*) FROM due), 0)
   FOR UPDATE SKIP LOCKED
), pclaimed AS (
  UPDATE passage_index_jobs j
     SET attempts = j.attempts + 1,
         run_at = now() + make_interval(secs => $2::double precision / 1000)
   WHERE j.passage_id = ANY (ARRAY(SELECT passage_id FROM pdue))
  RETURNING j.passage_id, j.attempts
)
SELECT false AS passage, m.id, NULL::uuid AS attachment_id, m.session_id, s.owner_id, m.user_id AS author_id, m.role, m.content, m.created_at, c.attempts
  FROM chat_messages m
  JOIN claimed c ON c.message_id = m.id
  JOIN chat_sessions s ON s.id = m.session_id
 WHERE m.id = ANY (ARRAY(SELECT message_id FROM claimed))
UNION ALL
SELECT true, p.id, p.attachment_id, p.session_id, s.owner_id, a.uploader_id, NULL, p.content, a.created_at, c.attempts
  FROM attachment_passages p
  JOIN pclaimed c ON c.passage_id = p.id
  JOIN attachments a ON a.id = p.attachment_id
  JOIN chat_sessions s ON s.id = p.session_id
 WHERE p.id = ANY (ARRAY(SELECT passage_id FROM pclaimed))`;

const MARK_INDEXED = `
WITH u AS (
  ${MARKABLE("$1", "$2")}
)
${CLOSE_JOBS}`;

/** A claim statement's row: a message (passage false) or an attachment passage. */
export interface ClaimRow {
  passage: boolean;
  id: number | string;
  attachment_id: string | null;
  session_id: string;
  owner_id: string;
  author_id: string | null;
  role: MessageRole | null;
  content: string;
  created_at: Date;
  attempts: number;
}

/** Splits a claim's rows into messages and passages, each in id order. */
export function claimedBatch(rows: readonly ClaimRow[]): ClaimedBatch {
  const messages: QueuedMessage[] = [];
  const passages: QueuedPassage[] = [];
  for (const r of rows) {
    if (r.passage) {
      passages.push({ id: Number(r.id), attachmentId: r.attachment_id!, sessionId: r.session_id, ownerId: r.owner_id, authorId: r.author_id, content: r.content, createdAt: r.created_at, attempts: r.attempts });
    } else {
      messages.push({ id: Number(r.id), sessionId: r.session_id, ownerId: r.owner_id, authorId: r.author_id, role: r.role!, content: r.content, createdAt: r.created_at, attempts: r.attempts });
    }
  }
  messages.sort((a, b) => a.id - b.id);
  passages.sort((a, b) => a.id - b.id);
  return { messages, passages };
}

export interface ClaimRequest {
  limit: number;
  leaseMs: number;
  /** The previous batch's message ids, upserted: their jobs are closed in the claim's statement. */
  done?: readonly number[] | undefined;
  withPassages?: boolean;
}

export interface ClaimedBatch {
  messages: QueuedMessage[];
  passages: QueuedPassage[];
}

/** What an Indexer drains: the queue of the active version, or a building version's dual writes. */
export interface IndexJobs {
  claim(limit: number, leaseMs: number): Promise<QueuedMessage[]>;
  /**
   * Marks `done` indexed (as markIndexed) and claims the next batch in one
   * statement; passages too when `withPassages` (only the active version
   * indexes them).
   */
  claimBatch(req: ClaimRequest): Promise<ClaimedBatch>;
  /** Closes the jobs of messages whose vectors are stored. */
  markIndexed(ids: readonly number[]): Promise<void>;
  markFailed(items: readonly { id: number; retryAfterMs: number }[], error: string): Promise<void>;
}

export class PgIndexQueue implements IndexJobs {
  constructor(
    private readonly pool: pg.Pool,
    /** Claim only while this embedding version is the active one (undefined: whatever is active). */
    private readonly versionId?: number,
  ) {}

  /** The same queue, claimed only while `versionId` is the active version. */
  forVersion(versionId: number): PgIndexQueue {
    return new PgIndexQueue(this.pool, versionId);
  }

  async claim(limit: number, leaseMs: number): Promise<QueuedMessage[]> {
    return (await this.claimBatch({ limit, leaseMs })).messages;
  }

  async claimBatch(req: ClaimRequest): Promise<ClaimedBatch> {
    const { rows } = await this.pool.query<ClaimRow>(CLAIM, [req.limit, req.leaseMs, this.versionId ?? null, req.done ?? [], req.withPassages ?? false]);
    return claimedBatch(rows);
  }

  async markIndexed(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(MARK_INDEXED, [ids, this.versionId ?? null]);
  }

  /** Records the error; the row becomes due again after `retryAfterMs` (exponential backoff, computed by the caller). */
  async markFailed(items: readonly { id: number; retryAfterMs: number }[], error: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE message_index_jobs j SET last_error = left($3, 500), run_at = now() + make_interval(secs => u.delay / 1000)
         FROM unnest($1::bigint[], $2::double precision[]) AS u(id, delay)
        WHERE j.message_id = u.id`,
      [items.map((i) => i.id), items.map((i) => i.retryAfterMs), error],
    );
  }

  /** Messages waiting to be indexed (for /metrics). */
  async backlog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_index_jobs");
    return rows[0]!.n;
  }

  /** Wakes the indexers of other nodes; they LISTEN on this channel. */
  async notify(): Promise<void> {
    await this.pool.query(`SELECT pg_notify('${INDEX_CHANNEL}', '')`);
  }
}

export const INDEX_CHANNEL = "memchat_index";

/** A passage of an attachment waiting to be embedded (passage_index_jobs, sql/021). */
export interface QueuedPassage {
  id: number;
  attachmentId: string;
  sessionId: string;
  /** Session owner: the tenant. */
  ownerId: string;
  /** The attachment's uploader. */
  authorId: string | null;
  content: string;
  createdAt: Date;
  attempts: number;
}

/**
 * The passage half of the indexing queue. The indexer fills a batch with
 * messages first and tops it up with passages, so a long document never
 * holds back the indexing of what people are writing; the claim is part of
 * the message claim's statement (PgIndexQueue.claimBatch).
 */
export class PgPassageIndexQueue {
  constructor(private readonly pool: pg.Pool) {}

  async markIndexed(items: readonly { id: number; vectorId: string }[], model: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `WITH u AS (
         SELECT * FROM unnest($1::bigint[], $2::uuid[]) AS u(id, vector_id)
       ), done AS (
         DELETE FROM passage_index_jobs j USING u WHERE j.passage_id = u.id
       )
       UPDATE attachment_passages p SET indexed_at = now(), vector_id = u.vector_id, embedding_model = $3
         FROM u WHERE p.id = u.id`,
      [items.map((i) => i.id), items.map((i) => i.vectorId), model],
    );
  }

  async markFailed(items: readonly { id: number; retryAfterMs: number }[], error: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE passage_index_jobs j SET last_error = left($3, 500), run_at = now() + make_interval(secs => u.delay / 1000)
         FROM unnest($1::bigint[], $2::double precision[]) AS u(id, delay)
        WHERE j.passage_id = u.id`,
      [items.map((i) => i.id), items.map((i) => i.retryAfterMs), error],
    );
  }

  async backlog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM passage_index_jobs");
    return rows[0]!.n;
  }
}
