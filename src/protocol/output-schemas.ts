/**
 * What the server sends, as zod schemas: REST responses, socket acks and
 * server-to-client events. They exist to describe the protocol (the OpenAPI
 * and AsyncAPI documents are generated from them); the TypeScript types in
 * types.ts and events.ts stay what the code uses, and the checks at the end
 * of this file fail the type check when the two disagree.
 */
import type { ErrorBody } from "./errors.js";
import { ERROR_CODES } from "./errors.js";
import type { ClientToServerEvents, ServerToClientEvents } from "./events.js";
import { retrievalMode } from "./schemas.js";
import { sessionConfigured } from "./configuration-output.js";
import type { AttachmentPayload, AttachmentRef, Message, Session, User } from "./types.js";
import { z } from "./zod-openapi.js";

const id = z.string().uuid();
const timestamp = z.string().datetime({ offset: true });
const int = z.number().int();

export const role = z.enum(["user", "assistant", "system"]).openapi("Role");
export const messageStatus = z.enum(["complete", "streaming", "cancelled", "error", "interrupted"]).openapi("MessageStatus");

export const attachmentRef = z
  .object({
    id,
    name: z.string(),
    contentType: z.string().describe("What the bytes are (sniffed at upload), not what the uploader declared."),
    size: int.nonnegative(),
    thumbnail: z.boolean().describe("An image: GET /api/attachments/{id}/thumbnail serves a small WebP."),
    width: int.nullable(),
    height: int.nullable(),
  })
  .openapi("AttachmentRef");

/** POST /api/sessions/:id/attachments and GET /api/attachments/:id. */
export const attachment = attachmentRef
  .extend({
    sessionId: id,
    uploaderId: id,
    sha256: z.string().describe("Hex SHA-256 of the bytes."),
    state: z.enum(["pending", "attached"]).describe("pending: uploaded, not yet sent with a message (removed after ATTACHMENT_PENDING_TTL_MS)."),
    messageId: int.nullable().describe("The message that carries it, once sent."),
    createdAt: timestamp,
  })
  .openapi("Attachment");

export const message = z
  .object({
    id: int.positive(),
    sessionId: id,
    seq: int,
    role,
    content: z.string(),
    status: messageStatus,
    clientMessageId: z.string().nullable(),
    userId: id.nullable().describe("The author of a user message; for an assistant reply, the user whose turn it was."),
    replyToId: int.nullable(),
    createdAt: timestamp,
    usage: z
      .object({ promptTokens: int.nullable(), completionTokens: int.nullable() })
      .optional()
      .describe("On assistant replies read from history: the tokens the reply took; null where not recorded."),
    ownFeedback: z
      .object({ rating: z.union([z.literal(1), z.literal(0), z.literal(-1)]), comment: z.string().nullable(), updatedAt: timestamp })
      .optional()
      .describe("On assistant replies read from history: the caller's own rating (1 positive, 0 neutral, -1 negative), when they gave one."),
    attachments: z.array(attachmentRef).optional().describe("Files sent with a user message; absent when none."),
  })
  .openapi("Message");

export const session = z
  .object({
    id,
    title: z.string(),
    ownerId: id,
    role: z.enum(["owner", "member"]).describe("The caller's role in this session."),
    lastSeq: int,
    createdAt: timestamp,
    updatedAt: timestamp,
    archived: z.boolean().describe("An archived session is read-only and out of the default list."),
    archivedAt: timestamp.nullable(),
    successorId: id.nullable().describe("The session continuing this one, when it was archived full."),
    configurationId: int.positive().nullable().describe("The named assistant configuration the session uses; null: the default one."),
  })
  .openapi("Session");

export const user = z.object({ id, username: z.string() }).openapi("User");
export const member = z.object({ userId: id, username: z.string() }).openapi("Member");
export const sessionSummary = session
  .extend({ messageCount: int.describe("Rows in the session, assistant replies included."), lastMessageAt: timestamp.nullable(), archived: z.boolean() })
  .openapi("SessionSummary");
