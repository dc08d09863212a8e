/**
 * Attachment rows (sql/020_attachments.sql). Every read on behalf of a user
 * checks chat_session_members in the same statement, as the message store
 * does, so an attachment is only ever seen by members of its session.
 */
import type pg from "pg";

export type AttachmentState = "uploading" | "pending" | "attached";

export interface AttachmentRecord {
  id: string;
  sessionId: string;
  uploaderId: string;
  messageId: number | null;
  state: AttachmentState;
  name: string;
  contentType: string;
  sizeBytes: number;
  sha256: string | null;
  storageKey: string;
  thumbnailKey: string | null;
  width: number | null;
  height: number | null;
  createdAt: string;
}

export interface AttachmentRow {
  id: string;
  session_id: string;
  uploader_id: string;
  message_id: string | number | null;
  state: AttachmentState;
  name: string;
  content_type: string;
  size_bytes: string | number;
  sha256: string | null;
  storage_key: string;
  thumbnail_key: string | null;
  width: number | null;
  height: number | null;
  created_at: Date | string;
}

export const ATTACHMENT_COLUMNS =
  "a.id, a.session_id, a.uploader_id, a.message_id, a.state, a.name, a.content_type, a.size_bytes, a.sha256, a.storage_key, a.thumbnail_key, a.width, a.height, a.created_at";

export const toAttachment = (r: AttachmentRow): AttachmentRecord => ({
  id: r.id,
  sessionId: r.session_id,
  uploaderId: r.uploader_id,
  messageId: r.message_id === null ? null : Number(r.message_id),
  state: r.state,
  name: r.name,
  contentType: r.content_type,
  sizeBytes: Number(r.size_bytes),
  sha256: r.sha256,
  storageKey: r.storage_key,
  thumbnailKey: r.thumbnail_key,
  width: r.width,
  height: r.height,
  createdAt: new Date(r.created_at).toISOString(),
});

/** Whether a user may upload into a session. */
export type SessionAccess = "member" | "archived" | "not_found";

export interface FinishedUpload {
  id: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  width?: number;
  height?: number;
}

/** A per-user lock for quota checks: uploads finishing together cannot both slip under it. */
const QUOTA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('attachment-quota:' || $1::text, 0))";

export class PgAttachmentStore {
  constructor(private readonly pool: pg.Pool) {}

  async sessionAccess(sessionId: string, userId: string): Promise<SessionAccess> {
    const { rows } = await this.pool.query<{ archived: boolean }>(
      `SELECT s.archived FROM chat_sessions s
         JOIN chat_session_members mem ON mem.session_id = s.id AND mem.user_id = $2
        WHERE s.id = $1 AND s.purging_at IS NULL`,
      [sessionId, userId],
    );
    if (!rows[0]) return "not_found";
    return rows[0].archived ? "archived" : "member";
  }

  /** Bytes the user's attachments take (finished ones: uploads in progress count when they finish). */
  async usedBytes(userId: string): Promise<number> {
    const { rows } = await this.pool.query<{ used: string }>(
      "SELECT coalesce(sum(size_bytes), 0)::text AS used FROM attachments WHERE uploader_id = $1 AND state <> 'uploading'",
      [userId],
    );
    return Number(rows[0]!.used);
  }

  /** The row of an upload about to stream, so that its object is known before a byte is stored. */
  async begin(a: { id: string; sessionId: string; uploaderId: string; name: string; declaredType: string | null; storageKey: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO attachments (id, session_id, uploader_id, name, declared_type, storage_key)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [a.id, a.sessionId, a.uploaderId, a.name, a.declaredType, a.storageKey],
    );
  }

  /** Records where an upload's thumbnail goes, before it is stored (so a crash cannot orphan it). */
  async setThumbnailKey(id: string, key: string | null): Promise<void> {
    await this.pool.query("UPDATE attachments SET thumbnail_key = $2 WHERE id = $1 AND state = 'uploading'", [id, key]);
  }

