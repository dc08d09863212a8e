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

export interface ExportUsageDay {
  day: string;
  promptTokens: number;
  completionTokens: number;
  turns: number;
}

/** The user's daily token usage (usage_daily), days after `afterDay` in order. */
export async function exportUsageAfter(pool: pg.Pool, userId: string, afterDay: string | null, limit: number): Promise<ExportUsageDay[]> {
  const { rows } = await pool.query<{ day: string; prompt_tokens: string; completion_tokens: string; turns: number }>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, prompt_tokens, completion_tokens, turns FROM usage_daily
      WHERE user_id = $1 AND ($2::date IS NULL OR day > $2::date)
      ORDER BY day
      LIMIT $3`,
    [userId, afterDay, limit],
  );
  return rows.map((r) => ({ day: r.day, promptTokens: Number(r.prompt_tokens), completionTokens: Number(r.completion_tokens), turns: r.turns }));
}

export interface ExportFeedback {
  messageId: number;
  sessionId: string;
  rating: -1 | 0 | 1;
  comment: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The ratings (and comments) the user gave replies, in message id order after `afterMessageId`. */
export async function exportFeedbackAfter(pool: pg.Pool, userId: string, afterMessageId: number, limit: number): Promise<ExportFeedback[]> {
  const { rows } = await pool.query<{ message_id: string; session_id: string; rating: number; comment: string | null; created_at: Date; updated_at: Date }>(
    `SELECT f.message_id, m.session_id, f.rating, f.comment, f.created_at, f.updated_at
       FROM message_feedback f JOIN chat_messages m ON m.id = f.message_id
      WHERE f.user_id = $1 AND f.message_id > $2
      ORDER BY f.message_id
      LIMIT $3`,
    [userId, afterMessageId, limit],
  );
  return rows.map((r) => ({
    messageId: Number(r.message_id),
    sessionId: r.session_id,
    rating: r.rating as -1 | 0 | 1,
    comment: r.comment,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  }));
}
