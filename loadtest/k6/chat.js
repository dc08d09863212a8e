/**
 * Chat rooms under load: ROOMS sessions of ROOM_SIZE members each, every
 * member one connection sending a message every SEND_INTERVAL. Measures the
 * send ack latency, the fan-out latency (send time, carried in the content,
 * to message:new at each other member) and, after the run, whether every
 * message stored in the room reached every other member live.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ROOMS=20 -e ROOM_SIZE=10 -e SEND_INTERVAL=2s -e DURATION=2m loadtest/k6/chat.js
 *
 * Latencies compare clocks of the sending and receiving VU: exact on one k6
 * process, as good as NTP when k6 runs on several machines.
 */
import { check } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import { createSessions, runSocket, timerDelay } from "./lib/client.js";
import { baseUrl, bool, durationMs, int, k6Duration, runId, str, thresholds } from "./lib/env.js";
import { deleteSessions, inviteMembers, registerUsers } from "./lib/rest.js";
import { fetchAfter, SeqTracker } from "./lib/sessions.js";
import { ackErrorCode, LOCAL_ERRORS } from "./lib/socketio.js";

const BASE_URL = baseUrl();
const ROOMS = int("ROOMS", 10, 1);
const ROOM_SIZE = int("ROOM_SIZE", 5, 2);
const SEND_INTERVAL_MS = Math.max(1, durationMs("SEND_INTERVAL", "2s"));
const DURATION_MS = durationMs("DURATION", "1m");
// Time for every member to connect and join before anyone sends, so early messages are not "missed" by late joiners.
const WARMUP_MS = durationMs("WARMUP", "5s");
// Time after the last send for acks and fan-out to arrive before delivery is checked; must exceed the worst fan-out latency.
const DRAIN_MS = durationMs("DRAIN", "5s");
const ACK_TIMEOUT_MS = durationMs("ACK_TIMEOUT", "10s");
const MESSAGE_CHARS = int("MESSAGE_CHARS", 100, 40);
const KEEP_DATA = bool("KEEP_DATA", false);

// Edit these, or override per run with -e THRESHOLDS='{"chat_ack_latency":["p(95)<500"]}'.
const THRESHOLDS = {
  chat_ack_latency: ["p(95)<300", "p(99)<1000"],
  chat_fanout_latency: ["p(95)<500", "p(99)<1500"],
  chat_send_failed: ["rate<0.01"],
  // Share of messages stored in a room that reached each other member as message:new.
  chat_fanout_delivered: ["rate>0.999"],
  sio_connect_failed: ["rate<0.01"],
  sio_protocol_errors: ["count<1"],
  checks: ["rate>0.99"],
};

const ackLatency = new Trend("chat_ack_latency", true);
const joinLatency = new Trend("chat_join_latency", true);
const fanoutLatency = new Trend("chat_fanout_latency", true);
const sendFailed = new Rate("chat_send_failed");
const fanoutDelivered = new Rate("chat_fanout_delivered");
// Tagged with event and code (server codes, or ACK_TIMEOUT/DISCONNECTED from the client).
const errors = new Counter("chat_errors");
const sent = new Counter("chat_messages_sent");
const received = new Counter("chat_messages_received");

const VUS = ROOMS * ROOM_SIZE;

export const options = {
  setupTimeout: str("SETUP_TIMEOUT", "10m"),
  teardownTimeout: str("TEARDOWN_TIMEOUT", "5m"),
  batchPerHost: 20,
  scenarios: {
    chat: {
      executor: "per-vu-iterations",
      vus: VUS,
      iterations: 1,
      maxDuration: k6Duration(WARMUP_MS + DURATION_MS + DRAIN_MS + 60000),
    },
  },
  thresholds: thresholds(THRESHOLDS),
};

export function setup() {
  const id = runId();
  const names = [];
  for (let i = 0; i < VUS; i++) names.push(`lt-${id}-c${i}`);
  const users = registerUsers(BASE_URL, names, `lt-${id}-password`);
  const rooms = [];
  const invites = [];
  for (let r = 0; r < ROOMS; r++) {
    const members = users.slice(r * ROOM_SIZE, (r + 1) * ROOM_SIZE);
    const sessionId = createSessions(BASE_URL, members[0].token, [`loadtest ${id} chat room ${r}`])[0];
    for (let m = 1; m < members.length; m++) invites.push({ sessionId, ownerToken: members[0].token, username: members[m].username, memberToken: members[m].token });
    rooms.push({ sessionId, ownerToken: members[0].token, tokens: members.map((u) => u.token) });
  }
  inviteMembers(BASE_URL, invites);
  console.log(`run ${id}: ${ROOMS} rooms x ${ROOM_SIZE} members, one message per member every ${SEND_INTERVAL_MS} ms`);
  return { runId: id, rooms };
}

