/** Shapes the server sends. Field names are part of the protocol: add, never rename. */

export type Role = "user" | "assistant" | "system";
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
  /** Files sent with a user message (absent when none). */
  attachments?: AttachmentRef[];
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
