/**
 * Ack latency of message:send while retention deletes 100,000 messages,
 * against the same load with nothing to delete. The server runs on the
 * embedded profile with RETENTION_ARCHIVED_DAYS=30 and the maintenance job
 * every second; the messages to delete (with a vector each) are written
 * straight into the tables, in archived sessions whose archived_at is moved
 * back 40 days when the measurement starts.
 * Usage: npm run bench:retention [-- --clients 100 --messages 100000 --duration 5000]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { benchServerEnv, percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const CLIENTS = arg("clients", 100);
const MESSAGES = arg("messages", 100_000);
const SESSIONS = arg("sessions", 20);
const DURATION = arg("duration", 5000);

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-ret-"));
const pgPort = await freePort();
const server = await startServer({
  DATA_DIR: dataDir,
  EMBEDDED_PG_PORT: String(pgPort),
  EMBEDDER: "hash",
  RATE_LIMITS_ENABLED: "false",
  RETENTION_ARCHIVED_DAYS: "30",
  MAINTENANCE_INTERVAL_MS: "1000",
  ...benchServerEnv(),
});
const password = (await readFile(path.join(dataDir, "pg.password"), "utf8")).trim();
const raw = new pg.Pool({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/memchat`, max: 4 });
raw.on("error", () => undefined);

/** Closed loops of sends until `until` resolves (or for `ms`); ack latencies in ms. */
async function sendLoad(clients: { socket: Socket; sessionId: string }[], tag: string, stop: Promise<void>): Promise<{ lat: number[]; seconds: number; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  let done = false;
  void stop.then(() => (done = true));
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, w) => {
      for (let i = 0; !done; i++) {
        const s = performance.now();
        try {
          await ok(c.socket, "message:send", { sessionId: c.sessionId, clientMessageId: `${tag}-${w}-${i}`, content: `benchmark message ${i} from client ${w}`, assistant: false });
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { lat: lat.sort((a, b) => a - b), seconds: (performance.now() - t0) / 1000, errors };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const rows: (string | number)[][] = [];
try {
  const users = await Promise.all(Array.from({ length: 10 }, () => register(server.url)));
  const clients: { socket: Socket; sessionId: string }[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = await connect(server.url, users[i % users.length]!.token);
    const { session } = await ok(socket, "session:create", { title: `bench ${i}`, assistant: false });
    clients.push({ socket, sessionId: session.id });
  }
  // The doomed: archived sessions (recently, so not yet due) full of messages, each with a vector.
  const owner = users[0]!.user.id;
  const { rows: doomed } = await raw.query<{ id: string }>(
    `INSERT INTO chat_sessions (owner_id, title, archived, archived_at) SELECT $1, 'doomed ' || g, true, now() FROM generate_series(1, $2) g RETURNING id`,
    [owner, SESSIONS],
  );
  await raw.query("INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, $1, 'owner' FROM unnest($2::uuid[]) id", [owner, doomed.map((d) => d.id)]);
  const per = Math.ceil(MESSAGES / SESSIONS);
  for (const d of doomed) {
    await raw.query(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content) SELECT $1, g, $2, 'user', 'old message number ' || g || ' about nothing in particular' FROM generate_series(1, $3) g`,
      [d.id, owner, per],
    );
    await raw.query(
      `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
       SELECT (SELECT collection FROM embedding_versions ORDER BY id DESC LIMIT 1), gen_random_uuid(), m.id, m.session_id, $2, 'user', m.content, now(), decode(repeat('00', 1536), 'hex')
         FROM chat_messages m WHERE m.session_id = $1`,
      [d.id, owner],
    );
    await raw.query("UPDATE chat_sessions SET last_seq = $2, message_count = $2 WHERE id = $1", [d.id, per]);
  }
  await raw.query("VACUUM ANALYZE");
  // Messages, then sessions: the sweep ends when the last session row (deleted after its vectors) is gone.
  const remaining = async () =>
    Number(
      (
        await raw.query<{ n: string }>(
          "SELECT (SELECT count(*) FROM chat_messages WHERE session_id = ANY($1::uuid[])) + (SELECT count(*) FROM chat_sessions WHERE id = ANY($1::uuid[])) AS n",
          [doomed.map((d) => d.id)],
        )
      ).rows[0]!.n,
    );
  console.log(`prepared ${(await remaining()) - SESSIONS} messages in ${SESSIONS} archived sessions`);

  await sendLoad(clients, "warm", sleep(1000));
  const idle = await sendLoad(clients, "idle", sleep(DURATION));

  // Due now: the next tick of the retention job (within a second) starts deleting.
  const t0 = performance.now();
  await raw.query("UPDATE chat_sessions SET archived_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])", [doomed.map((d) => d.id)]);
  const swept = (async () => {
    while ((await remaining()) > 0) await sleep(100);
  })();
  const during = await sendLoad(clients, "sweep", swept);
  const sweepSeconds = (performance.now() - t0) / 1000;
  const { rows: left } = await raw.query<{ s: number; v: number }>(
    "SELECT (SELECT count(*) FROM chat_sessions WHERE id = ANY($1::uuid[]))::int AS s, (SELECT count(*) FROM message_vectors WHERE session_id = ANY($1::uuid[]))::int AS v",
    [doomed.map((d) => d.id)],
  );
  for (const [name, r] of [["idle", idle], ["during retention", during]] as const) {
    rows.push([name, r.lat.length / r.seconds, percentile(r.lat, 50), percentile(r.lat, 99), r.errors]);
  }
  const ratio = percentile(during.lat, 99) / percentile(idle.lat, 99);
  for (const c of clients) c.socket.close();
  console.log(`\nmessage:send with ${CLIENTS} clients while retention deletes ${MESSAGES} messages (+ as many vectors) in ${SESSIONS} sessions\n`);
  console.log(table(["load", "sends/s", "ack p50 ms", "ack p99 ms", "errors"], rows));
  console.log(`\nsweep: ${sweepSeconds.toFixed(1)} s from due to deleted (sessions left ${left[0]!.s}, vectors left ${left[0]!.v}); p99 during / idle = ${ratio.toFixed(2)}x`);
} finally {
  await raw.end();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}
