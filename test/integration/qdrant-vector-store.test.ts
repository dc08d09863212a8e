import { randomUUID } from "node:crypto";
import { QdrantClient } from "@qdrant/js-client-rest";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { pointIdForMessage } from "../../src/memory/point-id.js";
import {
  QdrantVectorStore,
  VectorStoreRequestError,
  VectorStoreUnavailableError,
  type QdrantVectorStoreOptions,
} from "../../src/memory/qdrant-vector-store.js";
import type { VectorPoint } from "../../src/memory/types.js";
import { vectorStoreContract } from "../contracts/vector-store-contract.js";
import { startQdrantDouble, type QdrantDouble } from "../support/qdrant-double.js";

const DIMS = 384;
let double: QdrantDouble;
let collectionSeq = 0;
const freshCollection = () => `chat_history_t${collectionSeq++}`;

beforeAll(async () => {
  double = await startQdrantDouble();
});

afterAll(async () => {
  await double?.close();
});

vectorStoreContract("QdrantVectorStore over the Qdrant double", async () => {
  const store = new QdrantVectorStore({ url: double.url, collection: freshCollection(), dimensions: DIMS });
  return { store, dimensions: DIMS, cleanup: () => store.close() };
});

function unit(dims: number, hot: number): Float32Array {
  const v = new Float32Array(dims);
  v[hot] = 1;
  return v;
}

function messagePoint(messageId: number, over: Partial<VectorPoint["payload"]> & { vector?: Float32Array } = {}): VectorPoint {
  const { vector, ...payload } = over;
  return {
    id: pointIdForMessage(messageId),
    vector: vector ?? unit(DIMS, messageId % DIMS),
    payload: {
      sessionId: randomUUID(),
      userId: randomUUID(),
      authorId: null,
      messageId,
      role: "user",
      content: `content of ${messageId}`,
      timestamp: "2025-03-04T05:06:07.000Z",
      timestampUnix: 1741064767,
      ...payload,
    },
  };
}

