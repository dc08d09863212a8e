/**
 * VectorStore over plain PostgreSQL (no pgvector in the embedded server).
 * Vectors are stored unit-length, so cosine similarity is a dot product,
 * computed in this process.
 *
 * Search is a prefilter and an exact rerank. Each vector has a binary code
 * of two bits per dimension (its sign, sql/010, and whether it is large,
 * sql/024); this process keeps the codes of the users it searches in
 * memory, picks the `rerankDepth` points whose codes estimate the nearest to
 * the query among the filtered points (UserCodes.nearest), reads those
 * points' float vectors and scores them exactly. A filtered set no larger than the
 * depth is therefore searched exactly. Before each search the in-memory copy
 * catches up with PostgreSQL (rows written since its last look, by any node,
 * and deletions, through sql/010's change feed), so it is never stale, and a
 * restarted node rebuilds it from the table on a user's first search.
 *
 * `exact: true` scores every filtered vector instead (linear in the user's
 * history; the benchmark's baseline).
 */
import type pg from "pg";
import { MESSAGE_ROLES, type MessageRole, type PassageFilter, type PassagePoint, type PassageVectorHit, type StoredRole, type VectorFilter, type VectorHit, type VectorPoint, type VectorStore } from "./types.js";
import { CodeCache, codeBytes, magnitudeCode, ROLE_SQL, signCode, UserCodes } from "./vector-codes.js";

const UPSERT_BATCH = 200;

export interface PgVectorStoreOptions {
  /** Score every filtered vector instead of prefiltering by code. Default false. */
  exact?: boolean;
  /** Candidates reranked exactly per search (at least the limit). Default 400. */
  rerankDepth?: number;
  /** Points tied in code distance with the last candidate are reranked too, up to this many in all. Default 2 × rerankDepth. */
  rerankMax?: number;
  /** Codes kept in memory over all users; the least recently searched user goes first. Default 1,000,000. */
  cacheMaxPoints?: number;
  /** Exact search: candidate sets up to this size come back with their payloads in the first pass. Default 2,000. */
  inlinePayloadsMax?: number;
}

/** Deletions are kept this long for other nodes' in-memory copies to catch up; an older copy reloads. */
const DELETIONS_KEPT = "1 day";

/**
 * The filter every search applies, over $1 collection, $2 user, $3 sessions
 * and $4 roles. One place, so a further condition on candidates is one line.
 * The in-memory prefilter applies sessions and roles before it cuts to the
 * rerank depth (UserCodes.nearest); a further condition that rules out many
 * points belongs there too (its column in SYNC_SQL), or they take rerank slots.
 */
const CANDIDATE_FILTER = `collection = $1 AND user_id = $2 AND session_id = ANY($3::uuid[])
          AND ($4::text[] IS NULL OR role = ANY($4::text[]))
          -- The memory scoping rule (VectorFilter.authorScope): $6 the author, $7 the sessions where any author counts.
          AND ($6::uuid IS NULL OR author_id = $6::uuid OR session_id = ANY($7::uuid[]))`;

/** $6 and $7 of CANDIDATE_FILTER. */
const authorParams = (filter: Pick<VectorFilter, "authorScope">): [string | null, readonly string[]] => [
  filter.authorScope?.authorId ?? null,
  filter.authorScope?.anyAuthorSessionIds ?? [],
];

/**
 * What changed for one user since `$3` (a snapshot xmin): rows written by
 * transactions from then on, and points deleted since, with their current rows
 * if they came back. All read in one snapshot, whose xmin is the next `$3`:
 * every transaction below it had finished, so nothing is missed. `$4` = a
 * full load (everything, no deletions needed).
 */
