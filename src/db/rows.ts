import type { AttachmentRef, FeedbackRating, Message, Session } from "../protocol/types.js";

/** The largest int4: "before the end" as a seq bound. */
export const INT4_MAX = 2_147_483_647;

export const MESSAGE_COLUMNS =
  "m.id, m.session_id, m.seq, m.user_id, m.role, m.content, m.status, m.client_message_id, m.reply_to_id, m.created_at";

export interface MessageRow {
  id: number;
  session_id: string;
  seq: number;
  user_id: string | null;
  role: Message["role"];
  content: string;
  status: Message["status"];
  client_message_id: string | null;
  reply_to_id: number | null;
  created_at: Date;
  /** Only from statements that select ATTACHMENT_REFS. */
  attachments?: AttachmentRef[] | null;
}

/**
 * A column (`attachments`) with the files sent with message `m`, as
 * AttachmentRefs in upload order; null for a message without any.
 */
export const ATTACHMENT_REFS = `(SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'contentType', a.content_type, 'size', a.size_bytes,
    'thumbnail', a.thumbnail_key IS NOT NULL, 'width', a.width, 'height', a.height) ORDER BY a.created_at, a.id)
   FROM attachments a WHERE a.message_id = m.id) AS attachments`;

export const toMessage = (r: MessageRow): Message => ({
  id: r.id,
  sessionId: r.session_id,
  seq: r.seq,
  role: r.role,
  content: r.content,
  status: r.status,
  clientMessageId: r.client_message_id,
  userId: r.user_id,
  replyToId: r.reply_to_id,
  createdAt: r.created_at.toISOString(),
  ...(r.attachments ? { attachments: r.attachments } : {}),
});

/**
 * MESSAGE_COLUMNS and, for assistant replies, their token counts and the
 * rating user $2 gave them; needs `LEFT JOIN message_feedback f` (HISTORY_FEEDBACK_JOIN).
 */
export const HISTORY_COLUMNS = `${MESSAGE_COLUMNS}, m.prompt_tokens, m.token_count, f.rating AS own_rating, f.comment AS own_comment, f.updated_at AS own_rated_at`;
export const HISTORY_FEEDBACK_JOIN = "LEFT JOIN message_feedback f ON f.message_id = m.id AND f.user_id = $2 AND m.role = 'assistant'";

export interface HistoryRow extends MessageRow {
  prompt_tokens: number | null;
  token_count: number | null;
  own_rating: number | null;
  own_comment: string | null;
  own_rated_at: Date | null;
}

/** A message as history shows it: replies carry their token counts, and the reader's own rating when there is one. */
export const toHistoryMessage = (r: HistoryRow): Message => {
  const m = toMessage(r);
  if (r.role !== "assistant" || r.status === "streaming") return m;
  m.usage = { promptTokens: r.prompt_tokens, completionTokens: r.token_count };
  if (r.own_rating !== null) m.ownFeedback = { rating: r.own_rating as FeedbackRating, comment: r.own_comment, updatedAt: r.own_rated_at!.toISOString() };
  return m;
};

export const SESSION_COLUMNS = "s.id, s.title, s.owner_id, s.last_seq, s.created_at, s.updated_at, s.archived, s.archived_at, s.successor_id, s.configuration_id";

export interface SessionRow {
  id: string;
  title: string;
  owner_id: string;
  last_seq: number;
  created_at: Date;
  updated_at: Date;
  archived: boolean;
  archived_at: Date | null;
  successor_id: string | null;
  configuration_id: number | null;
  member_role: Session["role"];
}

export const toSession = (r: SessionRow): Session => ({
  id: r.id,
  title: r.title,
  ownerId: r.owner_id,
  role: r.member_role,
  lastSeq: r.last_seq,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  archived: r.archived,
  archivedAt: r.archived_at?.toISOString() ?? null,
  successorId: r.successor_id,
  configurationId: r.configuration_id,
});

/** CTE `visible`: session $1 with its owner, when user $2 is a member of it. */
export const VISIBLE_SESSION = `visible AS (
  SELECT s.id, s.owner_id FROM chat_sessions s
    JOIN chat_session_members mem ON mem.session_id = s.id AND mem.user_id = $2
   WHERE s.id = $1
)`;
