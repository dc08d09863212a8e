/** SQL behind memory: which sessions a user may search, and the lexical index. */
import type pg from "pg";
import type { MessageRole } from "../memory/types.js";

export interface SessionScope {
  sessionId: string;
  /** The tenant under which the session's vectors are stored. */
  ownerId: string;
  archived: boolean;
}

export interface LexicalHit {
  messageId: number;
  sessionId: string;
  role: MessageRole;
  content: string;
  score: number;
  createdAt: Date;
  authorId: string | null;
}

/**
 * True when every member of the audience session (a uuid parameter, or NULL
 * for no audience) is a member of `sessionExpr`. Invariant: text retrieved for
 * a reply in a shared session never comes from a session one of its members
 * cannot read.
 */
const AUDIENCE_CAN_READ = (sessionExpr: string, param: string) => `(${param}::uuid IS NULL OR NOT EXISTS (
            SELECT 1 FROM chat_session_members aud
             WHERE aud.session_id = ${param}::uuid
               AND NOT EXISTS (SELECT 1 FROM chat_session_members mm WHERE mm.session_id = ${sessionExpr} AND mm.user_id = aud.user_id)))`;

export class PgMemoryQueries {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * The sessions `userId` is a member of (narrowed to one when given), with
   * their owners. With `audienceSessionId`, only sessions every member of
   * that session may read: what is retrieved will be shown to all of them.
   */
  async scopes(userId: string, sessionId?: string, audienceSessionId?: string): Promise<SessionScope[]> {
    const { rows } = await this.pool.query<{ session_id: string; owner_id: string; archived: boolean }>({
      name: "memory_scopes",
      text: `SELECT s.id AS session_id, s.owner_id, s.archived FROM chat_session_members mem
         JOIN chat_sessions s ON s.id = mem.session_id
        WHERE mem.user_id = $1 AND ($2::uuid IS NULL OR s.id = $2::uuid)
          AND ${AUDIENCE_CAN_READ("s.id", "$3")}`,
      values: [userId, sessionId ?? null, audienceSessionId ?? null],
    });
    return rows.map((r) => ({ sessionId: r.session_id, ownerId: r.owner_id, archived: r.archived }));
  }

  /**
   * Full-text search over stored messages. Query words are OR-ed (any shared
   * word is a candidate) and ranked by cover density, so one rare word such as
   * a name is enough to find a message. Membership is checked here too.
   */
  /** `sessionIds` null: every session the user is a member of. */
  async search(
    userId: string,
    sessionIds: readonly string[] | null,
    query: string,
    limit: number,
    excludeIds: readonly number[] = [],
    audienceSessionId?: string,
  ): Promise<LexicalHit[]> {
    if (sessionIds?.length === 0 || limit <= 0) return [];
    // Not a named statement: a generic plan cannot see the query's words, and runs several times slower.
    const { rows } = await this.pool.query<{ id: number; session_id: string; role: MessageRole; content: string; score: number; created_at: Date; user_id: string | null }>({
      text: `WITH q AS (
         SELECT nullif(replace(plainto_tsquery('english', $3)::text, '&', '|'), '')::tsquery AS query
       )
       SELECT m.id, m.session_id, m.role, m.content, ts_rank_cd(m.content_tsv, q.query, 1) AS score, m.created_at, m.user_id
         FROM chat_messages m, q
        WHERE q.query IS NOT NULL
          AND ($2::uuid[] IS NULL OR m.session_id = ANY($2::uuid[]))
          AND m.content_tsv @@ q.query
          AND m.status <> 'streaming'
          AND NOT (m.id = ANY($5::bigint[]))
          -- The readable sessions are worked out once (a hashed subplan), not per matching row.
          AND m.session_id IN (SELECT mem.session_id FROM chat_session_members mem
                                WHERE mem.user_id = $1 AND ${AUDIENCE_CAN_READ("mem.session_id", "$6")})
        ORDER BY score DESC, m.id DESC
        LIMIT $4`,
      values: [userId, sessionIds, query, limit, excludeIds, audienceSessionId ?? null],
    });
    return rows.map((r) => ({ messageId: r.id, sessionId: r.session_id, role: r.role, content: r.content, score: r.score, createdAt: r.created_at, authorId: r.user_id }));
  }
}