export const sessionPage = z
  .object({ sessions: z.array(sessionSummary), nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last.") })
  .openapi("SessionPage");
export const invitation = z
  .object({ sessionId: id, sessionTitle: z.string(), inviter: member, invitee: member, createdAt: timestamp })
  .openapi("Invitation");
export const inviteResult = z
  .object({
    member,
    pending: z.boolean().describe("False when the user was a member already: nothing changed."),
    invitation: invitation.optional(),
  })
  .openapi("InviteResult");
const removalReason = z.enum(["left", "removed", "deleted"]);
/** GET /api/me/export (src/account/account-export.ts). */
export const accountExport = z
  .object({
    format: z.literal("memchat-export/1"),
    exportedAt: timestamp,
    contents: z.string().describe("What the document holds, in words."),
    user: z.object({ id, username: z.string(), createdAt: timestamp }),
    sessions: z.array(
      z.object({
        id,
        title: z.string(),
        ownerId: id,
        role: z.enum(["owner", "member"]),
        joinedAt: timestamp,
        createdAt: timestamp,
        updatedAt: timestamp,
        archived: z.boolean(),
        messageCount: int,
        lastMessageAt: timestamp.nullable(),
        messages: z.array(message).describe("The user's own messages and the assistant's replies to them."),
      }),
    ),
    usage: z
      .array(z.object({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), promptTokens: int, completionTokens: int, turns: int }))
      .describe("The user's LLM token usage per UTC day, oldest first."),
    feedback: z
      .array(z.object({ messageId: int, sessionId: id, rating: z.union([z.literal(-1), z.literal(0), z.literal(1)]), comment: z.string().nullable(), createdAt: timestamp, updatedAt: timestamp }))
      .describe("The ratings and comments the user gave assistant replies, by reply id."),
  })
  .openapi("AccountExport");
export const userRole = z.enum(["member", "admin"]).describe("member, or admin (analytics, quotas, configurations)").openapi("UserRole");
export const authResult = z
  .object({ token: z.string().describe("Bearer token for REST and the socket's auth.token"), user, role: userRole })
  .openapi("AuthResult");
export const me = z.object({ user, role: userRole }).openapi("Me");

export const errorBody = z
  .object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    retryAfterMs: int.positive().optional().describe("With RATE_LIMITED: when to try again."),
    field: z.string().optional().describe("With VALIDATION: the first field in error."),
    issues: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe("With VALIDATION: every field in error with its message."),
  })
  .openapi("Error");
/** REST error responses: `{error: {code, message, retryAfterMs?}}` with the code's HTTP status. */
export const errorEnvelope = z.object({ error: errorBody }).openapi("ErrorEnvelope");

export const activeStream = z.object({ messageId: int, seq: int, text: z.string() }).openapi("ActiveStream");
export const presenceEntry = z.object({ userId: id }).openapi("PresenceEntry");

export const sessionJoinResult = z
  .object({
    session,
    messages: z.array(message).describe("Messages after `afterSeq` (or the latest page when it is omitted), oldest first."),
    presence: z.array(presenceEntry),
    truncated: z.boolean().describe("True when more messages after `afterSeq` exist than were sent: page with message:history."),
    activeStream: activeStream.optional().describe("The newest assistant reply still streaming: its text up to `seq`; live deltas continue after it."),
    activeStreams: z.array(activeStream).describe("Every reply streaming in the session (several users may each have one)."),
  })
  .openapi("SessionJoinResult");

export const historyResult = z.object({ messages: z.array(message), nextBeforeSeq: int.nullable() }).openapi("HistoryResult");

export const memoryHit = z
  .object({
    messageId: int,
    sessionId: id,
    score: z.number(),
    role,
    content: z.string(),
    source: z.enum(["vector", "lexical", "hybrid"]),
    archived: z.boolean().describe("The hit's session is archived."),
  })
  .openapi("MemoryHit");
export const memorySearchResult = z
  .object({ hits: z.array(memoryHit), mode: retrievalMode, degraded: z.boolean().describe("True when vector search was wanted but unavailable.") })
  .openapi("MemorySearchResult");

export const feedback = z
  .object({ messageId: int, rating: z.union([z.literal(1), z.literal(0), z.literal(-1)]).describe("1 positive, 0 neutral, -1 negative."), comment: z.string().nullable(), updatedAt: timestamp })
  .openapi("Feedback");

export const contextEntry = z
  .object({
    messageId: int,
    score: z.number(),
    rank: int,
    source: z.string(),
    sessionId: id.nullable().describe("Null when the caller may not read that message's session (any more)."),
    role: z.string().nullable(),
    content: z.string().nullable(),
  })
  .openapi("ContextEntry");

export const passageUse = z
  .object({
    passageId: int,
    attachmentId: id,
    name: z.string().describe("The file's name."),
    page: int.nullable().describe("1-based PDF page; null for files without pages."),
    score: z.number(),
  })
  .openapi("PassageUse");

export const passageContextEntry = z
  .object({
    passageId: int,
    score: z.number(),
    rank: int,
    source: z.string(),
    attachmentId: id.nullable().describe("Null (with name, page and content) when the caller may not read that file (any more)."),
    name: z.string().nullable(),
    page: int.nullable(),
    content: z.string().nullable(),
  })
  .openapi("PassageContextEntry");

export const health = z.object({ status: z.literal("ok") }).openapi("Health");
export const readiness = z
  .object({
    status: z.enum(["ready", "not ready", "draining"]),
    checks: z.record(z.object({ ok: z.boolean(), status: z.string(), critical: z.boolean().describe("A failing critical check makes the node not ready.") })),
  })
  .openapi("Readiness");

