/**
 * A send that carries files: one transaction that locks the sender's
 * pending uploads, stores the message with the same statement as a plain
 * send (INSERT_USER_MESSAGE), and attaches the uploads to it. Either all of
 * it happens or none: an upload that is not the sender's own unsent file in
 * this session (someone else's, another session's, already sent, expired)
 * refuses the whole send. A retry of a send that was stored answers the
 * stored row, files included.
 */
import type pg from "pg";
import type { InsertResult, NewUserMessage } from "../chat/ports.js";
import { isUniqueViolation } from "./errors.js";
import { type MessageRow, toMessage } from "./rows.js";

const LOCK_PENDING = `
SELECT id FROM attachments
 WHERE id = ANY ($1::uuid[]) AND session_id = $2 AND uploader_id = $3 AND state = 'pending'
 ORDER BY id
   FOR UPDATE`;

const ATTACH = `
UPDATE attachments a SET state = 'attached', message_id = $2, attached_at = now()
 WHERE a.id = ANY ($1::uuid[])
RETURNING a.id, a.name, a.content_type, a.size_bytes, a.thumbnail_key, a.width, a.height, a.created_at`;

/** The message store's statements (src/db/pg-message-store.ts), passed in so that neither module imports the other. */
export interface SendStatements {
  insert: string;
  findByClientId: string;
  refusal: string;
}

export async function insertWithAttachments(pool: pg.Pool, m: NewUserMessage, sql: SendStatements): Promise<InsertResult> {
  const ids = [...new Set(m.attachmentIds ?? [])];
  const params = [m.sessionId, m.userId, m.clientMessageId, m.content, m.replyOwnerNode ?? null];
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const locked = await client.query(LOCK_PENDING, [ids, m.sessionId, m.userId]);
    if (locked.rowCount === ids.length) {
      await client.query("SAVEPOINT send");
      try {
        const { rows } = await client.query<MessageRow & { is_reply: boolean }>(sql.insert, params);
        const user = rows.find((r) => !r.is_reply);
        const reply = rows.find((r) => r.is_reply);
        if (user) {
          const attached = await client.query<{
            id: string; name: string; content_type: string; size_bytes: string; thumbnail_key: string | null; width: number | null; height: number | null; created_at: Date;
          }>(ATTACH, [ids, user.id]);
          await client.query("COMMIT");
          const refs = attached.rows
            .sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || a.id.localeCompare(b.id))
            .map((a) => ({
              id: a.id,
              name: a.name,
              contentType: a.content_type,
              size: Number(a.size_bytes),
              thumbnail: a.thumbnail_key !== null,
              width: a.width,
              height: a.height,
            }));
          return { kind: "inserted", message: { ...toMessage(user), attachments: refs }, reply: reply ? toMessage(reply) : null };
        }
      } catch (err) {
        await client.query("ROLLBACK TO SAVEPOINT send");
        if (isUniqueViolation(err, "chat_messages_one_streaming_turn")) {
          await client.query("ROLLBACK");
          return { kind: "busy" };
        }
        if (!isUniqueViolation(err, "chat_messages_client_id")) throw err;
      }
    }
    await client.query("ROLLBACK");
    // Nothing stored: a retry of a stored send, a refusal of the session, or files that are not the sender's to attach.
    const { rows } = await pool.query<MessageRow>(sql.findByClientId, params.slice(0, 3));
    if (rows[0]) return { kind: "duplicate", message: toMessage(rows[0]) };
    const refusal = await pool.query<{ archived: boolean }>(sql.refusal, params.slice(0, 2));
    if (!refusal.rows[0]) return { kind: "not_found" };
    if (refusal.rows[0].archived) return { kind: "archived" };
    return { kind: "bad_attachments" };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
