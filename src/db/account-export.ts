/**
 * Reads for the account export (src/account/account-export.ts), each a page
 * in id order so a long history streams out without being held in memory.
 */
import type pg from "pg";
import { ATTACHMENT_REFS, MESSAGE_COLUMNS, type MessageRow, toMessage } from "./rows.js";
import type { Message } from "../protocol/types.js";

export interface ExportProfile {
  id: string;
  username: string;
  createdAt: string;
}

export interface ExportSession {
  id: string;
  title: string;
  ownerId: string;
  /** The exporting user's role in it. */
  role: "owner" | "member";
  joinedAt: string;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
  messageCount: number;
  lastMessageAt: string | null;
}

export async function exportProfile(pool: pg.Pool, userId: string): Promise<ExportProfile | null> {
  const { rows } = await pool.query<{ id: string; username: string; created_at: Date }>("SELECT id, username, created_at FROM users WHERE id = $1", [userId]);
  const r = rows[0];
  return r ? { id: r.id, username: r.username, createdAt: r.created_at.toISOString() } : null;
}

/** Sessions the user is a member of, after `afterId` in id order. */
export async function exportSessionsAfter(pool: pg.Pool, userId: string, afterId: string | null, limit: number): Promise<ExportSession[]> {
  const { rows } = await pool.query<{
    id: string;
    title: string;
    owner_id: string;
    role: "owner" | "member";
    joined_at: Date;
    created_at: Date;
    updated_at: Date;
    archived: boolean;
    message_count: number;
    last_message_at: Date | null;
  }>(
    `SELECT s.id, s.title, s.owner_id, mem.role, mem.joined_at, s.created_at, s.updated_at, s.archived, s.message_count, s.last_message_at
       FROM chat_session_members mem JOIN chat_sessions s ON s.id = mem.session_id
      WHERE mem.user_id = $1 AND ($2::uuid IS NULL OR mem.session_id > $2)
      ORDER BY mem.session_id
      LIMIT $3`,
    [userId, afterId, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    ownerId: r.owner_id,
    role: r.role,
    joinedAt: r.joined_at.toISOString(),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    archived: r.archived,
    messageCount: r.message_count,
    lastMessageAt: r.last_message_at?.toISOString() ?? null,
  }));
}

/**
 * The user's own messages in a session they are a member of, and the
 * assistant replies to their turns (whose user_id is theirs too), in seq
 * order after `afterSeq` (the session's (session_id, seq) index serves it).
 */
export async function exportMessagesAfter(pool: pg.Pool, sessionId: string, userId: string, afterSeq: number, limit: number): Promise<Message[]> {
  const { rows } = await pool.query<MessageRow>(
    `SELECT ${MESSAGE_COLUMNS}, ${ATTACHMENT_REFS} FROM chat_messages m
      WHERE m.session_id = $1 AND m.user_id = $2 AND m.seq > $3
        AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
      ORDER BY m.seq
      LIMIT $4`,
    [sessionId, userId, afterSeq, limit],
  );
  return rows.map(toMessage);
}
