/**
 * Connect storm: ramp to CONNECTIONS open Socket.IO connections on /chat,
 * hold them, and measure how long each takes to be usable (namespace connect
 * ack, which includes the token check) and how many fail or get dropped.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e CONNECTIONS=1000 -e RAMP=30s -e HOLD=1m loadtest/k6/connect-storm.js
 */
import { sleep } from "k6";
import exec from "k6/execution";
import { runSocket, timerDelay } from "./lib/client.js";
import { baseUrl, durationMs, int, k6Duration, runId, str, thresholds, wholeSeconds } from "./lib/env.js";
import { registerUsers } from "./lib/rest.js";

const BASE_URL = baseUrl();
const CONNECTIONS = int("CONNECTIONS", 500, 1);
const RAMP_MS = wholeSeconds(durationMs("RAMP", "30s"));
const HOLD_MS = wholeSeconds(durationMs("HOLD", "60s"));
// Connections share users (a user may have many); registering one user per connection would make setup the test.
const USERS = Math.min(int("USERS", 50, 1), CONNECTIONS);
const CONNECT_TIMEOUT_MS = durationMs("CONNECT_TIMEOUT", "10s");
// A failed client waits this long before trying again, as a real client's backoff would.
const RETRY_MS = durationMs("RETRY_BACKOFF", "1s");

// Edit these, or override per run with -e THRESHOLDS='{"sio_connect_time":["p(95)<2000"]}'.
const THRESHOLDS = {
  sio_connect_time: ["p(95)<1000", "p(99)<3000"],
  sio_connect_failed: ["rate<0.01"],
  sio_protocol_errors: ["count<1"],
  // Connections the server or the network closed while they should have been held.
  sio_dropped_connections: ["count<1"],
};

export const options = {
  setupTimeout: str("SETUP_TIMEOUT", "5m"),
  batchPerHost: 20,
  scenarios: {
    connect_storm: {
      executor: "ramping-vus",
      startVUs: 0,
      stages: [
        { duration: k6Duration(RAMP_MS), target: CONNECTIONS },
        { duration: k6Duration(HOLD_MS), target: CONNECTIONS },
        { duration: "1s", target: 0 },
      ],
      // Holding connections close themselves at the hold's end; this only bounds stragglers.
      gracefulRampDown: "10s",
    },
  },
  thresholds: thresholds(THRESHOLDS),
};

export function setup() {
  const id = runId();
  const names = [];
  for (let i = 0; i < USERS; i++) names.push(`lt-${id}-x${i}`);
  const users = registerUsers(BASE_URL, names, `lt-${id}-password`);
  console.log(`run ${id}: ${USERS} users for ${CONNECTIONS} connections`);
  return { runId: id, tokens: users.map((u) => u.token) };
}

export default function (data) {
  // Every connection ends when the hold does, wherever in the ramp it began, so the server holds CONNECTIONS at the peak.
  const holdUntil = exec.scenario.startTime + RAMP_MS + HOLD_MS;
  if (Date.now() >= holdUntil - 500) {
    sleep(1);
    return;
  }
  const token = data.tokens[(exec.vu.idInTest - 1) % data.tokens.length];
  const out = runSocket({
    baseUrl: BASE_URL,
    token,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    tags: { scenario_phase: Date.now() < exec.scenario.startTime + RAMP_MS ? "ramp" : "hold" },
    onConnect(sio, conn) {
      conn.socket.setTimeout(() => conn.close(), timerDelay(holdUntil - Date.now()));
    },
  });
  if (!out.connected || !out.closedByScript) {
    if (out.failure) console.warn(`connect failed (${out.failure}) ${out.error || ""}`);
    sleep(RETRY_MS / 1000);
  }
}
