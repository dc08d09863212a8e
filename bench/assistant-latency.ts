/**
 * Time to first token and the gap between deltas as a client sees them, at
 * 1, 20 and 100 concurrent turns, through the server (embedded profile,
 * OpenAI-compatible double as the LLM) side by side with the same double
 * streaming straight to a client (the openai SDK, no server in between).
 *
 * `--history N` first gives each user N earlier messages over ten more
 * sessions of theirs (written straight into chat_messages, with no indexing job:
 * the lexical search and the window read them, the vector search holds only
 * the bench's own messages), so the figures are those of a database with a
 * history rather than an empty one.
 *
 * `--pause-ms N` makes each client wait N ms between its measured turns (on
 * both paths): a user who asks now and then rather than back to back, whose
 * turn finds the server's connections as a quiet spell left them.
 *
 * Usage: npm run bench:assistant [-- --rounds 3 --tokens 20 --token-delay 20 --history 0 --pause-ms 0 --server-root <checkout>]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import pg from "pg";
import { freePort } from "../src/db/embedded-postgres.js";
import type { Socket } from "socket.io-client";
import { connect, ok, register } from "../test/support/client.js";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startServer } from "../test/support/server-process.js";
import { benchServerEnv, HISTORY_WORDS, historyTextSql, percentile, table } from "./lib.js";
import { BREAKDOWN_HEADERS, breakdown, gauge, histogram, scrape, treeCpuMs } from "./server-metrics.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg("rounds", 3);
const TOKENS = arg("tokens", 20);
const TOKEN_DELAY = arg("token-delay", 20);
const HISTORY = arg("history", 0);
const PAUSE_MS = arg("pause-ms", 0);
const LEVELS = (process.argv.includes("--levels") ? process.argv[process.argv.indexOf("--levels") + 1]! : "1,20,100").split(",").map(Number);
/** `--server-root <checkout>`: run another version of the server (a before/after comparison). */
const SERVER_ROOT = process.argv.includes("--server-root") ? process.argv[process.argv.indexOf("--server-root") + 1] : undefined;
const tokens = Array.from({ length: TOKENS }, (_, i) => ` word${i}`);
const expected = tokens.join("");

// The double runs in its own process: sharing this process's event loop with
// a hundred clients would delay its tokens and blame the server for it.
const doubleProcess = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./llm-double-process.ts", import.meta.url)), String(TOKENS), String(TOKEN_DELAY)], {
  stdio: ["ignore", "pipe", "inherit"],
});
const llm = await new Promise<{ url: string }>((resolve) => {
  let buf = "";
  doubleProcess.stdout!.on("data", (c: Buffer) => {
    buf += c.toString();
    const m = /\{"url":"[^"]+"\}/.exec(buf);
    if (m) resolve(JSON.parse(m[0]) as { url: string });
  });
});

interface Sample {
  ttft: number;
  gaps: number[];
  complete: boolean;
}

/**
 * `concurrency` clients, each running ROUNDS turns back to back, starting at a
 * random moment within one reply's duration: turns arrive spread out, as
 * real users' do, instead of in lock-step bursts.
 */
async function closedTurns(concurrency: number, turn: (client: number, round: number) => Promise<Sample>): Promise<Sample[]> {
  const out: Sample[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      // One unmeasured turn first: connections and code paths warm, on both paths alike.
      await turn(c, -1 - concurrency);
      await new Promise((r) => setTimeout(r, concurrency === 1 ? 0 : Math.random() * TOKENS * TOKEN_DELAY));
      for (let r = 0; r < ROUNDS; r++) {
        if (r > 0 && PAUSE_MS > 0) await new Promise((res) => setTimeout(res, PAUSE_MS));
        out.push(await turn(c, r));
      }
    }),
  );
  return out;
}

async function direct(concurrency: number): Promise<Sample[]> {
  const client = new OpenAI({ baseURL: llm.url, apiKey: "bench", maxRetries: 0 });
  return closedTurns(concurrency, async () => {
    const t0 = performance.now();
    let last = 0;
    let ttft = -1;
    let text = "";
    const gaps: number[] = [];
    const stream = await client.chat.completions.create({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] });
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content;
      if (!piece) continue;
      const now = performance.now();
      if (ttft < 0) ttft = now - t0;
      else gaps.push(now - last);
      last = now;
      text += piece;
    }
    return { ttft, gaps, complete: text === expected };
  });
}

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-assistant-"));
const pgPort = HISTORY > 0 ? await freePort() : 0;
const server = await startServer({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), EMBEDDER: "hash", RATE_LIMITS_ENABLED: "false", OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: "bench", DB_POOL_SIZE: "20", ...benchServerEnv() }, 60_000, process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean), undefined, SERVER_ROOT);

