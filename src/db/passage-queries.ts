/**
 * SQL behind passage retrieval: the lexical leg (BM25, as messages are
 * scored in memory-queries.ts) and the reading of passages found by the
 * vector leg. Both apply the scoping rule of messages (README, Memory) to
 * passages, with the attachment's uploader as the author:
 *   - only sessions the user is a member of (and, with an audience, that
 *     every member of the audience session may read);
 *   - in the session searched from ("home"), every attachment sent with a
 *     message, and the user's own uploads not sent yet;
 *   - in the user's other sessions, only attachments they uploaded.
 */
import type pg from "pg";

export interface PassageRow {
  passageId: number;
  attachmentId: string;
  sessionId: string;
  /** The attachment's file name, as its uploader gave it (sanitised at upload). */
  name: string;
  uploaderId: string;
  page: number | null;
  ordinal: number;
  content: string;
}

export interface PassageLexicalHit extends PassageRow {
  score: number;
}

export interface PassageScope {
  userId: string;
  /** Null: every session the user is a member of. */
  sessionIds: readonly string[] | null;
  homeSessionId?: string | undefined;
  audienceSessionId?: string | undefined;
}

/** The same rule as AUDIENCE_CAN_READ in memory-queries.ts: every member of the audience session is a member of `sessionExpr`. */
const AUDIENCE_CAN_READ = (sessionExpr: string, param: string) => `(${param}::uuid IS NULL OR NOT EXISTS (
            SELECT 1 FROM chat_session_members aud
             WHERE aud.session_id = ${param}::uuid
               AND NOT EXISTS (SELECT 1 FROM chat_session_members mm WHERE mm.session_id = ${sessionExpr} AND mm.user_id = aud.user_id)))`;

/** Over $1 user, $2 sessions (or null), $3 home session, $4 audience session: the sessions and attachments in scope. */
const READABLE = `readable AS (
         SELECT mem.session_id FROM chat_session_members mem
          WHERE mem.user_id = $1 AND ($2::uuid[] IS NULL OR mem.session_id = ANY($2::uuid[]))
            AND ${AUDIENCE_CAN_READ("mem.session_id", "$4")}
       ), docs AS (
         SELECT a.id, a.name, a.uploader_id FROM attachments a
          WHERE a.session_id IN (SELECT session_id FROM readable)
            AND ((a.session_id = $3::uuid AND (a.state = 'attached' OR a.uploader_id = $1)) OR a.uploader_id = $1)
       )`;

type Row = { id: number; attachment_id: string; session_id: string; name: string; uploader_id: string; page: number | null; ordinal: number; content: string };
const toRow = (r: Row): PassageRow => ({
  passageId: r.id,
  attachmentId: r.attachment_id,
  sessionId: r.session_id,
  name: r.name,
  uploaderId: r.uploader_id,
  page: r.page,
  ordinal: r.ordinal,
  content: r.content,
});

const RELATED_WEIGHT = 0.4;
const COVERAGE_WEIGHT = 0.5;

