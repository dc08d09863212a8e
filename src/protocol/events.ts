/** Typed Socket.IO events of namespace /chat. */
import type { Ack } from "./errors.js";
import type { Input } from "./schemas.js";
import type { ConfigurationSummary, FeedbackRating, Message, PresenceEntry, Role, Session, User } from "./types.js";

type Handler<I, O> = (payload: I, ack: (reply: Ack<O>) => void) => void;

export interface SessionJoinResult {
  session: Session;
  /** Messages after `afterSeq` (or the latest page when it is omitted), oldest first. */
  messages: Message[];
  presence: PresenceEntry[];
  /** True when more messages after `afterSeq` exist than were sent: page with message:history. */
  truncated: boolean;
  /** The newest assistant reply still streaming: its text up to `seq`; live deltas continue after it. */
  activeStream?: ActiveStream;
  /** Every reply streaming in the session (several users may each have one). */
  activeStreams: ActiveStream[];
}

export interface ActiveStream {
  messageId: number;
  seq: number;
  text: string;
}

export interface MemoryHitPayload {
  messageId: number;
  sessionId: string;
  score: number;
  role: Role;
  content: string;
  source: "vector" | "lexical" | "hybrid";
  /** The hit's session is archived. */
  archived: boolean;
}

export interface FeedbackPayload {
  messageId: number;
  /** 1 positive, 0 neutral, -1 negative. */
  rating: FeedbackRating;
  comment: string | null;
  updatedAt: string;
}

export interface HistoryResult {
  messages: Message[];
  nextBeforeSeq: number | null;
}

export interface ClientToServerEvents {
  "session:create": Handler<Input<"session:create">, { session: Session }>;
  "session:join": Handler<Input<"session:join">, SessionJoinResult>;
  "session:leave": Handler<Input<"session:leave">, { left: boolean }>;
  /** Owner only. The room hears session:updated. */
  "session:rename": Handler<Input<"session:rename">, { session: Session }>;
  /**
   * Owner only. Creates a pending invitation (the invitee's sockets hear
   * session:invitation); `member` names the invitee, `pending` is false when
   * they were a member already.
   */
  "session:invite": Handler<Input<"session:invite">, { member: MemberPayload; pending: boolean; invitation?: InvitationPayload }>;
  "invitation:list": Handler<Input<"invitation:list">, { invitations: InvitationPayload[] }>;
  /** The caller becomes a member; the room hears member:joined. */
  "invitation:accept": Handler<Input<"invitation:accept">, { session: Session }>;
  "invitation:decline": Handler<Input<"invitation:decline">, { declined: boolean }>;
  "member:leave": Handler<Input<"member:leave">, { left: boolean }>;
  "member:remove": Handler<Input<"member:remove">, { removed: boolean }>;
  /**
   * Owner only: the named configuration the session's turns use, from the
   * next turn (null: follow the default). Only an active configuration may
   * be picked. The room hears session:configured.
   */
  "session:configure": Handler<Input<"session:configure">, SessionConfiguredPayload>;
  /** Owner only: archived true archives, false unarchives. The room hears session:archived. */
  "session:archive": Handler<Input<"session:archive">, { session: Session }>;
  /** `replyRefused`: the message is stored but no reply starts (QUOTA_EXCEEDED, with the reset time). */
  "message:send": Handler<Input<"message:send">, { message: Message; replyRefused?: { code: "QUOTA_EXCEEDED"; message: string; resetAt: string } }>;
  "message:history": Handler<Input<"message:history">, HistoryResult>;
  typing: Handler<Input<"typing">, { sent: boolean }>;
  "assistant:cancel": Handler<Input<"assistant:cancel">, { cancelled: boolean }>;
  "assistant:regenerate": Handler<Input<"assistant:regenerate">, { message: Message }>;
  "message:feedback": Handler<Input<"message:feedback">, { feedback: FeedbackPayload }>;
  "memory:search": Handler<Input<"memory:search">, { hits: MemoryHitPayload[]; mode: NonNullable<Input<"memory:search">["mode"]>; degraded: boolean }>;
  /** The earlier messages a reply used, with scores and ranks. */
  "message:context": Handler<Input<"message:context">, { context: ContextEntryPayload[]; passages?: PassageContextPayload[] }>;
}

