/**
 * Assistant replies under load: VUS users, each in a session of its own,
 * send a message, wait for the streamed reply (assistant:start, deltas,
 * assistant:end or assistant:error), think, and repeat for DURATION.
 * Measures time to first token two ways (assistant:start → first delta: the
 * LLM and retrieval; send → first delta: what the user waits) and the time
 * to the whole reply. Whether the server answers with its offline responder
 * or a real LLM is the server's configuration (OPENAI_* on the server).
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e VUS=10 -e DURATION=2m loadtest/k6/assistant.js
 */
import { check } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import { createSessions, runSocket, timerDelay } from "./lib/client.js";
import { baseUrl, bool, durationMs, int, k6Duration, runId, str, thresholds } from "./lib/env.js";
import { deleteSessions, registerUsers } from "./lib/rest.js";
import { ackErrorCode, LOCAL_ERRORS } from "./lib/socketio.js";

const BASE_URL = baseUrl();
const VUS = int("VUS", 5, 1);
const DURATION_MS = durationMs("DURATION", "1m");
// The server allows a user 0.5 assistant turns/s sustained by default (RATE_TURN_PER_SEC); with fast replies a shorter think gets RATE_LIMITED.
const THINK_MS = durationMs("THINK", "2s");
// A real LLM can take long; past this the turn counts as failed and is cancelled.
const REPLY_TIMEOUT_MS = durationMs("REPLY_TIMEOUT", "2m");
const ACK_TIMEOUT_MS = durationMs("ACK_TIMEOUT", "10s");
// After a timeout the reply is cancelled; the next turn waits for its end, or this long if it never comes.
const CANCEL_GRACE_MS = durationMs("CANCEL_GRACE", "30s");
// {n} becomes the turn number. Each turn states a fact and asks about earlier ones, so retrieval has something to find.
const PROMPT = str(
  "PROMPT",
  "Turn {n}: note that parcel {n} goes to locker {n}7. Which lockers have I mentioned so far, and for which parcels?",
);
const KEEP_DATA = bool("KEEP_DATA", false);

// Edit these, or override per run with -e THRESHOLDS='{"assistant_ttft":["p(95)<3000"]}'.
// The defaults suit the offline responder; a remote LLM needs looser ones.
const THRESHOLDS = {
  assistant_ttft: ["p(95)<1000"],
  assistant_first_delta: ["p(95)<1500"],
  assistant_reply_time: ["p(95)<5000"],
  assistant_send_ack: ["p(95)<300"],
  assistant_failed: ["rate<0.01"],
  // Deltas numbered 1..n without gaps whose text adds up to the stored reply.
  assistant_stream_intact: ["rate>0.99"],
  sio_connect_failed: ["rate<0.01"],
  sio_protocol_errors: ["count<1"],
};

const sendAck = new Trend("assistant_send_ack", true);
const sendToStart = new Trend("assistant_send_to_start", true);
const ttft = new Trend("assistant_ttft", true);
const firstDelta = new Trend("assistant_first_delta", true);
const replyTime = new Trend("assistant_reply_time", true);
const deltasPerReply = new Trend("assistant_deltas_per_reply");
const failed = new Rate("assistant_failed");
const intact = new Rate("assistant_stream_intact");
// Tagged with stage (send, stream, timeout) and code.
const errors = new Counter("assistant_errors");
const replies = new Counter("assistant_replies");
// The summary shows this per second: completion tokens streamed across all VUs.
const completionTokens = new Counter("assistant_completion_tokens");

export const options = {
  setupTimeout: str("SETUP_TIMEOUT", "5m"),
  teardownTimeout: str("TEARDOWN_TIMEOUT", "5m"),
  batchPerHost: 20,
  scenarios: {
    assistant: {
      executor: "per-vu-iterations",
      vus: VUS,
      iterations: 1,
      maxDuration: k6Duration(DURATION_MS + REPLY_TIMEOUT_MS + CANCEL_GRACE_MS + 60000),
    },
  },
  thresholds: thresholds(THRESHOLDS),
};

export function setup() {
  const id = runId();
  const names = [];
  for (let i = 0; i < VUS; i++) names.push(`lt-${id}-a${i}`);
  const users = registerUsers(BASE_URL, names, `lt-${id}-password`);
  const sessions = users.map((u, i) => ({
    sessionId: createSessions(BASE_URL, u.token, [`loadtest ${id} assistant ${i}`])[0],
    ownerToken: u.token,
  }));
  console.log(`run ${id}: ${VUS} users, one assistant session each`);
  return { runId: id, sessions };
}

