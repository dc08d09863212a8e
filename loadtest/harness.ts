/**
 * The k6 scenarios, run with socket.io-client from one Node process, for
 * machines without k6. Bounded in count and time; refuses targets that are
 * not on this machine unless told otherwise.
 *
 *   npm run loadtest -- <scenario> [--url http://127.0.0.1:3000 | --spawn embedded|cluster] [options]
 *
 * scenarios: connect-storm, chat, assistant, reconnect-storm (or all)
 * options:   --clients N  --room-size N  --interval-ms N  --duration-s N  --ramp-s N
 *            --turns N  --allow-remote  --cpu-prof DIR (profile the spawned server)
 *
 * The chat and assistant scenarios are apps' traffic, so their clients are
 * the client library's (@memchat/client), as an app's would be. The storms
 * time bare connects and joins on raw sockets: the library's reconnect
 * backoff would be measured instead of the server.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ChatClient, type ChatSession, connect } from "@memchat/client";
import { io, type Socket } from "socket.io-client";
import { percentile, table } from "../bench/lib.js";
import type { ServerProcess } from "../test/support/server-process.js";
import { startCluster, type Cluster } from "./cluster.js";

type Args = Record<string, string | boolean>;

function parseArgs(argv: string[]): { scenario: string; args: Args } {
  const [scenario = "", ...rest] = argv;
  const args: Args = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith("--")) continue;
    const next = rest[i + 1];
    if (next === undefined || next.startsWith("--")) args[a.slice(2)] = true;
    else {
      args[a.slice(2)] = next;
      i++;
    }
  }
  return { scenario, args };
}

const num = (args: Args, name: string, dflt: number) => (typeof args[name] === "string" ? Number(args[name]) : dflt);

export function assertLoopback(url: string, allowRemote: boolean): void {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (!loopback && !allowRemote) {
    throw new Error(`refusing to load ${host}: not a loopback address (pass --allow-remote for a deployment you own)`);
  }
}

interface Target {
  url: string;
  /** Server resident memory in bytes, summed over nodes, from /metrics. */
  rss(): Promise<number>;
  stop(): Promise<void>;
  describe: string;
  /** Every node's URL, when this harness started them (clients spread over all). */
  urls?: string[];
  /** The spawned server processes, when this harness started them. */
  nodes?: ServerProcess[];
}

async function rssOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^memchat_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * Memory the server retains, summed over nodes: after a full GC (spawned
 * servers run with --expose-gc and log their memory on SIGUSR2), the RSS;
 * otherwise the median of a few RSS samples, which garbage can blur.
 */
async function retainedMemory(t: Target): Promise<{ rss: number; heap: number }> {
  const nodes = t.nodes;
  if (nodes) {
    let rss = 0;
    let heap = 0;
    for (const n of nodes) {
      const seen = n.logs.length;
      n.child.kill("SIGUSR2");
      for (let i = 0; i < 100; i++) {
        const entry = n.logs.slice(seen).find((l) => l.msg === "memory after full GC");
        if (entry) {
          const m = entry.memory as { rss: number; heapUsed: number; external: number };
          rss += m.rss;
          heap += m.heapUsed + m.external;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return { rss, heap };
  }
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    xs.push(await t.rss());
  }
  return { rss: xs.sort((a, b) => a - b)[2]!, heap: Number.NaN };
}

async function target(args: Args): Promise<Target> {
  const spawn = args.spawn;
  if (spawn === "embedded" || spawn === "cluster") {
    const cpuProf = typeof args["cpu-prof"] === "string" ? (args["cpu-prof"] as string) : undefined;
    const cluster: Cluster = await startCluster({ nodes: spawn === "cluster" ? 2 : 1, redis: spawn === "cluster", cpuProfDir: cpuProf });
    return {
      url: cluster.urls[0]!,
      rss: async () => (await Promise.all(cluster.urls.map(rssOf))).reduce((a, b) => a + b, 0),
      nodes: cluster.nodes,
      stop: () => cluster.stop(),
      describe: spawn === "cluster" ? "2 nodes on one PostgreSQL and one Redis (clients spread over both)" : "embedded profile (1 node)",
      urls: cluster.urls,
    };
  }
  const url = typeof args.url === "string" ? args.url : "http://127.0.0.1:3000";
  assertLoopback(url, args["allow-remote"] === true);
  return { url, rss: () => rssOf(url), stop: async () => undefined, describe: url };
}

const urlsOf = (t: Target) => t.urls ?? [t.url];

async function registerMany(url: string, n: number, runId: string): Promise<{ token: string; userId: string }[]> {
  const out: { token: string; userId: string }[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(16, n) }, async () => {
      while (next < n) {
        const i = next++;
        const res = await fetch(`${url}/api/auth/register`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: `lt_${runId}_${i}`, password: "load-test-password" }),
        });
        if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
        const body = (await res.json()) as { token: string; user: { id: string } };
        out[i] = { token: body.token, userId: body.user.id };
      }
    }),
  );
  return out;
}

