/**
 * The PostgreSQL vector store's in-memory code prefilter: same codes as SQL,
 * kept current with writes and deletions from other store instances (other
 * nodes on the same database), rebuilt by a new instance (a restart), and
 * filters applied before candidates are cut.
 *
 * Vectors are ±1 patterns (scaled): flipping k signs of the query puts a point
 * at Hamming distance k and cosine 1 - 2k/d, so which points a small rerank
 * depth keeps is known. A stale in-memory copy then shows in the results.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import "../../src/db/pool.js";
import { loadMigrations, runMigrations } from "../../src/db/migrate.js";
import { pointIdForMessage } from "../../src/memory/point-id.js";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import type { VectorPoint } from "../../src/memory/types.js";
import { magnitudeCode, signCode } from "../../src/memory/vector-codes.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { withDatabase } from "../support/global-setup.js";
import { silentLogger } from "../support/logger.js";

const D = 384;
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(6);
});
afterAll(() => db?.drop());

let nextMessageId = 2 ** 32 + randomInt(0, 2 ** 40);

function signs(seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: D }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s & 1 ? 1 : -1;
  });
}

/** The query pattern with the first k signs flipped (from `offset`), scaled by `scale`. */
function flipped(query: Float32Array, k: number, offset = 0, scale = 1): Float32Array {
  const v = query.map((x) => x * scale);
  for (let i = 0; i < k; i++) v[(offset + i) % D]! *= -1;
  return v;
}

function point(userId: string, sessionId: string, vector: Float32Array, messageId = nextMessageId++): VectorPoint {
  return {
    id: pointIdForMessage(messageId),
    vector,
    payload: { sessionId, userId, messageId, role: "user", content: `m${messageId}`, authorId: userId, timestamp: new Date().toISOString(), timestampUnix: 0 },
  };
}

const ids = (hits: ReadonlyArray<{ messageId: number }>) => hits.map((h) => h.messageId);

