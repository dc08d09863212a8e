/**
 * Memory over the socket and REST, on both vector stores: the exact
 * PostgreSQL store (embedded default) and Qdrant (through its REST double).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, connect, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type QdrantDouble, startQdrantDouble } from "../support/qdrant-double.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

describe.each(["postgres", "qdrant"] as const)("memory with the %s vector store", (storeKind) => {
  let db: TestDatabase;
  let server: ServerProcess;
  let qdrant: QdrantDouble | undefined;
  let dataDir: string;
  const sockets: Socket[] = [];
  let alice: TestUser;
  let bob: TestUser;
  let a: Socket;
  let b: Socket;
  let aliceSessions: { id: string }[];
  let bobSession: { id: string };

  async function backlogZero() {
    for (let i = 0; i < 200; i++) {
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs");
      if (rows[0].n === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("indexing did not finish");
  }

  beforeAll(async () => {
    db = await createTestDatabase(4);
    dataDir = await mkdtemp(path.join(tmpdir(), "memchat-memory-"));
    if (storeKind === "qdrant") qdrant = await startQdrantDouble();
    server = await startServer({
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      JWT_SECRET: "memory-secret-0123456789-0123456789-0123",
      EMBEDDER: "hash",
      INDEXER_POLL_MS: "100",
      MEMORY_MIN_SIMILARITY: "0",
      ...(qdrant ? { QDRANT_URL: qdrant.url } : {}),
    });
    alice = await register(server.url);
    bob = await register(server.url);
    a = await connect(server.url, alice.token);
    b = await connect(server.url, bob.token);
    sockets.push(a, b);
    aliceSessions = [];
    const talks = [
      ["Trip planning", ["We fly to Lisbon on the 14th of June", "The hotel is near Alfama, booked for five nights", "Remember to pack the camera charger"]],
      ["Work", ["The quarterly report is due Friday", "Ping Marta about the budget spreadsheet"]],
    ] as const;
    for (const [title, lines] of talks) {
      const { session } = await ok(a, "session:create", { title, assistant: false });
      aliceSessions.push(session);
      for (const [i, content] of lines.entries()) await ok(a, "message:send", { sessionId: session.id, clientMessageId: `${title}-${i}`, content });
    }
    ({ session: bobSession } = await ok(b, "session:create", { title: "bob", assistant: false }));
    await ok(b, "message:send", { sessionId: bobSession.id, clientMessageId: "b1", content: "My flight to Lisbon leaves from gate 22" });
    await backlogZero();
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    await server?.stop();
    await qdrant?.close();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("indexes every message into the configured store", async () => {
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM chat_messages m WHERE NOT EXISTS (SELECT 1 FROM message_index_jobs j WHERE j.message_id = m.id)",
    );
    expect(rows[0].n).toBe(6);
    if (qdrant) {
      const collections = qdrant.requests.filter((r) => r.route === "PUT /collections/{name}/points").length;
      expect(collections).toBeGreaterThan(0);
    } else {
      const { rows: v } = await db.pool.query("SELECT count(*)::int AS n FROM message_vectors");
      expect(v[0].n).toBe(6);
    }
    const m = await (await fetch(`${server.url}/metrics`)).text();
    expect(m).toMatch(/chat_index_backlog 0/);
    expect(m).toMatch(/chat_messages_indexed_total [1-9]/);
    const ready = await api(server.url, "/readyz");
    expect(ready.body.checks.embedder.ok).toBe(true);
    expect(ready.body.checks.indexer.status).toContain(storeKind === "qdrant" ? "qdrant" : "postgresql");
  });

  it.each(["hybrid", "lexical", "vector"])("finds across the caller's sessions and within one, in %s mode", async (mode) => {
    const all = await ok(a, "memory:search", { query: "when do we fly to Lisbon", mode, limit: 5 });
    expect(all.hits.length).toBeGreaterThan(0);
    expect(all.hits[0].content).toContain("Lisbon");
    expect(all.hits.every((h: { sessionId: string }) => aliceSessions.some((s) => s.id === h.sessionId))).toBe(true);
    const one = await ok(a, "memory:search", { query: "budget spreadsheet Marta", sessionId: aliceSessions[1]!.id, mode });
    expect(one.hits.length).toBeGreaterThan(0);
    expect(one.hits.every((h: { sessionId: string }) => h.sessionId === aliceSessions[1]!.id)).toBe(true);
  });

  it.each(["hybrid", "lexical", "vector"])("never returns another user's messages (%s)", async (mode) => {
    const r = await ok(b, "memory:search", { query: "Lisbon hotel Alfama camera charger quarterly report", mode, limit: 20 });
    expect(r.hits.every((h: { sessionId: string }) => h.sessionId === bobSession.id)).toBe(true);
    const refused = await api(server.url, `/api/memory/search?q=Lisbon&sessionId=${aliceSessions[0]!.id}&mode=${mode}`, { token: bob.token });
    expect(refused.status).toBe(404);
  });

  it("answers over REST", async () => {
    const r = await api(server.url, `/api/memory/search?q=${encodeURIComponent("hotel near Alfama")}&limit=3`, { token: alice.token });
    expect(r.status).toBe(200);
    expect(r.body.hits[0].content).toContain("Alfama");
    expect(r.body.hits.length).toBeLessThanOrEqual(3);
    expect((await api(server.url, "/api/memory/search?q=", { token: alice.token })).status).toBe(400);
    expect((await api(server.url, "/api/memory/search?q=x")).status).toBe(401);
  });

  it("deletes a deleted session's vectors", async () => {
    const { session } = await ok(a, "session:create", { title: "temp", assistant: false });
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "t", content: "ephemeral zebra note" });
    await backlogZero();
    const before = await ok(a, "memory:search", { query: "ephemeral zebra", mode: "vector" });
    expect(before.hits.some((h: { sessionId: string }) => h.sessionId === session.id)).toBe(true);
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: alice.token })).status).toBe(204);
    if (qdrant) {
      const points = qdrant.points("chat_history_lexical_hash_v1_384_384");
      expect(points.length).toBeGreaterThan(0);
      expect(points.some((p) => p.payload.session_id === session.id)).toBe(false);
    } else {
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_vectors WHERE session_id = $1", [session.id]);
      expect(rows[0].n).toBe(0);
    }
  });

  it("indexes a turn's question with the vector its search embedded, instead of embedding it again", async () => {
    const { session } = await ok(a, "session:create", { title: "reuse", assistant: true });
    await ok(a, "session:join", { sessionId: session.id });
    const ended = new Promise((resolve) => a.on("assistant:end", (e: { sessionId: string }) => e.sessionId === session.id && resolve(e)));
    await ok(a, "message:send", { sessionId: session.id, clientMessageId: "reuse", content: "which harbour did the night ferry leave from" });
    await ended;
    await backlogZero();
    const m = await (await fetch(`${server.url}/metrics`)).text();
    expect(m).toMatch(/chat_index_reused_vectors_total [1-9]/);
  });
});

describe("memory without an embedder", () => {
  it("starts, serves lexical search, keeps messages queued, and says so in /readyz", async () => {
    const db = await createTestDatabase(2);
    const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-noembed-"));
    // No model folder and no network: the default embedder cannot load.
    const server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, EMBEDDING_MODEL_PATH: path.join(dataDir, "no-model-here") });
    try {
      const u = await register(server.url);
      const s = await connect(server.url, u.token);
      const { session } = await ok(s, "session:create", { assistant: false });
      await ok(s, "message:send", { sessionId: session.id, clientMessageId: "1", content: "The spare key is under the blue flowerpot" });
      let ready = await api(server.url, "/readyz");
      for (let i = 0; i < 100 && ready.body.checks.embedder.ok; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ready = await api(server.url, "/readyz");
      }
      expect(ready.status).toBe(200); // chat still works: not a critical check
      expect(ready.body.checks.embedder.ok).toBe(false);
      expect(ready.body.checks.embedder.status).toMatch(/unavailable/);
      const r = await ok(s, "memory:search", { query: "where is the spare key" });
      expect(r.degraded).toBe(true);
      expect(r.mode).toBe("lexical");
      expect(r.hits[0].content).toContain("flowerpot");
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs");
      expect(rows[0].n).toBe(1);
      expect(server.logs.some((l) => String(l.msg).includes("embedder unavailable"))).toBe(true);
      s.close();
    } finally {
      await server.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("memory with the transformers.js embedder", () => {
  it("loads a model from EMBEDDING_MODEL_PATH in worker threads and indexes through it", async () => {
    const { ensureTinyModel } = await import("../support/test-models.js");
    const modelDir = await ensureTinyModel();
    const db = await createTestDatabase(2);
    const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-tiny-"));
    const server = await startServer({
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      EMBEDDER: "transformers",
      EMBEDDING_MODEL_PATH: modelDir,
      EMBEDDING_MODEL_ID: "memchat/tiny-bert",
      EMBEDDING_WORKERS: "1",
      INDEXER_POLL_MS: "100",
      MEMORY_MIN_SIMILARITY: "-1",
    });
    try {
      const u = await register(server.url);
      const s = await connect(server.url, u.token);
      const { session } = await ok(s, "session:create", { assistant: false });
      for (const [i, content] of ["the red kite circled over the valley", "invoice 4471 is overdue", "bring sunscreen to the beach"].entries()) {
        await ok(s, "message:send", { sessionId: session.id, clientMessageId: String(i), content });
      }
      for (let i = 0; i < 200; i++) {
        const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM message_index_jobs");
        if (rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const { rows } = await db.pool.query("SELECT model FROM embedding_versions WHERE state = 'active'");
      expect(rows).toEqual([{ model: "memchat/tiny-bert" }]);
      const ready = await api(server.url, "/readyz");
      expect(ready.body.checks.embedder).toMatchObject({ ok: true });
      expect(ready.body.checks.embedder.status).toContain("memchat/tiny-bert");
      // the same text embeds to the same vector: the message itself is the nearest hit
      const r = await ok(s, "memory:search", { query: "invoice 4471 is overdue", mode: "vector", limit: 1 });
      expect(r.hits[0].content).toBe("invoice 4471 is overdue");
      expect(r.hits[0].score).toBeGreaterThan(0.99);
      s.close();
    } finally {
      await server.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
