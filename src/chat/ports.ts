/** What the chat domain needs from storage and presence; adapters implement these. */
import type { Message, PresenceEntry, Session, User, UserRole } from "../protocol/types.js";

export interface NewUserMessage {
  sessionId: string;
  userId: string;
  clientMessageId: string;
  content: string;
  /**
   * When set and the session has an assistant, the assistant's streaming
   * reply row (owned by this node) is created in the same statement.
   */
  replyOwnerNode?: string;
  /** The sender's own pending uploads in this session, attached to the message in the same transaction. */
  attachmentIds?: string[];
}

export type InsertResult =
  | { kind: "inserted"; message: Message; reply: Message | null }
  /** A reply was asked for while this user's previous one still streams in the session: nothing was written. */
  | { kind: "busy" }
  /** The same clientMessageId was stored before: the earlier row, unchanged. */
  | { kind: "duplicate"; message: Message }
  /** The session does not exist or the user is not a member. */
  | { kind: "not_found" }
  /** The session is archived: it takes no new messages. Nothing was written. */
  | { kind: "archived" }
  /** An attachment id is not the sender's own unsent upload in this session: nothing was written. */
  | { kind: "bad_attachments" };

/** Which sessions a list shows: not archived (the default), archived only, or both. */
export type ArchiveFilter = "active" | "archived" | "all";

export interface MessageStore {
  createSession(ownerId: string, title: string, assistantEnabled: boolean): Promise<Session>;
  /** The session as `userId` sees it, or null when it does not exist or they are not a member. */
  getSession(sessionId: string, userId: string): Promise<Session | null>;
  listSessions(userId: string, limit: number, archived?: ArchiveFilter): Promise<Session[]>;
  /** Renames the session when `userId` owns it. */
  renameSession(sessionId: string, userId: string, title: string): Promise<Session | "not_found" | "forbidden">;
  /**
   * Stores a user message with the next seq of its session. Idempotent on
   * (sessionId, clientMessageId); seqs are gap-free under any concurrency.
   */
  insertUserMessage(m: NewUserMessage): Promise<InsertResult>;
  /** Whether the session has an assistant (fixed at creation); null for an unknown session. */
  assistantEnabled(sessionId: string): Promise<boolean | null>;
  /** Messages with seq > afterSeq, oldest first, at most `limit`; empty for a non-member. */
  listMessagesAfter(sessionId: string, userId: string, afterSeq: number, limit: number): Promise<Message[]>;
  /** The page of messages just below beforeSeq (or the newest), oldest first; empty for a non-member. */
  listMessagesBefore(sessionId: string, userId: string, beforeSeq: number | undefined, limit: number): Promise<Message[]>;
}

export interface MemberRef {
  userId: string;
  username: string;
}

/** An owner's invitation into a session, pending until the invitee accepts or declines it. */
export interface Invitation {
  sessionId: string;
  sessionTitle: string;
  inviter: MemberRef;
  invitee: MemberRef;
  createdAt: string;
}

export type InviteResult =
  | { kind: "invited"; invitation: Invitation }
  /** Already a member: nothing changed. */
  | { kind: "member"; member: MemberRef }
  | { kind: "not_found" }
  | { kind: "forbidden" }
  | { kind: "no_user" };

export type AcceptResult = { kind: "accepted"; session: Session; member: MemberRef } | { kind: "not_found" };

export type RemoveResult =
  /** A membership ended; the removed user's replies still streaming there are listed. */
  | { kind: "removed"; member: MemberRef; streamingReplyIds: number[] }
  /** A pending invitation was withdrawn. */
  | { kind: "revoked" }
  /** The owner tried to leave their own session. */
  | { kind: "owner" }
  | { kind: "forbidden" }
  | { kind: "not_found" };

export type DeleteResult =
  | { kind: "deleted"; memberIds: string[]; streamingReplyIds: number[] }
  | { kind: "forbidden" }
  | { kind: "not_found" };

/**
 * Membership by consent. Only the owner invites; an invitation is pending
 * until its invitee accepts. Any member but the owner may leave; the owner
 * may remove anyone else and withdraw invitations; only the owner deletes.
 */
export interface MembershipStore {
  invite(sessionId: string, ownerId: string, username: string): Promise<InviteResult>;
  /** The user's pending invitations, newest first. */
  invitations(userId: string, limit: number): Promise<Invitation[]>;
  accept(sessionId: string, userId: string): Promise<AcceptResult>;
  /** False when there was no such invitation. */
  decline(sessionId: string, userId: string): Promise<boolean>;
  /** `actorId` ends `memberId`'s membership (themselves: leaving) or withdraws their invitation. */
  removeMember(sessionId: string, actorId: string, memberId: string): Promise<RemoveResult>;
  /** Deletes the session when `userId` owns it, returning who was in it and what was streaming. */
  deleteSession(sessionId: string, userId: string): Promise<DeleteResult>;
}

/** What every token check reads of an account (see sql/008_account_state.sql). */
export interface AccountState {
  tokenVersion: number;
  disabled: boolean;
  /** Read with the rest of the state, so a role change reaches every node within AUTH_CACHE_MS. */
  role: UserRole;
}