const SYNC_SQL = `WITH gone AS (
  SELECT DISTINCT point_id FROM message_vector_deletions
   WHERE collection = $1 AND user_id = $2 AND deleted_xid >= $3::xid8 AND NOT $4::boolean
), changed AS (
  SELECT point_id, session_id, role, code, magnitude FROM message_vectors
   WHERE collection = $1 AND user_id = $2 AND written_xid >= $3::xid8
  UNION ALL
  SELECT v.point_id, v.session_id, v.role, v.code, v.magnitude
    FROM gone JOIN message_vectors v ON v.collection = $1 AND v.point_id = gone.point_id AND v.user_id = $2
)
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon,
       (SELECT pruned_through FROM message_vector_deletions_pruned)::text AS pruned,
       (SELECT coalesce(string_agg(uuid_send(point_id), ''::bytea), ''::bytea) FROM gone) AS gone,
       count(*)::int AS n,
       coalesce(string_agg(uuid_send(point_id), ''::bytea), ''::bytea) AS ids,
       coalesce(string_agg(uuid_send(session_id), ''::bytea), ''::bytea) AS sessions,
       coalesce(string_agg(${ROLE_SQL}, ''::bytea), ''::bytea) AS roles,
       coalesce(string_agg(code, ''::bytea), ''::bytea) AS codes,
       coalesce(string_agg(magnitude, ''::bytea), ''::bytea) AS magnitudes
  FROM changed`;

/** A row of message_vectors as written: a message (messageId) or a passage (passageId, attachmentId). */
interface Row {
  id: string;
  vector: Float32Array;
  messageId: number | null;
  passageId: number | null;
  attachmentId: string | null;
  sessionId: string;
  userId: string;
  authorId: string | null;
  role: StoredRole;
  content: string;
  timestamp: string;
}

/** A search's filter with its roles settled (messages' or "passage"). */
type RoleFilter = Omit<VectorFilter, "roles"> & { roles: readonly StoredRole[] };

/** A hit of either kind; search() and searchPassages() each take their fields. */
type RoleHit = VectorHit & { passageId: number | null; attachmentId: string | null };

/** One user's codes and how far they have caught up. */
class UserEntry {
  codes: UserCodes | undefined;
  horizon = 0n;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  get slots(): number {
    return this.codes?.slots ?? 0;
  }

  /**
   * Runs `sync` so that a run starting after this call has finished when it
   * resolves; callers arriving during a run share the next one.
   */
  refresh(sync: () => Promise<void>): Promise<void> {
    if (this.queued) return this.queued;
    if (this.running) {
      const queued = this.running.catch(() => undefined).then(() => {
        this.queued = undefined;
        return this.start(sync);
      });
      this.queued = queued;
      return queued;
    }
    return this.start(sync);
  }

  private start(sync: () => Promise<void>): Promise<void> {
    const run = sync().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}

export class PgVectorStore implements VectorStore {
  private readonly exact: boolean;
  private readonly rerankDepth: number;
  private readonly rerankMax: number;
  private readonly inlinePayloadsMax: number;
  private readonly cache: CodeCache<UserEntry>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly collection: string,
    private readonly dimensions: number,
    options: PgVectorStoreOptions = {},
    /** Where a search's code sync and rerank run: a node's genericPlanPool (src/db/pool.ts). */
    private readonly genericPlans: pg.Pool = pool,
  ) {
    this.exact = options.exact ?? false;
    this.rerankDepth = options.rerankDepth ?? 400;
    this.rerankMax = options.rerankMax ?? 2 * this.rerankDepth;
    this.inlinePayloadsMax = options.inlinePayloadsMax ?? 2_000;
    this.cache = new CodeCache(options.cacheMaxPoints ?? 1_000_000);
  }

  async ensureReady(): Promise<void> {
    await this.pool.query("SELECT code, magnitude, written_xid FROM message_vectors LIMIT 0");
  }

  async upsert(input: readonly VectorPoint[]): Promise<void> {
    await this.write(
      input.map((p) => ({
        id: p.id,
        vector: p.vector,
        messageId: p.payload.messageId,
        passageId: null,
        attachmentId: null,
        sessionId: p.payload.sessionId,
        userId: p.payload.userId,
        authorId: p.payload.authorId,
        role: p.payload.role,
        content: p.payload.content,
        timestamp: p.payload.timestamp,
      })),
    );
  }

