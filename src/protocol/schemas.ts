/**
 * Payload schemas of every socket event and REST body: the one source of
 * truth, shared with clients. Handlers parse with these and trust the result.
 */
import { z } from "zod";

/**
 * Ids are parsed to lower case: PostgreSQL compares uuids case-insensitively
 * but rooms, caches and Redis keys compare strings, so one spelling only.
 */
export const uuid = z.string().uuid().toLowerCase();
/** Message ids are PostgreSQL bigint identities, sent as JSON numbers. */
export const messageId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** Named assistant configurations are numbered (assistant_configurations.id, an integer identity). */
export const configurationId = z.number().int().positive().max(2_147_483_647);
export const seq = z.number().int().min(0).max(2_147_483_647);

// Text checks are string checks (regexes), not refinements: a zod refinement costs
// more per parse than all the string checks of a message together.
// PostgreSQL text cannot hold U+0000: refused here with BAD_REQUEST instead of failing in the database.
export const NO_NUL: [RegExp, string] = [/^[^\u0000]*$/, "text may not contain NUL characters"];
/**
 * A lone UTF-16 surrogate cannot be encoded as UTF-8: it would be stored (and
 * hashed, for passwords) as U+FFFD, so two different strings would become one.
 * In a `u` regex a lone surrogate is a code point of category Cs; a pair is not.
 */
export const WELL_FORMED: [RegExp, string] = [/^\P{Cs}*$/u, "text may not contain lone UTF-16 surrogates"];
/** Like `s.trim().length > 0`: \s is exactly the set trim() removes. */
export const notBlank = (what: string): [RegExp, string] => [/\S/, `${what} is empty`];

export const username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only")
  .regex(...WELL_FORMED);
export const password = z.string().min(8).max(200).regex(...WELL_FORMED);

export const credentials = z.object({ username, password }).strict();

/** Longest feedback comment (the CHECK of sql/019_named_configurations.sql). */
export const FEEDBACK_COMMENT_MAX = 2000;

export const retrievalMode = z.enum(["hybrid", "vector", "lexical"]);

export const sessionTitle = z.string().trim().max(200).regex(...NO_NUL).regex(...WELL_FORMED);

export function protocolSchemas(limits: { maxMessageChars: number; historyPageMax: number; maxAttachments?: number }) {
  const maxAttachments = limits.maxAttachments ?? 10;
  const content = z
    .string()
    .max(limits.maxMessageChars, `content is longer than ${limits.maxMessageChars} characters`)
    .regex(...notBlank("content"))
    .regex(...NO_NUL)
    .regex(...WELL_FORMED);
  const pageLimit = z.number().int().min(1).max(limits.historyPageMax);
  return {
    "session:create": z.object({ title: sessionTitle.optional(), assistant: z.boolean().optional() }).strict(),
    "session:join": z.object({ sessionId: uuid, afterSeq: seq.optional() }).strict(),
    "session:leave": z.object({ sessionId: uuid }).strict(),
    "session:rename": z.object({ sessionId: uuid, title: sessionTitle }).strict(),
    /** REST body of PATCH /api/sessions/:id. */
    renameBody: z.object({ title: sessionTitle }).strict(),
    "session:invite": z.object({ sessionId: uuid, username }).strict(),
    /** Owner only: the named assistant configuration the session's turns use from the next one; null follows the default. */
    "session:configure": z.object({ sessionId: uuid, configurationId: configurationId.nullable() }).strict(),
    /** Owner only: true archives the session, false unarchives it. */
    "session:archive": z.object({ sessionId: uuid, archived: z.boolean() }).strict(),
    /** REST query of GET /api/sessions: archived=false (default) lists live sessions, true archived ones, all both. */
    sessionListQuery: z.object({ archived: z.enum(["true", "false", "all"]).optional() }).strict(),
    "message:send": z
      .object({
        sessionId: uuid,
        clientMessageId: z.string().min(1).max(100).regex(...NO_NUL).regex(...WELL_FORMED),
        content,
        assistant: z.boolean().optional(),
        /** Ids of the sender's own unsent uploads in this session (POST /api/sessions/:id/attachments). */
        attachments: z.array(uuid).max(maxAttachments, `at most ${maxAttachments} attachments per message`).optional(),
      })
      .strict(),
    "message:history": z.object({ sessionId: uuid, beforeSeq: seq.optional(), limit: pageLimit.optional() }).strict(),
    typing: z.object({ sessionId: uuid, isTyping: z.boolean() }).strict(),
    "assistant:cancel": z.object({ sessionId: uuid, messageId }).strict(),
    /** messageId: the user message to answer again; the earlier reply is kept. */
    "assistant:regenerate": z.object({ sessionId: uuid, messageId }).strict(),
    /** rating 1 positive, 0 neutral, -1 negative; a blank comment is stored as none. Rating again replaces the caller's earlier rating. */
    "message:feedback": z
      .object({
        messageId,
        rating: z.union([z.literal(1), z.literal(0), z.literal(-1)], { errorMap: () => ({ message: "rating must be 1 (positive), 0 (neutral) or -1 (negative)" }) }),
        comment: z
          .string()
          .max(FEEDBACK_COMMENT_MAX, `comment is longer than ${FEEDBACK_COMMENT_MAX} characters`)
          .regex(...NO_NUL)
          .regex(...WELL_FORMED)
          .trim()
          .optional(),
      })
      .strict(),
    "memory:search": z
      .object({
        query: z.string().max(2000).regex(...notBlank("query")).regex(...NO_NUL).regex(...WELL_FORMED),
        sessionId: uuid.optional(),
        limit: z.number().int().min(1).max(50).optional(),
        mode: retrievalMode.optional(),
      })
      .strict(),
    "message:context": z.object({ messageId }).strict(),
    /** REST query of GET /api/memory/search. */
    memoryQuery: z
      .object({
        q: z.string().max(2000).regex(...notBlank("q")).regex(...NO_NUL).regex(...WELL_FORMED),
        sessionId: uuid.optional(),
        limit: z.coerce.number().int().min(1).max(50).optional(),
        mode: retrievalMode.optional(),
      })
      .strict(),
    /** REST query of GET /api/sessions/:id/messages (strings from the URL). */
    historyQuery: z
      .object({
        // Coerced, then checked like seq and pageLimit (written out so the OpenAPI document shows the bounds).
        beforeSeq: z.coerce.number().int().min(0).max(2_147_483_647).optional(),
        limit: z.coerce.number().int().min(1).max(limits.historyPageMax).optional(),
      })
      .strict(),
    inviteBody: z.object({ username }).strict(),
    "invitation:list": z.object({}).strict(),
    "invitation:accept": z.object({ sessionId: uuid }).strict(),
    "invitation:decline": z.object({ sessionId: uuid }).strict(),
    /** Ends the caller's own membership (the owner cannot leave: they delete). */
    "member:leave": z.object({ sessionId: uuid }).strict(),
    /** Owner only: ends another member's membership, or withdraws their pending invitation. */
    "member:remove": z.object({ sessionId: uuid, userId: uuid }).strict(),
  } as const;
}

export type ProtocolSchemas = ReturnType<typeof protocolSchemas>;
export type Input<K extends keyof ProtocolSchemas> = z.infer<ProtocolSchemas[K]>;