/** The `data` of each client-to-server event's successful ack. */
export const ackDataSchemas = {
  "session:create": z.object({ session }),
  "session:join": sessionJoinResult,
  "session:leave": z.object({ left: z.boolean() }),
  "session:rename": z.object({ session }),
  "session:invite": inviteResult,
  "session:archive": z.object({ session }),
  "session:configure": sessionConfigured,
  "invitation:list": z.object({ invitations: z.array(invitation) }),
  "invitation:accept": z.object({ session }),
  "invitation:decline": z.object({ declined: z.boolean() }),
  "member:leave": z.object({ left: z.boolean() }),
  "member:remove": z.object({ removed: z.boolean() }),
  "message:send": z.object({
    message,
    replyRefused: z
      .object({ code: z.literal("QUOTA_EXCEEDED"), message: z.string(), resetAt: timestamp.describe("When the daily quota resets (next midnight UTC).") })
      .optional()
      .describe("Present when the message was stored but no reply started: the sender's daily token quota is spent."),
  }),
  "message:history": historyResult,
  typing: z.object({ sent: z.boolean() }),
  "assistant:cancel": z.object({ cancelled: z.boolean() }),
  "assistant:regenerate": z.object({ message }),
  "message:feedback": z.object({ feedback }),
  "memory:search": memorySearchResult,
  "message:context": z.object({ context: z.array(contextEntry), passages: z.array(passageContextEntry).optional() }),
} satisfies Record<keyof ClientToServerEvents, z.ZodTypeAny>;

const presenceChange = z.object({ sessionId: id, userId: id, username: z.string() });

/** The payload of each server-to-client event (sent to the room `session:<uuid>`). */
export const serverEventSchemas = {
  "message:new": z.object({ message }),
  "session:invitation": z.object({ invitation }),
  "session:archived": z.object({ sessionId: id, archived: z.boolean(), archivedAt: timestamp.nullable(), successorId: id.nullable() }),
  "session:continued": z.object({ sessionId: id, successor: session }),
  "session:invitations": z.object({ invitations: z.array(invitation) }),
  "session:removed": z.object({ sessionId: id, reason: removalReason }),
  "member:joined": z.object({ sessionId: id, member }),
  "member:left": z.object({ sessionId: id, member, reason: z.enum(["left", "removed"]) }),
  "session:updated": z.object({ sessionId: id, title: z.string(), updatedAt: timestamp }),
  "session:configured": sessionConfigured,
  "presence:join": presenceChange,
  "presence:leave": presenceChange,
  typing: z.object({ sessionId: id, userId: id, username: z.string(), isTyping: z.boolean() }),
  "assistant:start": z.object({ sessionId: id, messageId: int, replyToId: int }),
  "assistant:delta": z.object({ sessionId: id, messageId: int, seq: int.describe("Counts from 1 per reply."), text: z.string().describe("The new piece.") }),
  "assistant:end": z.object({
    sessionId: id,
    message,
    usage: z.object({ promptTokens: int, completionTokens: int }),
    context: z.array(z.object({ messageId: int, score: z.number() })),
    passages: z.array(passageUse).optional().describe("Passages of files shared in the chat that the reply drew on."),
  }),
  "assistant:error": z.object({
    sessionId: id,
    messageId: int.nullable().describe("Null when the reply could not even be created; replyToId names the user message then."),
    replyToId: int.optional(),
    code: z.string(),
    message: z.string(),
    resetAt: timestamp.optional().describe("With QUOTA_EXCEEDED (sent to the user's own sockets only): when the quota resets."),
  }),
} satisfies Record<keyof ServerToClientEvents, z.ZodTypeAny>;

// ---- Compile-time: these schemas describe exactly the TypeScript types. ----
// Mutual assignability: a field missing, extra, optional on one side only, or of
// another type on either side makes one direction fail.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Mismatches<M extends Record<string, unknown>> = { [K in keyof M]: M[K] extends true ? never : K }[keyof M];
type Check<M extends Record<string, unknown>> = [Mismatches<M>] extends [never] ? true : { schemaDiffersFromTypeFor: Mismatches<M> };

type AckData<K extends keyof ClientToServerEvents> = Extract<Parameters<Parameters<ClientToServerEvents[K]>[1]>[0], { ok: true }>["data"];
type ServerPayload<K extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[K]>[0];
type Schemas = typeof ackDataSchemas;
type EventSchemas = typeof serverEventSchemas;

export const typesMatchSchemas: [
  Check<{ [K in keyof ClientToServerEvents]: Same<z.infer<Schemas[K]>, AckData<K>> }>,
  Check<{ [K in keyof ServerToClientEvents]: Same<z.infer<EventSchemas[K]>, ServerPayload<K>> }>,
  Check<{ Message: Same<z.infer<typeof message>, Message>; Session: Same<z.infer<typeof session>, Session>; User: Same<z.infer<typeof user>, User> }>,
  Check<{ Error: Same<z.infer<typeof errorBody>, ErrorBody> }>,
  Check<{ Attachment: Same<z.infer<typeof attachment>, AttachmentPayload>; AttachmentRef: Same<z.infer<typeof attachmentRef>, AttachmentRef> }>,
] = [true, true, true, true, true];
