/** Retention's vector deletion reaches every embedding version's Qdrant collection, and only the session's points. */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PgLifecycleStore } from "../../src/db/pg-lifecycle-store.js";
import { pointIdForMessage, pointIdForPassage } from "../../src/memory/point-id.js";
import { QdrantVectorStore } from "../../src/memory/qdrant-vector-store.js";
import { QdrantVectorPurge, vectorPurger } from "../../src/memory/vector-purge.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";
import { startQdrantDouble, type QdrantDouble } from "../support/qdrant-double.js";

const DIMS = 8;
let db: TestDatabase;
let qdrant: QdrantDouble;

beforeAll(async () => {
  [db, qdrant] = await Promise.all([createTestDatabase(3), startQdrantDouble()]);
});
afterAll(async () => {
  await qdrant?.close();
  await db?.drop();
});

it("deletes a session's points in every collection of embedding_versions, skips a collection Qdrant never had, and keeps other sessions'", async () => {
  await db.pool.query(
    "INSERT INTO embedding_versions (model, dimensions, collection, active) VALUES ('m-old', 8, 'vp_old_8', false), ('m-new', 8, 'vp_new_8', true), ('m-gone', 8, 'vp_never_created', false)",
  );
  const doomed = randomUUID();
  const kept = randomUUID();
  const user = randomUUID();
  const stores = ["vp_old_8", "vp_new_8"].map((collection) => new QdrantVectorStore({ url: qdrant.url, collection, dimensions: DIMS }));
  for (const store of stores) {
    await store.ensureReady();
    await store.upsert(
      [1, 2, 3, 4].map((id) => ({
        id: pointIdForMessage(id),
        vector: Float32Array.from({ length: DIMS }, (_, i) => (i === id ? 1 : 0.1)),
        payload: { sessionId: id <= 2 ? doomed : kept, userId: user, messageId: id, role: "user" as const, content: `m${id}`, authorId: null, timestamp: new Date().toISOString(), timestampUnix: Math.floor(Date.now() / 1000) },
      })),
    );
  }
  const purger = vectorPurger(new PgLifecycleStore(db.pool), new QdrantVectorPurge(db.pool, { url: qdrant.url, apiKey: undefined }, silentLogger), 100);
  await purger.purgeSession(doomed);
  for (const store of stores) {
    const hits = await store.search(Float32Array.from({ length: DIMS }, () => 1), { userId: user, sessionIds: [doomed, kept] }, 10);
    expect(hits.map((h) => h.messageId).sort()).toEqual([3, 4]);
  }
});

it("deletes a deleted attachment's passage points in every collection, keeping other attachments' and the messages", async () => {
  await db.pool.query(
    "INSERT INTO embedding_versions (model, dimensions, collection, active) VALUES ('p-old', 8, 'vp_pass_old_8', false), ('p-new', 8, 'vp_pass_new_8', true) ON CONFLICT DO NOTHING",
  );
  const [session, user, gone, kept] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const stores = ["vp_pass_old_8", "vp_pass_new_8"].map((collection) => new QdrantVectorStore({ url: qdrant.url, collection, dimensions: DIMS }));
  const vector = (k: number) => Float32Array.from({ length: DIMS }, (_, i) => (i === k ? 1 : 0.1));
  const now = new Date();
  for (const store of stores) {
    await store.ensureReady();
    await store.upsertPassages(
      [1, 2, 3].map((id) => ({
        id: pointIdForPassage(id),
        vector: vector(id),
        payload: { sessionId: session, userId: user, authorId: user, passageId: id, attachmentId: id <= 2 ? gone : kept, content: `p${id}`, timestamp: now.toISOString(), timestampUnix: Math.floor(now.getTime() / 1000) },
      })),
    );
    await store.upsert([{ id: pointIdForMessage(9), vector: vector(5), payload: { sessionId: session, userId: user, authorId: user, messageId: 9, role: "user", content: "m9", timestamp: now.toISOString(), timestampUnix: 0 } }]);
  }
  await new QdrantVectorPurge(db.pool, { url: qdrant.url, apiKey: undefined }, silentLogger).deleteAttachments([gone]);
  for (const store of stores) {
    const hits = await store.searchPassages(Float32Array.from({ length: DIMS }, () => 1), { userId: user, sessionIds: [session] }, 10);
    expect(hits.map((h) => h.passageId)).toEqual([3]);
    expect((await store.search(Float32Array.from({ length: DIMS }, () => 1), { userId: user, sessionIds: [session] }, 10)).map((h) => h.messageId)).toEqual([9]);
  }
});
