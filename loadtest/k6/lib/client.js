/**
 * socketio.js on top of k6/ws. ws.connect blocks the VU until the socket
 * closes, so a connection's whole life is written as callbacks inside
 * onConnect, and timers are socket.setTimeout/setInterval (they stop with it).
 */
import ws from "k6/ws";
import { Counter, Rate, Trend } from "k6/metrics";
import { ProtocolError, SioClient, socketUrl } from "./socketio.js";

// From just before the WebSocket dial to the namespace's connect packet: what a user waits before the app works.
export const connectTime = new Trend("sio_connect_time", true);
export const connectFailed = new Rate("sio_connect_failed");
// Tagged with reason: ws (dial/upgrade failed), refused:<code>, timeout, closed, protocol.
export const connectFailures = new Counter("sio_connect_failures");
export const protocolErrors = new Counter("sio_protocol_errors");
// Connections that ended without the script closing them (server, load balancer or network).
export const droppedConnections = new Counter("sio_dropped_connections");

/**
 * A delay for socket.setTimeout: k6 throws on one that is not > 0 ms, which a
 * deadline computed as `at - Date.now()` becomes once it has passed.
 */
export function timerDelay(ms) {
  return ms >= 1 ? ms : 1;
}

function refusalCode(data) {
  if (data && typeof data === "object") {
    if (data.data && typeof data.data.code === "string") return data.data.code;
    if (typeof data.message === "string") return data.message;
  }
  return typeof data === "string" ? data : "unknown";
}

/**
 * Runs one connection to the namespace until it closes.
 *
 * opts: baseUrl, token, nsp ("/chat"), tags (added to every metric sample),
 *   connectTimeoutMs (10000), ackTimeoutMs (10000),
 *   onConnect(sio, conn): set up the connection's work; conn.socket is the
 *     k6 socket (for setTimeout/setInterval), conn.close() ends it on purpose,
 *   onClose(outcome) (optional).
 * Returns the outcome: {connected, connectMs, failure, closedByScript, error}.
 */
export function runSocket(opts) {
  const tags = opts.tags || {};
  const connectTimeoutMs = opts.connectTimeoutMs || 10000;
  const ackTimeoutMs = opts.ackTimeoutMs || 10000;
  const outcome = { connected: false, connectMs: null, failure: null, closedByScript: false, error: null };
  const started = Date.now();

  function fail(reason) {
    if (outcome.failure !== null || outcome.connected) return;
    outcome.failure = reason;
    connectFailed.add(true, tags);
    connectFailures.add(1, Object.assign({ reason }, tags));
  }

  let res;
  let dialed = false;
  try {
    res = ws.connect(socketUrl(opts.baseUrl), { tags }, function (socket) {
      dialed = true;
      // k6 runs the close handlers inside socket.close(), under a sync.Once: a
      // second close() from there never returns and the VU hangs in ws.connect.
      let closing = false;
      function closeSocket() {
        if (closing) return;
        closing = true;
        socket.close();
      }
      const sio = new SioClient({ nsp: opts.nsp || "/chat", auth: { token: opts.token }, send: (frame) => socket.send(frame) });
      const conn = {
        socket,
        sio,
        close() {
          if (closing) return;
          outcome.closedByScript = true;
          closeSocket();
        },
      };

      sio.on("connect", () => {
        outcome.connected = true;
        outcome.connectMs = Date.now() - started;
        connectTime.add(outcome.connectMs, tags);
        connectFailed.add(false, tags);
        opts.onConnect(sio, conn);
      });
      sio.on("connect_error", (data) => {
        fail(`refused:${refusalCode(data)}`);
        conn.close();
      });
      // The namespace can end while the WebSocket stays up; nothing more would arrive on it.
      sio.on("disconnect", closeSocket);

      socket.on("message", (frame) => {
        try {
          sio.handleFrame(frame);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
          protocolErrors.add(1, tags);
          outcome.error = `${e.message}: ${e.frame}`;
          fail("protocol");
          closeSocket();
        }
      });
      socket.on("error", (e) => {
        outcome.error = e && typeof e.error === "function" ? e.error() : String(e);
      });
      socket.on("close", () => {
        // Closed by the server or the network, this is the first we hear of it.
        closing = true;
        const byScript = outcome.closedByScript;
        sio.closed(byScript ? "closed by the script" : "connection lost", byScript);
        if (!outcome.connected) fail("closed");
        else if (!byScript) droppedConnections.add(1, tags);
        if (opts.onClose) opts.onClose(outcome);
      });

      socket.setTimeout(() => {
        if (!outcome.connected && outcome.failure === null) {
          fail("timeout");
          conn.close();
        }
      }, connectTimeoutMs);
      // k6/ws has no per-ack timers: sweep often enough that a timeout is reported near its deadline.
      socket.setInterval(() => sio.expireAcks(ackTimeoutMs), Math.max(50, Math.min(1000, Math.floor(ackTimeoutMs / 4))));
    });
  } catch (e) {
    // A script error from inside the connection is the script's bug, not a failed dial: let it end the iteration.
    if (dialed) throw e;
    // The `throw` option makes a failed dial throw instead of returning a response.
    outcome.error = String(e);
  }
  // A failed dial or upgrade never ran the callback above.
  if (res && res.error && !outcome.error) outcome.error = res.error;
  if (!outcome.connected && outcome.failure === null) fail(res && res.status && res.status !== 101 ? `ws:${res.status}` : "ws");
  return outcome;
}

/**
 * Creates sessions owned by `token` over one connection (session:create is
 * socket-only) and returns their ids in order; throws on any failure, since
 * setup must not hand the VUs half a plan.
 */
export function createSessions(baseUrl, token, titles) {
  if (titles.length === 0) return [];
  const ids = [];
  let failure = null;
  const out = runSocket({
    baseUrl,
    token,
    tags: { phase: "setup" },
    ackTimeoutMs: 30000,
    onConnect(sio, conn) {
      let left = titles.length;
      titles.forEach((title, i) =>
        sio.emit("session:create", { title }, (r) => {
          if (r && r.ok) ids[i] = r.data.session.id;
          else failure = failure || `session:create failed: ${JSON.stringify(r && r.error)}`;
          if (--left === 0) conn.close();
        }),
      );
    },
  });
  if (!out.connected) throw new Error(`setup could not connect to ${baseUrl}: ${out.failure} ${out.error || ""}`);
  if (failure) throw new Error(failure);
  return ids;
}