  /**
   * The upload is stored whole: it becomes pending (sendable), unless it
   * would take its uploader over `quotaBytes`, checked under a per-user lock.
   */
  async finish(f: FinishedUpload, uploaderId: string, quotaBytes: number | undefined): Promise<AttachmentRecord | "quota" | "gone"> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      if (quotaBytes !== undefined) {
        await client.query(QUOTA_LOCK, [uploaderId]);
        const { rows } = await client.query<{ used: string }>(
          "SELECT coalesce(sum(size_bytes), 0)::text AS used FROM attachments WHERE uploader_id = $1 AND state <> 'uploading'",
          [uploaderId],
        );
        if (Number(rows[0]!.used) + f.sizeBytes > quotaBytes) {
          await client.query("ROLLBACK");
          return "quota";
        }
      }
      const { rows } = await client.query<AttachmentRow>(
        `UPDATE attachments a SET state = 'pending', content_type = $2, size_bytes = $3, sha256 = $4, width = $5, height = $6, created_at = now()
          WHERE a.id = $1 AND a.state = 'uploading'
        RETURNING ${ATTACHMENT_COLUMNS}`,
        [f.id, f.contentType, f.sizeBytes, f.sha256, f.width ?? null, f.height ?? null],
      );
      await client.query("COMMIT");
      return rows[0] ? toAttachment(rows[0]) : "gone";
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Removes a row (any state) and tells which objects it had; the trigger queues them for the purger. */
  async remove(id: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ storage_key: string; thumbnail_key: string | null }>(
      "DELETE FROM attachments WHERE id = $1 RETURNING storage_key, thumbnail_key",
      [id],
    );
    return rows.flatMap((r) => (r.thumbnail_key ? [r.storage_key, r.thumbnail_key] : [r.storage_key]));
  }

  /** An attachment the user may read: they are a member of its session, and it is sent or their own upload. */
  async getForMember(id: string, userId: string): Promise<AttachmentRecord | null> {
    const { rows } = await this.pool.query<AttachmentRow>(
      `SELECT ${ATTACHMENT_COLUMNS} FROM attachments a
         JOIN chat_session_members mem ON mem.session_id = a.session_id AND mem.user_id = $2
        WHERE a.id = $1 AND (a.state = 'attached' OR (a.state = 'pending' AND a.uploader_id = $2))`,
      [id, userId],
    );
    return rows[0] ? toAttachment(rows[0]) : null;
  }

  /** A row by id, for the server's own use (no access check). */
  async byId(id: string): Promise<AttachmentRecord | null> {
    const { rows } = await this.pool.query<AttachmentRow>(`SELECT ${ATTACHMENT_COLUMNS} FROM attachments a WHERE a.id = $1`, [id]);
    return rows[0] ? toAttachment(rows[0]) : null;
  }

  /** The user's own unsent upload: deleted (its objects are queued for the purger); false when there is none. */
  async discardPending(id: string, userId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      "DELETE FROM attachments WHERE id = $1 AND uploader_id = $2 AND state = 'pending'",
      [id, userId],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Sent attachments of the messages, by message id, in upload order. */
  async forMessages(messageIds: readonly number[]): Promise<Map<number, AttachmentRecord[]>> {
    const byMessage = new Map<number, AttachmentRecord[]>();
    if (messageIds.length === 0) return byMessage;
    const { rows } = await this.pool.query<AttachmentRow>(
      `SELECT ${ATTACHMENT_COLUMNS} FROM attachments a WHERE a.message_id = ANY ($1::bigint[]) ORDER BY a.message_id, a.created_at, a.id`,
      [messageIds],
    );
    for (const r of rows.map(toAttachment)) byMessage.set(r.messageId!, [...(byMessage.get(r.messageId!) ?? []), r]);
    return byMessage;
  }

  /**
   * Deletes up to `limit` uploads never sent: pending ones finished before
   * `cutoff`, and uploads that stopped streaming before it (their process
   * died mid-upload). Returns how many; their objects are queued for the purger.
   */
  async expireUnsent(cutoff: Date, limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM attachments WHERE id IN (
         SELECT id FROM attachments WHERE state <> 'attached' AND created_at < $1 ORDER BY created_at LIMIT $2)`,
      [cutoff, limit],
    );
    return rowCount ?? 0;
  }

  /** Object keys waiting to be deleted from the file store, oldest first. */
  async purgeBatch(limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ storage_key: string }>(
      "SELECT storage_key FROM attachment_object_purge ORDER BY queued_at, storage_key LIMIT $1",
      [limit],
    );
    return rows.map((r) => r.storage_key);
  }

  async purged(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.pool.query("DELETE FROM attachment_object_purge WHERE storage_key = ANY ($1::text[])", [keys]);
  }

  async purgeFailed(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.pool.query("UPDATE attachment_object_purge SET attempts = attempts + 1 WHERE storage_key = ANY ($1::text[])", [keys]);
  }

  /** For /metrics: attachments and their bytes by state, across the cluster. */
  async totals(): Promise<{ state: AttachmentState; count: number; bytes: number }[]> {
    const { rows } = await this.pool.query<{ state: AttachmentState; count: string; bytes: string }>(
      "SELECT state, count(*)::text AS count, coalesce(sum(size_bytes), 0)::text AS bytes FROM attachments GROUP BY state",
    );
    return rows.map((r) => ({ state: r.state, count: Number(r.count), bytes: Number(r.bytes) }));
  }

  async purgeBacklog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM attachment_object_purge");
    return Number(rows[0]!.n);
  }
}
