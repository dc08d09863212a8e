/**
 * message:send ack latency while the indexer drains a backlog of 20,000
 * messages, against the same load with the indexer idle, in one run on the
 * embedded profile with the MiniLM-shaped model in worker threads.
 * Target: p99 during the drain at most 1.5x the idle p99.
 * Usage: npm run bench:ack-indexing [-- --backlog 20000 --clients 10 --interval-ms 100 --seconds 10]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { makeCorpus } from "./corpus.js";
import { percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const BACKLOG = arg("backlog", 20_000);
const CLIENTS = arg("clients", 10);
const INTERVAL = arg("interval-ms", 100);
const SECONDS = arg("seconds", 10);

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-ackidx-"));
const pgPort = await freePort();
const server = await startServer(
  { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), EMBEDDING_MODEL_PATH: await ensureFullModel(), EMBEDDING_MODEL_ID: "minilm-shape", RATE_LIMITS_ENABLED: "false", INDEXER_POLL_MS: "200" },
  180_000,
);
const password = (await readFile(path.join(dataDir, "pg.password"), "utf8")).trim();
const db = new pg.Pool({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/memchat`, max: 2 });
// The embedded PostgreSQL stops at the end while this pool may still hold sockets.
db.on("error", () => undefined);
const backlog = async () => (await db.query("SELECT count(*)::int AS n FROM message_index_jobs")).rows[0].n as number;

async function load(clients: { socket: Socket; sessionId: string }[], tag: string) {
  const acks: number[] = [];
  let stop = false;
  const loops = clients.map(async (c, i) => {
    for (let k = 0; !stop; k++) {
      const t0 = performance.now();
      await ok(c.socket, "message:send", { sessionId: c.sessionId, clientMessageId: `${tag}-${i}-${k}`, content: `load ${tag} ${k}`, assistant: false });
      acks.push(performance.now() - t0);
      const wait = INTERVAL - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(loops);
  acks.sort((a, b) => a - b);
  return { n: acks.length, p50: percentile(acks, 50), p99: percentile(acks, 99), max: acks.at(-1)! };
}

try {
  for (let i = 0; i < 300 && !/embedder.*"ok":true/.test(JSON.stringify(((await (await fetch(`${server.url}/readyz`)).json()) as { checks: unknown }).checks)); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const users = await Promise.all(Array.from({ length: CLIENTS }, () => register(server.url)));
  const clients = await Promise.all(
    users.map(async (u) => {
      const socket = await connect(server.url, u.token);
      const { session } = await ok(socket, "session:create", { assistant: false });
      return { socket, sessionId: session.id as string };
    }),
  );
  // idle first: nothing to index
  while ((await backlog()) > 0) await new Promise((r) => setTimeout(r, 200));
  const idle = await load(clients, "idle");
  // then a backlog, written straight into the tables with its indexing jobs
  const corpus = makeCorpus(BACKLOG, 11);
  await db.query(
    `WITH ins AS (
       INSERT INTO chat_messages (session_id, seq, user_id, role, content, client_message_id)
       SELECT $1, 1000000 + g, $2, 'user', c, 'backlog-' || g FROM unnest($3::text[]) WITH ORDINALITY AS u(c, g)
       RETURNING id
     )
     INSERT INTO message_index_jobs (message_id) SELECT id FROM ins`,
    [clients[0]!.sessionId, users[0]!.user.id, corpus],
  );
  const before = await backlog();
  const busy = await load(clients, "busy");
  const after = await backlog();
  const drainedPerSec = (before - after) / SECONDS;
  console.log(`\nmessage:send ack latency, ${CLIENTS} clients each sending every ${INTERVAL} ms, ${SECONDS} s each phase (embedded profile, MiniLM-shaped model, ${(await import("node:os")).availableParallelism()} cores)\n`);
  console.log(
    table(
      ["indexer", "acks", "ack p50 ms", "ack p99 ms", "ack max ms", "backlog during phase", "indexed/s"],
      [
        ["idle", idle.n, idle.p50, idle.p99, idle.max, "0", "-"],
        ["draining", busy.n, busy.p50, busy.p99, busy.max, `${before} -> ${after}`, drainedPerSec],
      ],
    ),
  );
  console.log(`\np99 while draining / idle p99: ${(busy.p99 / idle.p99).toFixed(2)}x`);
  for (const c of clients) c.socket.close();
} finally {
  await db.end();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}