describe("QdrantVectorStore against the Qdrant double", () => {
  const stores: QdrantVectorStore[] = [];
  const newStore = (over: Partial<QdrantVectorStoreOptions> = {}) => {
    const store = new QdrantVectorStore({ url: double.url, collection: freshCollection(), dimensions: DIMS, ...over });
    stores.push(store);
    return store;
  };
  const requestsTo = (path: string, method?: string) =>
    double.requests.filter((r) => r.path === path && (method === undefined || r.method === method));

  afterEach(async () => {
    double.setLatency(0);
    await double.setDown(false);
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it("creates the collection with the layout of DESIGN.md section 7", async () => {
    const collection = freshCollection();
    await newStore({ collection }).ensureReady();

    const c = double.collection(collection)!;
    expect(c).toMatchObject({ size: 384, distance: "Cosine", hnsw: { m: 16, efConstruct: 100 }, onDiskPayload: true });
    expect(c.payloadIndexes).toEqual({
      session_id: "keyword",
      user_id: { type: "keyword", is_tenant: true },
      author_id: "keyword",
      role: "keyword",
      message_id: "integer",
      timestamp_unix: "integer",
      attachment_id: "keyword",
    });
    expect(c.createBody).toMatchObject({ on_disk_payload: true, hnsw_config: { m: 16, ef_construct: 100 } });
    // Index creation waits, so the first search after ensureReady already uses it.
    expect(requestsTo(`/collections/${collection}/index`, "PUT").every((r) => r.query.wait === "true")).toBe(true);
  });

  it("a second ensureReady only reads, and creates indexes that are missing", async () => {
    const collection = freshCollection();
    await newStore({ collection }).ensureReady();
    const writesBefore = double.requests.filter((r) => r.method === "PUT").length;

    await newStore({ collection }).ensureReady();
    expect(double.requests.filter((r) => r.method === "PUT").length).toBe(writesBefore);

    // A collection made by hand without the indexes gets them on the next start.
    const bare = freshCollection();
    const raw = new QdrantClient({ url: double.url, checkCompatibility: false });
    await raw.createCollection(bare, { vectors: { size: DIMS, distance: "Cosine" } });
    await newStore({ collection: bare }).ensureReady();
    expect(Object.keys(double.collection(bare)!.payloadIndexes).sort()).toEqual(
      ["attachment_id", "author_id", "message_id", "role", "session_id", "timestamp_unix", "user_id"],
    );
  });

  it("a node that loses the race to create the collection accepts the winner's", async () => {
    const collection = freshCollection();
    await newStore({ collection }).ensureReady();
    // The loser's existence check ran before the winner's create landed.
    double.failNext(404, { route: "GET /collections/{name}", message: `Not found: Collection \`${collection}\` doesn't exist!` });

    await newStore({ collection }).ensureReady();

    const creates = requestsTo(`/collections/${collection}`, "PUT").map((r) => r.status);
    expect(creates).toEqual([200, 409]);
    expect(Object.keys(double.collection(collection)!.payloadIndexes)).toHaveLength(7);
  });

  it("two nodes starting together both get a ready collection", async () => {
    const collection = freshCollection();
    double.setLatency(10);
    await Promise.all([newStore({ collection }).ensureReady(), newStore({ collection }).ensureReady()]);

    expect(double.collection(collection)).toMatchObject({ size: DIMS, distance: "Cosine" });
    expect(Object.keys(double.collection(collection)!.payloadIndexes)).toHaveLength(7);
  });

  it("refuses a collection built for another embedding version", async () => {
    const collection = freshCollection();
    await newStore({ collection, dimensions: 8 }).ensureReady();

    const err = await newStore({ collection }).ensureReady().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VectorStoreRequestError);
    expect((err as Error).message).toMatch(/holds 8-dimension Cosine vectors; this store needs 384-dimension/);
  });

  it("writes the snake_case payload of DESIGN.md section 7 under the id derived from the message id", async () => {
    const collection = freshCollection();
    const store = newStore({ collection });
    await store.ensureReady();
    const vector = new Float32Array(DIMS);
    vector[0] = 3;
    vector[1] = 4;
    const p = messagePoint(7_000_000_123, { vector, role: "assistant", content: "hello there", authorId: "2b0f6d9e-3c41-4a7a-9d55-0e8f1c2a3b4d" });

    await store.upsert([p]);

    const [stored] = double.points(collection);
    expect(stored!.id).toBe(pointIdForMessage(7_000_000_123));
    expect(stored!.payload).toEqual({
      session_id: p.payload.sessionId,
      user_id: p.payload.userId,
      author_id: "2b0f6d9e-3c41-4a7a-9d55-0e8f1c2a3b4d",
      message_id: 7_000_000_123,
      role: "assistant",
      content: "hello there",
      timestamp: "2025-03-04T05:06:07.000Z",
      timestamp_unix: 1741064767,
    });
    expect(stored!.vector[0]).toBeCloseTo(0.6, 6);
    expect(stored!.vector[1]).toBeCloseTo(0.8, 6);
    const upserts = requestsTo(`/collections/${collection}/points`, "PUT");
    expect(upserts.map((r) => r.query.wait)).toEqual(["true"]);
  });

  it("upserts in batches of the configured size", async () => {
    const collection = freshCollection();
    const store = newStore({ collection, upsertBatchSize: 2 });
    await store.ensureReady();

    await store.upsert([1, 2, 3, 4, 5].map((id) => messagePoint(id)));

    const batches = requestsTo(`/collections/${collection}/points`, "PUT").map((r) => (r.body as { points: unknown[] }).points.length);
    expect(batches).toEqual([2, 2, 1]);
    expect(double.points(collection)).toHaveLength(5);
  });

  it("checks every point before sending any, so a bad one writes nothing", async () => {
    const collection = freshCollection();
    const store = newStore({ collection, upsertBatchSize: 1 });
    await store.ensureReady();
    const bad = messagePoint(3, { vector: new Float32Array(DIMS).fill(Number.NaN) });

    await expect(store.upsert([messagePoint(1), messagePoint(2), bad])).rejects.toBeInstanceOf(VectorStoreRequestError);
    await expect(store.upsert([messagePoint(1), messagePoint(4, { vector: new Float32Array(3) })])).rejects.toThrow(
      /has 3 dimensions/,
    );
    await expect(store.upsert([messagePoint(1), { ...messagePoint(5), id: "message-5" }])).rejects.toThrow(/not a UUID/);
    expect(double.points(collection)).toEqual([]);
  });

  it("sends the tenant, session and role filters with every search", async () => {
    const collection = freshCollection();
    const store = newStore({ collection });
    await store.ensureReady();
    const userId = randomUUID();
    const s1 = randomUUID();
    const s2 = randomUUID();

    await store.search(unit(DIMS, 0), { userId, sessionIds: [s1, s2, s1], roles: ["user", "assistant"] }, 4);

    const [query] = requestsTo(`/collections/${collection}/points/query`, "POST");
    expect(query!.body).toEqual({
      query: Array.from(unit(DIMS, 0)),
      filter: {
        must: [
          { key: "user_id", match: { value: userId } },
          { key: "session_id", match: { any: [s1, s2] } },
          { key: "role", match: { any: ["user", "assistant"] } },
        ],
      },
      limit: 4,
      with_payload: ["session_id", "message_id", "role", "content", "author_id"],
      with_vector: false,
    });
    await expect(store.search(unit(DIMS, 0), { userId: "", sessionIds: [s1] }, 4)).rejects.toBeInstanceOf(VectorStoreRequestError);
  });

  it("deletes a session's points by a filter on session_id", async () => {
    const collection = freshCollection();
    const store = newStore({ collection });
    await store.ensureReady();
    const sessionId = randomUUID();

    await store.deleteBySession(sessionId);

    const [del] = requestsTo(`/collections/${collection}/points/delete`, "POST");
    expect(del!.query.wait).toBe("true");
    expect(del!.body).toEqual({ filter: { must: [{ key: "session_id", match: { value: sessionId } }] } });
  });

  it("reports an outage as VectorStoreUnavailableError and works again once Qdrant is back", async () => {
    const store = newStore();
    await store.ensureReady();
    const userId = randomUUID();
    const sessionId = randomUUID();
    const p = messagePoint(42, { userId, sessionId, vector: unit(DIMS, 5) });
    await store.upsert([p]);

    await double.setDown(true);
    const filter = { userId, sessionIds: [sessionId] };
    await expect(store.search(unit(DIMS, 5), filter, 5)).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    await expect(store.upsert([messagePoint(43, { userId, sessionId })])).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    await expect(store.deleteBySession(sessionId)).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    await expect(store.ensureReady()).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    await expect(newStore().ensureReady()).rejects.toThrow(/unreachable/);

    await double.setDown(false);
    const hits = await store.search(unit(DIMS, 5), filter, 5);
    expect(hits).toEqual([{ messageId: 42, sessionId, score: expect.closeTo(1, 6), role: "user", content: "content of 42", authorId: null }]);
    await store.upsert([messagePoint(43, { userId, sessionId })]);
    expect(await store.search(unit(DIMS, 5), filter, 5)).toHaveLength(2);
  });

  it("treats 5xx and 429 answers as unavailable", async () => {
    const store = newStore();
    await store.ensureReady();
    const filter = { userId: randomUUID(), sessionIds: [randomUUID()] };

    double.failNext(503);
    const err = await store.search(unit(DIMS, 0), filter, 3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VectorStoreUnavailableError);
    expect((err as Error).message).toMatch(/HTTP 503: Service unavailable/);

    double.failNext(429, { message: "Too many requests" });
    await expect(store.deleteBySession(randomUUID())).rejects.toBeInstanceOf(VectorStoreUnavailableError);

    double.failNext(502);
    await expect(store.upsert([messagePoint(9)])).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    expect(await store.search(unit(DIMS, 0), filter, 3)).toEqual([]);
  });

  it("treats Qdrant's refusals as bad requests, carrying its status and message", async () => {
    const collection = freshCollection();
    await newStore({ collection }).ensureReady();
    // A node configured for another model, started without ensureReady.
    const wrongDims = newStore({ collection, dimensions: 8 });

    const err = await wrongDims.upsert([{ ...messagePoint(1), vector: unit(8, 1) }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VectorStoreRequestError);
    expect((err as VectorStoreRequestError).status).toBe(400);
    expect((err as Error).message).toContain("Vector dimension error: expected dim: 384, got 8");

    const missing = newStore({ collection: "never_created" });
    const notFound = await missing.search(unit(DIMS, 0), { userId: "u", sessionIds: ["s"] }, 1).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(VectorStoreRequestError);
    expect((notFound as VectorStoreRequestError).status).toBe(404);
    expect((notFound as Error).message).toContain("Collection `never_created` doesn't exist!");
  });

  it("reports a request that outlives its timeout as unavailable", async () => {
    // Set the collection up with a generous timeout (a loaded machine is slow), then use a 100 ms one.
    const collection = freshCollection();
    await newStore({ collection }).ensureReady();
    const store = newStore({ collection, timeoutMs: 100 });
    double.setLatency(400);

    const err = await store.search(unit(DIMS, 0), { userId: "u", sessionIds: ["s"] }, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VectorStoreUnavailableError);
    expect((err as Error).message).toMatch(/timed out after 100 ms/);
  });

  it("sends the API key to Qdrant", async () => {
    // The client warns about a key over plain http, which is what this loopback test uses.
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const collection = freshCollection();
      await newStore({ collection, apiKey: "s3cret" }).ensureReady();
      const sent = requestsTo(`/collections/${collection}`);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((r) => r.headers["api-key"] === "s3cret")).toBe(true);
    } finally {
      warn.mockRestore();
    }
  });

  it("fails fast after close without calling Qdrant", async () => {
    const store = newStore();
    await store.ensureReady();
    await store.close();
    const before = double.requests.length;

    await expect(store.search(unit(DIMS, 0), { userId: "u", sessionIds: ["s"] }, 1)).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    await expect(store.upsert([messagePoint(1)])).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    expect(double.requests.length).toBe(before);
  });
});

