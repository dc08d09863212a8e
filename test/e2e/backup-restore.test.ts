/**
 * npm run backup / npm run restore against a populated server under live
 * writes: back up, wipe the database, restore, start again, and find the
 * same history, members, settings, feedback and search results.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { afterAll, expect, inject, it } from "vitest";
import { api, connect, ok, register } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

let db: TestDatabase;
/** The database's pool; replaced when the database is wiped. */
let restoredPool: pg.Pool | undefined;
let server: ServerProcess | undefined;
let dataDir: string;
const sockets: Socket[] = [];

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await restoredPool?.end();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const env = () => ({
  DATABASE_URL: db.url,
  DATA_DIR: dataDir,
  JWT_SECRET: "backup-secret-0123456789-0123456789-01234",
  EMBEDDER: "hash",
  INDEXER_POLL_MS: "100",
  MEMORY_MIN_SIMILARITY: "0",
  OFFLINE_TOKEN_DELAY_MS: "0",
  RATE_LIMITS_ENABLED: "false",
});

async function script(name: "backup" | "restore", ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, ["--import", "tsx", `scripts/${name}.ts`, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, DATA_DIR: dataDir, LOG_LEVEL: "info" },
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

async function indexed(pool: pg.Pool): Promise<void> {
  await expect
    .poll(async () => (await pool.query("SELECT (SELECT count(*) FROM message_index_jobs)::int AS jobs")).rows[0].jobs, { timeout: 30_000, interval: 100 })
    .toBe(0);
}

/** Everything the restore must bring back, as the users and the database see it. */
async function snapshot(url: string, tokens: string[], sessionIds: string[], pool: pg.Pool) {
  const out: Record<string, unknown> = {};
  for (const [i, token] of tokens.entries()) {
    out[`sessions${i}`] = (await api(url, "/api/sessions?archived=all", { token })).body.sessions;
    for (const id of sessionIds) {
      const r = await api(url, `/api/sessions/${id}/messages?limit=200`, { token });
      out[`history${i}/${id}`] = r.status === 200 ? r.body.messages : r.status;
    }
    for (const qtext of ["Lisbon hotel", "budget spreadsheet", "camera"]) {
      const r = await api(url, `/api/memory/search?q=${encodeURIComponent(qtext)}&limit=5`, { token });
      out[`search${i}/${qtext}`] = r.body.hits.map((h: { messageId: number; sessionId: string; source: string; archived: boolean }) => [h.messageId, h.sessionId, h.archived]);
    }
  }
  const q = async (sql: string) => (await pool.query(sql, [sessionIds])).rows;
  out.members = await q("SELECT session_id, user_id, role FROM chat_session_members WHERE session_id = ANY($1) ORDER BY 1, 2");
  out.settings = await q(
    `SELECT s.id, c.name, c.system_prompt, c.top_k, c.temperature, c.is_default FROM chat_sessions s
       LEFT JOIN assistant_configurations c ON c.id = s.configuration_id OR s.configuration_id IS NULL AND c.is_default
      WHERE s.id = ANY($1) ORDER BY 1`,
  );
  out.feedback = await q("SELECT f.message_id, f.user_id, f.rating, f.comment FROM message_feedback f JOIN chat_messages m ON m.id = f.message_id WHERE m.session_id = ANY($1) ORDER BY 1, 2");
  out.context = await q("SELECT c.message_id, c.context_message_id, c.rank FROM message_context c JOIN chat_messages m ON m.id = c.message_id WHERE m.session_id = ANY($1) ORDER BY 1, 2");
  return out;
}

it("backs up a populated server under live writes, and a wiped database restored from it serves the same data", async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-backup-"));
  server = await startServer(env());
  const alice = await register(server.url);
  const bob = await register(server.url);
  const carol = await register(server.url);
  const [a, b, c] = await Promise.all([alice, bob, carol].map((u) => connect(server!.url, u.token)));
  sockets.push(a!, b!, c!);

  const { session: trip } = await ok(a!, "session:create", { title: "Trip" });
  const { session: work } = await ok(a!, "session:create", { title: "Work", assistant: false });
  await ok(a!, "session:invite", { sessionId: trip.id, username: bob.user.username });
  await ok(b!, "invitation:accept", { sessionId: trip.id });
  await ok(a!, "session:join", { sessionId: trip.id });
  for (const [socket, content] of [
    [a, "We fly to Lisbon on the 14th, the hotel is near Alfama"],
    [b, "I will bring the camera and its charger"],
  ] as const) {
    const turn = collectTurn(a!, trip.id);
    await ok(socket!, "message:send", { sessionId: trip.id, clientMessageId: `t-${content.length}`, content });
    await turn;
  }
  await ok(a!, "message:send", { sessionId: work.id, clientMessageId: "w1", content: "Ping Marta about the budget spreadsheet", assistant: false });
  await ok(a!, "session:archive", { sessionId: work.id, archived: true });
  const history = await ok(b!, "message:history", { sessionId: trip.id });
  const reply = history.messages.find((m: { role: string }) => m.role === "assistant");
  await ok(b!, "message:feedback", { messageId: reply.id, rating: -1, comment: "too short" });
  const { rows: agent } = await db.pool.query<{ id: string }>(
    "INSERT INTO assistant_configurations (name, system_prompt, top_k, temperature) VALUES ('agent', 'Talk like a travel agent.', 4, 0.2) RETURNING id",
  );
  await db.pool.query("UPDATE chat_sessions SET configuration_id = $2 WHERE id = $1", [trip.id, agent[0]!.id]);
  await indexed(db.pool);
  const sessionIds = [trip.id, work.id];
  const before = await snapshot(server.url, [alice.token, bob.token], sessionIds, db.pool);

  // live writes into carol's session while the backup runs
  const { session: noise } = await ok(c!, "session:create", { title: "noise", assistant: false });
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      await ok(c!, "message:send", { sessionId: noise.id, clientMessageId: `n${written}`, content: `noise ${written}` });
      written++;
    }
  })();
  await expect.poll(() => written).toBeGreaterThan(20);
  const dir = path.join(dataDir, "backup-1");
  const backup = await script("backup", dir);
  writing = false;
  await writer;
  expect(backup.out).toContain("backup written");
  expect(backup.code).toBe(0);
  const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8"));
  expect(manifest).toMatchObject({ format: "memchat-backup", formatVersion: 1 });
  expect(manifest.schemaVersion).toBeGreaterThanOrEqual(14);
  const counts = Object.fromEntries(manifest.tables.map((t: { name: string; rows: number; sha256: string }) => [t.name, t.rows]));
  expect(counts.users).toBe(3);
  expect(counts.chat_sessions).toBe(3);
  expect(counts.message_feedback).toBe(1);
  expect(Object.keys(manifest.excluded)).toContain("message_vectors");
  for (const t of manifest.tables) expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
  // a second backup into the same directory is refused
  expect((await script("backup", dir)).code).not.toBe(0);

  // wipe: the server goes, the database is dropped and created empty
  for (const s of sockets) s.close();
  await server.stop();
  server = undefined;
  const name = new URL(db.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: inject("pgAdminUrl") });
  await admin.connect();
  // FORCE ends the test pool's connections too; it is closed once, in afterAll
  await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on("error", () => undefined);
  restoredPool = pool;

  const restored = await script("restore", dir);
  expect(restored.out).toContain("backup restored");
  expect(restored.code).toBe(0);
  // the database now holds data: a second restore is refused unless forced
  const again = await script("restore", dir);
  expect(again.code).not.toBe(0);
  expect(again.out).toContain("refuses");

  // one snapshot: the noise session's counter matches its rows exactly
  const { rows: noiseRows } = await pool.query<{ last_seq: number; message_count: number; n: number; max: number }>(
    "SELECT s.last_seq, s.message_count, count(m.id)::int AS n, coalesce(max(m.seq), 0) AS max FROM chat_sessions s LEFT JOIN chat_messages m ON m.session_id = s.id WHERE s.id = $1 GROUP BY s.id",
    [noise.id],
  );
  expect(noiseRows[0]!.n).toBe(counts.chat_messages - 5);
  expect(noiseRows[0]).toMatchObject({ last_seq: noiseRows[0]!.n, message_count: noiseRows[0]!.n, max: noiseRows[0]!.n });
  expect(noiseRows[0]!.n).toBeGreaterThan(20);
  // BM25 statistics counted once: by the restore's inserts, the session rows' own counts left out of the backup (sql/029)
  expect(Object.keys(manifest.excluded)).toContain("chat_sessions.lex_docs");
  const { rows: statistics } = await pool.query<{ mismatches: number; counted: number }>(
    `WITH truth AS (
       SELECT session_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid) AS author_id, count(*)::bigint AS docs,
              coalesce(sum(length(content_tsv)), 0)::bigint AS len
         FROM chat_messages GROUP BY 1, 2
     )
     SELECT count(*) FILTER (WHERE t.docs IS DISTINCT FROM c.docs OR t.len IS DISTINCT FROM c.len)::int AS mismatches, count(*)::int AS counted
       FROM truth t FULL JOIN lexical_doc_counts c USING (session_id, author_id)`,
  );
  expect(statistics[0]).toMatchObject({ mismatches: 0 });
  expect(statistics[0]!.counted).toBeGreaterThan(2);

  server = await startServer(env());
  await indexed(pool);
  const { rows: vectors } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_vectors");
  expect(vectors[0]!.n).toBe(counts.chat_messages);
  const after = await snapshot(server.url, [alice.token, bob.token], sessionIds, pool);
  expect(after).toEqual(before);
  // ids continue after the restored ones
  const s2 = await connect(server.url, alice.token);
  sockets.push(s2);
  const { message } = await ok(s2, "message:send", { sessionId: trip.id, clientMessageId: "after-restore", content: "back again", assistant: false });
  expect(message.id).toBeGreaterThan(Math.max(...(before[`history0/${trip.id}`] as { id: number }[]).map((m) => m.id)));
  expect((await api(server.url, `/api/sessions/${work.id}/messages`, { token: alice.token })).body.messages).toHaveLength(1);
});

