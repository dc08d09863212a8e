/**
 * One page of a user's session list, newest activity first, with a keyset
 * cursor: (updated_at DESC, id ASC) of the last row served. A page costs one
 * index range over the user's memberships (chat_session_members_user) plus a
 * top-N sort of those sessions: no OFFSET, so page 50 costs what page 1 does.
 * The cursor carries updated_at to the microsecond, as text, because a
 * JavaScript Date would round it to the millisecond and skip or repeat rows.
 */
import type pg from "pg";
import type { SessionSummary } from "../protocol/types.js";
import { SESSION_COLUMNS, type SessionRow, toSession } from "./rows.js";

export interface SessionCursor {
  /** updated_at of the last session served, ISO 8601 with microseconds, UTC. */
  updatedAt: string;
  id: string;
}

/** Exported for the EXPLAIN check in test/integration/account-store.test.ts. */
export const LIST_SESSIONS_PAGE = `
SELECT ${SESSION_COLUMNS}, mem.role AS member_role,
       s.message_count, s.last_message_at, s.archived,
       to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
  FROM chat_session_members mem
  JOIN chat_sessions s ON s.id = mem.session_id
 WHERE mem.user_id = $1
   AND ($2::timestamptz IS NULL OR s.updated_at < $2 OR (s.updated_at = $2 AND s.id > $3))
   AND ($5::boolean IS NULL OR s.archived = $5)
 ORDER BY s.updated_at DESC, s.id
 LIMIT $4`;

type PageRow = SessionRow & { message_count: number; last_message_at: Date | null; archived: boolean; cursor_at: string };

export async function listSessionsPage(
  pool: pg.Pool,
  userId: string,
  cursor: SessionCursor | null,
  limit: number,
  /** True: archived only; false: active only; null: both. */
  archived: boolean | null = false,
): Promise<{ sessions: SessionSummary[]; next: SessionCursor | null }> {
  // One extra row tells whether another page exists.
  const { rows } = await pool.query<PageRow>({
    name: "list_sessions_page",
    text: LIST_SESSIONS_PAGE,
    values: [userId, cursor?.updatedAt ?? null, cursor?.id ?? null, limit + 1, archived],
  });
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page.at(-1);
  return {
    sessions: page.map((r) => ({
      ...toSession(r),
      messageCount: r.message_count,
      lastMessageAt: r.last_message_at?.toISOString() ?? null,
      archived: r.archived,
    })),
    next: more && last ? { updatedAt: last.cursor_at, id: last.id } : null,
  };
}