async function throughServer(concurrency: number, clients: { socket: Socket; sessionId: string }[]): Promise<Sample[]> {
  return closedTurns(concurrency, (i, r) => {
    const { socket, sessionId } = clients[i]!;
    return new Promise<Sample>((resolve, reject) => {
      const t0 = performance.now();
      let last = 0;
      let ttft = -1;
      let text = "";
      let nextSeq = 1;
      let lost = false;
      const gaps: number[] = [];
      const timer = setTimeout(() => reject(new Error("turn timed out")), 60_000);
      const onDelta = (e: { sessionId: string; seq: number; text: string }) => {
        if (e.sessionId !== sessionId) return;
        const now = performance.now();
        if (ttft < 0) ttft = now - t0;
        else gaps.push(now - last);
        last = now;
        if (e.seq !== nextSeq) lost = true;
        nextSeq = e.seq + 1;
        text += e.text;
      };
      const onEnd = (e: { sessionId: string; message: { content: string } }) => {
        if (e.sessionId !== sessionId) return;
        clearTimeout(timer);
        socket.off("assistant:delta", onDelta);
        socket.off("assistant:end", onEnd);
        resolve({ ttft, gaps, complete: !lost && text === expected && e.message.content === expected });
      };
      socket.on("assistant:delta", onDelta);
      socket.on("assistant:end", onEnd);
      ok(socket, "message:send", { sessionId, clientMessageId: `r${r}-${i}-${concurrency}`, content: `question ${r} from ${i}` }).catch(reject);
    });
  });
}

/** bench:scale's topics, and the bench's own questions' word, so the history holds candidates for them. */
const WORDS = [...HISTORY_WORDS, "question"];