export class PgPassageQueries {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Full-text search over passages in scope, BM25 (k1 1.2, b 0.75) with the
   * coverage factor of message search. The scope's passage count and average
   * length are read from doc_len (sql/021), not from the tsvectors.
   */
  async search(scope: PassageScope, query: string, limit: number, related = ""): Promise<PassageLexicalHit[]> {
    if (scope.sessionIds?.length === 0 || limit <= 0) return [];
    // Named, like the message search: PostgreSQL plans it for a connection's first
    // executions and keeps a generic plan when that is no dearer (planning cost more than running).
    const { rows } = await this.pool.query<Row & { score: number }>({
      name: "passage_lexical_search",
      text: `WITH terms AS (
         SELECT lexeme, max(w) AS w
           FROM (SELECT t.lexeme, 1.0::float8 AS w FROM unnest(to_tsvector('english', $5)) t
                 UNION ALL
                 SELECT t.lexeme, $7::float8 FROM unnest(to_tsvector('english', $6)) t) x
          GROUP BY lexeme
       ), q AS (
         SELECT string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery AS query FROM terms
       ), ${READABLE}, stats AS (
         SELECT greatest(count(*), 1)::float8 AS n, greatest(coalesce(avg(p.doc_len), 1), 1)::float8 AS avgdl
           FROM attachment_passages p WHERE p.attachment_id IN (SELECT id FROM docs)
       ), cand AS MATERIALIZED (
         SELECT p.id, p.content_tsv, p.doc_len FROM attachment_passages p, q
          WHERE q.query IS NOT NULL AND p.content_tsv @@ q.query
            AND p.attachment_id IN (SELECT id FROM docs)
       ), tf AS (
         SELECT c.id, u.lexeme, coalesce(cardinality(u.positions), 1) AS tf, c.doc_len AS dl
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
       SELECT p.id, p.attachment_id, p.session_id, d.name, d.uploader_id, p.page, p.ordinal, p.content,
              sc.bm25 * (${1 - COVERAGE_WEIGHT} + ${COVERAGE_WEIGHT} * sc.coverage) AS score
         FROM scored sc JOIN attachment_passages p ON p.id = sc.id JOIN docs d ON d.id = p.attachment_id
        ORDER BY score DESC, p.id
        LIMIT $8`,
      values: [scope.userId, scope.sessionIds, scope.homeSessionId ?? null, scope.audienceSessionId ?? null, query, related, RELATED_WEIGHT, limit],
    });
    return rows.map((r) => ({ ...toRow(r), score: r.score }));
  }

  /** The passages among `ids` that the scope allows, with their attachments' names; others are left out. */
  async readable(scope: PassageScope, ids: readonly number[]): Promise<PassageRow[]> {
    if (ids.length === 0 || scope.sessionIds?.length === 0) return [];
    const { rows } = await this.pool.query<Row>({
      text: `WITH ${READABLE}
       SELECT p.id, p.attachment_id, p.session_id, d.name, d.uploader_id, p.page, p.ordinal, p.content
         FROM attachment_passages p JOIN docs d ON d.id = p.attachment_id
        WHERE p.id = ANY($5::bigint[])`,
      values: [scope.userId, scope.sessionIds, scope.homeSessionId ?? null, scope.audienceSessionId ?? null, ids],
    });
    return rows.map(toRow);
  }

  /**
   * The passages a reply used, for a user who may see the reply. The text,
   * file name and page are given only while the caller may still read that
   * attachment (its session, and sent or their own).
   */
  async contextOf(userId: string, messageId: number): Promise<{ passageId: number; score: number; rank: number; source: string; attachmentId: string | null; name: string | null; page: number | null; content: string | null }[]> {
    const { rows } = await this.pool.query<{ passage_id: number; score: number; rank: number; source: string; attachment_id: string | null; name: string | null; page: number | null; content: string | null }>(
      `SELECT c.passage_id, c.score, c.rank, c.source, r.attachment_id, r.name, r.page, r.content
         FROM message_passage_context c
         JOIN chat_messages m ON m.id = c.message_id
         LEFT JOIN LATERAL (
           SELECT p.attachment_id, a.name, p.page, p.content FROM attachment_passages p JOIN attachments a ON a.id = p.attachment_id
            WHERE p.id = c.passage_id
              AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = p.session_id AND user_id = $1)
              AND (a.state = 'attached' OR a.uploader_id = $1)
         ) r ON true
        WHERE c.message_id = $2 AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = m.session_id AND user_id = $1)
        ORDER BY c.rank`,
      [userId, messageId],
    );
    return rows.map((r) => ({ passageId: r.passage_id, score: r.score, rank: r.rank, source: r.source, attachmentId: r.attachment_id, name: r.name, page: r.page, content: r.content }));
  }
}
