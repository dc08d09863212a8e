/**
 * Messages delivered per second and fan-out latency (send to receipt by each
 * other member) with 2 nodes on one Redis, rooms of 10, at 10, 500 and 1,000
 * connected clients, side by side with a bare Socket.IO pair on the same
 * adapter relaying the same payloads without persistence.
 *
 * Usage: npm run bench:fanout [-- --duration 8 --levels 10,500,1000]
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { io, type Socket } from "socket.io-client";
import { startCluster } from "../loadtest/cluster.js";
import { startRedisServer } from "../test/support/redis.js";
import { benchServerEnv, percentile, table } from "./lib.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const DURATION_S = Number(arg("duration", "8"));
const LEVELS = arg("levels", "10,500,1000").split(",").map(Number);
const ROOM = 10;
/**
 * 0 (default): each client sends its next message as soon as the previous one
 * is acknowledged, which saturates the servers and measures the most they
 * deliver. N > 0: one message every N ms per client (an open loop, like chat
 * users), which measures latency at a fixed load.
 */
const INTERVAL_MS = Number(arg("interval-ms", "0"));

interface Run {
  sent: number;
  delivered: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
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

/** Clients alternate between the two nodes; each room has members on both. */
async function measure(clients: { socket: Socket; sessionId: string }[]): Promise<Run> {
  const latencies: number[] = [];
  let delivered = 0;
  let sent = 0;
  let errors = 0;
  let measuring = false;
  for (const c of clients) {
    c.socket.on("message:new", (e: { message: { content: string } }) => {
      const t = Number(e.message.content.slice(2, e.message.content.indexOf(" ")));
      if (!measuring || !(t > 0)) return;
      delivered++;
      latencies.push(performance.now() - t);
    });
  }
  let stop = false;
  const loops = clients.map(async (c, i) => {
    if (INTERVAL_MS > 0) await new Promise((r) => setTimeout(r, Math.random() * INTERVAL_MS));
    for (let k = 0; !stop; k++) {
      const t0 = performance.now();
      try {
        await ack(c.socket, "message:send", { sessionId: c.sessionId, clientMessageId: `f${i}-${k}-${Math.random()}`, content: `t=${t0} from ${i}`, assistant: false });
        if (measuring) sent++;
      } catch {
        if (measuring) errors++;
      }
      const wait = INTERVAL_MS - (performance.now() - t0);
      if (wait > 0 && !stop) await new Promise((r) => setTimeout(r, wait));
    }
  });
  await new Promise((r) => setTimeout(r, 1500)); // warm-up
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, DURATION_S * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  return { sent, delivered, perSecond: delivered / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

async function memchatRun(urls: string[], n: number): Promise<Run> {
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
  const clients: { socket: Socket; sessionId: string }[] = [];
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
  const run = await measure(clients);
  for (const c of clients) c.socket.close();
  return run;
}

async function bareRun(urls: string[], n: number): Promise<Run> {
  const clients: { socket: Socket; sessionId: string }[] = [];
  for (let r = 0; r * ROOM < n; r++) {
    const sessionId = `room-${n}-${r}`;
    const sockets = await Promise.all(Array.from({ length: Math.min(ROOM, n - r * ROOM) }, (_, j) => connectTo(urls[(r * ROOM + j) % urls.length]!)));
    await Promise.all(sockets.map((s) => ack(s, "session:join", { sessionId })));
    for (const s of sockets) clients.push({ socket: s, sessionId });
  }
  const run = await measure(clients);
  for (const c of clients) c.socket.close();
  return run;
}

async function startBarePair(redisUrl: string) {
  const script = fileURLToPath(new URL("./bare-socketio-server.ts", import.meta.url));
  const procs = [0, 1].map(() => spawn(process.execPath, ["--import", "tsx", script, redisUrl], { stdio: ["ignore", "pipe", "inherit"] }));
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
  return { urls, stop: async () => procs.forEach((p) => p.kill("SIGTERM")) };
}

const rows: (string | number)[][] = [];
const redis = await startRedisServer();
const bare = await startBarePair(redis.url);
const cluster = await startCluster({ nodes: 2, redis: true, cpuProfDir: process.env.BENCH_CPU_PROF, env: { RATE_LIMITS_ENABLED: "false", INDEXER_ENABLED: process.env.BENCH_INDEXER ?? "true", ...(process.env.BENCH_POOL ? { DB_POOL_SIZE: process.env.BENCH_POOL } : {}), ...benchServerEnv() } }).catch(async (e) => {
  await bare.stop();
  throw e;
});
try {
  for (const n of LEVELS) {
    const b = await bareRun(bare.urls, n);
    const m = await memchatRun(cluster.urls, n);
    rows.push([n, "bare Socket.IO pair", b.sent / DURATION_S, b.perSecond, b.p50, b.p99, b.errors, "-"]);
    rows.push([n, "memchat (persisted)", m.sent / DURATION_S, m.perSecond, m.p50, m.p99, m.errors, `${(m.perSecond / b.perSecond).toFixed(2)}x rate, ${(m.p99 / b.p99).toFixed(2)}x p99`]);
  }
} finally {
  await cluster.stop();
  await bare.stop();
  await redis.dispose();
}
const load = INTERVAL_MS > 0 ? `each client sending every ${INTERVAL_MS} ms` : "each client sending its next message when the last is acknowledged (saturating)";
console.log(`\nfan-out over 2 nodes on one Redis, rooms of ${ROOM}, ${load}, ${DURATION_S} s measured\n`);
console.log(table(["clients", "server", "sent/s", "delivered/s", "fan-out p50 ms", "fan-out p99 ms", "errors", "memchat vs bare"], rows));
process.exit(0);
