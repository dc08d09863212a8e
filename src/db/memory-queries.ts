/** SQL behind memory: which sessions a user may search, and the lexical index. */
import type pg from "pg";
import type { MessageRole } from "../memory/types.js";

export interface SessionScope {
  sessionId: string;
  /** The tenant under which the session's vectors are stored. */
  ownerId: string;
  archived: boolean;
  /** Whether any attachment passage lives in the session: a turn skips passage search when none does. */
  hasPassages: boolean;
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
export const AUDIENCE_CAN_READ = (sessionExpr: string, param: string) => `(${param}::uuid IS NULL OR NOT EXISTS (
            SELECT 1 FROM chat_session_members aud
             WHERE aud.session_id = ${param}::uuid
               AND NOT EXISTS (SELECT 1 FROM chat_session_members mm WHERE mm.session_id = ${sessionExpr} AND mm.user_id = aud.user_id)))`;

/** Weight of a related word (query-terms.ts) against a word of the question itself. */
const RELATED_WEIGHT = 0.4;
/**
 * How much of a message's score depends on the share of the question's
 * weight (its terms' IDF) it holds: a message repeating two common words of
 * the question does not outrank the one holding its rare word and a common one.
 */
const COVERAGE_WEIGHT = 0.5;
/** Score factor for a message inside the time window a question names. */
const TIME_BOOST = 2;

export interface LexicalSearch {
  userId: string;
  /** Null: every session the user is a member of. */
  sessionIds: readonly string[] | null;
  query: string;
  limit: number;
  excludeIds?: readonly number[];
  audienceSessionId?: string | undefined;
  /** The session the search is in: any author's messages there; elsewhere only the user's own. */
  homeSessionId?: string | undefined;
  /** Related words to add at a lower weight, space-separated. */
  related?: string;
  window?: { from: Date; to: Date } | null;
}

export class PgMemoryQueries {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * The sessions `userId` is a member of (narrowed to one when given), with
   * their owners. With `audienceSessionId`, only sessions every member of
   * that session may read: what is retrieved will be shown to all of them.
   */
  async scopes(userId: string, sessionId?: string, audienceSessionId?: string): Promise<SessionScope[]> {
    const { rows } = await this.pool.query<{ session_id: string; owner_id: string; archived: boolean; has_passages: boolean }>({
      name: "memory_scopes_passages",
      text: `SELECT s.id AS session_id, s.owner_id, s.archived,
              EXISTS (SELECT 1 FROM attachment_passages p WHERE p.session_id = s.id) AS has_passages
         FROM chat_session_members mem
         JOIN chat_sessions s ON s.id = mem.session_id
        WHERE mem.user_id = $1 AND ($2::uuid IS NULL OR s.id = $2::uuid)
          AND ${AUDIENCE_CAN_READ("s.id", "$3")}`,
      values: [userId, sessionId ?? null, audienceSessionId ?? null],
    });
    return rows.map((r) => ({ sessionId: r.session_id, ownerId: r.owner_id, archived: r.archived, hasPassages: r.has_passages }));
  }