export default function (data) {
  const slot = exec.scenario.iterationInTest;
  if (slot >= VUS) return;
  const { sessionId, ownerToken } = data.sessions[slot];
  const sendUntil = exec.scenario.startTime + DURATION_MS;
  let turn = null;

  const out = runSocket({
    baseUrl: BASE_URL,
    token: ownerToken,
    ackTimeoutMs: ACK_TIMEOUT_MS,
    onConnect(sio, conn) {
      let n = 0;
      // A timed-out reply that was cancelled but has not ended yet; the server runs one reply per session at a time.
      let draining = null;

      // Starts the turn after `prev` once delayMs passed, unless something else started it already.
      function afterTurn(prev, delayMs) {
        conn.socket.setTimeout(() => {
          if (n !== prev) return;
          if (Date.now() >= sendUntil) conn.close();
          else nextTurn();
        }, timerDelay(delayMs));
      }

      function finish(t, stage, code) {
        if (t.done) return;
        t.done = true;
        failed.add(code !== null);
        if (code !== null) errors.add(1, { stage, code });
        if (stage === "timeout" && t.messageId !== null) {
          draining = t.messageId;
          afterTurn(t.n, CANCEL_GRACE_MS);
        } else afterTurn(t.n, THINK_MS);
      }

      function nextTurn() {
        n++;
        const t = { n, sentAt: Date.now(), userMessageId: null, startAt: null, messageId: null, replyToId: null, deltas: 0, lastSeq: 0, gaps: 0, text: "", done: false };
        turn = t;
        sio.emit(
          "message:send",
          { sessionId, clientMessageId: `a${slot}-${n}`, content: PROMPT.split("{n}").join(String(n)), assistant: true },
          (reply, ms) => {
            const code = ackErrorCode(reply);
            if (code === LOCAL_ERRORS.CLOSED) return;
            if (code !== null) {
              finish(t, "send", code);
              return;
            }
            sendAck.add(ms);
            t.userMessageId = reply.data.message.id;
            // A start that beat the ack but answers another message was not this turn's.
            if (t.replyToId !== null && t.replyToId !== t.userMessageId) {
              t.startAt = t.messageId = t.replyToId = null;
              t.deltas = t.lastSeq = t.gaps = 0;
              t.text = "";
            }
          },
        );
        conn.socket.setTimeout(() => {
          if (t.done) return;
          // Left running, the server's LLM call would hold the session's one reply slot into the next turn.
          if (t.messageId !== null) sio.emit("assistant:cancel", { sessionId, messageId: t.messageId }, () => {});
          finish(t, "timeout", "REPLY_TIMEOUT");
        }, timerDelay(REPLY_TIMEOUT_MS));
      }

      // One turn at a time in a session no one else writes to; replies are told apart by the message they answer.
      sio.on("assistant:start", (e) => {
        if (e.sessionId !== sessionId || !turn || turn.done || turn.startAt !== null || e.messageId === draining) return;
        if (turn.userMessageId !== null && e.replyToId !== turn.userMessageId) return;
        turn.startAt = Date.now();
        turn.messageId = e.messageId;
        turn.replyToId = e.replyToId;
        sendToStart.add(turn.startAt - turn.sentAt);
      });
      sio.on("assistant:delta", (e) => {
        if (e.sessionId !== sessionId || !turn || turn.done || e.messageId !== turn.messageId) return;
        const now = Date.now();
        if (turn.deltas === 0) {
          ttft.add(now - turn.startAt);
          firstDelta.add(now - turn.sentAt);
        }
        turn.deltas++;
        if (e.seq !== turn.lastSeq + 1) turn.gaps++;
        turn.lastSeq = e.seq;
        turn.text += e.text;
      });
      // The end of a cancelled reply frees the session for the next turn.
      function drained(messageId) {
        if (draining === null || messageId !== draining) return false;
        draining = null;
        afterTurn(n, THINK_MS);
        return true;
      }
      sio.on("assistant:end", (e) => {
        if (e.sessionId !== sessionId || drained(e.message.id)) return;
        if (!turn || turn.done || e.message.id !== turn.messageId) return;
        const t = turn;
        const m = e.message;
        replyTime.add(Date.now() - t.sentAt);
        deltasPerReply.add(t.deltas);
        replies.add(1);
        if (e.usage && typeof e.usage.completionTokens === "number") completionTokens.add(e.usage.completionTokens);
        if (m.status === "complete") {
          const ok = t.gaps === 0 && t.deltas > 0 && t.text === m.content;
          intact.add(ok);
          if (!ok) console.warn(`turn ${t.n} of ${sessionId}: ${t.deltas} deltas, ${t.gaps} gaps, ${t.text.length} of ${String(m.content).length} chars streamed`);
        }
        finish(t, "stream", m.status === "complete" ? null : `STATUS_${String(m.status).toUpperCase()}`);
      });
      sio.on("assistant:error", (e) => {
        if (e.sessionId !== sessionId || drained(e.messageId)) return;
        if (!turn || turn.done || e.messageId !== turn.messageId) return;
        finish(turn, "stream", String(e.code));
      });

      sio.emit("session:join", { sessionId }, (reply) => {
        const code = ackErrorCode(reply);
        if (!check(reply, { "session:join ok": () => code === null })) {
          errors.add(1, { stage: "join", code });
          conn.close();
          return;
        }
        nextTurn();
      });
    },
    onClose(outcome) {
      // A reply cut off by a lost connection is a failed turn, not a missing sample.
      if (turn && !turn.done && !outcome.closedByScript) {
        turn.done = true;
        failed.add(true);
        errors.add(1, { stage: "stream", code: LOCAL_ERRORS.DISCONNECTED });
      }
    },
  });
  check(out, { "connected to /chat": (o) => o.connected });
}

export function teardown(data) {
  if (KEEP_DATA) return;
  const r = deleteSessions(BASE_URL, data.sessions);
  console.log(`run ${data.runId}: deleted ${r.deleted} sessions, ${r.failed} failed`);
}
