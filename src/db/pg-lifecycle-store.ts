/**
 * Sessions over time: archiving (by the owner, when idle, when full),
 * successors of full sessions, and the batched deletion of archived sessions
 * that retention removes. Deletion is a sequence of short statements, each
 * its own transaction, so none holds locks long enough to stall sends.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { LifecycleStore, RolloverResult, SetArchivedResult } from "../chat/ports.js";
import { MESSAGE_COLUMNS, type MessageRow, SESSION_COLUMNS, type SessionRow, toMessage, toSession, VISIBLE_SESSION } from "./rows.js";

// One statement: the owner check and the change see the same snapshot. A session retention has
// started deleting (purging_at) cannot be unarchived; the condition is on the row, so it is
// checked again after waiting for a concurrent retention's lock.
const SET_ARCHIVED = `
WITH ${VISIBLE_SESSION}, upd AS (
  UPDATE chat_sessions s
     SET archived = $3, archived_at = CASE WHEN $3 THEN now() END, updated_at = now()
   WHERE s.id IN (SELECT id FROM visible WHERE owner_id = $2) AND s.archived <> $3 AND s.purging_at IS NULL
  RETURNING ${SESSION_COLUMNS}
)
SELECT (SELECT count(*) FROM visible)::int AS visible, (SELECT count(*) FROM visible WHERE owner_id = $2)::int AS owned,
       upd.*, 'owner' AS member_role
  FROM (SELECT 1) one LEFT JOIN upd ON true`;

const OWNED_SESSION = `
SELECT ${SESSION_COLUMNS}, mem.role AS member_role
  FROM chat_sessions s JOIN chat_session_members mem ON mem.session_id = s.id AND mem.user_id = $2
 WHERE s.id = $1`;

// SKIP LOCKED: a session locked by a send right now is not idle anyway. The row lock re-reads
// last_message_at, so a message committed after the snapshot keeps its session out.
const ARCHIVE_IDLE = `
WITH pick AS (
  SELECT id FROM chat_sessions
   WHERE NOT archived AND coalesce(last_message_at, created_at) < $1
   ORDER BY coalesce(last_message_at, created_at)
   LIMIT $3
   FOR UPDATE SKIP LOCKED
)
UPDATE chat_sessions s SET archived = true, archived_at = $2, updated_at = now()
  FROM pick WHERE s.id = pick.id
RETURNING s.id, s.archived_at`;

const FULL_SESSIONS = `SELECT id FROM chat_sessions WHERE NOT archived AND message_count >= $1 ORDER BY message_count DESC LIMIT $2`;

const EXPIRED = `
SELECT id FROM chat_sessions
 WHERE archived AND (purging_at IS NOT NULL OR archived_at < $1)
 ORDER BY archived_at
 LIMIT $2`;

// Members and invitations go first, in one short statement: from then on nobody reads, sends to
// or unarchives the session, whatever is left of it.
const BEGIN_PURGE = `
WITH mark AS (
  UPDATE chat_sessions SET purging_at = coalesce(purging_at, $3)
   WHERE id = $1 AND archived AND (purging_at IS NOT NULL OR archived_at < $2)
  RETURNING id
), gone AS (
  DELETE FROM chat_session_members WHERE session_id IN (SELECT id FROM mark) RETURNING user_id
), inv AS (
  DELETE FROM chat_session_invitations WHERE session_id IN (SELECT id FROM mark)
)
SELECT (SELECT count(*) FROM mark)::int AS found, ARRAY(SELECT user_id FROM gone) AS members,
       ARRAY(SELECT id FROM chat_messages WHERE session_id IN (SELECT id FROM mark) AND status = 'streaming') AS streaming`;

// Newest first: a reply goes before the question it answers, so reply_to_id rarely needs nulling.
const PURGE_MESSAGES = `
DELETE FROM chat_messages WHERE id IN (
  SELECT m.id FROM chat_messages m
   WHERE m.session_id = $1 AND EXISTS (SELECT 1 FROM chat_sessions s WHERE s.id = $1 AND s.purging_at IS NOT NULL)
   ORDER BY m.seq DESC LIMIT $2)`;

const PURGE_VECTORS = `
DELETE FROM message_vectors WHERE ctid IN (
  SELECT ctid FROM message_vectors
   WHERE collection IN (SELECT collection FROM embedding_versions) AND session_id = $1
   LIMIT $2)`;

const FINISH_PURGE = `DELETE FROM chat_sessions WHERE id = $1 AND purging_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chat_messages WHERE session_id = $1)`;

export class PgLifecycleStore implements LifecycleStore {
  constructor(private readonly pool: pg.Pool) {}

  async setArchived(sessionId: string, userId: string, archived: boolean): Promise<SetArchivedResult> {
    const { rows } = await this.pool.query<SessionRow & { visible: number; owned: number }>(SET_ARCHIVED, [sessionId, userId, archived]);
    const r = rows[0]!;
    if (r.id) return { kind: "changed", session: toSession(r) };
    if (r.visible === 0) return { kind: "not_found" };
    if (r.owned === 0) return { kind: "forbidden" };
    const current = await this.pool.query<SessionRow>(OWNED_SESSION, [sessionId, userId]);
    const s = current.rows[0];
    if (!s) return { kind: "not_found" };
    // Already in the asked state (or being deleted, when unarchiving).
    return s.archived === archived ? { kind: "unchanged", session: toSession(s) } : { kind: "not_found" };
  }

  async archiveIdle(idleSince: Date, now: Date, limit: number): Promise<{ sessionId: string; archivedAt: string }[]> {
    const { rows } = await this.pool.query<{ id: string; archived_at: Date }>(ARCHIVE_IDLE, [idleSince, now, limit]);
    return rows.map((r) => ({ sessionId: r.id, archivedAt: r.archived_at.toISOString() }));
  }

  async fullSessions(maxMessages: number, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(FULL_SESSIONS, [maxMessages, limit]);
    return rows.map((r) => r.id);
  }

  /**
   * Archives a full session and creates its successor, in one transaction:
   * same owner, title and assistant, its settings, and its members (they
   * consented to the predecessor, so they join directly). The predecessor
   * gets a last, system message naming the successor. Null when the session
   * is not (or no longer) full and live: someone else rolled it over.
   */
  async rollover(sessionId: string, maxMessages: number, notice: (successorId: string) => string): Promise<RolloverResult | null> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const { rows: locked } = await client.query<{ owner_id: string; title: string; assistant_enabled: boolean; configuration_id: number | null }>(
        "SELECT owner_id, title, assistant_enabled, configuration_id FROM chat_sessions WHERE id = $1 AND NOT archived AND message_count >= $2 FOR NO KEY UPDATE",
        [sessionId, maxMessages],
      );
      const old = locked[0];
      if (!old) {
        await client.query("ROLLBACK");
        return null;
      }
      const successorId = randomUUID();
      const title = old.title.endsWith("(continued)") ? old.title : `${old.title.slice(0, 185)} (continued)`.trim();
      const { rows: created } = await client.query<SessionRow>(
        // The successor keeps the configuration. Should it be retired meanwhile, turns fall back to the default anyway (see ragConfig).
        `INSERT INTO chat_sessions AS s (id, owner_id, title, assistant_enabled, configuration_id) VALUES ($1, $2, $3, $4, $5)
         RETURNING ${SESSION_COLUMNS}, 'owner' AS member_role`,
        [successorId, old.owner_id, title, old.assistant_enabled, old.configuration_id],
      );
      const { rows: members } = await client.query<{ user_id: string; role: "owner" | "member" }>(
        `INSERT INTO chat_session_members (session_id, user_id, role)
         SELECT $2, user_id, role FROM chat_session_members WHERE session_id = $1
         RETURNING user_id, role`,
        [sessionId, successorId],
      );
      const { rows: msg } = await client.query<MessageRow>(
        `WITH s AS (
           UPDATE chat_sessions SET archived = true, archived_at = now(), successor_id = $2, last_seq = last_seq + 1,
                  message_count = message_count + 1, last_message_at = now(), updated_at = now()
            WHERE id = $1 RETURNING last_seq
         )
         INSERT INTO chat_messages AS m (session_id, seq, role, content) SELECT $1, s.last_seq, 'system', $3 FROM s
         RETURNING ${MESSAGE_COLUMNS}`,
        [sessionId, successorId, notice(successorId)],
      );
      await client.query("COMMIT");
      const { rows: after } = await this.pool.query<{ archived_at: Date }>("SELECT archived_at FROM chat_sessions WHERE id = $1", [sessionId]);
      return {
        sessionId,
        archivedAt: (after[0]?.archived_at ?? new Date()).toISOString(),
        successor: toSession(created[0]!),
        members: members.map((m) => ({ userId: m.user_id, role: m.role })),
        notice: toMessage(msg[0]!),
      };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async expiredSessions(archivedBefore: Date, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(EXPIRED, [archivedBefore, limit]);
    return rows.map((r) => r.id);
  }

  async beginPurge(sessionId: string, archivedBefore: Date, now: Date): Promise<{ memberIds: string[]; streamingReplyIds: number[] } | null> {
    const { rows } = await this.pool.query<{ found: number; members: string[]; streaming: string[] }>(BEGIN_PURGE, [sessionId, archivedBefore, now]);
    const r = rows[0]!;
    return r.found > 0 ? { memberIds: r.members, streamingReplyIds: r.streaming.map(Number) } : null;
  }

  async purgeMessages(sessionId: string, limit: number): Promise<number> {
    const r = await this.pool.query({ name: "purge_messages", text: PURGE_MESSAGES, values: [sessionId, limit] });
    return r.rowCount ?? 0;
  }

  async purgeLocalVectors(sessionId: string, limit: number): Promise<number> {
    const r = await this.pool.query({ name: "purge_vectors", text: PURGE_VECTORS, values: [sessionId, limit] });
    return r.rowCount ?? 0;
  }

  async collections(): Promise<string[]> {
    const { rows } = await this.pool.query<{ collection: string }>("SELECT collection FROM embedding_versions ORDER BY id");
    return rows.map((r) => r.collection);
  }

  async finishPurge(sessionId: string): Promise<boolean> {
    const r = await this.pool.query(FINISH_PURGE, [sessionId]);
    return (r.rowCount ?? 0) > 0;
  }
}
