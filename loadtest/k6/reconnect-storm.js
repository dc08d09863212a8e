/**
 * Reconnect storm: CLIENTS connections, each a member of SESSIONS_PER_CLIENT
 * rooms, all drop at the same instant STORMS times and come back OUTAGE
 * later, while one writer per room keeps sending. Each client re-joins its
 * sessions with session:join {sessionId, afterSeq} (the highest seq it holds
 * with no gap below) and checks the server gave it every message it missed.
 * At the end each client asks once more, after the writers stopped: anything
 * new then is a message the server failed to deliver live.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e CLIENTS=500 -e STORMS=3 -e OUTAGE=3s loadtest/k6/reconnect-storm.js
 *
 * Connections that drop on their own (kill a server node mid-run) reconnect
 * after RETRY_BACKOFF and go through the same re-join check.
 */
import { check, sleep } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import { createSessions, runSocket, timerDelay } from "./lib/client.js";
import { baseUrl, bool, durationMs, int, k6Duration, runId, str, thresholds } from "./lib/env.js";
import { deleteSessions, inviteMembers, registerUsers } from "./lib/rest.js";
import { checkBacklog, fetchAfter, SeqTracker } from "./lib/sessions.js";
import { ackErrorCode, LOCAL_ERRORS } from "./lib/socketio.js";

const BASE_URL = baseUrl();
const CLIENTS = int("CLIENTS", 200, 1);
const ROOMS = int("ROOMS", 20, 1);
const SESSIONS_PER_CLIENT = int("SESSIONS_PER_CLIENT", 2, 1);
// The server allows a user 2 messages/s sustained by default (RATE_MESSAGE_PER_SEC); a writer must stay under it.
const WRITE_INTERVAL_MS = Math.max(1, durationMs("WRITE_INTERVAL", "1s"));
const WARMUP_MS = durationMs("WARMUP", "10s");
const STORMS = int("STORMS", 3, 1);
const STORM_EVERY_MS = durationMs("STORM_EVERY", "20s");
const OUTAGE_MS = durationMs("OUTAGE", "3s");
// 0 brings every client back in the same instant; a spread models clients with jittered backoff.
const RECONNECT_SPREAD_MS = durationMs("RECONNECT_SPREAD", "0s");
const DRAIN_MS = durationMs("DRAIN", "5s");
const CONNECT_TIMEOUT_MS = durationMs("CONNECT_TIMEOUT", "15s");
const ACK_TIMEOUT_MS = durationMs("ACK_TIMEOUT", "15s");
const RETRY_MS = durationMs("RETRY_BACKOFF", "1s");
const KEEP_DATA = bool("KEEP_DATA", false);

if (SESSIONS_PER_CLIENT > ROOMS) throw new Error(`SESSIONS_PER_CLIENT (${SESSIONS_PER_CLIENT}) cannot exceed ROOMS (${ROOMS})`);
if (OUTAGE_MS + RECONNECT_SPREAD_MS >= STORM_EVERY_MS) {
  throw new Error("OUTAGE + RECONNECT_SPREAD must be shorter than STORM_EVERY, or clients would still be away at the next storm");
}

// Edit these, or override per run with -e THRESHOLDS='{"storm_rejoin_time":["p(95)<5000"]}'.
const THRESHOLDS = {
  // Every re-join must return every message after afterSeq: one miss is a bug, not a latency.
  storm_rejoin_complete: ["rate==1"],
  storm_live_missed: ["count<1"],
  // Proves the outages overlapped writes; zero means the run tested nothing (raise OUTAGE or lower WRITE_INTERVAL).
  storm_recovered_messages: ["count>0"],
  "sio_connect_time{phase:reconnect}": ["p(95)<2000"],
  storm_rejoin_time: ["p(95)<3000"],
  sio_connect_failed: ["rate<0.01"],
  storm_write_failed: ["rate<0.01"],
  sio_protocol_errors: ["count<1"],
};

// From the reconnect's dial to every session re-joined with its backlog: how long a user is out of date.
const rejoinTime = new Trend("storm_rejoin_time", true);
const rejoinComplete = new Rate("storm_rejoin_complete");
const recovered = new Counter("storm_recovered_messages");
const liveMissed = new Counter("storm_live_missed");
const writeAck = new Trend("storm_write_ack", true);
const writeFailed = new Rate("storm_write_failed");
// Tagged with stage (join, rejoin, final, write) and code.
const errors = new Counter("storm_errors");

const MAX_DURATION = k6Duration(WARMUP_MS + STORMS * STORM_EVERY_MS + DRAIN_MS + 120000);

