/**
 * SQL of reading attachments: the extraction queue (one row per stored
 * attachment, sql/021), the passages an extraction writes with their
 * indexing jobs, and the queue of attachments whose Qdrant points must go.
 */
import type pg from "pg";

export interface ExtractionJob {
  attachmentId: string;
  sessionId: string;
  storageKey: string;
  contentType: string;
  name: string;
  attempts: number;
}

export interface NewPassage {
  ordinal: number;
  page: number | null;
  start: number;
  end: number;
  content: string;
}

export interface ExtractionSummary {
  pageCount: number | null;
  chars: number;
  truncated: boolean;
}

export interface ExtractionState {
  status: "queued" | "done" | "skipped" | "failed";
  error: string | null;
  passages: number | null;
  pageCount: number | null;
  truncated: boolean | null;
}

export class PgPassageStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Claims due extractions (counting the attempt, leasing them for `leaseMs`) of attachments that are still stored. */
  async claimExtractions(limit: number, leaseMs: number): Promise<ExtractionJob[]> {
    const { rows } = await this.pool.query<{ attachment_id: string; session_id: string; storage_key: string; content_type: string; name: string; attempts: number }>(
      `WITH due AS (
         SELECT e.attachment_id FROM attachment_extractions e
          WHERE e.status = 'queued' AND e.run_at <= now()
          ORDER BY e.run_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE attachment_extractions e SET attempts = e.attempts + 1, updated_at = now(),
                run_at = now() + make_interval(secs => $2::double precision / 1000)
           FROM due WHERE e.attachment_id = due.attachment_id
         RETURNING e.attachment_id, e.attempts
       )
       SELECT a.id AS attachment_id, a.session_id, a.storage_key, a.content_type, a.name, c.attempts
         FROM claimed c JOIN attachments a ON a.id = c.attachment_id
        WHERE a.state <> 'uploading'`,
      [limit, leaseMs],
    );
    return rows.map((r) => ({ attachmentId: r.attachment_id, sessionId: r.session_id, storageKey: r.storage_key, contentType: r.content_type, name: r.name, attempts: r.attempts }));
  }

  /**
   * Writes the attachment's passages and their indexing jobs, and settles the
   * extraction as done: one statement, so a crash leaves the extraction
   * queued rather than half written (a passage is only ever written by the
   * statement that settles its extraction, so there is nothing to replace;
   * ON CONFLICT makes a repeat harmless).
   * False when the attachment is gone.
   */
  async savePassages(attachmentId: string, passages: readonly NewPassage[], summary: ExtractionSummary): Promise<boolean> {
    const { rows } = await this.pool.query<{ settled: number }>(
      `WITH att AS (
         SELECT id, session_id FROM attachments WHERE id = $1 FOR KEY SHARE
       ), ins AS (
         INSERT INTO attachment_passages (attachment_id, session_id, ordinal, page, char_start, char_end, content)
         SELECT att.id, att.session_id, u.ordinal, u.page, u.s, u.e, u.content
           FROM att, unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::text[]) AS u(ordinal, page, s, e, content)
         ON CONFLICT (attachment_id, ordinal) DO UPDATE SET page = EXCLUDED.page, char_start = EXCLUDED.char_start,
           char_end = EXCLUDED.char_end, content = EXCLUDED.content, vector_id = NULL, embedding_model = NULL, indexed_at = NULL
         RETURNING id
       ), jobs AS (
         INSERT INTO passage_index_jobs (passage_id) SELECT id FROM ins ON CONFLICT (passage_id) DO UPDATE SET run_at = now(), attempts = 0
       ), settled AS (
         UPDATE attachment_extractions e SET status = 'done', error = NULL, page_count = $7, chars = $8, truncated = $9,
                passages = (SELECT count(*) FROM ins), updated_at = now()
           FROM att WHERE e.attachment_id = att.id
         RETURNING 1
       )
       SELECT count(*)::int AS settled FROM settled`,
      [
        attachmentId,
        passages.map((p) => p.ordinal),
        passages.map((p) => p.page),
        passages.map((p) => p.start),
        passages.map((p) => p.end),
        passages.map((p) => p.content),
        summary.pageCount,
        summary.chars,
        summary.truncated,
      ],
    );
    return rows[0]!.settled > 0;
  }

  /** Settles an extraction that produced no passages: not a text-like file, or unreadable. */
  async settle(attachmentId: string, status: "skipped" | "failed", error: string | null): Promise<void> {
    await this.pool.query(
      "UPDATE attachment_extractions SET status = $2, error = left($3, 500), updated_at = now() WHERE attachment_id = $1",
      [attachmentId, status, error],
    );
  }

  /** A transient failure (the file store was away): due again after `retryAfterMs`. */
  async retryLater(attachmentId: string, retryAfterMs: number, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE attachment_extractions SET error = left($3, 500), updated_at = now(),
              run_at = now() + make_interval(secs => $2::double precision / 1000)
        WHERE attachment_id = $1`,
      [attachmentId, retryAfterMs, error],
    );
  }

  /** Where the attachment's extraction stands, for its uploader or a member who may see it; null otherwise. */
  async state(attachmentId: string, userId: string): Promise<ExtractionState | null> {
    const { rows } = await this.pool.query<{ status: ExtractionState["status"]; error: string | null; passages: number | null; page_count: number | null; truncated: boolean | null }>(
      `SELECT e.status, e.error, e.passages, e.page_count, e.truncated
         FROM attachment_extractions e JOIN attachments a ON a.id = e.attachment_id
        WHERE e.attachment_id = $1
          AND EXISTS (SELECT 1 FROM chat_session_members m WHERE m.session_id = a.session_id AND m.user_id = $2)
          AND (a.state = 'attached' OR a.uploader_id = $2)`,
      [attachmentId, userId],
    );
    const r = rows[0];
    return r ? { status: r.status, error: r.error, passages: r.passages, pageCount: r.page_count, truncated: r.truncated } : null;
  }

  /**
   * How many of these attachments are still waiting to be read. A settled
   * extraction (done, skipped, failed) has written all its passages in the
   * statement that settled it, so lexical search finds them from then on.
   */
  async unread(attachmentIds: readonly string[]): Promise<number> {
    if (attachmentIds.length === 0) return 0;
    const { rows } = await this.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM attachment_extractions WHERE attachment_id = ANY ($1::uuid[]) AND status = 'queued'",
      [attachmentIds],
    );
    return rows[0]!.n;
  }

  /** Extractions waiting (for /metrics). */
  async backlog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM attachment_extractions WHERE status = 'queued'");
    return rows[0]!.n;
  }

  /** Attachments whose passages were deleted and whose Qdrant points may remain. */
  async vectorPurges(limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ attachment_id: string }>(
      "SELECT attachment_id FROM attachment_vector_purge ORDER BY queued_at LIMIT $1",
      [limit],
    );
    return rows.map((r) => r.attachment_id);
  }

  async vectorsPurged(attachmentIds: readonly string[]): Promise<void> {
    if (attachmentIds.length === 0) return;
    await this.pool.query("DELETE FROM attachment_vector_purge WHERE attachment_id = ANY($1::uuid[])", [attachmentIds]);
  }
}

export const EXTRACT_CHANNEL = "memchat_extract";
