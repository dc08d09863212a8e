/**
 * VectorStore over plain PostgreSQL: exact cosine search. The filtered rows'
 * vectors are read and scored in this process (vectors are L2-normalised, so
 * cosine is a dot product). Linear in the caller's history: right for the
 * embedded profile's one-machine scale; Qdrant is the store for more.
 * Vectors are stored unit-length, so cosine similarity is a dot product.
 */
import type pg from "pg";
import type { MessageRole, VectorFilter, VectorHit, VectorPoint, VectorStore } from "./types.js";

const UPSERT_BATCH = 200;

/** Default of PgVectorStore's inlinePayloadsMax. */
const INLINE_PAYLOADS_MAX = 2_000;

export class PgVectorStore implements VectorStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly collection: string,
    private readonly dimensions: number,
    /** Candidate sets up to this size come back with their payloads in the first pass. */
    private readonly inlinePayloadsMax = INLINE_PAYLOADS_MAX,
  ) {}

  async ensureReady(): Promise<void> {
    await this.pool.query("SELECT 1 FROM message_vectors LIMIT 0");
  }

  async upsert(input: readonly VectorPoint[]): Promise<void> {
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
      const vectors = Buffer.allocUnsafe(batch.length * width);
      batch.forEach((p, j) => {
        const u = unit(p.vector);
        Buffer.from(u.buffer, u.byteOffset, u.byteLength).copy(vectors, j * width);
      });
      await this.pool.query({
        name: "vector_upsert",
        text: `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding, author_id)
         SELECT $1, u.point_id, u.message_id, u.session_id, u.user_id, u.role, u.content, u.ts,
                substring($9::bytea FROM ((u.i - 1) * $10::int + 1)::int FOR $10::int), u.author_id
           FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::timestamptz[], $11::uuid[]) WITH ORDINALITY
             AS u(point_id, message_id, session_id, user_id, role, content, ts, author_id, i)
         ON CONFLICT (collection, point_id) DO UPDATE SET
           message_id = EXCLUDED.message_id, session_id = EXCLUDED.session_id, user_id = EXCLUDED.user_id,
           role = EXCLUDED.role, content = EXCLUDED.content, ts = EXCLUDED.ts, embedding = EXCLUDED.embedding,
           author_id = EXCLUDED.author_id`,
        values: [
          this.collection,
          batch.map((p) => p.id),
          batch.map((p) => p.payload.messageId),
          batch.map((p) => p.payload.sessionId),
          batch.map((p) => p.payload.userId),
          batch.map((p) => p.payload.role),
          batch.map((p) => p.payload.content),
          batch.map((p) => p.payload.timestamp),
          vectors,
          width,
          batch.map((p) => p.payload.authorId),
        ],
      });
    }
  }

  async search(vector: Float32Array, filter: VectorFilter, limit: number): Promise<VectorHit[]> {
    if (filter.sessionIds.length === 0 || limit <= 0) return [];
    // Pass 1 reads ids and vectors, and the payloads too while the candidates are few (one round
    // trip for a typical history); past INLINE_PAYLOADS_MAX, pass 2 fetches only the winners' payloads.
    const { rows } = await this.pool.query<{ point_id: string; embedding: Buffer; message_id: number | null; session_id: string; role: MessageRole; content: string | null }>({
      name: "vector_search",
      text: `SELECT point_id, embedding,
              CASE WHEN count(*) OVER () <= $5 THEN message_id END AS message_id,
              session_id, role,
              CASE WHEN count(*) OVER () <= $5 THEN content END AS content
         FROM message_vectors
        WHERE collection = $1 AND user_id = $2 AND session_id = ANY($3::uuid[])
          AND ($4::text[] IS NULL OR role = ANY($4::text[]))
          -- The memory scoping rule (VectorFilter.authorScope).
          AND ($6::uuid IS NULL OR author_id = $6::uuid OR session_id = ANY($7::uuid[]))`,
      values: [
        this.collection, filter.userId, filter.sessionIds, filter.roles ?? null, this.inlinePayloadsMax,
        filter.authorScope?.authorId ?? null, filter.authorScope?.anyAuthorSessionIds ?? [],
      ],
    });
    const query = unit(vector);
    const top: { row: (typeof rows)[number]; score: number }[] = [];
    for (const r of rows) {
      const score = dot(query, toFloat32(r.embedding));
      if (top.length < limit || score > top[top.length - 1]!.score) insertSorted(top, { row: r, score }, limit);
    }
    if (top.length === 0) return [];
    if (top.every((t) => t.row.message_id !== null && t.row.content !== null)) {
      return top.map((t) => ({ messageId: t.row.message_id!, sessionId: t.row.session_id, role: t.row.role, content: t.row.content!, score: t.score }));
    }
    const ids = top.map((t) => t.row.point_id);
    const { rows: payloads } = await this.pool.query<{ point_id: string; message_id: number; session_id: string; role: MessageRole; content: string }>({
      name: "vector_payloads",
      text: `SELECT point_id, message_id, session_id, role, content FROM message_vectors WHERE collection = $1 AND point_id = ANY($2::uuid[])`,
      values: [this.collection, ids],
    });
    const byId = new Map(payloads.map((p) => [p.point_id, p]));
    return top.flatMap((t, i) => {
      const p = byId.get(ids[i]!);
      return p ? [{ messageId: p.message_id, sessionId: p.session_id, role: p.role, content: p.content, score: t.score }] : [];
    });
  }

  async deleteBySession(sessionId: string): Promise<void> {
    await this.pool.query("DELETE FROM message_vectors WHERE collection = $1 AND session_id = $2", [this.collection, sessionId]);
  }

  async close(): Promise<void> {
    // The pool belongs to the app.
  }
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

function insertSorted<T extends { score: number }>(top: T[], hit: T, limit: number): void {
  let i = top.length;
  while (i > 0 && top[i - 1]!.score < hit.score) i--;
  top.splice(i, 0, hit);
  if (top.length > limit) top.pop();
}