export const options = {
  setupTimeout: str("SETUP_TIMEOUT", "10m"),
  teardownTimeout: str("TEARDOWN_TIMEOUT", "5m"),
  batchPerHost: 20,
  scenarios: {
    writers: { executor: "per-vu-iterations", exec: "writer", vus: ROOMS, iterations: 1, maxDuration: MAX_DURATION },
    storm: { executor: "per-vu-iterations", exec: "stormClient", vus: CLIENTS, iterations: 1, maxDuration: MAX_DURATION },
  },
  thresholds: thresholds(THRESHOLDS),
};

/** One timeline for both scenarios, from their common start. */
function schedule() {
  const t0 = exec.scenario.startTime;
  const drops = [];
  for (let k = 0; k < STORMS; k++) drops.push(t0 + WARMUP_MS + k * STORM_EVERY_MS);
  const writeUntil = t0 + WARMUP_MS + STORMS * STORM_EVERY_MS;
  return { drops, writeUntil, endAt: writeUntil + DRAIN_MS };
}

export function setup() {
  const id = runId();
  const names = [];
  for (let r = 0; r < ROOMS; r++) names.push(`lt-${id}-w${r}`);
  for (let i = 0; i < CLIENTS; i++) names.push(`lt-${id}-s${i}`);
  const users = registerUsers(BASE_URL, names, `lt-${id}-password`);
  const writers = users.slice(0, ROOMS);
  const members = users.slice(ROOMS);
  const rooms = writers.map((w, r) => ({
    sessionId: createSessions(BASE_URL, w.token, [`loadtest ${id} storm room ${r}`])[0],
    ownerToken: w.token,
  }));
  const invites = [];
  const clients = members.map((u, i) => {
    const sessionIds = [];
    for (let k = 0; k < SESSIONS_PER_CLIENT; k++) {
      const room = rooms[(i + k) % ROOMS];
      sessionIds.push(room.sessionId);
      invites.push({ sessionId: room.sessionId, ownerToken: room.ownerToken, username: u.username, memberToken: u.token });
    }
    return { token: u.token, sessionIds };
  });
  inviteMembers(BASE_URL, invites);
  console.log(`run ${id}: ${CLIENTS} clients in ${ROOMS} rooms, ${STORMS} storms of ${OUTAGE_MS} ms`);
  return { runId: id, rooms, clients };
}

/** The room's owner, sending one message every WRITE_INTERVAL until the last storm is over. */
export function writer(data) {
  const slot = exec.scenario.iterationInTest;
  if (slot >= ROOMS) return;
  const room = data.rooms[slot];
  const t = schedule();
  let n = 0;
  while (Date.now() < t.writeUntil) {
    const out = runSocket({
      baseUrl: BASE_URL,
      token: room.ownerToken,
      tags: { role: "writer" },
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      onConnect(sio, conn) {
        // Sending needs membership, not the room: the writer never joins, so it reads nothing.
        conn.socket.setInterval(() => {
          if (Date.now() >= t.writeUntil) return;
          n++;
          sio.emit("message:send", { sessionId: room.sessionId, clientMessageId: `w${slot}-${n}`, content: `storm write ${n}`, assistant: false }, (reply, ms) => {
            const code = ackErrorCode(reply);
            if (code === LOCAL_ERRORS.CLOSED) return;
            writeFailed.add(code !== null);
            if (code !== null) errors.add(1, { stage: "write", code });
            else writeAck.add(ms);
          });
        }, WRITE_INTERVAL_MS);
        // Stay past the last write so its ack lands.
        conn.socket.setTimeout(() => conn.close(), timerDelay(t.endAt - Date.now()));
      },
    });
    if (!out.closedByScript) sleep(RETRY_MS / 1000);
  }
}

