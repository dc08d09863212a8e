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