function padded(text) {
  return text.length >= MESSAGE_CHARS ? text : text + " " + "x".repeat(MESSAGE_CHARS - text.length - 1);
}

function countError(event, code) {
  // Replies failed because the script itself closed the connection say nothing about the server.
  if (code === LOCAL_ERRORS.CLOSED) return;
  errors.add(1, { event, code });
}

export default function (data) {
  const slot = exec.scenario.iterationInTest;
  if (slot >= VUS) return;
  const room = data.rooms[Math.floor(slot / ROOM_SIZE)];
  const token = room.tokens[slot % ROOM_SIZE];
  const sessionId = room.sessionId;
  const mine = `c${slot}-`;
  const start = exec.scenario.startTime;
  const sendFrom = start + WARMUP_MS;
  const sendUntil = sendFrom + DURATION_MS;
  const verifyAt = sendUntil + DRAIN_MS;

  const out = runSocket({
    baseUrl: BASE_URL,
    token,
    ackTimeoutMs: ACK_TIMEOUT_MS,
    onConnect(sio, conn) {
      let tracker = null;
      let baseline = 0;
      // message:new can beat the join's ack; its seqs wait here for the tracker.
      const early = [];
      let n = 0;

      sio.on("message:new", (e) => {
        const m = e.message;
        if (m.sessionId !== sessionId) return;
        received.add(1);
        const stamp = /^lt (\d+) /.exec(m.content);
        if (stamp) fanoutLatency.add(Date.now() - Number(stamp[1]));
        if (tracker) tracker.add(m.seq);
        else early.push(m.seq);
      });

      function send() {
        if (Date.now() >= sendUntil) return;
        n++;
        const now = Date.now();
        sio.emit(
          "message:send",
          { sessionId, clientMessageId: `${mine}${n}`, content: padded(`lt ${now} ${mine}${n}`), assistant: false },
          (reply, ms) => {
            const code = ackErrorCode(reply);
            if (code === LOCAL_ERRORS.CLOSED) return;
            sendFailed.add(code !== null);
            if (code !== null) {
              countError("message:send", code);
              return;
            }
            ackLatency.add(ms);
            sent.add(1);
            tracker.add(reply.data.message.seq);
          },
        );
      }

      function verify() {
        fetchAfter(sio, sessionId, baseline, (code, r) => {
          if (code !== null) {
            countError("verify", code);
            conn.close();
            return;
          }
          let missing = 0;
          for (let i = 0; i < r.messages.length; i++) {
            const m = r.messages[i];
            if (m.clientMessageId !== null && m.clientMessageId.indexOf(mine) === 0) continue;
            const got = tracker.has(m.seq);
            fanoutDelivered.add(got);
            if (!got) missing++;
          }
          if (missing > 0) console.warn(`${mine}: ${missing} messages of room ${sessionId} never arrived as message:new`);
          conn.close();
        });
      }

      sio.emit("session:join", { sessionId }, (reply, ms) => {
        const code = ackErrorCode(reply);
        if (!check(reply, { "session:join ok": () => code === null })) {
          countError("session:join", code);
          conn.close();
          return;
        }
        joinLatency.add(ms);
        // lastSeq is read before the server subscribes us; anything after it arrives live or in this page.
        baseline = reply.data.session.lastSeq;
        tracker = new SeqTracker(baseline);
        for (let i = 0; i < reply.data.messages.length; i++) tracker.add(reply.data.messages[i].seq);
        for (let i = 0; i < early.length; i++) tracker.add(early[i]);
        // A random phase spreads each room's sends instead of firing them in lockstep.
        conn.socket.setTimeout(() => {
          send();
          conn.socket.setInterval(send, SEND_INTERVAL_MS);
        }, timerDelay(Math.max(0, sendFrom - Date.now()) + Math.floor(Math.random() * SEND_INTERVAL_MS)));
        conn.socket.setTimeout(verify, timerDelay(verifyAt - Date.now()));
      });
    },
  });
  check(out, { "connected to /chat": (o) => o.connected });
}

export function teardown(data) {
  if (KEEP_DATA) return;
  const r = deleteSessions(
    BASE_URL,
    data.rooms.map((room) => ({ sessionId: room.sessionId, ownerToken: room.ownerToken })),
  );
  console.log(`run ${data.runId}: deleted ${r.deleted} sessions, ${r.failed} failed`);
}