export function stormClient(data) {
  const slot = exec.scenario.iterationInTest;
  if (slot >= CLIENTS) return;
  const me = data.clients[slot];
  const t = schedule();
  // Outlive every connection: what the client holds, per session, is what it resumes from.
  const trackers = {};
  let storm = 0;

  while (Date.now() < t.endAt) {
    const final = storm >= STORMS;
    const closeAt = final ? t.endAt : t.drops[storm];
    const phase = Object.keys(trackers).length > 0 ? "reconnect" : "initial";
    const dialAt = Date.now();
    let onSchedule = false;

    runSocket({
      baseUrl: BASE_URL,
      token: me.token,
      tags: { phase },
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      onConnect(sio, conn) {
        // Events can beat the first join's ack; keep their seqs until the session has a tracker.
        const early = {};
        sio.on("message:new", (e) => {
          const sid = e.message.sessionId;
          if (trackers[sid]) trackers[sid].add(e.message.seq);
          else (early[sid] = early[sid] || []).push(e.message.seq);
        });

        let answered = false;
        joinAll(sio, me.sessionIds, trackers, early, (allOk) => {
          answered = true;
          if (allOk) rejoinTime.add(Date.now() - dialAt, { phase });
        });

        conn.socket.setTimeout(() => {
          // Still waiting for join acks when the next drop came: the server is slower than the storm schedule.
          if (!answered) errors.add(1, { stage: phase === "initial" ? "join" : "rejoin", code: "UNFINISHED" });
          if (!final) {
            onSchedule = true;
            conn.close();
            return;
          }
          finalCheck(sio, me.sessionIds, trackers, () => {
            onSchedule = true;
            conn.close();
          });
        }, timerDelay(closeAt - Date.now()));
      },
    });

    if (onSchedule) {
      if (final) break;
      const back = t.drops[storm] + OUTAGE_MS + Math.random() * RECONNECT_SPREAD_MS;
      storm++;
      sleep(Math.max(0, back - Date.now()) / 1000);
    } else {
      // Failed or dropped on its own: come back like a real client, skipping any storm that passed meanwhile.
      sleep(RETRY_MS / 1000);
      while (storm < STORMS && Date.now() >= t.drops[storm]) storm++;
    }
  }
  check(trackers, { "joined every session": (tr) => me.sessionIds.every((sid) => tr[sid] !== undefined) });
}

/** Joins (first time) or re-joins with afterSeq (after a drop) every session; done(allOk) once all have answered. */
function joinAll(sio, sessionIds, trackers, early, done) {
  let left = sessionIds.length;
  let allOk = true;
  const oneDone = (ok) => {
    if (!ok) allOk = false;
    if (--left === 0) done(allOk);
  };
  sessionIds.forEach((sessionId) => {
    const tracker = trackers[sessionId];
    if (!tracker) {
      sio.emit("session:join", { sessionId }, (reply) => {
        const code = ackErrorCode(reply);
        if (code !== null) {
          if (code !== LOCAL_ERRORS.CLOSED) errors.add(1, { stage: "join", code });
          oneDone(false);
          return;
        }
        // lastSeq is read before the server subscribes us; later messages come live or in this page.
        const tr = new SeqTracker(reply.data.session.lastSeq);
        reply.data.messages.forEach((m) => tr.add(m.seq));
        (early[sessionId] || []).forEach((seq) => tr.add(seq));
        trackers[sessionId] = tr;
        oneDone(true);
      });
      return;
    }
    const afterSeq = tracker.contiguous;
    fetchAfter(sio, sessionId, afterSeq, (code, r) => {
      if (code !== null) {
        if (code !== LOCAL_ERRORS.CLOSED) errors.add(1, { stage: "rejoin", code });
        oneDone(false);
        return;
      }
      const c = checkBacklog(afterSeq, r.session.lastSeq, r.messages);
      rejoinComplete.add(c.complete);
      if (!c.complete) console.warn(`re-join of ${sessionId} after seq ${afterSeq}: missing ${c.missing.slice(0, 10).join(",")}${c.stale ? `, ${c.stale} at or before afterSeq` : ""}`);
      let fresh = 0;
      r.messages.forEach((m) => {
        if (tracker.add(m.seq)) fresh++;
      });
      recovered.add(fresh);
      oneDone(c.complete);
    });
  });
}

/** After the writers stopped and the drain passed, anything past what the client holds was never delivered live. */
function finalCheck(sio, sessionIds, trackers, done) {
  let left = sessionIds.length;
  sessionIds.forEach((sessionId) => {
    const tracker = trackers[sessionId];
    if (!tracker) {
      if (--left === 0) done();
      return;
    }
    fetchAfter(sio, sessionId, tracker.contiguous, (code, r) => {
      if (code !== null) errors.add(1, { stage: "final", code });
      else {
        const missed = r.messages.filter((m) => !tracker.has(m.seq)).length;
        liveMissed.add(missed);
        if (missed > 0) console.warn(`${missed} messages of ${sessionId} never arrived live after the last re-join`);
      }
      if (--left === 0) done();
    });
  });
}

export function teardown(data) {
  if (KEEP_DATA) return;
  const r = deleteSessions(BASE_URL, data.rooms);
  console.log(`run ${data.runId}: deleted ${r.deleted} sessions, ${r.failed} failed`);
}