describe("the Qdrant double speaks Qdrant's REST dialect", () => {
  const client = () => new QdrantClient({ url: double.url, checkCompatibility: false });

  it("answers with Qdrant's envelope and error body", async () => {
    const missing = await fetch(`${double.url}/collections/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ status: { error: "Not found: Collection `nope` doesn't exist!" }, time: expect.any(Number) });

    const name = freshCollection();
    const created = await fetch(`${double.url}/collections/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ vectors: { size: 4, distance: "Cosine" } }),
    });
    expect(await created.json()).toEqual({ result: true, status: "ok", time: expect.any(Number) });
    const again = await fetch(`${double.url}/collections/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ vectors: { size: 4, distance: "Cosine" } }),
    });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ status: { error: `Wrong input: Collection \`${name}\` already exists!` } });

    const root = await client().versionInfo();
    expect(root).toMatchObject({ title: "qdrant - vector search engine", version: "1.18.0" });
    expect(await client().collectionExists(name)).toEqual({ exists: true });
    expect(await client().collectionExists("nope")).toEqual({ exists: false });
  });

  it("validates points the way Qdrant does", async () => {
    const name = freshCollection();
    const c = client();
    await c.createCollection(name, { vectors: { size: 4, distance: "Cosine" } });

    await expect(c.upsert(name, { points: [{ id: "msg-1", vector: [1, 0, 0, 0] }] })).rejects.toMatchObject({
      status: 400,
      data: { status: { error: expect.stringContaining("is not a valid point ID") } },
    });
    await expect(c.upsert(name, { points: [{ id: 1, vector: [1, 0, 0] }] })).rejects.toMatchObject({
      status: 400,
      data: { status: { error: "Wrong input: Vector dimension error: expected dim: 4, got 3" } },
    });
    await expect(c.query(name, { query: [1, 0], limit: 1 })).rejects.toMatchObject({ status: 400 });
    await expect(c.query(name, { query: [1, 0, 0, 0], limit: 0 })).rejects.toMatchObject({ status: 422 });
    await expect(c.query(name, { prefetch: { query: [1, 0, 0, 0] }, query: { fusion: "rrf" } })).rejects.toMatchObject({
      status: 400,
      data: { status: { error: expect.stringContaining("not supported by the test double") } },
    });

    // Any UUID spelling names the same point, answered in hyphenated lower case.
    await c.upsert(name, { wait: true, points: [{ id: "{6F1C2B4E-8D0A-4C55-9B1E-3A7D52E0C9F4}", vector: [1, 0, 0, 0] }] });
    await c.upsert(name, { wait: true, points: [{ id: "6f1c2b4e8d0a4c559b1e3a7d52e0c9f4", vector: [0, 1, 0, 0] }] });
    const hits = await c.query(name, { query: [0, 2, 0, 0], with_payload: true });
    expect(hits.points).toEqual([{ id: "6f1c2b4e-8d0a-4c55-9b1e-3a7d52e0c9f4", version: expect.any(Number), score: 1, payload: {} }]);
  });

  it("evaluates must, should, must_not, match, range and has_id like Qdrant", async () => {
    const name = freshCollection();
    const c = client();
    await c.createCollection(name, { vectors: { size: 2, distance: "Dot" } });
    await c.upsert(name, {
      wait: true,
      points: [1, 2, 3, 4, 5, 6].map((id) => ({
        id,
        vector: [id, 0],
        payload: { n: id, tag: id % 2 === 0 ? "even" : "odd", tags: id > 3 ? ["big", "x"] : ["small"] },
      })),
    });
    const count = async (filter: Record<string, unknown>) => (await c.count(name, { filter })).count;

    expect(await count({ must: [{ key: "n", range: { gte: 2, lt: 5 } }] })).toBe(3);
    expect(await count({ must: [{ key: "tag", match: { value: "even" } }], must_not: [{ key: "n", match: { any: [2] } }] })).toBe(2);
    expect(await count({ should: [{ key: "n", match: { value: 1 } }, { key: "tags", match: { value: "big" } }] })).toBe(4);
    expect(await count({ must: [{ has_id: [1, 6, 9] }] })).toBe(2);
    expect(await count({ must: [{ should: [{ key: "n", range: { lte: 1 } }, { key: "n", range: { gt: 5 } }] }] })).toBe(2);
    expect(await count({ must: [{ key: "tag", match: { any: [] } }] })).toBe(0);
    expect(await count({ must: { key: "missing", match: { value: "x" } } })).toBe(0);

    // Dot product ranks by raw product; the legacy search endpoint agrees with query.
    const viaQuery = await c.query(name, { query: [1, 0], limit: 2, filter: { must: [{ key: "tag", match: { value: "odd" } }] } });
    const viaSearch = await c.search(name, { vector: [1, 0], limit: 2, with_payload: false, filter: { must: [{ key: "tag", match: { value: "odd" } }] } });
    expect(viaQuery.points.map((p) => [p.id, p.score])).toEqual([[5, 5], [3, 3]]);
    expect(viaSearch.map((p) => [p.id, p.score])).toEqual([[5, 5], [3, 3]]);

    await c.delete(name, { wait: true, points: [5] });
    await c.delete(name, { wait: true, filter: { must: [{ key: "n", range: { gt: 4 } }] } });
    expect((await c.count(name, {})).count).toBe(4);
  });
});
