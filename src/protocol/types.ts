/** Shapes the server sends. Field names are part of the protocol: add, never rename. */

export type Role = "user" | "assistant" | "system";
/** What an account may do: admins also see analytics, set quotas and manage configurations (sql/015_user_roles.sql). */
export type UserRole = "member" | "admin";
export type MessageStatus = "complete" | "streaming" | "cancelled" | "error" | "interrupted";

export interface Message {
  id: number;
  sessionId: string;
  seq: number;
  role: Role;
  content: string;
  status: MessageStatus;
  clientMessageId: string | null;
  /** The author of a user message; for an assistant reply, the user whose turn it was. */
  userId: string | null;
  replyToId: number | null;
  createdAt: string;
  /** On assistant replies read from history (message:history, session:join, REST): the tokens the reply took; null where not recorded. */
  usage?: { promptTokens: number | null; completionTokens: number | null };
  /** On assistant replies read from history: the caller's own rating, when they gave one. */
  ownFeedback?: OwnFeedback;
  /** Files sent with a user message (absent when none). */
  attachments?: AttachmentRef[];
}

/** 1 positive, 0 neutral, -1 negative. */
export type FeedbackRating = 1 | 0 | -1;

export interface OwnFeedback {
  rating: FeedbackRating;
  comment: string | null;
  updatedAt: string;
}

/** A file as messages carry it; its bytes are at GET /api/attachments/:id/content. */
export interface AttachmentRef {
  id: string;
  name: string;
  /** What the bytes are (sniffed at upload), not what the uploader declared. */
  contentType: string;
  size: number;
  /** True for images: GET /api/attachments/:id/thumbnail serves a small WebP. */
  thumbnail: boolean;
  width: number | null;
  height: number | null;
}

export interface Session {
  id: string;
  title: string;
  ownerId: string;
  /** The caller's role in this session. */
  role: "owner" | "member";
  lastSeq: number;
  createdAt: string;
  updatedAt: string;
  /** Archived: readable and searchable, but it takes no new messages. */
  archived: boolean;
  archivedAt: string | null;
  /** The session that continues this one (it reached SESSION_MAX_MESSAGES), when there is one. */
  successorId: string | null;
  /** The named assistant configuration the session uses; null: the default one. */
  configurationId: number | null;
}

/** A session as GET /api/sessions lists it. */
export interface SessionSummary extends Session {
  /** Rows in the session, assistant replies included. */
  messageCount: number;
  lastMessageAt: string | null;
  archived: boolean;
}

export interface User {
  id: string;
  username: string;
}

export interface PresenceEntry {
  userId: string;
}

/** A named assistant configuration as admins see it (GET /api/admin/configurations). */
export interface AssistantConfiguration {
  id: number;
  name: string;
  description: string;
  systemPrompt: string;
  /** Null: the server's LLM_MODEL. */
  model: string | null;
  temperature: number;
  maxTokens: number;
  topK: number;
  similarityThreshold: number;
  historyWindow: number;
  contextTokenBudget: number;
  retrievalMode: "hybrid" | "vector" | "lexical" | "none";
  crossSession: boolean;
  isDefault: boolean;
  /** False once retired: no session may pick it, and sessions that used it follow the default. */
  active: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What every user may read of an active configuration, to pick one for a session they own. */
export type ConfigurationSummary = Pick<AssistantConfiguration, "id" | "name" | "description" | "model" | "retrievalMode" | "crossSession" | "isDefault">;
/** An attachment as the upload route answers it. */
export interface AttachmentPayload {
  id: string;
  sessionId: string;
  uploaderId: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  thumbnail: boolean;
  width: number | null;
  height: number | null;
  /** "pending" until sent with a message, then "attached". */
  state: "pending" | "attached";
  messageId: number | null;
  createdAt: string;
}
