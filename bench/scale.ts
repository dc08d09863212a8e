/**
 * The message table at scale: fills the embedded profile's database with
 * --messages (default 5,000,000) messages over --sessions (default 50,000)
 * sessions spread over a year, then measures what users do against it
 * (joining a session: its latest page; sending; a lexical memory search over
 * a user's sessions) and what retention does (deleting one session), with
 * table and index sizes. The figures decide whether time-based partitioning
 * of chat_messages is worth it (see README, Benchmarks).
 * Usage: npm run bench:scale [-- --messages 5000000 --sessions 50000 --ops 300 --server-root <checkout>]
 * (--server-root runs another version of the server against the same kind of table).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { freePort } from "../src/db/embedded-postgres.js";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { HISTORY_WORDS, historyTextSql, percentile, table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg("messages", 5_000_000);
const SESSIONS = arg("sessions", 50_000);
const OPS = arg("ops", 300);
const USERS = 100;
const serverRootAt = process.argv.indexOf("--server-root");
const SERVER_ROOT = serverRootAt >= 0 ? process.argv[serverRootAt + 1] : undefined;
const PER_SESSION = Math.ceil(MESSAGES / SESSIONS);

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-bench-scale-"));
const pgPort = await freePort();
const server = await startServer({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), EMBEDDER: "hash", INDEXER_ENABLED: "false", RATE_LIMITS_ENABLED: "false" }, 120_000, [], undefined, SERVER_ROOT);
const password = (await readFile(path.join(dataDir, "pg.password"), "utf8")).trim();
const raw = new pg.Pool({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/memchat`, max: 4 });
raw.on("error", () => undefined);

async function timed(n: number, op: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

try {
  const users = await Promise.all(Array.from({ length: USERS }, () => register(server.url)));
  const t0 = performance.now();
  // Sessions, each owned by one of the users, created across the last year.
  await raw.query(
    `WITH s AS (
       INSERT INTO chat_sessions (owner_id, title, created_at, updated_at, last_seq, message_count, last_message_at)
       SELECT (ARRAY[${users.map((_, i) => `$${i + 1}::uuid`).join(",")}])[1 + g % ${USERS}], 'scale ' || g,
              now() - make_interval(days => 365) + make_interval(secs => g * (365.0 * 86400 / ${SESSIONS})),
              now(), ${PER_SESSION}, ${PER_SESSION}, now()
         FROM generate_series(1, ${SESSIONS}) g
       RETURNING id, owner_id)
     INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, owner_id, 'owner' FROM s`,
    users.map((u) => u.user.id),
  );
  const { rows: ids } = await raw.query<{ id: string }>("SELECT id FROM chat_sessions WHERE title LIKE 'scale %' ORDER BY created_at");
  for (let from = 0; from < ids.length; from += 500) {
    const chunk = ids.slice(from, from + 500).map((r) => r.id);
    await raw.query(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content, created_at)
       SELECT s.id, g, s.owner_id, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END,
              ${historyTextSql("s.id", "g")},
              s.created_at + make_interval(mins => g)
         FROM chat_sessions s, generate_series(1, ${PER_SESSION}) g
        WHERE s.id = ANY($1::uuid[])`,
      [chunk],
    );
    if (from % 10_000 === 0) process.stdout.write(`\r${from + chunk.length} of ${ids.length} sessions filled`);
  }
  await raw.query("VACUUM ANALYZE");
  const fillSeconds = (performance.now() - t0) / 1000;
  const { rows: sizes } = await raw.query<{ rel: string; mb: number }>(
    `SELECT c.relname AS rel, round(pg_relation_size(c.oid) / 1048576.0)::int AS mb
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND (c.relname LIKE 'chat_messages%' OR c.relname = 'chat_sessions') AND c.relkind IN ('r', 'i')
      ORDER BY mb DESC`,
  );
  const total = Number((await raw.query<{ n: string }>("SELECT count(*) AS n FROM chat_messages")).rows[0]!.n);

  const sockets: Socket[] = await Promise.all(users.slice(0, 10).map((u) => connect(server.url, u.token)));
  // Each of the first ten users' sessions: the owner index is u, sessions g with g % USERS = u + 1.
  const own = await Promise.all(
    users.slice(0, 10).map(async (u) => (await raw.query<{ id: string }>("SELECT id FROM chat_sessions WHERE owner_id = $1", [u.user.id])).rows.map((r) => r.id)),
  );
  const pick = (i: number) => ({ socket: sockets[i % 10]!, sessions: own[i % 10]! });
  const join = await timed(OPS, async (i) => {
    const p = pick(i);
    await ok(p.socket, "session:join", { sessionId: p.sessions[(i * 7919) % p.sessions.length] });
  });
  const send = await timed(OPS, async (i) => {
    const p = pick(i);
    await ok(p.socket, "message:send", { sessionId: p.sessions[(i * 104_729) % p.sessions.length], clientMessageId: `scale-${i}`, content: `a new message ${i} about the budget`, assistant: false });
  });
  const search = await timed(Math.min(OPS, 100), async (i) => {
    await ok(pick(i).socket, "memory:search", { query: `${HISTORY_WORDS[i % HISTORY_WORDS.length]} ${HISTORY_WORDS[(i + 5) % HISTORY_WORDS.length]}`, mode: "lexical", limit: 10 });
  });
  const history = await timed(OPS, async (i) => {
    const p = pick(i);
    await ok(p.socket, "message:history", { sessionId: p.sessions[(i * 31) % p.sessions.length], beforeSeq: 50, limit: 20 });
  });
  const del = await timed(20, async (i) => {
    await raw.query("DELETE FROM chat_messages WHERE session_id = $1", [ids[(i * 97) % ids.length]!.id]);
  });
  for (const s of sockets) s.close();

  console.log(`\n\nchat_messages at scale: ${total.toLocaleString()} messages in ${SESSIONS.toLocaleString()} sessions over a year (filled in ${fillSeconds.toFixed(0)} s)${SERVER_ROOT ? `, server: ${SERVER_ROOT}` : ""}\n`);
  console.log(table(["relation", "MB"], sizes.map((r) => [r.rel, r.mb])));
  console.log();
  console.log(
    table(
      ["operation", "p50 ms", "p99 ms"],
      [
        ["session:join (latest page)", join.p50, join.p99],
        ["message:send", send.p50, send.p99],
        ["message:history (older page)", history.p50, history.p99],
        ["memory:search lexical (500 sessions)", search.p50, search.p99],
        [`delete one session's ${PER_SESSION} messages`, del.p50, del.p99],
      ],
    ),
  );
} finally {
  await raw.end();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}
