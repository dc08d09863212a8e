/**
 * Re-embedding on a model change, end to end with two real embedders: a
 * node runs with the hash embedder and stores messages; a second node starts
 * on the same database configured with the generated transformers test model.
 * While the new version backfills, messages keep flowing through both nodes
 * and vector search on both keeps finding what was said (through the hash
 * version); then the switch reaches both nodes, and every message, old or
 * sent during the backfill, is found through the new version. In the
 * PostgreSQL run the new-model node restarts half way, and the build goes on
 * from its stored cursor (every message is embedded exactly once).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, describe, expect, it } from "vitest";
import { api, connect, ok, register } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type QdrantDouble, startQdrantDouble } from "../support/qdrant-double.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { ensureTinyModel } from "../support/test-models.js";

const NEW_MODEL = "memchat/test-tiny-bert";

describe.each(["postgres", "qdrant"] as const)("re-embedding with the %s vector store", (storeKind) => {
  const servers: ServerProcess[] = [];
  const sockets: Socket[] = [];
  const dirs: string[] = [];
  let db: TestDatabase;
  let qdrant: QdrantDouble | undefined;

  afterAll(async () => {
    for (const s of sockets) s.close();
    for (const s of servers) await s.stop();
    await qdrant?.close();
    await db?.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("switches from the hash embedder to a transformers model under live traffic without a search that finds nothing", async () => {
    const modelDir = await ensureTinyModel();
    db = await createTestDatabase(4);
    if (storeKind === "qdrant") qdrant = await startQdrantDouble();
    const common = {
      DATABASE_URL: db.url,
      JWT_SECRET: "reembed-secret-0123456789-0123456789-0123",
      INDEXER_POLL_MS: "100",
      MEMORY_MIN_SIMILARITY: "-1",
      // Only NOTIFY can make a node switch quickly: the poll is a minute.
      EMBEDDING_VERSION_REFRESH_MS: "60000",
      EMBEDDING_WORKERS: "1",
      RATE_MESSAGE_BURST: "1000",
      RATE_SEARCH_BURST: "1000",
      RATE_SEARCH_PER_SEC: "1000",
      ...(qdrant ? { QDRANT_URL: qdrant.url } : {}),
    };
    const dataDir = async () => {
      const d = await mkdtemp(path.join(tmpdir(), "memchat-reembed-"));
      dirs.push(d);
      return d;
    };
    const old = await startServer({ ...common, DATA_DIR: await dataDir(), EMBEDDER: "hash" });
    servers.push(old);
    const alice = await register(old.url);
    const onOld = await connect(old.url, alice.token);
    sockets.push(onOld);
    const { session } = await ok(onOld, "session:create", { title: "notes", assistant: false });
    const sent: { id: number; content: string }[] = [];
    const send = async (s: Socket, content: string) => {
      const r = await ok(s, "message:send", { sessionId: session.id, clientMessageId: `c${sent.length}`, content });
      sent.push({ id: r.message.id, content });
    };
    const words = ["harbour", "violin", "glacier", "orchard", "lantern", "falcon", "meadow", "copper", "tundra", "saffron", "quarry", "ember"];
    for (let i = 0; i < 24; i++) await send(onOld, `note ${i}: the ${words[i % words.length]} of week ${i}`);
    const indexed = async () => (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_index_jobs")).rows[0]!.n === 0;
    for (let i = 0; i < 200 && !(await indexed()); i++) await new Promise((r) => setTimeout(r, 50));

    // The second node comes up with the new model; a slow backfill leaves time for traffic meanwhile.
    const freshEnv = {
      ...common,
      DATA_DIR: await dataDir(),
      EMBEDDER: "transformers",
      EMBEDDING_MODEL_PATH: modelDir,
      EMBEDDING_MODEL_ID: NEW_MODEL,
      REEMBED_BATCH_SIZE: "2",
      // At least 12 batches half a second apart: a build of six seconds or more leaves room for
      // live traffic through both nodes however slow one round of it is on a loaded machine.
      REEMBED_INTERVAL_MS: "500",
    };
    let fresh = await startServer(freshEnv);
    servers.push(fresh);
    let onFresh = await connect(fresh.url, alice.token);
    sockets.push(onFresh);
    const versionState = async () =>
      (await db.pool.query<{ state: string }>("SELECT state FROM embedding_versions WHERE model = $1", [NEW_MODEL])).rows[0]?.state;
    // The new model is registered once it has loaded on that node.
    for (let i = 0; i < 300 && (await versionState()) === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await versionState()).toBe("building");

    const findsOnBoth = async (m: { id: number; content: string }) => {
      for (const s of [onOld, onFresh]) {
        const r = await ok(s, "memory:search", { query: m.content, mode: "vector", limit: 3 });
        expect(r.hits.length, `a vector search for "${m.content}"`).toBeGreaterThan(0);
        expect(r.hits[0].messageId).toBe(m.id);
      }
    };
    // Live traffic through both nodes until the switch; every search in between finds its message.
    let duringBuild = 0;
    let sawProgress = false;
    const backfilled = async () => (await db.pool.query<{ n: number }>("SELECT backfill_done::int AS n FROM embedding_versions WHERE model = $1", [NEW_MODEL])).rows[0]!.n;
    let restarted = storeKind === "qdrant"; // the node with the new model restarts half way once (PostgreSQL run)
    // Bounded by time, not by count: how many sends fit in the build depends on the machine.
    const deadline = Date.now() + 100_000;
    for (let i = 0; (await versionState()) === "building"; i++) {
      if (Date.now() > deadline) throw new Error("the backfill did not complete");
      if (!restarted && (await backfilled()) >= 4) {
        restarted = true;
        onFresh.close();
        await fresh.stop();
        fresh = await startServer(freshEnv);
        servers.push(fresh);
        onFresh = await connect(fresh.url, alice.token);
        sockets.push(onFresh);
        expect(fresh.logs.some((l) => String(l.msg).includes("registered a new version"))).toBe(false);
      }
      await send(i % 2 === 0 ? onOld : onFresh, `live ${i}: a ${words[(i * 5) % words.length]} message while the new model builds`);
      await findsOnBoth(sent[i % 24]!);
      // Live traffic, not a flood: a user sends every few tens of milliseconds.
      await new Promise((r) => setTimeout(r, 40));
      if ((await versionState()) === "building") duringBuild++;
      if (!sawProgress) {
        const ready = await api(fresh.url, "/readyz");
        sawProgress = /building \d+ \(memchat\/test-tiny-bert\): \d+\/\d+ messages/.test(ready.body.checks["embedding versions"].status);
      }
    }
    // Sends and searches on both nodes (rounds alternate between them) while the build went on.
    expect(duringBuild).toBeGreaterThanOrEqual(2);
    // The first start registered the version; after a restart the build went on from its cursor.
    expect(servers.some((sv) => sv.logs.some((l) => String(l.msg).includes("registered a new version")))).toBe(true);
    expect(sawProgress).toBe(true);
    expect(await versionState()).toBe("active");

    // Both nodes switched (through NOTIFY: their poll is a minute away).
    for (const s of [old, fresh]) {
      let status = "";
      for (let i = 0; i < 100 && !status.startsWith(`active`); i++) {
        status = (await api(s.url, "/readyz")).body.checks["embedding versions"].status as string;
        if (!status.includes(`(${NEW_MODEL}): ready`)) {
          status = "";
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      expect(status).toMatch(new RegExp(`^active \\d+ \\(${NEW_MODEL}\\): ready`));
    }

    // Once its model loaded, the restarted node finds the build still going, or already switched by the other node meanwhile.
    // It reports the version's state from the database before that (a loaded machine loads the model late), so wait for it.
    if (storeKind === "postgres") {
      const registered = () => fresh.logs.some((l) => String(l.msg).includes("still being backfilled") || String(l.msg).includes("is the active version"));
      for (let i = 0; i < 300 && !registered(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(registered()).toBe(true);
    }
    // Every message, from before and during the backfill, is in the new version and found through it on both nodes.
    for (let i = 0; i < 200 && !(await indexed()); i++) await new Promise((r) => setTimeout(r, 50));
    if (storeKind === "postgres") {
      const { rows } = await db.pool.query<{ message_id: number }>(
        "SELECT v.message_id FROM message_vectors v JOIN embedding_versions e ON e.collection = v.collection WHERE e.model = $1 ORDER BY 1",
        [NEW_MODEL],
      );
      expect(rows.map((r) => r.message_id)).toEqual(sent.map((m) => m.id).sort((x, y) => x - y));
    }
    for (const m of sent) await findsOnBoth(m);
    expect(servers.some((sv) => sv.logs.some((l) => l.msg === "re-embedding complete: searches now use the new version"))).toBe(true);

    const metrics = await (await fetch(`${old.url}/metrics`)).text();
    // 24 messages embedded once each, across the restart: the second process went on from the stored cursor.
    const done = metrics.match(/chat_embedding_backfill_done_messages\{version="\d+",model="memchat\/test-tiny-bert",state="active"\} (\d+)/);
    const total = metrics.match(/chat_embedding_backfill_total_messages\{version="\d+",model="memchat\/test-tiny-bert",state="active"\} (\d+)/);
    expect(done?.[1]).toBe("24");
    expect(metrics).toMatch(/chat_reembed_dual_write_backlog 0/);
    expect(total?.[1]).toBe("24");

    // Deleting the session deletes its points in every kept version's collection, the previous one too.
    const { rows: collections } = await db.pool.query<{ collection: string }>("SELECT collection FROM embedding_versions WHERE state <> 'retired'");
    expect(collections.length).toBe(2);
    const pointsOf = async (collection: string) =>
      qdrant
        ? qdrant.points(collection).filter((p) => p.payload.session_id === session.id).length
        : (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_vectors WHERE collection = $1 AND session_id = $2", [collection, session.id])).rows[0]!.n;
    for (const { collection } of collections) expect(await pointsOf(collection)).toBeGreaterThan(0);
    expect((await api(fresh.url, `/api/sessions/${session.id}`, { method: "DELETE", token: alice.token })).status).toBe(204);
    for (const { collection } of collections) expect(await pointsOf(collection)).toBe(0);
  }, 150_000);
});