  /**
   * Full-text search over stored messages, ranked by BM25 (k1 1.2, b 0.75).
   * Candidates are the messages in scope holding any query term (GIN index);
   * each term's document frequency is counted over those candidates, which
   * makes it exact for the scope, and the scope's message count and average
   * length come from lexical_doc_stats (sql/009). The BM25 score is scaled
   * by how much of the question's IDF weight the message covers. Related words (see
   * query-terms.ts) count at RELATED_WEIGHT; a message inside the question's
   * time window scores TIME_BOOST times as much.
   *
   * Scope (the memory scoping rule): sessions the user is a member of (and,
   * with an audience, that all of it may read); in `homeSessionId` any
   * message, elsewhere only rows whose user_id is the user.
   */
  async search(s: LexicalSearch): Promise<LexicalHit[]> {
    if (s.sessionIds?.length === 0 || s.limit <= 0) return [];
    // Not a named statement: a generic plan cannot see the query's words, and runs several times slower.
    const { rows } = await this.pool.query<{ id: number; session_id: string; role: MessageRole; content: string; score: number; created_at: Date; user_id: string | null }>({
      text: `WITH terms AS (
         SELECT lexeme, max(w) AS w
           FROM (SELECT t.lexeme, 1.0::float8 AS w FROM unnest(to_tsvector('english', $3)) t
                 UNION ALL
                 SELECT t.lexeme, $8::float8 FROM unnest(to_tsvector('english', $7)) t) x
          GROUP BY lexeme
       ), q AS (
         -- Lexemes are normalised already: quoted, they enter the tsquery as they are.
         SELECT string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery AS query FROM terms
       ), readable AS (
         SELECT mem.session_id FROM chat_session_members mem
          WHERE mem.user_id = $1 AND ($2::uuid[] IS NULL OR mem.session_id = ANY($2::uuid[]))
            AND ${AUDIENCE_CAN_READ("mem.session_id", "$6")}
       ), cand AS MATERIALIZED (
         SELECT m.id, m.session_id, m.role, m.content, m.created_at, m.content_tsv, m.user_id
           FROM chat_messages m, q
          WHERE q.query IS NOT NULL
            AND m.content_tsv @@ q.query
            AND m.status <> 'streaming'
            -- The readable sessions are worked out once (a hashed subplan), not per matching row.
            AND m.session_id IN (SELECT session_id FROM readable)
            AND (m.session_id = $9::uuid OR m.user_id = $1)
       ), stats AS (
         SELECT greatest(coalesce(sum(st.docs), 0), 1)::float8 AS n,
                greatest(coalesce(sum(st.len), 0)::float8 / greatest(coalesce(sum(st.docs), 0), 1), 1) AS avgdl
           FROM lexical_doc_stats st
          WHERE st.session_id IN (SELECT session_id FROM readable)
            AND (st.session_id = $9::uuid OR st.author_id = $1)
       ), tf AS (
         SELECT c.id, u.lexeme, coalesce(cardinality(u.positions), 1) AS tf, length(c.content_tsv) AS dl
           FROM cand c CROSS JOIN LATERAL unnest(c.content_tsv) u
          WHERE u.lexeme IN (SELECT lexeme FROM terms)
       ), df AS (
         SELECT lexeme, count(*)::float8 AS df FROM tf GROUP BY lexeme
       ), idf AS (
         SELECT df.lexeme, terms.w * ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5)) AS wi
           FROM df JOIN terms USING (lexeme) CROSS JOIN stats s
       ), scored AS (
         SELECT tf.id,
                sum(idf.wi * tf.tf * 2.2 / (tf.tf + 1.2 * (0.25 + 0.75 * tf.dl / s.avgdl))) AS bm25,
                sum(idf.wi) / (SELECT sum(wi) FROM idf) AS coverage
           FROM tf JOIN idf USING (lexeme) CROSS JOIN stats s
          GROUP BY tf.id
       )
       SELECT c.id, c.session_id, c.role, c.content, c.created_at, c.user_id,
              sc.bm25 * (${1 - COVERAGE_WEIGHT} + ${COVERAGE_WEIGHT} * sc.coverage) * CASE WHEN c.created_at >= $10::timestamptz AND c.created_at < $11::timestamptz THEN ${TIME_BOOST} ELSE 1 END AS score
         FROM scored sc JOIN cand c USING (id)
        WHERE NOT (c.id = ANY($5::bigint[]))
        ORDER BY score DESC, c.id DESC
        LIMIT $4`,
      values: [
        s.userId, s.sessionIds, s.query, s.limit, s.excludeIds ?? [], s.audienceSessionId ?? null,
        s.related ?? "", RELATED_WEIGHT, s.homeSessionId ?? null, s.window?.from ?? null, s.window?.to ?? null,
      ],
    });
    return rows.map((r) => ({ messageId: r.id, sessionId: r.session_id, role: r.role, content: r.content, score: r.score, createdAt: r.created_at, authorId: r.user_id }));
  }
}