/** HISTORY earlier messages per user over ten more sessions each, spread over the last year. */
async function fillHistory(userIds: string[]): Promise<void> {
  // The server's database: its embedded one, or the one BENCH_SERVER_ENV names.
  const url = benchServerEnv().DATABASE_URL ?? `postgres://postgres:${(await readFile(path.join(dataDir, "pg.password"), "utf8")).trim()}@127.0.0.1:${pgPort}/memchat`;
  const raw = new pg.Pool({ connectionString: url, max: 2 });
  const t0 = performance.now();
  try {
    const perSession = Math.ceil(HISTORY / 10);
    for (const userId of userIds) {
      await raw.query(
        `WITH s AS (
           INSERT INTO chat_sessions (owner_id, title, created_at, updated_at, last_seq, message_count, last_message_at)
           SELECT $1, 'history ' || g, now() - make_interval(days => 365 - g * 30), now(), $2, $2, now() - make_interval(days => 365 - g * 30)
             FROM generate_series(1, 10) g
           RETURNING id, owner_id, created_at
         ), m AS (
           INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, owner_id, 'owner' FROM s
         )
         INSERT INTO chat_messages (session_id, seq, user_id, role, content, created_at)
         SELECT s.id, g, s.owner_id, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END,
                ${historyTextSql("s.id", "g", WORDS)},
                s.created_at + make_interval(mins => g)
           FROM s, generate_series(1, $2::int) g`,
        [userId, perSession],
      );
    }
    await raw.query("VACUUM ANALYZE");
    const { rows } = await raw.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages");
    console.log(`history: ${rows[0]!.n} messages in the database (${HISTORY} per user), filled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await raw.end();
  }
}

const rows: (string | number)[][] = [];
const cpuRows: (string | number)[][] = [];
const phaseRows: (string | number)[][] = [];
try {
  const users = await Promise.all(Array.from({ length: Math.max(...LEVELS) }, () => register(server.url)));
  const clients: { socket: Socket; sessionId: string }[] = [];
  for (const u of users) {
    const socket = await connect(server.url, u.token);
    const { session } = await ok(socket, "session:create", { title: "bench" });
    await ok(socket, "session:join", { sessionId: session.id });
    clients.push({ socket, sessionId: session.id });
  }
  if (HISTORY > 0) await fillHistory(users.map((u) => u.user.id));
  for (const c of LEVELS) {
    const base = await direct(c);
    // The server's own CPU time (user + system) over its turns, from its /metrics.
    const scrapeBefore = await scrape(server.url);
    const cpuBefore = gauge(scrapeBefore, "memchat_process_cpu_seconds_total");
    // And everyone else's (Linux /proc): the server's PostgreSQL, the double, these clients.
    const treeBefore = treeCpuMs(server.child.pid!);
    const doubleBefore = treeCpuMs(doubleProcess.pid!).self;
    const clientsBefore = process.cpuUsage();
    const t0 = performance.now();
    const srv = await throughServer(c, clients);
    const wallMs = performance.now() - t0;
    const clientsMs = process.cpuUsage(clientsBefore);
    const doubleMs = treeCpuMs(doubleProcess.pid!).self - doubleBefore;
    const treeAfter = treeCpuMs(server.child.pid!);
    const scrapeAfter = await scrape(server.url);
    const cpuAfter = gauge(scrapeAfter, "memchat_process_cpu_seconds_total");
    // Where the server's side of the wait went: the send's phases, pool waits, event-loop delay, GC.
    const ttftServer = histogram(scrapeBefore, scrapeAfter, "chat_time_to_first_token_seconds");
    phaseRows.push(...breakdown(`${c} turns`, scrapeBefore, scrapeAfter), [`${c} turns`, "time to first token (server side)", ttftServer.count, ttftServer.meanMs, ttftServer.pMs(50), ttftServer.pMs(99), ttftServer.pMs(99.9)]);
    // Messages indexed in the window, and how many of them took their turn's question vector instead of being embedded.
    const delta = (name: string) => (gauge(scrapeAfter, name) || 0) - (gauge(scrapeBefore, name) || 0);
    phaseRows.push([`${c} turns`, "messages indexed (with their search's vector)", `${delta("chat_messages_indexed_total")} (${delta("chat_index_reused_vectors_total")})`, "-", "-", "-", "-"]);
    // Every turn counts, the warm-up one included: each costs the server the same.
    const cpuMsPerTurn = ((cpuAfter - cpuBefore) * 1000) / (c * (ROUNDS + 1));
    const stats = (s: Sample[]) => {
      const ttft = s.map((x) => x.ttft).sort((a, b) => a - b);
      const gaps = s.flatMap((x) => x.gaps).sort((a, b) => a - b);
      return { p50: percentile(ttft, 50), p99: percentile(ttft, 99), gap50: percentile(gaps, 50), gap99: percentile(gaps, 99), lost: s.filter((x) => !x.complete).length };
    };
    const b = stats(base);
    const v = stats(srv);
    const load = os.loadavg()[0]!.toFixed(1);
    rows.push([c, "direct (no server)", b.p50, b.p99, "-", b.gap50, b.gap99, b.lost, "-", load]);
    rows.push([c, "through server", v.p50, v.p99, v.p99 - b.p99, v.gap50, v.gap99, v.lost, cpuMsPerTurn, load]);
    const turns = c * (ROUNDS + 1);
    cpuRows.push([
      c,
      (turns / wallMs) * 1000,
      cpuMsPerTurn,
      (treeAfter.children - treeBefore.children) / turns,
      doubleMs / turns,
      (clientsMs.user + clientsMs.system) / 1000 / turns,
      ((treeAfter.self - treeBefore.self + treeAfter.children - treeBefore.children + doubleMs + (clientsMs.user + clientsMs.system) / 1000) / wallMs),
    ]);
  }
  for (const cl of clients) cl.socket.close();
  if (process.env.BENCH_PHASES) {
    // With LOG_LEVEL=debug in BENCH_SERVER_ENV: where a turn's time goes, on the server's clock.
    const marks = server.logs.filter((l) => l.msg === "assistant turn phases").map((l) => l.ms as Record<string, number>);
    const keys = ["started", "reads", "context", "firstToken"];
    console.log(table(["phase (ms since the message arrived)", "p50", "p99"], keys.map((k) => {
      const xs = marks.map((m) => m[k]!).filter((x) => x !== undefined).sort((a, b) => a - b);
      return [k, percentile(xs, 50), percentile(xs, 99)];
    })));
  }
} finally {
  await server.stop();
  doubleProcess.kill("SIGTERM");
  await rm(dataDir, { recursive: true, force: true });
}
console.log(`\nassistant turns: ${TOKENS} tokens, ${TOKEN_DELAY} ms apart from the LLM double, ${ROUNDS} measured turns per client ${PAUSE_MS > 0 ? `${PAUSE_MS} ms apart` : "back to back"} after one warm-up turn, clients starting at random within one reply's duration (server coalesces deltas up to 30 ms)\n`);
console.log(table(["turns", "path", "TTFT p50 ms", "TTFT p99 ms", "added p99 ms", "gap p50 ms", "gap p99 ms", "incomplete", "server CPU ms/turn", "load avg"], rows));
// The closed loop's TTFT rises once the turns' CPU (all of it, on these cores) nears the machine's.
console.log(`\nCPU per turn through the server, every process of the bench (Linux /proc; ms/turn):\n`);
console.log(table(["turns", "turns/s", "server", "its PostgreSQL", "LLM double", "clients", "all (cores busy)"], cpuRows));
console.log(`\nThe server's own histograms over each level (bucket upper bounds):\n`);
console.log(table(BREAKDOWN_HEADERS, phaseRows));