it("backs up the embedded profile while its server runs, and restores into an empty data directory", async () => {
  const source = await mkdtemp(path.join(tmpdir(), "memchat-backup-emb-"));
  const target = await mkdtemp(path.join(tmpdir(), "memchat-restore-emb-"));
  const secret = "embedded-backup-secret-0123456789-0123456";
  const embeddedScript = async (name: "backup" | "restore", dataDirOf: string, ...args: string[]) => {
    try {
      const r = await run(process.execPath, ["--import", "tsx", `scripts/${name}.ts`, ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDirOf, LOG_LEVEL: "info" },
      });
      return { code: 0, out: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  };
  let running: ServerProcess | undefined;
  try {
    running = await startServer({ DATA_DIR: source, JWT_SECRET: secret, EMBEDDER: "hash", INDEXER_POLL_MS: "100" });
    const user = await register(running.url);
    const s = await connect(running.url, user.token);
    sockets.push(s);
    const { session } = await ok(s, "session:create", { title: "embedded", assistant: false });
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: "e1", content: "kept across the restore" });
    const dir = path.join(source, "backup");
    const backup = await embeddedScript("backup", source, dir);
    expect(backup.out).toContain("embedded (running server)");
    expect(backup.code).toBe(0);
    s.close();
    await running.stop();
    running = undefined;

    const restored = await embeddedScript("restore", target, dir);
    expect(restored.out).toContain("embedded (started for this command)");
    expect(restored.code).toBe(0);
    running = await startServer({ DATA_DIR: target, JWT_SECRET: secret, EMBEDDER: "hash", INDEXER_POLL_MS: "100" });
    const history = await api(running.url, `/api/sessions/${session.id}/messages`, { token: user.token });
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(["kept across the restore"]);
    // the vectors come back: the indexer rebuilds them from the restored messages
    await expect
      .poll(async () => (await api(running!.url, "/api/memory/search?q=kept%20restore&mode=vector", { token: user.token })).body.hits.length, { timeout: 20_000 })
      .toBe(1);
  } finally {
    await running?.stop();
    await rm(source, { recursive: true, force: true });
    await rm(target, { recursive: true, force: true });
  }
});
