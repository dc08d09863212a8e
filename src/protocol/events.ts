/** Typed Socket.IO events of namespace /chat. */
import type { Ack } from "./errors.js";
import type { Input } from "./schemas.js";
import type { Message, PresenceEntry, Session, User } from "./types.js";

type Handler<I, O> = (payload: I, ack: (reply: Ack<O>) => void) => void;

export interface SessionJoinResult {
  session: Session;
  /** Messages after `afterSeq` (or the latest page when it is omitted), oldest first. */
  messages: Message[];
  presence: PresenceEntry[];
  /** True when more messages after `afterSeq` exist than were sent: page with message:history. */
  truncated: boolean;
}

export interface HistoryResult {
  messages: Message[];
  nextBeforeSeq: number | null;
}

export interface ClientToServerEvents {
  "session:create": Handler<Input<"session:create">, { session: Session }>;
  "session:join": Handler<Input<"session:join">, SessionJoinResult>;
  "session:leave": Handler<Input<"session:leave">, { left: boolean }>;
  "session:invite": Handler<Input<"session:invite">, { member: { userId: string; username: string } }>;
  "message:send": Handler<Input<"message:send">, { message: Message }>;
  "message:history": Handler<Input<"message:history">, HistoryResult>;
  typing: Handler<Input<"typing">, { sent: boolean }>;
}

export interface ServerToClientEvents {
  "message:new": (e: { message: Message }) => void;
  "presence:join": (e: { sessionId: string; userId: string; username: string }) => void;
  "presence:leave": (e: { sessionId: string; userId: string; username: string }) => void;
  typing: (e: { sessionId: string; userId: string; username: string; isTyping: boolean }) => void;
}

/** Per-socket data set by the auth middleware. */
export interface SocketData {
  user: User;
}

export const ROOM_PREFIX = "session:";
export const roomOf = (sessionId: string): string => `${ROOM_PREFIX}${sessionId}`;
