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
import { createSessions, runSocket } from "./lib/client.js";
import { baseUrl, bool, durationMs, int, k6Duration, runId, str, thresholds } from "./lib/env.js";
import { deleteSessions, registerUsers } from "./lib/rest.js";
import { ackErrorCode, LOCAL_ERRORS } from "./lib/socketio.js";

const BASE_URL = baseUrl();
const VUS = int("VUS", 5, 1);
const DURATION_MS = durationMs("DURATION", "1m");
const THINK_MS = durationMs("THINK", "1s");
// A real LLM can take long; past this the turn counts as failed and is cancelled.
const REPLY_TIMEOUT_MS = durationMs("REPLY_TIMEOUT", "2m");
const ACK_TIMEOUT_MS = durationMs("ACK_TIMEOUT", "10s");
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
      maxDuration: k6Duration(DURATION_MS + REPLY_TIMEOUT_MS + 60000),
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

      function finish(t, stage, code) {
        if (t.done) return;
        t.done = true;
        failed.add(code !== null);
        if (code !== null) errors.add(1, { stage, code });
        if (Date.now() >= sendUntil) conn.close();
        else conn.socket.setTimeout(nextTurn, THINK_MS);
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
          },
        );
        conn.socket.setTimeout(() => {
          if (t.done) return;
          // Leaving it streaming would keep the server's LLM call running into the next turn.
          if (t.messageId !== null) sio.emit("assistant:cancel", { sessionId, messageId: t.messageId }, () => {});
          finish(t, "timeout", "REPLY_TIMEOUT");
        }, REPLY_TIMEOUT_MS);
      }

      // One turn at a time in a session no one else uses: every assistant event here belongs to `turn`.
      sio.on("assistant:start", (e) => {
        if (e.sessionId !== sessionId || !turn || turn.done || turn.startAt !== null) return;
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
      sio.on("assistant:end", (e) => {
        if (e.sessionId !== sessionId || !turn || turn.done) return;
        const t = turn;
        const m = e.message;
        replyTime.add(Date.now() - t.sentAt);
        deltasPerReply.add(t.deltas);
        replies.add(1);
        if (e.usage && typeof e.usage.completionTokens === "number") completionTokens.add(e.usage.completionTokens);
        check(e, {
          "assistant:start came before assistant:end": () => t.startAt !== null && t.messageId === m.id,
          "reply answers the message sent": () => t.userMessageId === null || t.replyToId === t.userMessageId,
        });
        if (m.status === "complete") intact.add(t.gaps === 0 && t.deltas > 0 && t.text === m.content);
        finish(t, "stream", m.status === "complete" ? null : `STATUS_${String(m.status).toUpperCase()}`);
      });
      sio.on("assistant:error", (e) => {
        if (e.sessionId !== sessionId || !turn || turn.done) return;
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
