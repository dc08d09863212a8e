/**
 * Messages delivered per second and fan-out latency (send to receipt by each
 * other member), rooms of 10, side by side with a bare Socket.IO server (or
 * pair on the same Redis adapter) relaying the same payloads without
 * persistence.
 *
 * Closed loop (default): each client sends again when acknowledged, at 10,
 * 500 and 1,000 clients: the most either side delivers.
 * Open loop (`--open-loop`): Poisson arrivals at a fixed total rate, by
 * default 20% of the bare side's capacity measured first in the same run
 * (`--rate N` sends/s instead); prints ack and fan-out p50/p90/p99/p99.9 for
 * both sides and, from each memchat node's /metrics over the measured
 * window, where a send's time went.
 * Both modes print server CPU per send over the measured window: each memchat
 * node's (process_cpu_seconds_total), its PostgreSQL's (every process of the
 * server, from /proc) and the bare nodes' (from /proc): figures that a shared
 * machine's load moves much less than latencies.
 *
 * Usage: npm run bench:fanout [-- --duration 8 --levels 10,500,1000 --nodes 2]
 *        npm run bench:fanout -- --open-loop [--nodes 1 --clients 100 --load 0.2 | --rate 500] [--pg-stats]
 * `--pg-stats` also prints PostgreSQL transactions per send (one node included).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import os from "node:os";
import pg from "pg";
import { io, type Socket } from "socket.io-client";
import { startCluster } from "../loadtest/cluster.js";
import { startRedisServer } from "../test/support/redis.js";
import { benchServerEnv, percentile, table } from "./lib.js";
import { BREAKDOWN_HEADERS, breakdown, histogram, nodeCpuSeconds, postgresCpuSeconds, processCpuSeconds, type Scrape, scrape } from "./server-metrics.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const OPEN_LOOP = process.argv.includes("--open-loop");
const NODES = Number(arg("nodes", "2"));
const DURATION_S = Number(arg("duration", OPEN_LOOP ? "15" : "8"));
const LEVELS = arg("levels", arg("clients", OPEN_LOOP ? (NODES === 1 ? "100" : "200") : "10,500,1000")).split(",").map(Number);
const LOAD = Number(arg("load", "0.2"));
const RATE = Number(arg("rate", "0"));
const ROOM = 10;
/**
 * Closed loop only. 0 (default): each client sends its next message as soon
 * as the previous one is acknowledged. N > 0: one message every N ms per
 * client.
 */
const INTERVAL_MS = Number(arg("interval-ms", "0"));

interface Client {
  socket: Socket;
  sessionId: string;
}

interface Run {
  sent: number;
  delivered: number;
  perSecond: number;
  fanout: number[];
  ack: number[];
  errors: number;
  /** Per memchat node: /metrics when the window opened and when it closed. */
  scrapes?: [Scrape, Scrape][];
  /** PostgreSQL's CPU seconds in the window (memchat only). */
  pgCpu?: number;
  /** The bare nodes' CPU seconds in the window (bare only). */
  bareCpu?: number;
  /** PostgreSQL transactions committed or rolled back in the window (memchat only): each statement outside BEGIN is one. */
  pgXacts?: number;
}