  /** Writes rows of messages or passages (sql/021 gave the table passage_id and attachment_id). */
  private async write(input: readonly Row[]): Promise<void> {
    // One statement may not touch a row twice: the last point for an id wins, as in Qdrant.
    const points = [...new Map(input.map((p) => [p.id, p])).values()];
    for (let i = 0; i < points.length; i += UPSERT_BATCH) {
      const batch = points.slice(i, i + UPSERT_BATCH);
      for (const p of batch) {
        if (p.vector.length !== this.dimensions) throw new Error(`vector has ${p.vector.length} dimensions, collection has ${this.dimensions}`);
      }
      // The vectors travel as one binary parameter, sliced apart in SQL: a bytea[] parameter
      // would be sent as hex text, twice the bytes, encoded here and decoded by the server.
      const width = this.dimensions * 4;
      const codeWidth = codeBytes(this.dimensions);
      const vectors = Buffer.allocUnsafe(batch.length * width);
      const codes = Buffer.allocUnsafe(batch.length * codeWidth);
      const magnitudes = Buffer.allocUnsafe(batch.length * codeWidth);
      batch.forEach((p, j) => {
        const u = unit(p.vector);
        Buffer.from(u.buffer, u.byteOffset, u.byteLength).copy(vectors, j * width);
        signCode(u).copy(codes, j * codeWidth);
        magnitudeCode(u).copy(magnitudes, j * codeWidth);
      });
      await this.pool.query({
        name: "vector_upsert",
        text: `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding, code, author_id, passage_id, attachment_id, magnitude)
         SELECT $1, u.point_id, u.message_id, u.session_id, u.user_id, u.role, u.content, u.ts,
                substring($9::bytea FROM ((u.i - 1) * $10::int + 1)::int FOR $10::int),
                substring($11::bytea FROM ((u.i - 1) * $12::int + 1)::int FOR $12::int), u.author_id, u.passage_id, u.attachment_id,
                substring($16::bytea FROM ((u.i - 1) * $12::int + 1)::int FOR $12::int)
           FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::timestamptz[], $13::uuid[], $14::bigint[], $15::uuid[]) WITH ORDINALITY
             AS u(point_id, message_id, session_id, user_id, role, content, ts, author_id, passage_id, attachment_id, i)
         ON CONFLICT (collection, point_id) DO UPDATE SET
           message_id = EXCLUDED.message_id, session_id = EXCLUDED.session_id, user_id = EXCLUDED.user_id,
           role = EXCLUDED.role, content = EXCLUDED.content, ts = EXCLUDED.ts, embedding = EXCLUDED.embedding,
           code = EXCLUDED.code, author_id = EXCLUDED.author_id, passage_id = EXCLUDED.passage_id, attachment_id = EXCLUDED.attachment_id,
           magnitude = EXCLUDED.magnitude`,
        values: [
          this.collection,
          batch.map((p) => p.id),
          batch.map((p) => p.messageId),
          batch.map((p) => p.sessionId),
          batch.map((p) => p.userId),
          batch.map((p) => p.role),
          batch.map((p) => p.content),
          batch.map((p) => p.timestamp),
          vectors,
          width,
          codes,
          codeWidth,
          batch.map((p) => p.authorId),
          batch.map((p) => p.passageId),
          batch.map((p) => p.attachmentId),
          magnitudes,
        ],
      });
    }
  }

  async search(vector: Float32Array, filter: VectorFilter, limit: number): Promise<VectorHit[]> {
    // Passages share the collection: a message search names the message roles.
    const hits = await this.searchRoles(vector, { ...filter, roles: filter.roles ?? MESSAGE_ROLES }, limit);
    return hits.map((h) => ({ messageId: h.messageId, sessionId: h.sessionId, score: h.score, role: h.role, content: h.content, authorId: h.authorId }));
  }

  async searchPassages(vector: Float32Array, filter: PassageFilter, limit: number): Promise<PassageVectorHit[]> {
    const hits = await this.searchRoles(vector, { ...filter, roles: ["passage"] }, limit);
    return hits.map((h) => ({ passageId: h.passageId!, attachmentId: h.attachmentId!, sessionId: h.sessionId, score: h.score }));
  }

