/**
 * What keeping lexical_doc_stats costs a batched send, in PostgreSQL CPU
 * time: the same batches through chat_insert_user_messages under three
 * upkeep variants, alternating in one database, timed by the backend's own
 * CPU clock (/proc/<pid>/stat), which a shared machine's load moves much
 * less than wall time (bench:send measures the whole path, but on a busy
 * 2-core machine its throughput swings more than the effect measured here).
 *
 *   in the batch  sql/016: the function upserts the statistics itself
 *   trigger       sql/009: the statement trigger counts each batch's rows
 *   none          no statistics at all (the function of sql/014, no trigger)
 *
 * Usage: node --import tsx bench/lexical-stats-cost.ts [-- --rounds 3 --calls 300 --batch 20]
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "../src/db/embedded-postgres.js";
import { startServer } from "../test/support/server-process.js";
import { table } from "./lib.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg("rounds", 3);
const CALLS = arg("calls", 300);
const BATCH = arg("batch", 20);

const sql = (file: string) => readFileSync(fileURLToPath(new URL(`../sql/${file}`, import.meta.url)), "utf8");
const from = (text: string, marker: string) => text.slice(text.indexOf(marker));
const FN_014 = from(sql("014_lifecycle.sql"), "CREATE OR REPLACE FUNCTION chat_insert_user_messages");
const UPKEEP_016 = from(sql("016_memory_at_scale.sql"), "DROP TRIGGER chat_messages_lexical_stats_ins");
const TRIGGER_009 = `CREATE TRIGGER chat_messages_lexical_stats_ins AFTER INSERT ON chat_messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lexical_stats_ins();`;
const DROP = "DROP TRIGGER IF EXISTS chat_messages_lexical_stats_ins ON chat_messages;";
const VARIANTS: [string, string][] = [
  ["in the batch (sql/016)", UPKEEP_016.replace("DROP TRIGGER chat_messages_lexical_stats_ins", "DROP TRIGGER IF EXISTS chat_messages_lexical_stats_ins")],
  ["trigger (sql/009)", `${DROP}\n${FN_014}\n${TRIGGER_009}`],
  ["none", `${DROP}\n${FN_014}`],
];

const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-stats-cost-"));
const pgPort = await freePort();
const server = await startServer({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), EMBEDDER: "none", INDEXER_ENABLED: "false" }, 120_000);
const url = `postgres://postgres:${(await readFile(path.join(dataDir, "pg.password"), "utf8")).trim()}@127.0.0.1:${pgPort}/memchat`;
const client = new pg.Client({ connectionString: url });
await client.connect();
client.on("error", () => undefined);

/** user + system CPU of this connection's backend, in ms. */
async function backendCpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const results = new Map<string, { cpu: number[]; wall: number[] }>(VARIANTS.map(([name]) => [name, { cpu: [], wall: [] }]));
try {
  // BATCH users, each in a session of their own: one batch is one message for each, as group commit gathers them.
  const { rows: users } = await client.query<{ id: string }>(
    "INSERT INTO users (username, password_hash) SELECT 'stats_' || g, 'x' FROM generate_series(1, $1) g RETURNING id",
    [BATCH],
  );
  const sessions: string[] = [];
  for (const u of users) {
    const { rows } = await client.query<{ id: string }>("INSERT INTO chat_sessions (owner_id) VALUES ($1) RETURNING id", [u.id]);
    await client.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [rows[0]!.id, u.id]);
    sessions.push(rows[0]!.id);
  }
  const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  let k = 0;
  const send = () =>
    client.query("SELECT count(*) FROM chat_insert_user_messages($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])", [
      sessions,
      users.map((u) => u.id),
      sessions.map(() => `c${k++}`),
      sessions.map((_, i) => `benchmark message ${k} from client ${i} about the quarterly report`),
      sessions.map(() => null),
    ]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, upkeep] of VARIANTS) {
      await client.query(upkeep);
      for (let i = 0; i < 20; i++) await send(); // the function plans once per connection after a redefinition
      const cpu0 = await backendCpuMs(pid);
      const t0 = performance.now();
      for (let i = 0; i < CALLS; i++) await send();
      const wall = performance.now() - t0;
      const cpu = (await backendCpuMs(pid)) - cpu0;
      results.get(name)!.cpu.push((cpu * 1000) / (CALLS * BATCH));
      results.get(name)!.wall.push((CALLS * BATCH * 1000) / wall);
    }
  }
} finally {
  await client.end().catch(() => undefined);
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const none = median(results.get("none")!.cpu);
console.log(`\nlexical_doc_stats upkeep: ${ROUNDS} rounds of ${CALLS} batches of ${BATCH} messages (one session each) per variant, one connection; load average ${loadavg()[0]!.toFixed(1)}\n`);
console.log(
  table(
    ["upkeep", "backend CPU µs/msg (each round)", "median", "vs none", "msg/s (each round)"],
    [...results].map(([name, r]) => [
      name,
      r.cpu.map((c) => c.toFixed(1)).join(", "),
      median(r.cpu),
      `${(((median(r.cpu) - none) / none) * 100).toFixed(1)} %`,
      r.wall.map((w) => w.toFixed(0)).join(", "),
    ]),
  ),
);