function open(url: string, token: string, reconnection = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(`${url}/chat`, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection, timeout: 20_000 });
    const t = setTimeout(() => reject(new Error("connect timeout")), 30_000);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      s.close();
      reject(e);
    });
  });
}

async function ack<T = any>(s: Socket, event: string, payload: unknown): Promise<T> {
  const r = (await s.timeout(20_000).emitWithAck(event, payload)) as { ok: boolean; data?: T; error?: { code: string; message: string } };
  if (!r.ok) throw new Error(`${event}: ${r.error?.code} ${r.error?.message}`);
  return r.data as T;
}

const ms = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? Number.NaN };
};

async function connectStorm(t: Target, args: Args) {
  const n = num(args, "clients", 2000);
  const rampS = num(args, "ramp-s", 10);
  const holdS = num(args, "duration-s", 10);
  const runId = randomUUID().slice(0, 8);
  const users = await registerMany(t.url, Math.min(n, 200), runId);
  const urls = urlsOf(t);
  // Warm the server's connection path, then let the garbage of registering settle.
  const warm = await Promise.all(Array.from({ length: 50 }, (_, i) => open(urls[i % urls.length]!, users[i % users.length]!.token)));
  for (const s of warm) s.close();
  const before = await retainedMemory(t);
  const times: number[] = [];
  let failures = 0;
  const sockets: Socket[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await new Promise((r) => setTimeout(r, (i / n) * rampS * 1000));
      const t0 = performance.now();
      try {
        sockets.push(await open(urls[i % urls.length]!, users[i % users.length]!.token));
        times.push(performance.now() - t0);
      } catch {
        failures++;
      }
    }),
  );
  const rampedIn = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, holdS * 1000));
  const after = await retainedMemory(t);
  const stillConnected = sockets.filter((s) => s.connected).length;
  for (const s of sockets) s.close();
  const c = ms(times);
  return {
    title: `connect storm: ${n} connections over ${rampS} s, held ${holdS} s`,
    headers: ["connections", "connected", "failed", "connect p50 ms", "connect p99 ms", "ramp s", "held to the end", "RSS added MB", "KB/connection (RSS)", "KB/connection (JS heap+external)"],
    rows: [[n, times.length, failures, c.p50, c.p99, rampedIn, stillConnected, (after.rss - before.rss) / 2 ** 20, (after.rss - before.rss) / 1024 / Math.max(1, times.length), (after.heap - before.heap) / 1024 / Math.max(1, times.length)]],
  };
}

interface Member {
  chat: ChatClient;
  session: ChatSession;
}

/**
 * A library client as the load generator needs it: websocket only, its own
 * connection, and one attempt per send, so an ack time is one round trip and
 * a refused send counts as an error instead of being retried.
 */
function libraryClient(url: string, token: string): Promise<ChatClient> {
  return connect({ url, token, maxSendAttempts: 1, callTimeoutMs: 20_000, connectTimeoutMs: 30_000, socket: { transports: ["websocket"], forceNew: true, timeout: 20_000 } });
}

