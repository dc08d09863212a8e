/**
 * Latency of lexical memory:search as one user's history grows: the history
 * is bulk-loaded into PostgreSQL (INSERT ... SELECT from unnest, in chunks;
 * the statement triggers keep lexical_doc_stats as they do for sends), then
 * the same questions are asked through the running server at each size.
 *
 * Usage: npm run bench:memory-search [-- --sizes 10000,1000000 --queries 200 --sessions 50 --other-users 0]
 * The 1,000,000 size loads for about a minute on this machine; `--sizes 10000,100000` skips it.
 * `--other-users N` gives N more users the same history (same texts, five
 * sessions each): a server shared by many users, whose words the measured
 * user's search must not pay for.
 * Pass --server-root <dir> to measure another checkout (an earlier ranker), and
 * BENCH_SERVER_ENV="MEMORY_LEXICAL_WINDOW=..." to try settings.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { makeCorpus } from "./corpus.js";
import { benchServerEnv, percentile, table } from "./lib.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const SIZES = arg("sizes", "10000,1000000").split(",").map(Number);
const QUERIES = Number(arg("queries", "200"));
const SESSIONS = Number(arg("sessions", "50"));
const OTHER_USERS = Number(arg("other-users", "0"));
const serverRoot = arg("server-root", "");
const CHUNK = 50_000;

// Questions of the kinds people ask: a rare word, common words only, a mix, a number.
const ASK = [
  "What did Farah say about the quarterly report?",
  "where is my passport",
  "invoice 4471",
  "When is the flight to Osaka?",
  "Remind me what we decided about the Postgres migration",
  "tomato seedlings",
  "Who is meeting Kwame at the ramen place?",
  "What's the plan for the weekend?",
  "Translate thanks into Swahili",
  "slide deck for Giulia before Friday",
];

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-search-cost-"));
const pgPort = await freePort();
const server = await startServer({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), EMBEDDER: "hash", RATE_LIMITS_ENABLED: "false", INDEXER_ENABLED: "false", ...benchServerEnv() }, 120_000, [], undefined, ...(serverRoot ? [serverRoot] : []));
const db = new pg.Pool({ connectionString: `postgres://postgres:${(await readFile(path.join(dataDir, "pg.password"), "utf8")).trim()}@127.0.0.1:${pgPort}/memchat`, max: 2 });
db.on("error", () => undefined);
const rows: (string | number)[][] = [];
try {
  const user = await register(server.url);
  const socket = await connect(server.url, user.token);
  const sessions: string[] = [];
  for (let i = 0; i < SESSIONS; i++) sessions.push((await ok(socket, "session:create", { title: `s${i}`, assistant: false })).session.id);
  const others: { id: string; sessions: string[] }[] = [];
  for (let i = 0; i < OTHER_USERS; i++) {
    const { rows: u } = await db.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [`other_${i}_${Date.now()}`]);
    const { rows: s } = await db.query<{ id: string }>(
      `WITH s AS (INSERT INTO chat_sessions (owner_id, title) SELECT $1, 'o' || g FROM generate_series(1, 5) g RETURNING id)
       INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, $1, 'owner' FROM s RETURNING session_id AS id`,
      [u[0]!.id],
    );
    others.push({ id: u[0]!.id, sessions: s.map((r) => r.id) });
  }
  let loaded = 0;
  for (const size of SIZES) {
    const t0 = performance.now();
    while (loaded < size) {
      const n = Math.min(CHUNK, size - loaded);
      const texts = makeCorpus(n, loaded + 1);
      // Seqs continue per session: message k of the history goes to session k mod the user's sessions.
      for (const who of [{ id: user.user.id, sessions }, ...others]) {
        await db.query(
          `WITH u AS (SELECT t, i FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i))
           INSERT INTO chat_messages (session_id, seq, user_id, role, content, created_at)
           SELECT ($2::uuid[])[((u.i + $3 - 1) % $4) + 1], ((u.i + $3 - 1) / $4)::int + 1, $5, 'user', u.t,
                  now() - make_interval(mins => ($6 - u.i - $3)::int)
             FROM u`,
          [texts, who.sessions, loaded, who.sessions.length, who.id, size],
        );
      }
      loaded += n;
    }
    await db.query("UPDATE chat_sessions s SET last_seq = x.m FROM (SELECT session_id, max(seq) AS m FROM chat_messages GROUP BY 1) x WHERE x.session_id = s.id");
    await db.query("VACUUM ANALYZE chat_messages");
    await db.query("VACUUM ANALYZE lexical_doc_stats").catch(() => undefined);
    const loadS = (performance.now() - t0) / 1000;
    // Warm up, then measure one question at a time.
    for (const q of ASK) await ok(socket, "memory:search", { query: q, mode: "lexical", limit: 10 });
    const lat: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const t = performance.now();
      await ok(socket, "memory:search", { query: ASK[i % ASK.length]!, mode: "lexical", limit: 10 });
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    rows.push([size, loadS, percentile(lat, 50), percentile(lat, 99), lat.at(-1)!, loadavg()[0]!]);
    console.log(`${size} messages: p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms`);
  }
  socket.close();
} finally {
  await server.stop();
  await db.end().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}
console.log(`\nlexical memory:search, one user, ${SESSIONS} sessions, ${QUERIES} questions per size${OTHER_USERS ? `, ${OTHER_USERS} other users with the same history` : ""}${serverRoot ? ` (server: ${serverRoot})` : ""}\n`);
console.log(table(["messages", "bulk load s", "p50 ms", "p99 ms", "max ms", "load average"], rows));
