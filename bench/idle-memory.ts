/**
 * Memory an idle connection costs: N authenticated /chat connections (each
 * its own user, websocket transport) to one server on the embedded profile,
 * held open, with the server's retained memory read after a full collection
 * (the cluster starts it with --expose-gc; SIGUSR2 collects and logs
 * process.memoryUsage()) before the first connection and after the last.
 *
 * Usage: npm run bench:idle [-- --connections 10000 --server-root <checkout>]
 */
import os from "node:os";
import { io, type Socket } from "socket.io-client";
import { type Cluster, startCluster } from "../loadtest/cluster.js";
import { benchServerEnv, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg("connections", 10_000);
const HOLD_S = arg("hold", 10);
/** `--server-root <checkout>`: measure another version of the server (a before/after comparison). */
const SERVER_ROOT = process.argv.includes("--server-root") ? process.argv[process.argv.indexOf("--server-root") + 1] : undefined;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

async function retained(cluster: Cluster): Promise<Memory> {
  const node = cluster.nodes[0]!;
  const seen = node.logs.length;
  node.child.kill("SIGUSR2");
  for (let i = 0; i < 200; i++) {
    const entry = node.logs.slice(seen).find((l) => l.msg === "memory after full GC");
    if (entry) return entry.memory as Memory;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the server did not report its memory (is it running with --expose-gc?)");
}

function open(url: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(`${url}/chat`, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false, timeout: 60_000 });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => {
      s.close();
      reject(e);
    });
  });
}

async function registerAll(url: string, n: number): Promise<string[]> {
  const tag = Math.random().toString(36).slice(2, 8);
  const out: string[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const res = await fetch(`${url}/api/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: `idle_${tag}_${i}`, password: "benchmark-pass" }) });
        if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
        out[i] = ((await res.json()) as { token: string }).token;
      }
    }),
  );
  return out;
}

const cluster = await startCluster({ nodes: 1, redis: false, root: SERVER_ROOT, env: { ...benchServerEnv() } });
const sockets: Socket[] = [];
try {
  const url = cluster.urls[0]!;
  const tokens = await registerAll(url, N);
  // Warm the connection path (code compiled, pools filled), then let registration's garbage go.
  const warm = await Promise.all(tokens.slice(0, 50).map((t) => open(url, t)));
  for (const s of warm) s.close();
  await new Promise((r) => setTimeout(r, 2000));
  const before = await retained(cluster);
  if (process.env.BENCH_HEAP_SNAPSHOT) {
    cluster.nodes[0]!.child.kill("SIGUSR1");
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HEAP_SNAPSHOT) * 1000));
  }
  let failed = 0;
  for (let i = 0; i < N; i += 200) {
    const batch = await Promise.allSettled(tokens.slice(i, i + 200).map((t) => open(url, t)));
    for (const r of batch) r.status === "fulfilled" ? sockets.push(r.value) : failed++;
  }
  await new Promise((r) => setTimeout(r, HOLD_S * 1000));
  const after = await retained(cluster);
  const held = sockets.filter((s) => s.connected).length;
  if (process.env.BENCH_HEAP_SNAPSHOT) {
    // Start the server with BENCH_SERVER_ENV=NODE_OPTIONS=--heapsnapshot-signal=SIGUSR1: it writes a snapshot into its cwd.
    cluster.nodes[0]!.child.kill("SIGUSR1");
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HEAP_SNAPSHOT) * 1000));
  }
  const per = (k: (m: Memory) => number) => (k(after) - k(before)) / 1024 / Math.max(1, held);
  console.log(`\nidle connections to one server (embedded profile), each its own user, websocket, held ${HOLD_S} s; memory after a full GC; load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}\n`);
  console.log(
    table(
      ["connections", "held", "failed", "heap used KB/conn", "heap + external KB/conn", "RSS KB/conn", "RSS before MB", "RSS after MB"],
      [[N, held, failed, per((m) => m.heapUsed), per((m) => m.heapUsed + m.external), per((m) => m.rss), before.rss / 2 ** 20, after.rss / 2 ** 20]],
    ),
  );
} finally {
  for (const s of sockets) s.close();
  await cluster.stop();
}
process.exit(0);