describe("PostgreSQL vector store, code prefilter", () => {
  it("computes the same code in SQL as in the server, for rows written without one", async () => {
    const collection = `c_${randomBytes(4).toString("hex")}`;
    const userId = randomUUID();
    const sessionId = randomUUID();
    // Unit vectors (as the store writes them), one with components on both sides of the size threshold.
    const threshold = 0.6 / Math.sqrt(D);
    const near = Float32Array.from({ length: D }, (_, i) => [threshold, -threshold, Math.fround(threshold * 0.9999), threshold * 3, 0, -0][i % 6]!);
    const vectors = [signs(7).map((x) => x / Math.sqrt(D)), Float32Array.from({ length: D }, (_, i) => (i % 3 === 0 ? -0 : Math.sin(i * 1.7) / 12)), near];
    for (const [i, v] of vectors.entries()) {
      const embedding = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      // An older release's insert: no code column; the trigger fills it in.
      await db.pool.query(
        `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
         VALUES ($1, $2, $3, $4, $5, 'user', 'x', now(), $6)`,
        [collection, randomUUID(), i + 1, sessionId, userId, embedding],
      );
    }
    const { rows } = await db.pool.query<{ code: Buffer }>("SELECT code FROM message_vectors WHERE collection = $1 ORDER BY message_id", [collection]);
    expect(rows.map((r) => r.code.toString("hex"))).toEqual(vectors.map((v) => signCode(v).toString("hex")));
    const { rows: sizes } = await db.pool.query<{ magnitude: Buffer }>("SELECT magnitude FROM message_vectors WHERE collection = $1 ORDER BY message_id", [collection]);
    expect(sizes.map((r) => r.magnitude.toString("hex"))).toEqual(vectors.map((v) => magnitudeCode(v).toString("hex")));
    expect(magnitudeCode(near).toString("hex")).not.toMatch(/^(00)+$|^(ff)+$/);
    // Dimensions that are not a multiple of 8 leave the last byte partly empty.
    const odd = Float32Array.from({ length: 13 }, (_, i) => (i % 2 ? -1 : 1));
    const { rows: oddRows } = await db.pool.query<{ code: Buffer }>("SELECT message_vector_code($1) AS code", [Buffer.from(odd.buffer)]);
    expect(oddRows[0]!.code.toString("hex")).toBe(signCode(odd).toString("hex"));
    expect(signCode(odd).toString("hex")).toBe("aa0a");
  });

  it("sees points written, overwritten and deleted through another store instance, and a new instance starts from the table", async () => {
    const collection = `c_${randomBytes(4).toString("hex")}`;
    // Two nodes on one database; the first has a rerank depth of 2, so a stale copy shows.
    const warm = new PgVectorStore(db.pool, collection, D, { rerankDepth: 2 });
    const other = new PgVectorStore(db.pool, collection, D);
    const userId = randomUUID();
    const [keep, doomed] = [randomUUID(), randomUUID()];
    const q = signs(11);
    const far = [20, 21, 22].map((k) => point(userId, keep, flipped(q, k, 100)));
    await warm.upsert(far);
    const search = (store: PgVectorStore) => store.search(q, { userId, sessionIds: [keep, doomed] }, 2);
    expect(ids(await search(warm))).toEqual(far.slice(0, 2).map((p) => p.payload.messageId));

    // Indexed on another node: nearer points, one of them in a session that is deleted later.
    const near = point(userId, keep, flipped(q, 3, 0, 2));
    const nearest = [point(userId, doomed, flipped(q, 1)), point(userId, doomed, flipped(q, 2, 50))];
    await other.upsert([near, ...nearest]);
    expect(ids(await search(warm))).toEqual(nearest.map((p) => p.payload.messageId));

    // Overwritten on another node: the nearest point moves far away (same point id).
    const moved = point(userId, doomed, flipped(q, 60, 200), nearest[0]!.payload.messageId);
    await other.upsert([moved]);
    expect(ids(await search(warm))).toEqual([nearest[1]!.payload.messageId, near.payload.messageId]);

    // Deleted on another node: with depth 2, stale codes of the deleted points would crowd out the rest.
    await other.deleteBySession(doomed);
    expect(ids(await search(warm))).toEqual([near.payload.messageId, far[0]!.payload.messageId]);

    // Written through the warm instance itself.
    const own = point(userId, keep, flipped(q, 0, 0, 0.5));
    await warm.upsert([own]);
    expect(ids(await search(warm))).toEqual([own.payload.messageId, near.payload.messageId]);

    // A restart: a new instance on the same database finds everything the old one did.
    const restarted = new PgVectorStore(db.pool, collection, D, { rerankDepth: 2 });
    expect(ids(await search(restarted))).toEqual([own.payload.messageId, near.payload.messageId]);
    const hits = await restarted.search(q, { userId, sessionIds: [keep] }, 10);
    expect(hits[0]).toEqual({ messageId: own.payload.messageId, sessionId: keep, role: "user", content: `m${own.payload.messageId}`, authorId: own.payload.authorId, score: expect.closeTo(1, 5) });
  });

  it("reloads a copy older than pruned deletions, instead of keeping deleted points", async () => {
    const collection = `c_${randomBytes(4).toString("hex")}`;
    const warm = new PgVectorStore(db.pool, collection, D, { rerankDepth: 1 });
    const other = new PgVectorStore(db.pool, collection, D);
    const userId = randomUUID();
    const [keep, doomed] = [randomUUID(), randomUUID()];
    const q = signs(23);
    const kept = point(userId, keep, flipped(q, 30));
    const gone = point(userId, doomed, flipped(q, 1));
    await other.upsert([kept, gone]);
    expect(ids(await warm.search(q, { userId, sessionIds: [keep, doomed] }, 1))).toEqual([gone.payload.messageId]);

    await other.deleteBySession(doomed);
    // Two days on, the next delete prunes that deletion record; `warm` never saw it.
    await db.pool.query("UPDATE message_vector_deletions SET deleted_at = now() - interval '2 days' WHERE collection = $1", [collection]);
    await other.deleteBySession(randomUUID());
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_vector_deletions WHERE collection = $1", [collection]);
    expect(rows[0].n).toBe(0);

    expect(ids(await warm.search(q, { userId, sessionIds: [keep, doomed] }, 1))).toEqual([kept.payload.messageId]);
  });

  it("applies the session and role filters before cutting candidates", async () => {
    const collection = `c_${randomBytes(4).toString("hex")}`;
    const store = new PgVectorStore(db.pool, collection, D, { rerankDepth: 3 });
    const userId = randomUUID();
    const [busy, quiet] = [randomUUID(), randomUUID()];
    const q = signs(5);
    // 40 points in `busy` nearer to the query than anything in `quiet`, and another user's nearer still.
    const crowd = Array.from({ length: 40 }, (_, i) => point(userId, busy, flipped(q, 1 + (i % 5), i * 7)));
    const wanted = [10, 11, 12].map((k) => point(userId, quiet, flipped(q, k, 300)));
    const assistant = point(userId, quiet, flipped(q, 13, 300));
    assistant.payload.role = "assistant";
    await store.upsert([...crowd, ...wanted, assistant, point(randomUUID(), quiet, q)]);

    expect(ids(await store.search(q, { userId, sessionIds: [quiet] }, 3))).toEqual(wanted.map((p) => p.payload.messageId));
    expect(ids(await store.search(q, { userId, sessionIds: [quiet, busy], roles: ["assistant"] }, 3))).toEqual([assistant.payload.messageId]);
    const all = await store.search(q, { userId, sessionIds: [busy, quiet] }, 3);
    expect(all.every((h) => h.sessionId === busy)).toBe(true);
  });

  it("finds nearly all of the exact top 10 over clustered vectors with a shallow rerank", async () => {
    const collection = `c_${randomBytes(4).toString("hex")}`;
    const indexed = new PgVectorStore(db.pool, collection, D, { rerankDepth: 100 });
    const exact = new PgVectorStore(db.pool, collection, D, { exact: true });
    const userId = randomUUID();
    const sessions = Array.from({ length: 5 }, () => randomUUID());
    let s = 12345;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-9)) * Math.cos(2 * Math.PI * rand());
    const centres = Array.from({ length: 40 }, () => Float32Array.from({ length: D }, gauss));
    const sample = () => {
      const c = centres[Math.floor(rand() * centres.length)]!;
      return Float32Array.from({ length: D }, (_, k) => c[k]! + gauss());
    };
    const points = Array.from({ length: 4000 }, (_, i) => point(userId, sessions[i % 5]!, sample()));
    await indexed.upsert(points);

    let found = 0;
    let wanted = 0;
    for (let i = 0; i < 20; i++) {
      const q = sample();
      const filter = { userId, sessionIds: i % 2 ? sessions : [sessions[i % 5]!] };
      const truth = await exact.search(q, filter, 10);
      const got = new Set(ids(await indexed.search(q, filter, 10)));
      wanted += truth.length;
      found += truth.filter((h) => got.has(h.messageId)).length;
    }
    expect(found / wanted).toBeGreaterThanOrEqual(0.9);
  });

  it("finds the exact top 10 of sparse hash-embedded vectors with a rerank of a tenth of them (the size bits)", async () => {
    // Hash-embedded messages use a few dozen of the 384 dimensions: the plain Hamming distance
    // between their codes is mostly about how many dimensions are negative, not which.
    const collection = `c_${randomBytes(4).toString("hex")}`;
    const indexed = new PgVectorStore(db.pool, collection, D, { rerankDepth: 200 });
    const exact = new PgVectorStore(db.pool, collection, D, { exact: true });
    const embedder = new HashEmbedder({ dimensions: D });
    const userId = randomUUID();
    const sessions = Array.from({ length: 4 }, () => randomUUID());
    let s = 777;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const vocabulary = Array.from({ length: 600 }, (_, i) => `w${i.toString(36)}`);
    const sentence = () => Array.from({ length: 4 + Math.floor(rand() * 16) }, () => vocabulary[Math.floor(rand() ** 2 * vocabulary.length)]!).join(" ");
    await indexed.upsert(Array.from({ length: 2000 }, (_, i) => point(userId, sessions[i % 4]!, embedder.embedOne(sentence()))));

    let found = 0;
    let wanted = 0;
    for (let i = 0; i < 30; i++) {
      const q = embedder.embedOne(sentence());
      const filter = { userId, sessionIds: sessions };
      const truth = await exact.search(q, filter, 10);
      const kth = truth[truth.length - 1]?.score ?? 0;
      const got = await indexed.search(q, filter, 10);
      wanted += truth.length;
      // A hit tied with the exact 10th counts: identical word bags tie.
      found += got.filter((h) => truth.some((t) => t.messageId === h.messageId) || h.score >= kth - 1e-6).length;
    }
    expect(found / wanted).toBeGreaterThanOrEqual(0.95);
  });

  it("upgrades a populated database in place: existing vectors get their codes and are searchable", async () => {
    const admin = inject("pgAdminUrl");
    const name = `memchat_v_${randomBytes(5).toString("hex")}`;
    const adminClient = new pg.Client({ connectionString: admin });
    await adminClient.connect();
    await adminClient.query(`CREATE DATABASE ${name}`);
    const pool = new pg.Pool({ connectionString: withDatabase(admin, name), max: 2 });
    pool.on("error", () => undefined);
    try {
      // The schema as it was before sql/010, recorded the way runMigrations records it.
      await pool.query("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
      for (const m of (await loadMigrations()).filter((m) => m.version < 10)) {
        await pool.query(m.sql);
        await pool.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      }
      const userId = randomUUID();
      const sessionId = randomUUID();
      const q = signs(31);
      const old = [0, 5, 9, 40].map((k, i) => ({ messageId: i + 1, vector: flipped(q, k, 7).map((x) => x / Math.sqrt(D)) }));
      for (const o of old) {
        await pool.query(
          `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
           VALUES ('old', $1, $2, $3, $4, 'user', 'before the upgrade', now(), $5)`,
          [pointIdForMessage(o.messageId), o.messageId, sessionId, userId, Buffer.from(o.vector.buffer)],
        );
      }

      expect(await runMigrations(pool, silentLogger)).toEqual(expect.arrayContaining([10, 24]));

      const { rows } = await pool.query<{ message_id: number; code: Buffer; magnitude: Buffer; written: boolean }>(
        "SELECT message_id, code, magnitude, written_xid IS NOT NULL AS written FROM message_vectors ORDER BY message_id",
      );
      expect(rows.map((r) => r.code.toString("hex"))).toEqual(old.map((o) => signCode(o.vector).toString("hex")));
      expect(rows.map((r) => r.magnitude.toString("hex"))).toEqual(old.map((o) => magnitudeCode(o.vector).toString("hex")));
      expect(rows.every((r) => r.written)).toBe(true);
      const store = new PgVectorStore(pool, "old", D, { rerankDepth: 2 });
      await store.ensureReady();
      expect(ids(await store.search(q, { userId, sessionIds: [sessionId] }, 2))).toEqual([1, 2]);
    } finally {
      await pool.end();
      await adminClient.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await adminClient.end();
    }
  });
});