  async upsertPassages(points: readonly PassagePoint[]): Promise<void> {
    await this.write(
      points.map((p) => ({
        id: p.id,
        vector: p.vector,
        messageId: null,
        passageId: p.payload.passageId,
        attachmentId: p.payload.attachmentId,
        sessionId: p.payload.sessionId,
        userId: p.payload.userId,
        authorId: p.payload.authorId,
        role: "passage" as const,
        content: p.payload.content,
        timestamp: p.payload.timestamp,
      })),
    );
  }

  async deleteByAttachment(attachmentId: string): Promise<void> {
    await this.pool.query("DELETE FROM message_vectors WHERE collection = $1 AND attachment_id = $2", [this.collection, attachmentId]);
  }

  private async searchRoles(vector: Float32Array, filter: RoleFilter, limit: number): Promise<RoleHit[]> {
    if (filter.sessionIds.length === 0 || limit <= 0) return [];
    if (this.exact) return this.searchExact(vector, filter, limit);
    const codes = await this.codesOf(filter.userId);
    const query = unit(vector);
    const depth = Math.max(this.rerankDepth, limit);
    const candidates = codes.nearest(query, filter, depth, Math.max(this.rerankMax, depth));
    if (candidates.length === 0) return [];
    // The filter is applied again here: the in-memory copy only proposes candidates.
    const { rows } = await this.genericPlans.query<{ point_id: string; embedding: Buffer; message_id: number; session_id: string; role: MessageRole; content: string; passage_id: number | null; attachment_id: string | null; author_id: string | null }>({
      name: "vector_rerank",
      text: `SELECT point_id, embedding, message_id, session_id, role, content, passage_id, attachment_id, author_id
         FROM message_vectors
        WHERE ${CANDIDATE_FILTER}
          AND point_id = ANY($5::uuid[])`,
      values: [this.collection, filter.userId, filter.sessionIds, filter.roles ?? null, candidates, ...authorParams(filter)],
    });
    const top: { row: (typeof rows)[number]; score: number }[] = [];
    for (const r of rows) {
      const score = dot(query, toFloat32(r.embedding));
      if (top.length < limit || score >= top[top.length - 1]!.score) insertSorted(top, { row: r, score }, limit);
    }
    return top.map((t) => ({ messageId: t.row.message_id, sessionId: t.row.session_id, role: t.row.role, content: t.row.content, authorId: t.row.author_id, score: t.score, passageId: t.row.passage_id, attachmentId: t.row.attachment_id }));
  }

  /** The user's codes, caught up with PostgreSQL. */
  private async codesOf(userId: string): Promise<UserCodes> {
    const key = userId.toLowerCase();
    let entry = this.cache.get(key);
    if (!entry) {
      entry = new UserEntry();
      this.cache.set(key, entry);
    }
    const e = entry;
    await e.refresh(() => this.sync(e, userId));
    this.cache.trim(key);
    return e.codes!;
  }

  /** Catches `entry` up; `full` (or a first look) reads all the user's codes into a new copy. */
  private async sync(entry: UserEntry, userId: string, full = entry.codes === undefined): Promise<void> {
    const { rows } = await this.genericPlans.query<{ horizon: string; pruned: string; gone: Buffer; n: number; ids: Buffer; sessions: Buffer; roles: Buffer; codes: Buffer; magnitudes: Buffer }>({
      name: "vector_codes_sync",
      text: SYNC_SQL,
      values: [this.collection, userId, full ? "0" : entry.horizon.toString(), full],
    });
    const r = rows[0]!;
    // Deletions this copy has not seen may be pruned already: start again from the table.
    if (!full && BigInt(r.pruned) >= entry.horizon) return this.sync(entry, userId, true);
    const codes = full ? new UserCodes(codeBytes(this.dimensions)) : entry.codes!;
    codes.remove(r.gone);
    codes.apply(r);
    entry.codes = codes;
    const horizon = BigInt(r.horizon);
    if (horizon > entry.horizon) entry.horizon = horizon;
  }

