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

/** A lexeme as a one-term tsquery: lexemes are normalised already, so quoted they enter it as they are. */
const QUOTED = (lexeme: string) => `('''' || replace(replace(${lexeme}, '\\', '\\\\'), '''', '''''') || '''')::tsquery`;

/** Weight of a related word (query-terms.ts) against a word of the question itself. */
const RELATED_WEIGHT = 0.4;
/**
 * How much of a message's score depends on the share of the question's
 * weight (its terms' IDF) it holds: a message repeating two common words of
 * the question does not outrank the one holding its rare word and a common one.
 */
const COVERAGE_WEIGHT = 0.5;
/**
 * A word that at most this many candidates hold can join two of them into
 * one answer (see `search`): names and codes, not the words of a template.
 */
const BRIDGE_MAX = 3;
/** Score factor for a message inside the time window a question names. */
const TIME_BOOST = 2;

/**
 * Scope keys of the full-text index chat_messages_scope_tsv (sql/030): an
 * author ('u' + user id) and a session ('s' + session id). Of a row's
 * columns it writes the index's expression exactly, which the planner
 * matches; of a search's user and home session, the keys it asks for.
 */
const scopeKeys = (user: string, session: string) => `ARRAY['u' || ${user}::text, 's' || ${session}::text]`;

/** Candidates (best on their own score first) among which pairs are looked for: bounds the pairing's cost. */
const PAIR_POOL = 300;

/**
 * Joint IDF of each set of question terms in `setsFrom` (a relation with a
 * column `matched`, sorted lexemes): the information of the terms together,
 * from how many candidates hold them all (less `self`, 1 when the message
 * scored is one of them), or as many as independence predicts if that is
 * more, over the sum of their IDFs, at most 1: terms that always come
 * together tell no more than one of them does. Co-occurrence among window
 * rows only is scaled to the scope, as document frequencies are. Also the
 * share of the question's IDF weight the set covers.
 */
const JOINT_IDF = (setsFrom: string, self: 0 | 1) => `SELECT a.matched,
                least(1, greatest(0, ln(st.n / greatest(
                    (coalesce((SELECT sum(b.c) FROM sets b WHERE b.matched @> a.matched), 0) - ${self})
                      * CASE WHEN cv.whole OR t.any_counted THEN 1 ELSE st.n / cv.n END,
                    st.n * exp(t.ln_p), 1e-9))) / nullif(t.sum_idf, 0)) AS factor,
                t.wi / (SELECT sum(wi) FROM idf) AS coverage
           FROM ${setsFrom} a CROSS JOIN stats st CROSS JOIN cover cv CROSS JOIN LATERAL (
                SELECT bool_or(d.counted) AS any_counted, sum(ln(st.n / d.df)) AS sum_idf, sum(ln(d.df / st.n)) AS ln_p, sum(i.wi) AS wi
                  FROM df d JOIN idf i USING (lexeme) WHERE d.lexeme = ANY(a.matched)) t`;

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

/** How the lexical search bounds its work on a long history (see `search`). */
export interface LexicalPlan {
  /** The user's latest messages (and the home session's) read whole; a scope that fits is searched exactly. */
  windowRows: number;
  /** A term estimated in fewer scope messages than this is read from the GIN index; a commoner one only from the window. */
  termCap: number;
}

export const DEFAULT_LEXICAL_PLAN: LexicalPlan = { windowRows: 2000, termCap: 500 };

export class PgMemoryQueries {
  constructor(
    private readonly pool: pg.Pool,
    private readonly plan: LexicalPlan = DEFAULT_LEXICAL_PLAN,
    /** Where the lexical search runs: a node's genericPlanPool (src/db/pool.ts). */
    private readonly genericPlans: pg.Pool = pool,
  ) {
    // Both are written into the search's text (constants its generic plan can use): whole numbers only.
    if (!Number.isSafeInteger(plan.windowRows) || plan.windowRows < 1 || !Number.isSafeInteger(plan.termCap) || plan.termCap < 1) {
      throw new RangeError(`a lexical plan takes whole numbers from 1: window ${plan.windowRows}, term cap ${plan.termCap}`);
    }
  }

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
   * The authors (chat_messages.user_id) of the given messages, for vector
   * hits whose store holds none: a point written before authors were stored.
   */
  async authorsOf(messageIds: readonly number[]): Promise<Map<number, string | null>> {
    if (messageIds.length === 0) return new Map();
    const { rows } = await this.pool.query<{ id: number; user_id: string | null }>({
      name: "memory_authors_of",
      text: "SELECT id, user_id FROM chat_messages WHERE id = ANY($1::bigint[])",
      values: [messageIds],
    });
    return new Map(rows.map((r) => [r.id, r.user_id]));
  }

