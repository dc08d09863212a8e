/**
 * The socket protocol as the browser sees it, derived from the server's
 * src/protocol/ (type-only imports: nothing of the server is bundled), so a
 * change of a payload there is a type error here.
 */
import type { Ack, ErrorBody } from "../../src/protocol/errors.js";
import type {
  ActiveStream,
  ClientToServerEvents,
  HistoryResult,
  InvitationPayload,
  MemoryHitPayload,
  ServerToClientEvents,
} from "../../src/protocol/events.js";
import type { Message, MessageStatus, PresenceEntry, Session, SessionSummary, User } from "../../src/protocol/types.js";

export type { Ack, ActiveStream, ErrorBody, HistoryResult, InvitationPayload, Message, MessageStatus, PresenceEntry, Session, SessionSummary, User };
export type MemoryHit = MemoryHitPayload;

type HandlerIO<H> = H extends (payload: infer I, ack: (reply: Ack<infer O>) => void) => void ? { input: I; output: O } : never;

/** Client-to-server events: the input payload and the ack's data. */
export type Calls = { [K in keyof ClientToServerEvents]: HandlerIO<ClientToServerEvents[K]> };
export type CallName = keyof Calls;

/** Server-to-client events and their payloads. */
export type Events = { [K in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[K]>[0] };
export type EventName = keyof Events;

/** What a reply used, as assistant:end sends it (message:context adds rank and source). */
export type ContextEntry = Events["assistant:end"]["context"][number];

export type JoinResult = Calls["session:join"]["output"];