  private async searchExact(vector: Float32Array, filter: RoleFilter, limit: number): Promise<RoleHit[]> {
    // Pass 1 reads ids and vectors, and the payloads too while the candidates are few (one round
    // trip for a typical history); past inlinePayloadsMax, pass 2 fetches only the winners' payloads.
    const { rows } = await this.pool.query<{ point_id: string; embedding: Buffer; message_id: number | null; session_id: string; role: MessageRole; content: string | null; passage_id: number | null; attachment_id: string | null; author_id: string | null }>({
      name: "vector_search",
      text: `SELECT point_id, embedding,
              CASE WHEN count(*) OVER () <= $5 THEN message_id END AS message_id,
              session_id, role, passage_id, attachment_id, author_id,
              CASE WHEN count(*) OVER () <= $5 THEN content END AS content
         FROM message_vectors
        WHERE ${CANDIDATE_FILTER}`,
      values: [this.collection, filter.userId, filter.sessionIds, filter.roles ?? null, this.inlinePayloadsMax, ...authorParams(filter)],
    });
    const query = unit(vector);
    const top: { row: (typeof rows)[number]; score: number }[] = [];
    for (const r of rows) {
      const score = dot(query, toFloat32(r.embedding));
      if (top.length < limit || score >= top[top.length - 1]!.score) insertSorted(top, { row: r, score }, limit);
    }
    if (top.length === 0) return [];
    if (top.every((t) => t.row.content !== null)) {
      return top.map((t) => ({ messageId: t.row.message_id!, sessionId: t.row.session_id, role: t.row.role, content: t.row.content!, authorId: t.row.author_id, score: t.score, passageId: t.row.passage_id, attachmentId: t.row.attachment_id }));
    }
    const ids = top.map((t) => t.row.point_id);
    const { rows: payloads } = await this.pool.query<{ point_id: string; message_id: number; session_id: string; role: MessageRole; content: string; passage_id: number | null; attachment_id: string | null }>({
      name: "vector_payloads",
      text: `SELECT point_id, message_id, session_id, role, content, passage_id, attachment_id FROM message_vectors WHERE collection = $1 AND point_id = ANY($2::uuid[])`,
      values: [this.collection, ids],
    });
    const byId = new Map(payloads.map((p) => [p.point_id, p]));
    return top.flatMap((t, i) => {
      const p = byId.get(ids[i]!);
      return p ? [{ messageId: p.message_id, sessionId: p.session_id, role: p.role, content: p.content, authorId: t.row.author_id, score: t.score, passageId: p.passage_id, attachmentId: p.attachment_id }] : [];
    });
  }

  async deleteBySession(sessionId: string): Promise<void> {
    // sql/010's trigger records the deleted points for other nodes' in-memory copies.
    await this.pool.query("DELETE FROM message_vectors WHERE collection = $1 AND session_id = $2", [this.collection, sessionId]);
    await pruneVectorDeletions(this.pool);
  }

  async close(): Promise<void> {
    // The pool belongs to the app.
  }
}

/** Forgets deletions older than other nodes' in-memory copies need (a copy older than that reloads). */
export async function pruneVectorDeletions(pool: pg.Pool): Promise<void> {
  await pool.query(
    `WITH pruned AS (
       DELETE FROM message_vector_deletions WHERE deleted_at < now() - $1::interval RETURNING deleted_xid
     )
     UPDATE message_vector_deletions_pruned SET pruned_through = greatest(pruned_through, (SELECT max(deleted_xid) FROM pruned))
      WHERE EXISTS (SELECT 1 FROM pruned)`,
    [DELETIONS_KEPT],
  );
}

function toFloat32(b: Buffer): Float32Array {
  // A Float32Array view needs 4-byte alignment; the driver's buffers may not have it.
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return new Float32Array(Uint8Array.prototype.slice.call(b).buffer);
}

function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  if (n === 0 || Math.abs(n - 1) < 1e-6) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** Best first; equal scores (identical texts) by point id, so the same data always ranks the same way. */
function insertSorted<T extends { score: number; row: { point_id: string } }>(top: T[], hit: T, limit: number): void {
  let i = top.length;
  while (i > 0 && (top[i - 1]!.score < hit.score || (top[i - 1]!.score === hit.score && top[i - 1]!.row.point_id > hit.row.point_id))) i--;
  top.splice(i, 0, hit);
  if (top.length > limit) top.pop();
}
