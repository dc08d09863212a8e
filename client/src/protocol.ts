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
  SessionConfiguredPayload,
  SessionJoinResult,
} from "../../src/protocol/events.js";
import type { ConfigurationCreate } from "../../src/protocol/configuration-schemas.js";
import type {
  AssistantConfiguration,
  AttachmentPayload,
  AttachmentRef,
  ConfigurationSummary,
  FeedbackRating,
  Message,
  MessageStatus,
  OwnFeedback,
  PresenceEntry,
  Role,
  Session,
  SessionSummary,
  User,
  UserRole,
} from "../../src/protocol/types.js";

/** The settings an admin sends to create a configuration (every one optional when changing one). */
export type ConfigurationSettings = Partial<ConfigurationCreate>;

export type {
  Ack,
  ActiveStream,
  AssistantConfiguration,
  ConfigurationSummary,
  FeedbackRating,
  OwnFeedback,
  SessionConfiguredPayload,
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
  UserRole,
};
export type MemoryHit = MemoryHitPayload;

type HandlerIO<H> = H extends (payload: infer I, ack: (reply: Ack<infer O>) => void) => void ? { input: I; output: O } : never;

/** Client-to-server events: the input payload and the ack's data. */
export type Calls = { [K in keyof ClientToServerEvents]: HandlerIO<ClientToServerEvents[K]> };
export type CallName = keyof Calls;

/** Server-to-client events and their payloads. */
export type Events = { [K in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[K]>[0] };
export type EventName = keyof Events;
