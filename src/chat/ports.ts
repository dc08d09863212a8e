/** What the chat domain needs from storage and presence; adapters implement these. */
import type { Message, PresenceEntry, Session, User } from "../protocol/types.js";

export interface NewUserMessage {
  sessionId: string;
  userId: string;
  clientMessageId: string;
  content: string;
}

export type InsertResult =
  | { kind: "inserted"; message: Message }
  /** The same clientMessageId was stored before: the earlier row, unchanged. */
  | { kind: "duplicate"; message: Message }
  /** The session does not exist or the user is not a member. */
  | { kind: "not_found" };

export interface MessageStore {
  createSession(ownerId: string, title: string): Promise<Session>;
  /** The session as `userId` sees it, or null when it does not exist or they are not a member. */
  getSession(sessionId: string, userId: string): Promise<Session | null>;
  listSessions(userId: string, limit: number): Promise<Session[]>;
  /** Deletes the session when `userId` owns it. */
  deleteSession(sessionId: string, userId: string): Promise<"deleted" | "not_found" | "forbidden">;
  addMember(sessionId: string, ownerId: string, username: string): Promise<
    { kind: "added"; member: { userId: string; username: string } } | { kind: "not_found" } | { kind: "forbidden" } | { kind: "no_user" }
  >;
  removeMember(sessionId: string, ownerId: string, memberId: string): Promise<"removed" | "not_found" | "forbidden">;
  /**
   * Stores a user message with the next seq of its session. Idempotent on
   * (sessionId, clientMessageId); seqs are gap-free under any concurrency.
   */
  insertUserMessage(m: NewUserMessage): Promise<InsertResult>;
  /** Messages with seq > afterSeq, oldest first, at most `limit`; empty for a non-member. */
  listMessagesAfter(sessionId: string, userId: string, afterSeq: number, limit: number): Promise<Message[]>;
  /** The page of messages just below beforeSeq (or the newest), oldest first; empty for a non-member. */
  listMessagesBefore(sessionId: string, userId: string, beforeSeq: number | undefined, limit: number): Promise<Message[]>;
}

export interface UserStore {
  create(username: string, passwordHash: string): Promise<User | null>;
  findByUsername(username: string): Promise<(User & { passwordHash: string }) | null>;
  findById(id: string): Promise<User | null>;
}

/** Who is in which session: per user, not per socket (three tabs are one presence). */
export interface Presence {
  /** Records one connection of the user; `first` when the user was not present before. */
  join(sessionId: string, userId: string, connectionId: string): Promise<{ first: boolean }>;
  /** Drops one connection; `last` when it was the user's last one in the session. */
  leave(sessionId: string, userId: string, connectionId: string): Promise<{ last: boolean }>;
  list(sessionId: string): Promise<PresenceEntry[]>;
}
