/**
 * Accepted message:send per second and ack latency at 1, 10 and 100
 * concurrent clients on the embedded profile, side by side with raw
 * parameterised INSERTs through `pg` into the same table from as many
 * concurrent callers. Usage: npm run bench:send [-- --duration 5000]
 * [--clients 100] [--rate-limits] (limits on, with buckets too large to
 * refuse, so the run measures the cost of the checks themselves). "server
 * CPU µs/msg" is the server process's CPU time over the measured window per
 * accepted message (Linux): on a shared machine it moves much less than the
 * throughput does; "PostgreSQL CPU µs/msg" the same for the embedded
 * database's processes. `--server-root <dir>` runs another checkout's server (an
 * earlier version, in the same sitting); `--no-lexical-stats` keeps no
 * lexical statistics, to measure what they cost: it drops the
 * lexical_doc_stats insert trigger and puts in the batched send function of
 * sql/028 with its statistics upsert cut out (sql/029's differs from it only
 * in how it keeps them).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { closedLoop, table } from "./lib.js";
import { postgresCpuSeconds, processCpuSeconds } from "./server-metrics.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const DURATION = arg("duration", 5000);
const WARMUP = arg("warmup", 1000);
const LEVELS = process.argv.includes("--clients") ? [arg("clients", 100)] : [1, 10, 100];
const RATE_LIMITS = process.argv.includes("--rate-limits");
const NO_LEXICAL_STATS = process.argv.includes("--no-lexical-stats");
const serverRoot = process.argv.includes("--server-root") ? process.argv[process.argv.indexOf("--server-root") + 1]! : undefined;
const POOL = 20; // the server's default DB_POOL_SIZE; the baseline gets the same

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-"));
const pgPort = await freePort();
const server = await startServer({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), DB_POOL_SIZE: String(POOL), EMBEDDER: "hash", RATE_LIMITS_ENABLED: String(RATE_LIMITS), RATE_MESSAGE_BURST: "1e9", RATE_MESSAGE_PER_SEC: "1e9", RATE_CONNECT_BURST: "1e9", RATE_LOGIN_BURST: "1e9" }, 60_000, [], undefined, ...(serverRoot ? [serverRoot] : []));
const password = (await readFile(path.join(dataDir, "pg.password"), "utf8")).trim();
const raw = new pg.Pool({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/memchat`, max: POOL });
// The embedded PostgreSQL stops at the end while this pool may still hold sockets.
raw.on("error", () => undefined);
if (NO_LEXICAL_STATS) {
  await raw.query("DROP TRIGGER IF EXISTS chat_messages_lexical_stats_ins ON chat_messages");
  // The batched send counts its own rows: put in its place sql/028's function, the last one
  // that kept every count in lexical_doc_stats, with that upsert (the CTE lex) cut out.
  const sql028 = readFileSync(new URL("../sql/028_send_without_reply.sql", import.meta.url), "utf8");
  const fn = sql028.slice(sql028.indexOf("CREATE OR REPLACE FUNCTION chat_insert_user_messages"));
  const stripped = fn.replace(/\n\s*\), lex AS \([\s\S]*?(?=\n\s*\), jobs AS \()/g, "");
  if (stripped.includes("lexical_doc_stats") || (fn.match(/\), lex AS \(/g) ?? []).length !== 2) throw new Error("sql/028's function no longer has the shape this bench cuts");
  await raw.query(stripped);
}

/** The server process's CPU time in ms, and its embedded PostgreSQL's (Linux /proc). */
const serverCpuMs = () => processCpuSeconds(server.child.pid!) * 1000;
const pgCpuMs = () => postgresCpuSeconds([server.child.pid!]) * 1000;

const rows: (string | number)[][] = [];
try {
  const users = await Promise.all(Array.from({ length: 10 }, () => register(server.url)));
  for (const c of LEVELS) {
    // Each client sends into its own session, as the raw baseline writes to its own.
    const clients: { socket: Socket; sessionId: string }[] = [];
    for (let i = 0; i < c; i++) {
      const socket = await connect(server.url, users[i % users.length]!.token);
      const { session } = await ok(socket, "session:create", { title: `bench ${c}/${i}` });
      clients.push({ socket, sessionId: session.id });
    }
    let cpu = 0;
    let pgCpu = 0;
    const serverRun = await closedLoop(
      c,
      DURATION,
      WARMUP,
      (w, i) =>
        ok(clients[w]!.socket, "message:send", { sessionId: clients[w]!.sessionId, clientMessageId: `b${c}-${w}-${i}`, content: `benchmark message ${i} from client ${w}`, assistant: false }).then(() => undefined),
      {
        onStart: () => {
          cpu = serverCpuMs();
          pgCpu = pgCpuMs();
        },
        onEnd: () => {
          cpu = serverCpuMs() - cpu;
          pgCpu = pgCpuMs() - pgCpu;
        },
      },
    );
    for (const cl of clients) cl.socket.close();

    // Baseline: the same rows, written straight into the table with a client-side seq.
    const { rows: sess } = await raw.query<{ id: string; owner_id: string }>(
      `INSERT INTO chat_sessions (owner_id, title) SELECT $1, 'raw ' || g FROM generate_series(1, $2) g RETURNING id, owner_id`,
      [users[0]!.user.id, c],
    );
    const seqs = new Array<number>(c).fill(0);
    const rawRun = await closedLoop(c, DURATION, WARMUP, async (w, i) => {
      await raw.query(
        "INSERT INTO chat_messages (session_id, seq, user_id, role, content, client_message_id) VALUES ($1, $2, $3, 'user', $4, $5) RETURNING id",
        [sess[w]!.id, ++seqs[w]!, sess[w]!.owner_id, `benchmark message ${i} from client ${w}`, `r${c}-${w}-${i}`],
      );
    });
    rows.push([c, serverRun.perSecond, serverRun.p50, serverRun.p99, serverRun.errors, (cpu * 1000) / serverRun.count, (pgCpu * 1000) / serverRun.count, rawRun.perSecond, rawRun.p50, rawRun.p99, `${(serverRun.perSecond / rawRun.perSecond).toFixed(2)}x`]);
  }
} finally {
  await raw.end();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const os = await import("node:os");
console.log(`\nmessage:send on the embedded profile vs raw INSERT (${DURATION} ms per run, pool ${POOL}, ${process.platform} ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)})${serverRoot ? ` server: ${serverRoot}` : ""}${NO_LEXICAL_STATS ? ", no lexical statistics (trigger dropped, function of sql/028 without its upsert)" : ""}\n`);
console.log(
  table(
    ["clients", "server msg/s", "ack p50 ms", "ack p99 ms", "errors", "server CPU µs/msg", "PostgreSQL CPU µs/msg", "raw INSERT/s", "raw p50 ms", "raw p99 ms", "server/raw"],
    rows,
  ),
);
