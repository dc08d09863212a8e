/**
 * The session list, a page at a time (GET /api/sessions): newest activity
 * first, with an opaque cursor for the next page. A session that gets a new
 * message while someone pages moves to the top: it may then appear on two
 * pages or (when it moved from a later page) only on the first on a reload;
 * clients merge pages by id.
 */
import type pg from "pg";
import { z } from "zod";
import { listSessionsPage, type SessionCursor } from "../db/session-page.js";
import type { SessionSummary, User } from "../protocol/types.js";

export const SESSION_PAGE_DEFAULT = 100;
export const SESSION_PAGE_MAX = 200;

const cursorFields = z.object({
  t: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
  i: z.string().uuid().transform((s) => s.toLowerCase()),
});

const cursor = z
  .string()
  .max(200)
  .transform((raw, ctx): SessionCursor => {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
    } catch {
      json = undefined;
    }
    const c = cursorFields.safeParse(json);
    if (!c.success) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: "not a cursor this server handed out" });
      return z.NEVER;
    }
    return { updatedAt: c.data.t, id: c.data.i };
  });

/** Query of GET /api/sessions: `cursor` from the previous page's nextCursor, `limit` up to SESSION_PAGE_MAX. */
export const sessionListQuery = z.object({
  cursor: cursor.optional(),
  limit: z.coerce.number().int().min(1).max(SESSION_PAGE_MAX).optional(),
  /** Default false: the active sessions; true: the archived ones; all: both. */
  archived: z.enum(["true", "false", "all"]).optional(),
}).strict();

const encode = (c: SessionCursor): string => Buffer.from(JSON.stringify({ t: c.updatedAt, i: c.id })).toString("base64url");

export class SessionList {
  constructor(private readonly pool: pg.Pool) {}

  async page(user: User, q: z.infer<typeof sessionListQuery>): Promise<{ sessions: SessionSummary[]; nextCursor: string | null }> {
    const archived = q.archived === "all" ? null : q.archived === "true";
    const r = await listSessionsPage(this.pool, user.id, q.cursor ?? null, q.limit ?? SESSION_PAGE_DEFAULT, archived);
    return { sessions: r.sessions, nextCursor: r.next ? encode(r.next) : null };
  }
}
