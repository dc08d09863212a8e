/**
 * Payload schemas of every socket event and REST body: the one source of
 * truth, shared with clients. Handlers parse with these and trust the result.
 */
import { z } from "zod";

export const uuid = z.string().uuid();
/** Message ids are PostgreSQL bigint identities, sent as JSON numbers. */
export const messageId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const seq = z.number().int().min(0).max(2_147_483_647);

export const username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only");
export const password = z.string().min(8).max(200);

export const credentials = z.object({ username, password }).strict();

export const retrievalMode = z.enum(["hybrid", "vector", "lexical"]);

// PostgreSQL text cannot hold U+0000: refused here with BAD_REQUEST instead of failing in the database.
const NO_NUL: [(s: string) => boolean, string] = [(s) => !s.includes("\u0000"), "text may not contain NUL characters"];

export const sessionTitle = z.string().trim().max(200).refine(...NO_NUL);

export function protocolSchemas(limits: { maxMessageChars: number; historyPageMax: number }) {
  const content = z
    .string()
    .max(limits.maxMessageChars, `content is longer than ${limits.maxMessageChars} characters`)
    .refine((s) => s.trim().length > 0, "content is empty")
    .refine(...NO_NUL);
  const pageLimit = z.number().int().min(1).max(limits.historyPageMax);
  return {
    "session:create": z.object({ title: sessionTitle.optional(), assistant: z.boolean().optional() }).strict(),
    "session:join": z.object({ sessionId: uuid, afterSeq: seq.optional() }).strict(),
    "session:leave": z.object({ sessionId: uuid }).strict(),
    "session:rename": z.object({ sessionId: uuid, title: sessionTitle }).strict(),
    /** REST body of PATCH /api/sessions/:id. */
    renameBody: z.object({ title: sessionTitle }).strict(),
    "session:invite": z.object({ sessionId: uuid, username }).strict(),
    /** Owner only: true archives the session, false unarchives it. */
    "session:archive": z.object({ sessionId: uuid, archived: z.boolean() }).strict(),
    /** REST query of GET /api/sessions: archived=false (default) lists live sessions, true archived ones, all both. */
    sessionListQuery: z.object({ archived: z.enum(["true", "false", "all"]).optional() }).strict(),
    "message:send": z
      .object({
        sessionId: uuid,
        clientMessageId: z.string().min(1).max(100).refine(...NO_NUL),
        content,
        assistant: z.boolean().optional(),
      })
      .strict(),
    "message:history": z.object({ sessionId: uuid, beforeSeq: seq.optional(), limit: pageLimit.optional() }).strict(),
    typing: z.object({ sessionId: uuid, isTyping: z.boolean() }).strict(),
    "assistant:cancel": z.object({ sessionId: uuid, messageId }).strict(),
    /** messageId: the user message to answer again; the earlier reply is kept. */
    "assistant:regenerate": z.object({ sessionId: uuid, messageId }).strict(),
    "message:feedback": z
      .object({ messageId, rating: z.union([z.literal(1), z.literal(-1)]), comment: z.string().max(2000).refine(...NO_NUL).optional() })
      .strict(),
    "memory:search": z
      .object({
        query: z.string().max(2000).refine((q) => q.trim().length > 0, "query is empty").refine(...NO_NUL),
        sessionId: uuid.optional(),
        limit: z.number().int().min(1).max(50).optional(),
        mode: retrievalMode.optional(),
      })
      .strict(),
    "message:context": z.object({ messageId }).strict(),
    /** REST query of GET /api/memory/search. */
    memoryQuery: z
      .object({
        q: z.string().max(2000).refine((q) => q.trim().length > 0, "q is empty").refine(...NO_NUL),
        sessionId: uuid.optional(),
        limit: z.coerce.number().int().min(1).max(50).optional(),
        mode: retrievalMode.optional(),
      })
      .strict(),
    /** REST query of GET /api/sessions/:id/messages (strings from the URL). */
    historyQuery: z
      .object({
        beforeSeq: z.coerce.number().pipe(seq).optional(),
        limit: z.coerce.number().pipe(pageLimit).optional(),
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