async function joinRooms(t: Target, n: number, roomSize: number, runId: string): Promise<{ members: Member[]; sessions: string[]; users: { token: string; userId: string }[] }> {
  const users = await registerMany(t.url, n, runId);
  const urls = urlsOf(t);
  const members: Member[] = [];
  const sessions: string[] = [];
  for (let r = 0; r * roomSize < n; r++) {
    const group = users.slice(r * roomSize, (r + 1) * roomSize);
    const owner = await libraryClient(urls[(r * roomSize) % urls.length]!, group[0]!.token);
    const session = await owner.createSession({ title: `load ${runId} ${r}`, assistant: false });
    sessions.push(session.id);
    for (const u of group.slice(1)) {
      const res = await fetch(`${t.url}/api/sessions/${session.id}/members`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${group[0]!.token}` },
        body: JSON.stringify({ username: `lt_${runId}_${users.indexOf(u)}` }),
      });
      if (res.status !== 201) throw new Error(`invite failed: ${res.status}`);
      const accepted = await fetch(`${t.url}/api/invitations/${session.id}/accept`, { method: "POST", headers: { authorization: `Bearer ${u.token}` } });
      if (accepted.status !== 200) throw new Error(`accept failed: ${accepted.status}`);
    }
    members.push({ chat: owner, session });
    await Promise.all(
      group.slice(1).map(async (u, j) => {
        const chat = await libraryClient(urls[(r * roomSize + j + 1) % urls.length]!, u.token);
        members.push({ chat, session: await chat.join(session.id) });
      }),
    );
  }
  return { members, sessions, users };
}

async function deleteSessions(url: string, sessions: string[], ownerTokens: string[]) {
  await Promise.all(sessions.map((id, i) => fetch(`${url}/api/sessions/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${ownerTokens[i]}` } })));
}

async function chat(t: Target, args: Args) {
  const n = num(args, "clients", 1000);
  const roomSize = num(args, "room-size", 10);
  const intervalMs = num(args, "interval-ms", 5000);
  const durationS = num(args, "duration-s", 30);
  const runId = randomUUID().slice(0, 8);
  const { members, sessions, users } = await joinRooms(t, n, roomSize, runId);
  const sentAt = new Map<string, number>();
  const fanout: number[] = [];
  const acks: number[] = [];
  let errors = 0;
  let delivered = 0;
  for (const m of members) {
    const me = m.chat.user?.id;
    m.session.on("message", (msg) => {
      // The library reports the sender's own message too (from its ack): not a delivery.
      if (msg.userId === me) return;
      const t0 = msg.clientMessageId === null ? undefined : sentAt.get(msg.clientMessageId);
      if (t0 !== undefined) fanout.push(performance.now() - t0);
      delivered++;
    });
  }
  let stop = false;
  const loops = members.map(async (m, i) => {
    await new Promise((r) => setTimeout(r, Math.random() * intervalMs));
    for (let k = 0; !stop; k++) {
      const id = `${runId}-${i}-${k}`;
      const t0 = performance.now();
      sentAt.set(id, t0);
      try {
        await m.session.send(`load message ${k} from ${i}`, { assistant: false, clientMessageId: id });
        acks.push(performance.now() - t0);
      } catch {
        errors++;
      }
      const wait = intervalMs - (performance.now() - t0);
      if (wait > 0 && !stop) await new Promise((r) => setTimeout(r, wait));
    }
  });
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationS * 1000));
  stop = true;
  await Promise.all(loops);
  await new Promise((r) => setTimeout(r, 500)); // let the last fan-outs arrive
  const elapsed = (performance.now() - t0) / 1000;
  for (const m of members) m.chat.close();
  await deleteSessions(t.url, sessions, sessions.map((_, r) => users[r * roomSize]!.token));
  const a = ms(acks);
  const f = ms(fanout);
  return {
    title: `chat: ${n} clients in rooms of ${roomSize}, one message every ${intervalMs} ms each, ${durationS} s`,
    headers: ["clients", "sent/s", "delivered/s", "ack p50 ms", "ack p99 ms", "ack max ms", "fan-out p50 ms", "fan-out p99 ms", "errors"],
    rows: [[n, acks.length / elapsed, delivered / elapsed, a.p50, a.p99, a.max, f.p50, f.p99, errors]],
  };
}

async function assistant(t: Target, args: Args) {
  const n = num(args, "clients", 50);
  const turns = num(args, "turns", 3);
  const runId = randomUUID().slice(0, 8);
  const users = await registerMany(t.url, n, runId);
  const urls = urlsOf(t);
  const ttft: number[] = [];
  const full: number[] = [];
  let errors = 0;
  const sessions: string[] = [];
  await Promise.all(
    users.map(async (u, i) => {
      const chat = await libraryClient(urls[i % urls.length]!, u.token);
      const session = await chat.createSession({ title: "load assistant" });
      sessions.push(session.id);
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      for (let k = 0; k < turns; k++) {
        const t0 = performance.now();
        let first = -1;
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          const turn = (async () => {
            const question = await session.send(`question ${k}: what did I say before about topic ${i}?`, { clientMessageId: `${runId}-${i}-${k}` });
            const reply = await session.replyTo(question.id);
            for await (const _ of reply) if (first < 0) first = performance.now() - t0;
            await reply.result();
          })();
          await Promise.race([turn, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("reply timeout")), 60_000)))]);
          ttft.push(first);
          full.push(performance.now() - t0);
        } catch {
          errors++;
        } finally {
          clearTimeout(timer);
        }
      }
      chat.close();
    }),
  );
  await deleteSessions(t.url, sessions, users.map((u) => u.token));
  const a = ms(ttft);
  const b = ms(full);
  return {
    title: `assistant turns: ${n} users, ${turns} turns each, back to back`,
    headers: ["users", "turns", "TTFT p50 ms", "TTFT p99 ms", "full reply p50 ms", "full reply p99 ms", "errors"],
    rows: [[n, ttft.length, a.p50, a.p99, b.p50, b.p99, errors]],
  };
}

async function reconnectStorm(t: Target, args: Args) {
  const n = num(args, "clients", 1000);
  const roomSize = num(args, "room-size", 10);
  const runId = randomUUID().slice(0, 8);
  const { members, sessions, users } = await joinRooms(t, n, roomSize, runId);
  // Some traffic, so each client has something to catch up on.
  await Promise.all(
    sessions.map((sessionId, r) =>
      members.find((m) => m.session.id === sessionId)!.session.send("before the storm", { assistant: false, clientMessageId: `${runId}-pre-${r}` }),
    ),
  );
  const lastSeq = new Map<string, number>(sessions.map((id) => [id, 1]));
  for (const m of members) m.chat.close();
  // Messages sent while everyone is away: one per room.
  const senders = await Promise.all(sessions.map((_, r) => open(t.url, users[r * roomSize]!.token)));
  await Promise.all(senders.map((s, r) => ack(s, "message:send", { sessionId: sessions[r]!, clientMessageId: `${runId}-away-${r}`, content: "while you were away", assistant: false })));
  for (const s of senders) s.close();
  const urls = urlsOf(t);
  const times: number[] = [];
  let failures = 0;
  let missed = 0;
  const t0 = performance.now();
  const resumed = await Promise.all(
    members.map(async (m, i) => {
      try {
        const s = await open(urls[i % urls.length]!, users[i]!.token);
        const joined = await ack<{ messages: { content: string }[] }>(s, "session:join", { sessionId: m.session.id, afterSeq: lastSeq.get(m.session.id) });
        if (!joined.messages.some((x) => x.content === "while you were away")) missed++;
        times.push(performance.now() - t0);
        return s;
      } catch {
        failures++;
        return undefined;
      }
    }),
  );
  const all = (performance.now() - t0) / 1000;
  for (const s of resumed) s?.close();
  await deleteSessions(t.url, sessions, sessions.map((_, r) => users[r * roomSize]!.token));
  const r = ms(times);
  return {
    title: `reconnect storm: ${n} clients drop and reconnect at once, each resuming its session`,
    headers: ["clients", "resumed", "failed", "missed a message", "resume p50 ms", "resume p99 ms", "all resumed in s"],
    rows: [[n, times.length, failures, missed, r.p50, r.p99, all]],
  };
}

const SCENARIOS = { "connect-storm": connectStorm, chat, assistant, "reconnect-storm": reconnectStorm } as const;

async function main() {
  const { scenario, args } = parseArgs(process.argv.slice(2));
  const names = scenario === "all" ? (Object.keys(SCENARIOS) as (keyof typeof SCENARIOS)[]) : [scenario as keyof typeof SCENARIOS];
  if (!names.every((n) => n in SCENARIOS)) {
    console.error(`usage: npm run loadtest -- <${Object.keys(SCENARIOS).join("|")}|all> [--url URL | --spawn embedded|cluster] [options]`);
    process.exit(2);
  }
  const t = await target(args);
  const dir = await mkdtemp(path.join(tmpdir(), "memchat-loadtest-"));
  try {
    console.log(`target: ${t.describe}`);
    for (const name of names) {
      const r = await SCENARIOS[name](t, args);
      console.log(`\n${r.title}\n`);
      console.log(table(r.headers, r.rows));
    }
  } finally {
    await t.stop();
    await rm(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