function connectTo(url: string, token?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(`${url}/chat`, { auth: token ? { token } : {}, transports: ["websocket"], forceNew: true, reconnection: false });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

async function ack(s: Socket, event: string, payload: unknown): Promise<any> {
  const r = await s.timeout(20_000).emitWithAck(event, payload);
  if (!r.ok) throw new Error(`${event}: ${JSON.stringify(r.error)}`);
  return r.data;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Exponential gap (ms) of a Poisson process at `rate` per second. */
const poissonGap = (rate: number) => (-Math.log(1 - Math.random()) / rate) * 1000;

/**
 * `rate` > 0: open loop, Poisson arrivals at `rate` sends/s in total, each
 * from a random client (whether or not its last send was acknowledged).
 * `rate` = 0: closed loop (see INTERVAL_MS). Rooms span the nodes given.
 */
async function measure(clients: Client[], rate: number, metricsUrls: string[] = [], pgCpu?: () => number, bareCpu?: () => number): Promise<Run> {
  const fanout: number[] = [];
  const acks: number[] = [];
  let delivered = 0;
  let sent = 0;
  let errors = 0;
  let measuring = false;
  for (const c of clients) {
    c.socket.on("message:new", (e: { message: { content: string } }) => {
      const t = Number(e.message.content.slice(2, e.message.content.indexOf(" ")));
      if (!measuring || !(t > 0)) return;
      delivered++;
      fanout.push(performance.now() - t);
    });
  }
  let stop = false;
  const sendOne = async (c: Client, i: number, k: number) => {
    const t0 = performance.now();
    const counted = measuring;
    try {
      await ack(c.socket, "message:send", { sessionId: c.sessionId, clientMessageId: `f${i}-${k}-${Math.random()}`, content: `t=${t0} from ${i}`, assistant: false });
      if (counted) {
        sent++;
        acks.push(performance.now() - t0);
      }
    } catch {
      if (counted) errors++;
    }
  };
  let loops: Promise<unknown>;
  if (rate > 0) {
    loops = (async () => {
      const pending: Promise<void>[] = [];
      let next = performance.now();
      for (let k = 0; !stop; ) {
        const now = performance.now();
        for (; next <= now; next += poissonGap(rate), k++) {
          const i = Math.floor(Math.random() * clients.length);
          pending.push(sendOne(clients[i]!, i, k));
        }
        if (pending.length > 10_000) pending.splice(0, 5_000);
        await sleep(Math.max(0, next - performance.now()));
      }
      await Promise.all(pending);
    })();
  } else {
    loops = Promise.all(
      clients.map(async (c, i) => {
        if (INTERVAL_MS > 0) await sleep(Math.random() * INTERVAL_MS);
        for (let k = 0; !stop; k++) {
          const t0 = performance.now();
          await sendOne(c, i, k);
          const wait = INTERVAL_MS - (performance.now() - t0);
          if (wait > 0 && !stop) await sleep(wait);
        }
      }),
    );
  }
  await sleep(1500); // warm-up
  const before = await Promise.all(metricsUrls.map(scrape));
  const pg0 = pgCpu?.();
  const x0 = pgCpu ? await pgTransactions() : undefined;
  const bare0 = bareCpu?.();
  measuring = true;
  const t0 = performance.now();
  await sleep(DURATION_S * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const pg1 = pgCpu?.();
  const x1 = pgCpu ? await pgTransactions() : undefined;
  const bare1 = bareCpu?.();
  const after = await Promise.all(metricsUrls.map(scrape));
  stop = true;
  await loops;
  await sleep(500); // the last deliveries of the window arrive
  fanout.sort((a, b) => a - b);
  acks.sort((a, b) => a - b);
  return {
    sent,
    delivered,
    perSecond: delivered / elapsed,
    fanout,
    ack: acks,
    errors,
    scrapes: before.map((b, i) => [b, after[i]!]),
    ...(pg0 !== undefined && pg1 !== undefined ? { pgCpu: pg1 - pg0 } : {}),
    ...(bare0 !== undefined && bare1 !== undefined ? { bareCpu: bare1 - bare0 } : {}),
    ...(x0 !== undefined && x1 !== undefined ? { pgXacts: x1 - x0 } : {}),
  };
}

async function memchatClients(urls: string[], n: number): Promise<Client[]> {
  const regUrl = urls[0]!;
  const tokens: { token: string; name: string }[] = [];
  for (let i = 0; i < n; i += 20) {
    tokens.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, n - i) }, async (_, j) => {
          const name = `fan_${n}_${i + j}_${Math.random().toString(36).slice(2, 8)}`;
          const res = await fetch(`${regUrl}/api/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: name, password: "benchmark-pass" }) });
          return { token: ((await res.json()) as { token: string }).token, name };
        }),
      )),
    );
  }
  const clients: Client[] = [];
  for (let r = 0; r * ROOM < n; r++) {
    const members = tokens.slice(r * ROOM, (r + 1) * ROOM);
    const sockets = await Promise.all(members.map((m, j) => connectTo(urls[(r * ROOM + j) % urls.length]!, m.token)));
    const { session } = await ack(sockets[0]!, "session:create", { title: "fanout", assistant: false });
    for (const [j, m] of members.entries()) {
      if (j === 0) continue;
      await ack(sockets[0]!, "session:invite", { sessionId: session.id, username: m.name });
      await ack(sockets[j]!, "invitation:accept", { sessionId: session.id });
    }
    await Promise.all(sockets.map((s) => ack(s, "session:join", { sessionId: session.id })));
    for (const s of sockets) clients.push({ socket: s, sessionId: session.id });
  }
  return clients;
}

async function bareClients(urls: string[], n: number): Promise<Client[]> {
  const clients: Client[] = [];
  const tag = Math.random().toString(36).slice(2, 8);
  for (let r = 0; r * ROOM < n; r++) {
    const sessionId = `room-${n}-${r}-${tag}`;
    const sockets = await Promise.all(Array.from({ length: Math.min(ROOM, n - r * ROOM) }, (_, j) => connectTo(urls[(r * ROOM + j) % urls.length]!)));
    await Promise.all(sockets.map((s) => ack(s, "session:join", { sessionId })));
    for (const s of sockets) clients.push({ socket: s, sessionId });
  }
  return clients;
}

async function runOn(clients: Client[], rate: number, metricsUrls?: string[], pgCpu?: () => number, bareCpu?: () => number): Promise<Run> {
  try {
    return await measure(clients, rate, metricsUrls, pgCpu, bareCpu);
  } finally {
    for (const c of clients) c.socket.close();
  }
}

/** Bare Socket.IO nodes: on the Redis adapter when `redisUrl` is given, else one in-memory node. */
async function startBare(nodes: number, redisUrl: string | undefined) {
  const script = fileURLToPath(new URL("./bare-socketio-server.ts", import.meta.url));
  const procs = Array.from({ length: nodes }, () => spawn(process.execPath, ["--import", "tsx", script, ...(redisUrl ? [redisUrl] : [])], { stdio: ["ignore", "pipe", "inherit"] }));
  const urls = await Promise.all(
    procs.map(
      (p) =>
        new Promise<string>((resolve) => {
          let buf = "";
          p.stdout!.on("data", (c: Buffer) => {
            buf += c.toString();
            const m = /"url":"([^"]+)"/.exec(buf);
            if (m) resolve(m[1]!);
          });
        }),
    ),
  );
  return { urls, pids: procs.map((p) => p.pid!), stop: async () => procs.forEach((p) => p.kill("SIGTERM")) };
}

const ms = (xs: number[], p: number) => percentile(xs, p);
const loadAvg = () => os.loadavg().map((x) => x.toFixed(1)).join(" ");

const redis = NODES > 1 ? await startRedisServer() : undefined;
const bare = await startBare(NODES, redis?.url);
const serverRoot = process.argv.includes("--server-root") ? arg("server-root", "") : undefined;
const cluster = await startCluster({
  nodes: NODES,
  redis: NODES > 1,
  root: serverRoot,
  // --pg-stats: PostgreSQL runs under the bench for every node count, so its transaction count can be read.
  ownPostgres: process.argv.includes("--pg-stats"),
  cpuProfDir: process.env.BENCH_CPU_PROF,
  env: { RATE_LIMITS_ENABLED: "false", INDEXER_ENABLED: process.env.BENCH_INDEXER ?? "true", ...(process.env.BENCH_POOL ? { DB_POOL_SIZE: process.env.BENCH_POOL } : {}), ...benchServerEnv() },
}).catch(async (e) => {
  await bare.stop();
  throw e;
});
// PostgreSQL runs under the bench (cluster) or under the node (embedded profile).
const pgCpu = () => postgresCpuSeconds([process.pid, ...cluster.nodes.map((n) => n.child.pid!)]);
/** Server CPU per send (µs), from a run's window: every node, and PostgreSQL. */
const cpuPerSend = (r: Run) => {
  const sends = r.sent;
  const node = r.scrapes!.reduce((a, [x, y]) => a + nodeCpuSeconds(x, y), 0);
  // CPU per send falls as more sends share a statement: print how many did.
  const statements = r.scrapes!.reduce((a, [x, y]) => a + histogram(x, y, "chat_send_statement_seconds").count, 0);
  return `server CPU per send: node ${((node / sends) * 1e6).toFixed(0)} µs, PostgreSQL ${(((r.pgCpu ?? Number.NaN) / sends) * 1e6).toFixed(0)} µs (${sends} sends, ${(statements / sends).toFixed(2)} send statements per send, ${(((r.pgXacts ?? Number.NaN) / sends)).toFixed(2)} PostgreSQL transactions per send; node ${node.toFixed(2)} s, PostgreSQL ${(r.pgCpu ?? Number.NaN).toFixed(2)} s of CPU in the window)`;
};
/**
 * The database's transaction count (pg_stat_database). Backends report it at
 * most about once a second, so a window's count is good to a second's worth.
 */
async function pgTransactions(): Promise<number | undefined> {
  if (!cluster.databaseUrl) return undefined;
  const client = new pg.Client({ connectionString: cluster.databaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ n: string }>("SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()");
    return Number(rows[0]!.n);
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}
const bareCpu = () => bare.pids.reduce((a, pid) => a + processCpuSeconds(pid), 0);
const bareCpuPerSend = (r: Run) => `bare nodes' CPU per send: ${(((r.bareCpu ?? Number.NaN) / r.sent) * 1e6).toFixed(0)} µs (${r.sent} sends)`;
const where = NODES === 1 ? "1 node" : `${NODES} nodes on one Redis`;
const bareName = NODES === 1 ? "bare Socket.IO node" : `bare Socket.IO ${NODES === 2 ? "pair" : "nodes"}`;
try {
  if (OPEN_LOOP) {
    const n = LEVELS[0]!;
    let rate = RATE;
    let capacityNote = `--rate ${RATE}`;
    if (!(rate > 0)) {
      const cap = await runOn(await bareClients(bare.urls, n), 0);
      rate = Math.round((cap.sent / DURATION_S) * LOAD);
      capacityNote = `${LOAD * 100}% of the ${bareName}'s measured capacity (${Math.round(cap.sent / DURATION_S)} sends/s, ${Math.round(cap.perSecond)} delivered/s, closed loop, load average ${loadAvg()})`;
    }
    const b = await runOn(await bareClients(bare.urls, n), rate, [], undefined, bareCpu);
    const loadB = loadAvg();
    const m = await runOn(await memchatClients(cluster.urls, n), rate, cluster.urls, pgCpu);
    const loadM = loadAvg();
    const row = (name: string, r: Run, load: string) => [
      name,
      r.sent / DURATION_S,
      r.perSecond,
      ms(r.ack, 50), ms(r.ack, 90), ms(r.ack, 99), ms(r.ack, 99.9),
      ms(r.fanout, 50), ms(r.fanout, 90), ms(r.fanout, 99), ms(r.fanout, 99.9),
      r.errors,
      load,
    ];
    console.log(`\nopen loop, ${where}, ${n} clients in rooms of ${ROOM}, Poisson arrivals at ${rate} sends/s: ${capacityNote}; ${DURATION_S} s measured\n`);
    console.log(table(
      ["server", "sent/s", "delivered/s", "ack p50", "ack p90", "ack p99", "ack p99.9", "fan-out p50", "fan-out p90", "fan-out p99", "fan-out p99.9", "errors", "load avg"],
      [row(bareName, b, loadB), row("memchat (persisted)", m, loadM)],
    ));
    console.log(`\nmemchat / bare: ack p99 ${(ms(m.ack, 99) / ms(b.ack, 99)).toFixed(2)}x, fan-out p99 ${(ms(m.fanout, 99) / ms(b.fanout, 99)).toFixed(2)}x (ms)`);
    console.log(`${cpuPerSend(m)}\n${bareCpuPerSend(b)}\n`);
    console.log("where memchat's time went in the window (each node's /metrics; histogram percentiles are bucket bounds):\n");
    console.log(table(BREAKDOWN_HEADERS, m.scrapes!.flatMap(([x, y], i) => breakdown(`node${i + 1}`, x, y))));
  } else {
    const rows: (string | number)[][] = [];
    const cpuNotes: string[] = [];
    for (const n of LEVELS) {
      const b = await runOn(await bareClients(bare.urls, n), 0, [], undefined, bareCpu);
      cpuNotes.push(`${n} clients: ${bareCpuPerSend(b)}`);
      const m = await runOn(await memchatClients(cluster.urls, n), 0, cluster.urls, pgCpu);
      cpuNotes.push(`${n} clients: ${cpuPerSend(m)}`);
      rows.push([n, bareName, b.sent / DURATION_S, b.perSecond, ms(b.fanout, 50), ms(b.fanout, 99), b.errors, "-", loadAvg()]);
      rows.push([n, "memchat (persisted)", m.sent / DURATION_S, m.perSecond, ms(m.fanout, 50), ms(m.fanout, 99), m.errors, `${(m.perSecond / b.perSecond).toFixed(2)}x rate, ${(ms(m.fanout, 99) / ms(b.fanout, 99)).toFixed(2)}x p99`, loadAvg()]);
    }
    const load = INTERVAL_MS > 0 ? `each client sending every ${INTERVAL_MS} ms` : "each client sending its next message when the last is acknowledged (saturating)";
    console.log(`\nfan-out, ${where}, rooms of ${ROOM}, ${load}, ${DURATION_S} s measured\n`);
    console.log(table(["clients", "server", "sent/s", "delivered/s", "fan-out p50 ms", "fan-out p99 ms", "errors", "memchat vs bare", "load avg"], rows));
    console.log(`\n${cpuNotes.join("\n")}`);
  }
} finally {
  await cluster.stop();
  await bare.stop();
  await redis?.dispose();
}
process.exit(0);