/** A passage of a shared file that a reply used; its file, page and text only while the caller may read the file. */
export interface PassageContextPayload {
  passageId: number;
  score: number;
  rank: number;
  source: string;
  attachmentId: string | null;
  name: string | null;
  page: number | null;
  content: string | null;
}

export interface SessionConfiguredPayload {
  sessionId: string;
  /** Null: the session follows the default configuration. */
  configurationId: number | null;
  /** The configuration the session's next turn uses. */
  configuration: ConfigurationSummary;
}

export interface ContextEntryPayload {
  messageId: number;
  score: number;
  rank: number;
  source: string;
  /** Null when the caller may not read that message's session (any more). */
  sessionId: string | null;
  role: string | null;
  content: string | null;
}

export interface MemberPayload {
  userId: string;
  username: string;
}

export interface InvitationPayload {
  sessionId: string;
  sessionTitle: string;
  inviter: MemberPayload;
  invitee: MemberPayload;
  createdAt: string;
}

/** Why a user's sockets were taken out of a session. */
export type RemovalReason = "left" | "removed" | "deleted";

export interface ServerToClientEvents {
  /** To every socket of the invitee, on any node. */
  "session:invitation": (e: { invitation: InvitationPayload }) => void;
  /** To a socket right after it connects: the user's pending invitations, newest first. */
  "session:invitations": (e: { invitations: InvitationPayload[] }) => void;
  /** To every socket of a user whose membership ended: they have left the room and get nothing more from it. */
  "session:removed": (e: { sessionId: string; reason: RemovalReason }) => void;
  /** To the room: someone accepted an invitation. */
  "member:joined": (e: { sessionId: string; member: MemberPayload }) => void;
  /** To the room: a member left or was removed. */
  "member:left": (e: { sessionId: string; member: MemberPayload; reason: Exclude<RemovalReason, "deleted"> }) => void;
  "message:new": (e: { message: Message }) => void;
  /** To the room: the session was archived (it refuses messages) or unarchived; successorId names the session continuing a full one. */
  "session:archived": (e: { sessionId: string; archived: boolean; archivedAt: string | null; successorId: string | null }) => void;
  /** To every socket of each member: a full session continues in `successor`, of which they are members already. */
  "session:continued": (e: { sessionId: string; successor: Session }) => void;
  "session:updated": (e: { sessionId: string; title: string; updatedAt: string }) => void;
  /** To the room: the owner picked another configuration; it applies from the next turn. */
  "session:configured": (e: SessionConfiguredPayload) => void;
  "presence:join": (e: { sessionId: string; userId: string; username: string }) => void;
  "presence:leave": (e: { sessionId: string; userId: string; username: string }) => void;
  typing: (e: { sessionId: string; userId: string; username: string; isTyping: boolean }) => void;
  "assistant:start": (e: { sessionId: string; messageId: number; replyToId: number }) => void;
  /** `text` is the new piece; seq counts from 1 per reply. */
  "assistant:delta": (e: { sessionId: string; messageId: number; seq: number; text: string }) => void;
  "assistant:end": (e: {
    sessionId: string;
    message: Message;
    usage: { promptTokens: number; completionTokens: number };
    context: { messageId: number; score: number }[];
    /** Passages of shared files the reply drew on (absent from older servers). */
    passages?: { passageId: number; attachmentId: string; name: string; page: number | null; score: number }[];
  }) => void;
  /** messageId is null when the reply could not even be created; replyToId names the user message then. */
  "assistant:error": (e: { sessionId: string; messageId: number | null; replyToId?: number; code: string; message: string; resetAt?: string }) => void;
}

/** Events between nodes (Socket.IO serverSideEmit), not seen by clients. */
export interface InterServerEvents {
  /** Take these users' sockets out of the session's room (see src/realtime/member-events.ts). */
  "member:evict": (e: { sessionId: string; userIds: string[]; reason: RemovalReason }) => void;
}

/** Per-socket data set by the auth middleware. */
export interface SocketData {
  user: User;
  /** The token version the connection authenticated with: a logout-all disconnects the older ones. */
  tokenVersion?: number;
}

export const ROOM_PREFIX = "session:";
export const roomOf = (sessionId: string): string => `${ROOM_PREFIX}${sessionId}`;
