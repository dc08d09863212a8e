/**
 * Re-embedding cost: the backfill's throughput, alone and under send load,
 * and message:send ack latency during the backfill against the same load
 * before the model change. The server runs on the embedded profile with the
 * hash embedder; `--messages` messages are written straight into the tables;
 * it is then restarted with the generated transformers test model (`--model
 * tiny` or `full`, the latter all-MiniLM-L6-v2's shape), which starts the
 * backfill.
 * Usage: npm run bench:reembed [-- --messages 10000 --clients 20 --duration 5000 --batch 64 --interval 200 --model tiny]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { type ServerProcess, startServer } from "../test/support/server-process.js";
import { ensureFullModel, ensureTinyModel } from "../test/support/test-models.js";
import { benchServerEnv, percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg("messages", 10_000);
const CLIENTS = arg("clients", 20);
const DURATION = arg("duration", 5000);
const BATCH = arg("batch", 64);
const INTERVAL = arg("interval", 200);
const MODEL = process.argv.includes("--model") ? process.argv[process.argv.indexOf("--model") + 1] : "tiny";

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-reembed-"));
const pgPort = await freePort();
const base = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), RATE_LIMITS_ENABLED: "false", EMBEDDING_WORKERS: "1", ...benchServerEnv() };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function sendLoad(clients: { socket: Socket; sessionId: string }[], tag: string, ms: number): Promise<{ lat: number[]; seconds: number; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, w) => {
      for (let i = 0; performance.now() < end; i++) {
        const s = performance.now();
        try {
          await ok(c.socket, "message:send", { sessionId: c.sessionId, clientMessageId: `${tag}-${w}-${i}`, content: `benchmark message ${i} from client ${w}` });
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { lat: lat.sort((a, b) => a - b), seconds: (performance.now() - t0) / 1000, errors };
}

let server: ServerProcess | undefined;
let raw: pg.Pool | undefined;
const rows: (string | number)[][] = [];
try {
  server = await startServer({ ...base, EMBEDDER: "hash" });
  const password = (await readFile(path.join(dataDir, "pg.password"), "utf8")).trim();
  raw = new pg.Pool({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/memchat`, max: 4 });
  raw.on("error", () => undefined);
  const users = await Promise.all(Array.from({ length: 5 }, () => register(server!.url)));
  const sessions: string[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const s = await connect(server.url, users[i % users.length]!.token);
    sessions.push((await ok(s, "session:create", { title: `bench ${i}`, assistant: false })).session.id);
    s.close();
  }
  const owner = users[0]!.user.id;
  const { rows: hist } = await raw.query<{ id: string }>("INSERT INTO chat_sessions (owner_id, title) SELECT $1, 'history ' || g FROM generate_series(1, 10) g RETURNING id", [owner]);
  await raw.query("INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, $1, 'owner' FROM unnest($2::uuid[]) id", [owner, hist.map((h) => h.id)]);
  const per = Math.ceil(MESSAGES / hist.length);
  for (const h of hist) {
    await raw.query(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content)
       SELECT $1, g, $2, 'user', 'history message ' || g || ' about the ' || (ARRAY['harbour','violin','glacier','orchard','lantern'])[1 + g % 5] || ' and other things said that day'
         FROM generate_series(1, $3) g`,
      [h.id, owner, per],
    );
    await raw.query("UPDATE chat_sessions SET last_seq = $2, message_count = $2 WHERE id = $1", [h.id, per]);
  }
  await raw.query("VACUUM ANALYZE");

  const clientsOf = async (url: string) =>
    Promise.all(sessions.map(async (sessionId, i) => ({ socket: await connect(url, users[i % users.length]!.token), sessionId })));
  let clients = await clientsOf(server.url);
  await sendLoad(clients, "warm", 1000);
  const before = await sendLoad(clients, "before", DURATION);
  for (const c of clients) c.socket.close();
  await server.stop();

  // The model change: the restarted server registers the new model. First without the backfill
  // (maintenance off): what the dual writes alone cost; then with it.
  const modelDir = MODEL === "full" ? await ensureFullModel() : await ensureTinyModel();
  const changed = {
    ...base,
    EMBEDDER: "transformers",
    EMBEDDING_MODEL_PATH: modelDir,
    EMBEDDING_MODEL_ID: `memchat/bench-${MODEL}`,
    REEMBED_BATCH_SIZE: String(BATCH),
    REEMBED_INTERVAL_MS: String(INTERVAL),
  };
  server = await startServer({ ...changed, MAINTENANCE_ENABLED: "false" });
  clients = await clientsOf(server.url);
  await sendLoad(clients, "warm1", 1000);
  const dualOnly = await sendLoad(clients, "dual", DURATION);
  for (const c of clients) c.socket.close();
  await server.stop();
  server = await startServer(changed);
  const progress = async () => {
    const { rows: v } = await raw!.query<{ done: number; total: number | null; state: string }>(
      "SELECT backfill_done::int AS done, backfill_total::int AS total, state FROM embedding_versions WHERE model = $1",
      [`memchat/bench-${MODEL}`],
    );
    return v[0]!;
  };
  // The dual writes of the phase before drain first (the backfill yields to them); then it runs alone.
  const liveBacklog = async () =>
    (await raw!.query<{ n: number }>("SELECT (SELECT count(*) FROM message_index_jobs) + (SELECT count(*) FROM message_version_jobs) AS n")).rows[0]!.n;
  for (let i = 0; i < 1200 && Number(await liveBacklog()) > 0; i++) await sleep(100);
  while ((await progress()).done === 0) await sleep(100);
  const quietFrom = { t: performance.now(), done: (await progress()).done };
  await sleep(DURATION);
  const quietTo = { t: performance.now(), done: (await progress()).done };
  clients = await clientsOf(server.url);
  await sendLoad(clients, "warm2", 500);
  const loadFrom = { t: performance.now(), done: (await progress()).done };
  const during = await sendLoad(clients, "during", DURATION);
  const loadTo = { t: performance.now(), done: (await progress()).done };
  for (const c of clients) c.socket.close();
  const finalState = await progress();
  if (loadTo.done >= (finalState.total ?? 0)) console.log("warning: the backfill finished during the loaded window; use more --messages");

  for (const [name, r] of [["before the change (hash)", before], ["building, backfill off (dual writes only)", dualOnly], ["during the backfill", during]] as const) {
    rows.push([name, Math.round(r.lat.length / r.seconds), percentile(r.lat, 50).toFixed(1), percentile(r.lat, 99).toFixed(1), r.errors]);
  }
  const rate = (a: { t: number; done: number }, b: { t: number; done: number }) => ((b.done - a.done) / ((b.t - a.t) / 1000)).toFixed(0);
  console.log(`\nre-embedding ${finalState.total} messages into the ${MODEL} test model (batch ${BATCH}, interval ${INTERVAL} ms), message:send with ${CLIENTS} clients\n`);
  console.log(table(["load", "sends/s", "ack p50 ms", "ack p99 ms", "errors"], rows));
  console.log(`\nbackfill: ${rate(quietFrom, quietTo)} messages/s with no traffic, ${rate(loadFrom, loadTo)} messages/s under the send load`);
  console.log(`p99 during / before = ${(percentile(during.lat, 99) / percentile(before.lat, 99)).toFixed(2)}x, during / dual writes only = ${(percentile(during.lat, 99) / percentile(dualOnly.lat, 99)).toFixed(2)}x; state at the end: ${finalState.state}, ${finalState.done}/${finalState.total}`);
} finally {
  await raw?.end();
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
}
