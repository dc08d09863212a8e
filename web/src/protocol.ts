/**
 * The socket protocol as the browser sees it: the client library's types,
 * derived from the server's src/protocol/ (type-only: nothing of the server is
 * bundled), so a change of a payload there is a type error here.
 */
import type { Calls, Events } from "@memchat/client";

export type {
  Ack,
  ActiveStream,
  AssistantConfiguration,
  AttachmentPayload,
  AttachmentRef,
  CallName,
  ConfigurationSettings,
  ConfigurationSummary,
  Calls,
  ErrorBody,
  EventName,
  Events,
  HistoryResult,
  InvitationPayload,
  MemoryHit,
  Message,
  MessageStatus,
  PresenceEntry,
  Session,
  SessionSummary,
  User,
} from "@memchat/client";

/** What a reply used, as assistant:end sends it (message:context adds rank and source). */
export type ContextEntry = Events["assistant:end"]["context"][number];
/** A passage of a shared file that a reply drew on (file name and page). */
export type PassageUse = NonNullable<Events["assistant:end"]["passages"]>[number];

export type JoinResult = Calls["session:join"]["output"];
