/**
 * Every k6 script, run whole (setup, each scenario's VU code, teardown) under
 * the k6 stand-in (test/support/k6/) against the real server process, with
 * small settings so each run takes seconds. The stand-in keeps k6 v0.48's
 * rules: ws.connect blocks its VU until the socket closed, callbacks run on
 * the socket's own loop, a close inside a close handler never returns. So a
 * script that would hang, throw or fail its thresholds under k6 fails here.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type K6Run, runK6Script } from "../support/k6/runtime.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

const K6_DIR = fileURLToPath(new URL("../../loadtest/k6/", import.meta.url));
let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-k6-scripts-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "k6-scripts-secret-0123456789-0123456789",
    // No model download: lexical embeddings, and the offline responder answers (no OPENAI_BASE_URL).
    EMBEDDER: "hash",
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/**
 * Runs a script with its latency thresholds dropped (THRESHOLDS, as a user
 * would): on a shared two-core machine they measure the machine. Every
 * threshold on failures, delivery and integrity stays.
 */
function run(script: string, env: Record<string, string>, latencyMetrics: string[]): Promise<K6Run> {
  const THRESHOLDS = JSON.stringify(Object.fromEntries(latencyMetrics.map((m) => [m, []])));
  return runK6Script(path.join(K6_DIR, script), { env: { BASE_URL: server.url, THRESHOLDS, ...env }, timeoutMs: 60_000 });
}

/** What `k6 run` exiting 0 means, plus: every ws.connect returned, and the run measured something. */
function expectClean(r: K6Run, measured: string[]) {
  const report = r.report();
  expect(r.problems, report).toEqual([]);
  expect(r.thresholds.filter((t) => !t.ok), report).toEqual([]);
  for (const [name, c] of Object.entries(r.checks)) expect(c.fails, `check '${name}'\n${report}`).toBe(0);
  const sessions = r.values("ws_sessions").length;
  expect(sessions, report).toBeGreaterThan(0);
  // ws_session_duration is emitted as ws.connect returns.
  expect(r.values("ws_session_duration").length, `every ws.connect must return\n${report}`).toBe(sessions);
  for (const m of measured) expect(r.values(m).length, `${m} has no samples\n${report}`).toBeGreaterThan(0);
}

describe("the k6 scripts under the k6 stand-in, against the real server", () => {
  it("connect-storm.js ramps, holds and closes every connection", async () => {
    const r = await run("connect-storm.js", { CONNECTIONS: "3", USERS: "2", RAMP: "1s", HOLD: "2s" }, ["sio_connect_time"]);
    expectClean(r, ["sio_connect_time"]);
    expect(r.values("sio_connect_time").length).toBeGreaterThanOrEqual(3);
    expect(r.calls.setup).toBe(1);
  }, 120_000);

  it("chat.js sends, fans out, verifies delivery and tears down", async () => {
    const r = await run("chat.js", { ROOMS: "1", ROOM_SIZE: "3", SEND_INTERVAL: "600ms", WARMUP: "1500ms", DURATION: "2s", DRAIN: "3s" }, [
      "chat_ack_latency",
      "chat_fanout_latency",
    ]);
    expectClean(r, ["chat_ack_latency", "chat_fanout_latency", "chat_fanout_delivered", "chat_join_latency"]);
    expect(r.calls).toMatchObject({ setup: 1, default: 3, teardown: 1 });
  }, 120_000);

  it("assistant.js has streamed turns and tears down", async () => {
    const r = await run("assistant.js", { VUS: "2", DURATION: "3s", THINK: "2s" }, [
      "assistant_ttft",
      "assistant_first_delta",
      "assistant_reply_time",
      "assistant_send_ack",
    ]);
    expectClean(r, ["assistant_ttft", "assistant_reply_time", "assistant_stream_intact", "assistant_failed"]);
    expect(r.calls).toMatchObject({ setup: 1, default: 2, teardown: 1 });
  }, 120_000);

  it("reconnect-storm.js drops, reconnects, re-joins with the backlog and tears down", async () => {
    const r = await run(
      "reconnect-storm.js",
      {
        CLIENTS: "3",
        ROOMS: "1",
        SESSIONS_PER_CLIENT: "1",
        WRITE_INTERVAL: "500ms",
        WARMUP: "1s",
        STORMS: "2",
        STORM_EVERY: "2s",
        OUTAGE: "1s",
        DRAIN: "2s",
      },
      ["sio_connect_time{phase:reconnect}", "storm_rejoin_time"],
    );
    expectClean(r, ["storm_rejoin_complete", "storm_rejoin_time", "storm_recovered_messages", "storm_write_ack"]);
    expect(r.values("sio_connect_time{phase:reconnect}").length).toBeGreaterThanOrEqual(6);
    expect(r.calls).toMatchObject({ setup: 1, writer: 1, stormClient: 3, teardown: 1 });
  }, 120_000);
});
