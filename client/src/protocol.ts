/**
 * The socket protocol as a client sees it, derived from the server's
 * src/protocol/ with type-only imports (nothing of the server, zod included,
 * is bundled), so a change of a payload there is a type error here.
 */
import type { Ack, ErrorBody, ErrorCode } from "../../src/protocol/errors.js";
import type {
  ActiveStream,
  ClientToServerEvents,
  ContextEntryPayload,
  FeedbackPayload,
  HistoryResult,
  InvitationPayload,
  MemberPayload,
  MemoryHitPayload,
  RemovalReason,
  ServerToClientEvents,
  SessionJoinResult,
} from "../../src/protocol/events.js";
import type { AttachmentPayload, AttachmentRef, Message, MessageStatus, PresenceEntry, Role, Session, SessionSummary, User } from "../../src/protocol/types.js";

export type {
  Ack,
  ActiveStream,
  AttachmentPayload,
  AttachmentRef,
  ContextEntryPayload,
  ErrorBody,
  ErrorCode,
  FeedbackPayload,
  HistoryResult,
  InvitationPayload,
  MemberPayload,
  Message,
  MessageStatus,
  PresenceEntry,
  RemovalReason,
  Role,
  Session,
  SessionJoinResult,
  SessionSummary,
  User,
};
export type MemoryHit = MemoryHitPayload;

type HandlerIO<H> = H extends (payload: infer I, ack: (reply: Ack<infer O>) => void) => void ? { input: I; output: O } : never;

/** Client-to-server events: the input payload and the ack's data. */
export type Calls = { [K in keyof ClientToServerEvents]: HandlerIO<ClientToServerEvents[K]> };
export type CallName = keyof Calls;

/** Server-to-client events and their payloads. */
export type Events = { [K in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[K]>[0] };
export type EventName = keyof Events;
