/**
 * The indexing queue is chat_messages itself: a row with indexed_at IS NULL
 * waits to be embedded. Claims use FOR UPDATE SKIP LOCKED so any number of
 * nodes can drain it; a claim counts the attempt and pushes index_after out
 * by a lease, so a node that dies mid-batch only delays those rows.
 */
import type pg from "pg";
import type { MessageRole } from "../memory/types.js";

export interface QueuedMessage {
  id: number;
  sessionId: string;
  /** Session owner: the tenant under which the vector is stored. */
  ownerId: string;
  role: MessageRole;
  content: string;
  createdAt: Date;
  attempts: number;
}

const CLAIM = `
WITH due AS (
  SELECT id FROM chat_messages
   WHERE indexed_at IS NULL AND index_after <= now() AND status <> 'streaming'
   ORDER BY index_after, id
   LIMIT $1
   FOR UPDATE SKIP LOCKED
)
UPDATE chat_messages m
   SET index_attempts = m.index_attempts + 1,
       index_after = now() + make_interval(secs => $2::double precision / 1000)
  FROM due, chat_sessions s
 WHERE m.id = due.id AND s.id = m.session_id
RETURNING m.id, m.session_id, s.owner_id, m.role, m.content, m.created_at, m.index_attempts`;

export class PgIndexQueue {
  constructor(private readonly pool: pg.Pool) {}

  async claim(limit: number, leaseMs: number): Promise<QueuedMessage[]> {
    const { rows } = await this.pool.query<{
      id: number; session_id: string; owner_id: string; role: MessageRole; content: string; created_at: Date; index_attempts: number;
    }>(CLAIM, [limit, leaseMs]);
    return rows
      .map((r) => ({ id: r.id, sessionId: r.session_id, ownerId: r.owner_id, role: r.role, content: r.content, createdAt: r.created_at, attempts: r.index_attempts }))
      .sort((a, b) => a.id - b.id);
  }

  async markIndexed(items: readonly { id: number; vectorId: string }[], model: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE chat_messages m SET indexed_at = now(), vector_id = u.vector_id, embedding_model = $3, index_error = NULL
         FROM unnest($1::bigint[], $2::uuid[]) AS u(id, vector_id)
        WHERE m.id = u.id`,
      [items.map((i) => i.id), items.map((i) => i.vectorId), model],
    );
  }

  /** Records the error; the row becomes due again after `retryAfterMs` (exponential backoff, computed by the caller). */
  async markFailed(items: readonly { id: number; retryAfterMs: number }[], error: string): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE chat_messages m SET index_error = left($3, 500), index_after = now() + make_interval(secs => u.delay / 1000)
         FROM unnest($1::bigint[], $2::double precision[]) AS u(id, delay)
        WHERE m.id = u.id AND m.indexed_at IS NULL`,
      [items.map((i) => i.id), items.map((i) => i.retryAfterMs), error],
    );
  }

  /** Messages waiting to be indexed (for /metrics). */
  async backlog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE indexed_at IS NULL");
    return rows[0]!.n;
  }

  /** Makes an updated row (an assistant reply that just completed) due now. */
  async requeue(messageId: number): Promise<void> {
    await this.pool.query("UPDATE chat_messages SET indexed_at = NULL, index_after = now() WHERE id = $1", [messageId]);
  }

  /** Wakes the indexers of other nodes; they LISTEN on this channel. */
  async notify(): Promise<void> {
    await this.pool.query(`SELECT pg_notify('${INDEX_CHANNEL}', '')`);
  }
}

export const INDEX_CHANNEL = "memchat_index";