  /**
   * Full-text search over stored messages, ranked by BM25 (k1 1.2, b 0.75).
   * The scope's message count and average length come from
   * lexical_doc_stats and chat_sessions.lex_* (sql/009, sql/029); the BM25 score is scaled by how much of the
   * question's IDF weight the message covers. Related words (see
   * query-terms.ts) count at RELATED_WEIGHT; a message inside the question's
   * time window scores TIME_BOOST times as much.
   *
   * Two corrections to BM25's independence of words (README, "Memory"):
   * - Joint IDF: a message's score is scaled by the information of the set
   *   of question terms it holds (from how many other candidates hold them
   *   all, or as many as independence predicts if more) over the sum of
   *   their IDFs, at most 1: terms that always come together count once.
   * - Pairs: two of the PAIR_POOL best candidates on their own score,
   *   sharing a word at most BRIDGE_MAX of those hold, each with question terms the other lacks, are scored as one
   *   text (the partner's terms at RELATED_WEIGHT, the same two factors on
   *   the union); each keeps the better of that and its own score. An
   *   answer told over two messages joined by a name comes first.
   *
   * Candidates and document frequencies, bounded so that a long history
   * costs about what a short one does (README, "Lexical search cost"):
   * - The window: the user's `windowRows` latest messages (those outside
   *   the scope then dropped), as many before the end of the period the
   *   question names, if any, and the home session's `windowRows` latest,
   *   any author. When it holds the whole scope, every candidate and every
   *   document frequency comes from it: exact BM25.
   * - Otherwise a term's share of the window estimates its document
   *   frequency. A term estimated rarer than `termCap` in the scope is read
   *   from the GIN index (at most termCap + 1 rows): its matches are all
   *   candidates and its frequency is exact. A common term is never read
   *   from the index, whose posting list for it may be huge: its candidates
   *   are the window's messages holding it, its frequency the estimate (IDF
   *   moves little at that share).
   *
   * Scope (the memory scoping rule): sessions the user is a member of (and,
   * with an audience, that all of it may read); in `homeSessionId` any
   * message, elsewhere only rows whose user_id is the user.
   */
  async search(s: LexicalSearch): Promise<LexicalHit[]> {
    if (s.sessionIds?.length === 0 || s.limit <= 0) return [];
    const cols = "m.id, m.session_id, m.role, m.content, m.created_at, m.content_tsv, m.user_id";
    // A named statement on generic plans (genericPlanPool): planning it costs
    // PostgreSQL 2-7 ms of CPU, more than executing it and the largest cost of
    // an assistant turn (README, "Assistant latency"), and left to choose,
    // PostgreSQL plans it afresh on every call once a user's history is long.
    // The query's words never reach the plan anyway (every term is read per
    // row), nor do the index scans depend on whether there is a home session
    // or a period. The window and term cap are written into the text, so the
    // generic plan knows its limits as a custom one would.
    const { rows } = await this.genericPlans.query<{ id: number; session_id: string; role: MessageRole; content: string; score: number; created_at: Date; user_id: string | null }>({
      name: `memory_lexical_search_${this.plan.windowRows}_${this.plan.termCap}`,
      text: `WITH terms AS (
         SELECT lexeme, max(w) AS w
           FROM (SELECT t.lexeme, 1.0::float8 AS w FROM unnest(to_tsvector('english', $3)) t
                 UNION ALL
                 SELECT t.lexeme, $8::float8 FROM unnest(to_tsvector('english', $7)) t) x
          GROUP BY lexeme
       ), readable AS (
         SELECT mem.session_id FROM chat_session_members mem
          WHERE mem.user_id = $1 AND ($2::uuid[] IS NULL OR mem.session_id = ANY($2::uuid[]))
            AND ${AUDIENCE_CAN_READ("mem.session_id", "$6")}
       ), scope AS (
         -- As one array, checked per row by value: as a join, the planner would
         -- read the GIN index once per session, and the window row by row against a list.
         SELECT coalesce(array_agg(session_id), '{}') AS ids FROM readable
       ), stats AS (
         SELECT greatest(coalesce(sum(st.docs), 0), 1)::float8 AS n,
                greatest(coalesce(sum(st.len), 0)::float8 / greatest(coalesce(sum(st.docs), 0), 1), 1) AS avgdl
           FROM (SELECT st.docs, st.len FROM lexical_doc_stats st
                  WHERE st.session_id IN (SELECT session_id FROM readable)
                    AND (st.session_id = $9::uuid OR st.author_id = $1)
                 UNION ALL
                 -- The owner's rows, counted by the send statements on the session row (sql/029).
                 SELECT s.lex_docs, s.lex_len FROM chat_sessions s
                  WHERE s.id IN (SELECT session_id FROM readable)
                    AND (s.id = $9::uuid OR s.owner_id = $1)) st
       ), win_user AS MATERIALIZED (
         -- The user's latest rows by the (user_id, created_at) index, whatever their session: a
         -- scope filter inside this scan could walk the whole history to fill the window.
         SELECT ${cols}, m.status FROM chat_messages m
          WHERE m.user_id = $1
          ORDER BY m.created_at DESC LIMIT ${this.plan.windowRows}
       ), win_period AS MATERIALIZED (
         -- A question naming a period also reads the latest rows before its end.
         SELECT ${cols}, m.status FROM chat_messages m
          WHERE $11::timestamptz IS NOT NULL AND m.user_id = $1
            AND m.created_at < least($11::timestamptz, (SELECT min(created_at) FROM win_user))
          ORDER BY m.created_at DESC LIMIT ${this.plan.windowRows}
       ), win_home AS MATERIALIZED (
         -- The home session, any author (its own index, by seq).
         SELECT ${cols} FROM chat_messages m
          WHERE m.session_id = $9::uuid AND m.status <> 'streaming'
            AND $9::uuid = ANY((SELECT ids FROM scope)::uuid[])
          ORDER BY m.seq DESC LIMIT ${this.plan.windowRows}
       ), win AS (
         SELECT w.id, w.session_id, w.role, w.content, w.created_at, w.content_tsv, w.user_id
           FROM (SELECT * FROM win_user UNION ALL SELECT * FROM win_period) w
          WHERE w.status <> 'streaming' AND w.session_id IS DISTINCT FROM $9::uuid
            AND w.session_id = ANY((SELECT ids FROM scope)::uuid[])
         UNION ALL
         SELECT * FROM win_home
       ), cover AS (
         -- whole: the window holds every message in scope.
         SELECT greatest(count(*), 1)::float8 AS n,
                (SELECT count(*) FROM win_user) < ${this.plan.windowRows} AND (SELECT count(*) FROM win_home) < ${this.plan.windowRows} AS whole
           FROM win
       ), q AS (
         SELECT string_agg(${QUOTED("lexeme")}::text, ' | ')::tsquery AS query FROM terms
       ), win_hit AS MATERIALIZED (
         -- One @@ per window row; only the rows that match are taken apart.
         SELECT w.* FROM win w, q WHERE w.content_tsv @@ q.query
       ), win_tf AS MATERIALIZED (
         SELECT w.id, u.lexeme, coalesce(cardinality(u.positions), 1) AS tf, length(w.content_tsv) AS dl
           FROM win_hit w CROSS JOIN LATERAL unnest(w.content_tsv) u
          WHERE u.lexeme IN (SELECT lexeme FROM terms)
       ), est AS MATERIALIZED (
         SELECT t.lexeme, t.w, cv.whole, coalesce(d.c, 0) AS c,
                CASE WHEN cv.whole THEN coalesce(d.c, 0) ELSE s.n * coalesce(d.c, 0) / cv.n END AS est_df
           FROM terms t
           LEFT JOIN (SELECT lexeme, count(*)::float8 AS c FROM win_tf GROUP BY lexeme) d USING (lexeme)
          CROSS JOIN cover cv CROSS JOIN stats s
       ), gin AS MATERIALIZED (
         SELECT e.lexeme, g.id
           FROM est e CROSS JOIN LATERAL (
                SELECT m.id
                  -- The scope-key GIN index (sql/030) yields only the rows the scoping rule
                  -- may return (the user's own, the home session's), whoever else wrote the
                  -- word. OFFSET 0 keeps the scope array out of the index scan.
                  FROM (SELECT x.id, x.session_id, x.status FROM chat_messages x
                         WHERE ${scopeKeys("x.user_id", "x.session_id")} && ${scopeKeys("$1", "$9")}
                           AND x.content_tsv @@ ${QUOTED("e.lexeme")} OFFSET 0) m
                 WHERE m.status <> 'streaming'
                   AND m.session_id = ANY((SELECT ids FROM scope)::uuid[])
                 LIMIT ${this.plan.termCap} + 1) g
          WHERE NOT e.whole AND e.est_df < ${this.plan.termCap}
       ), gin_n AS (
         SELECT lexeme, count(*)::float8 AS c FROM gin GROUP BY lexeme
       ), df AS (
         -- counted: the term's every match in scope is a candidate (its frequency is exact, not estimated).
         SELECT e.lexeme, e.w,
                CASE WHEN e.whole THEN e.c
                     WHEN e.est_df >= ${this.plan.termCap} OR g.c > ${this.plan.termCap} THEN greatest(e.est_df, ${this.plan.termCap} + 1)
                     ELSE coalesce(g.c, 0) END AS df,
                e.whole OR NOT (e.est_df >= ${this.plan.termCap} OR coalesce(g.c, 0) > ${this.plan.termCap}) AS counted
           FROM est e LEFT JOIN gin_n g USING (lexeme)
       ), gin_rows AS MATERIALIZED (
         SELECT ${cols} FROM chat_messages m
          WHERE m.id IN (SELECT g.id FROM gin g JOIN gin_n n USING (lexeme) WHERE n.c <= ${this.plan.termCap})
            AND m.id NOT IN (SELECT id FROM win)
       ), cand AS (
         SELECT * FROM win_hit UNION ALL SELECT * FROM gin_rows
       ), tf AS (
         SELECT * FROM win_tf
         UNION ALL
         SELECT c.id, u.lexeme, coalesce(cardinality(u.positions), 1) AS tf, length(c.content_tsv) AS dl
           FROM gin_rows c CROSS JOIN LATERAL unnest(c.content_tsv) u
          WHERE u.lexeme IN (SELECT lexeme FROM terms)
       ), idf AS (
         SELECT df.lexeme, df.w * ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5)) AS wi
           FROM df CROSS JOIN stats s WHERE df.df > 0
       ), contrib AS MATERIALIZED (
         SELECT tf.id, tf.lexeme, idf.wi * tf.tf * 2.2 / (tf.tf + 1.2 * (0.25 + 0.75 * tf.dl / s.avgdl)) AS c
           FROM tf JOIN idf USING (lexeme) CROSS JOIN stats s
       ), scored AS MATERIALIZED (
         SELECT id, sum(c) AS bm25, array_agg(lexeme ORDER BY lexeme) AS matched FROM contrib GROUP BY id
       ), sets AS (
         -- The distinct sets of question terms the candidates hold (few: subsets of the question's terms).
         SELECT matched, count(*)::float8 AS c FROM scored WHERE cardinality(matched) > 1 GROUP BY matched
       ), own_joint AS (
         ${JOINT_IDF("sets", 1)}
       ), own AS (
         SELECT sc.id, sc.bm25 * (${1 - COVERAGE_WEIGHT} + ${COVERAGE_WEIGHT} * coalesce(r.coverage, (SELECT i.wi FROM idf i WHERE i.lexeme = sc.matched[1]) / (SELECT sum(wi) FROM idf))) * coalesce(r.factor, 1) AS score
           FROM scored sc LEFT JOIN own_joint r USING (matched)
       ), links AS MATERIALIZED (
         -- The words that the question does not hold of the PAIR_POOL best candidates on their own.
         SELECT c.id, u.lexeme
           FROM (SELECT id FROM own ORDER BY score DESC LIMIT ${PAIR_POOL}) o JOIN cand c USING (id)
          CROSS JOIN LATERAL unnest(c.content_tsv) u
          WHERE u.lexeme NOT IN (SELECT lexeme FROM terms)
       ), pairs AS MATERIALIZED (
         -- Two candidates joined by a word only a few of them hold (a name, a code), each holding
         -- question terms the other lacks: an answer told over two messages, scored as one text.
         SELECT p.a, p.b, u.matched, u.bm25
           FROM (SELECT DISTINCT x.id AS a, y.id AS b
                   FROM links x JOIN links y ON y.lexeme = x.lexeme AND y.id <> x.id
                  WHERE x.lexeme IN (SELECT lexeme FROM links GROUP BY lexeme HAVING count(*) BETWEEN 2 AND ${BRIDGE_MAX})) p(a, b)
           JOIN scored sa ON sa.id = p.a JOIN scored sb ON sb.id = p.b
          CROSS JOIN LATERAL (
                -- The partner's terms count as related words do: what it says is about the answer, not the answer.
                SELECT array_agg(lexeme ORDER BY lexeme) AS matched, sum(c) AS bm25
                  FROM (SELECT lexeme, max(CASE WHEN id = p.a THEN c ELSE $8::float8 * c END) AS c
                          FROM contrib WHERE id IN (p.a, p.b) GROUP BY lexeme) t) u
          WHERE NOT sa.matched @> sb.matched AND NOT sb.matched @> sa.matched
       ), pair_joint AS (
         ${JOINT_IDF("(SELECT DISTINCT matched FROM pairs)", 0)}
       ), paired AS (
         SELECT p.a AS id, max(p.bm25 * (${1 - COVERAGE_WEIGHT} + ${COVERAGE_WEIGHT} * r.coverage) * coalesce(r.factor, 1)) AS score
           FROM pairs p JOIN pair_joint r USING (matched)
          GROUP BY p.a
       ), best AS (
         -- One grouping instead of joins by id: the generic plan guesses a handful of
         -- candidates where there may be hundreds, and its nested loops over them cost
         -- 70 ms of a 100 ms search. Every candidate with a score is in own (paired is a subset).
         SELECT x.id, max(x.score) AS score, max(x.created_at) AS created_at
           FROM (SELECT id, score, NULL::timestamptz AS created_at FROM own
                 UNION ALL SELECT id, score, NULL FROM paired
                 UNION ALL SELECT id, NULL, created_at FROM cand) x
          GROUP BY x.id
       ), top AS MATERIALIZED (
         SELECT b.id, b.score * CASE WHEN b.created_at >= $10::timestamptz AND b.created_at < $11::timestamptz THEN ${TIME_BOOST} ELSE 1 END AS score
           FROM best b
          WHERE b.score IS NOT NULL AND NOT (b.id = ANY($5::bigint[]))
          ORDER BY 2 DESC, b.id DESC
          LIMIT $4
       )
       SELECT c.id, c.session_id, c.role, c.content, c.created_at, c.user_id, t.score
         FROM top t JOIN cand c USING (id)
        ORDER BY t.score DESC, c.id DESC`,
      values: [
        s.userId, s.sessionIds, s.query, s.limit, s.excludeIds ?? [], s.audienceSessionId ?? null,
        s.related ?? "", RELATED_WEIGHT, s.homeSessionId ?? null, s.window?.from ?? null, s.window?.to ?? null,
      ],
    });
    return rows.map((r) => ({ messageId: r.id, sessionId: r.session_id, role: r.role, content: r.content, score: r.score, createdAt: r.created_at, authorId: r.user_id }));
  }
}