export interface UserStore {
  /** Null when the name is taken. The first account ever, or one created with `admin`, is an admin. */
  create(username: string, passwordHash: string, admin?: boolean): Promise<(User & { role: UserRole }) | null>;
  /** Makes the named existing accounts admins (ADMIN_USERNAMES at start); the number promoted. */
  grantAdmin(usernames: readonly string[]): Promise<number>;
  /**
   * Sets the account's role: "missing" for no such (or a disabled) account,
   * "last-admin" when it would demote the only admin left.
   */
  setRole(id: string, role: UserRole): Promise<(User & { role: UserRole }) | "missing" | "last-admin">;
  findByUsername(username: string): Promise<(User & AccountState & { passwordHash: string }) | null>;
  findById(id: string): Promise<User | null>;
  /** Null when the user does not exist (deleted). */
  accountState(id: string): Promise<AccountState | null>;
  /** Raises the token version, revoking every token issued before; null for an unknown or disabled user. */
  revokeTokens(id: string): Promise<number | null>;
}

/** Who is in which session: per user, not per socket (three tabs are one presence). */
export interface Presence {
  /** Records one connection of the user; `first` when the user was not present before. */
  join(sessionId: string, userId: string, connectionId: string): Promise<{ first: boolean }>;
  /** Drops one connection; `last` when it was the user's last one in the session. */
  leave(sessionId: string, userId: string, connectionId: string): Promise<{ last: boolean }>;
  list(sessionId: string): Promise<PresenceEntry[]>;
}

export interface RateRule {
  /** Most requests in a burst (bucket size). */
  capacity: number;
  /** Sustained rate: tokens added back per second. */
  refillPerSecond: number;
}

export interface RateDecision {
  allowed: boolean;
  /** When refused: how long until `cost` tokens are available. 0 when allowed. */
  retryAfterMs: number;
  /** Whole tokens left after this request. */
  remaining: number;
}

/** Token buckets keyed by caller (user id, IP...). Atomic: concurrent callers never overdraw a bucket. */
export interface RateLimiter {
  consume(key: string, rule: RateRule, cost?: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export interface StreamDelta {
  seq: number;
  text: string;
}

/**
 * A short-lived log of one assistant reply's deltas, so a client that
 * reconnects (to any node) gets what it missed. Seqs count from 1.
 */
export interface StreamBuffer {
  append(messageId: number, delta: StreamDelta): Promise<void>;
  /** Deltas with seq > afterSeq, in order; empty when the stream is unknown or expired. */
  read(messageId: number, afterSeq: number): Promise<StreamDelta[]>;
  /** The reply is finished: keep the buffer only for a short grace period. */
  end(messageId: number): Promise<void>;
  close(): Promise<void>;
}

/** Cancel requests for assistant turns, delivered to whichever node runs the turn. */
export interface CancelBus {
  publish(messageId: number): Promise<void>;
  /** Registers the handler; returns an unsubscribe function. */
  subscribe(handler: (messageId: number) => void): Promise<() => void>;
  close(): Promise<void>;
}

export type SetArchivedResult =
  | { kind: "changed"; session: Session }
  /** Already archived (or already live): nothing changed. */
  | { kind: "unchanged"; session: Session }
  | { kind: "forbidden" }
  | { kind: "not_found" };

export interface RolloverResult {
  /** The full session, now archived. */
  sessionId: string;
  archivedAt: string;
  /** Its successor, as its owner sees it. */
  successor: Session;
  members: { userId: string; role: Session["role"] }[];
  /** The system message that ends the full session. */
  notice: Message;
}

/** Sessions over time: archiving, successors of full sessions, retention's batched deletion. */
export interface LifecycleStore {
  setArchived(sessionId: string, userId: string, archived: boolean): Promise<SetArchivedResult>;
  /** Archives up to `limit` live sessions without a message since `idleSince`. */
  archiveIdle(idleSince: Date, now: Date, limit: number): Promise<{ sessionId: string; archivedAt: string }[]>;
  fullSessions(maxMessages: number, limit: number): Promise<string[]>;
  rollover(sessionId: string, maxMessages: number, notice: (successorId: string) => string): Promise<RolloverResult | null>;
  /** Archived before `archivedBefore`, or already being deleted. */
  expiredSessions(archivedBefore: Date, limit: number): Promise<string[]>;
  /** Ends every membership and marks the session as being deleted; null when it is not due (any more). */
  beginPurge(sessionId: string, archivedBefore: Date, now: Date): Promise<{ memberIds: string[]; streamingReplyIds: number[] } | null>;
  /** Deletes up to `limit` of a purging session's messages; how many went. */
  purgeMessages(sessionId: string, limit: number): Promise<number>;
  /** Deletes up to `limit` of the session's vectors in PostgreSQL (every collection). */
  purgeLocalVectors(sessionId: string, limit: number): Promise<number>;
  collections(): Promise<string[]>;
  /** Deletes the emptied session row. */
  finishPurge(sessionId: string): Promise<boolean>;
}
