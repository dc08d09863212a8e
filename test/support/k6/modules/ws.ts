/**
 * k6/ws as k6 v0.48 implements it (js/modules/k6/ws/ws.go), the rules a
 * script can trip over:
 * - ws.connect dials, runs the callback, fires "open", then runs the socket's
 *   own event loop and returns only once the socket is closed. Every callback
 *   (handlers and timers) runs on that loop, one at a time, inside the call.
 * - A failed dial returns a response with `error` and status 0; the callback
 *   never runs.
 * - close() writes the close frame, runs the "close" handlers synchronously,
 *   and only then marks the socket done, all inside a sync.Once. Calling
 *   close() again from a handler it runs (a "close" handler, or an "error"
 *   handler fired during the close) re-enters that Once: Go deadlocks, the VU
 *   never leaves ws.connect. The stand-in reports that as a hang.
 * - A close by the server (or a lost connection) runs the same close path, so
 *   the "close" handlers fire there too; an unexpected close code fires
 *   "error" first.
 * - setTimeout/setInterval belong to the socket: they fire on its loop and
 *   never after it closed. A delay that is not > 0 ms throws.
 * - send() or ping() once the close frame went out (in a close handler, or
 *   after ws.connect's socket closed) fires "error" with gorilla's
 *   "websocket: close sent"; nothing is written.
 * - An exception in the callback, a handler or a timer closes the socket
 *   (the "close" handlers run) and is thrown out of ws.connect.
 * - In init code ws.connect throws.
 * Not modelled: Go's random choice between ready events (the stand-in takes
 * them in the order they became ready), binary frames sent by the script,
 * cookies, compression.
 */
import type { ToVu } from "../protocol.js";
import { discard, hang, Interrupted, peek, post, pump, request, sample, take, vu } from "../vu-channel.js";

type Handler = (...args: unknown[]) => unknown;
type SocketEvent = Extract<ToVu, { ev: "ws.message" | "ws.ping" | "ws.pong" | "ws.close" }>;

interface Timer {
  due: number;
  everyMs: number | null;
  fn: Handler;
}

let nextSid = 1;

// gorilla/websocket's ErrCloseSent: every write after the close frame fails with it.
const CLOSE_SENT = "websocket: close sent";

/** What k6 hands an "error" handler: a Go error, whose text is error(). */
function goError(text: string) {
  return { error: () => text, toString: () => text };
}

function delayMs(kind: "setTimeout" | "setInterval", ms: unknown): number {
  const n = Number(ms);
  // time.Duration(ms * float64(time.Millisecond)) <= 0 is refused; NaN converts to a non-positive duration too.
  if (!(n * 1e6 >= 1)) throw new Error(`${kind} requires a >0 timeout parameter, received ${n.toFixed(2)}`);
  return n;
}

function isSocketEvent(sid: number) {
  return (m: ToVu): m is SocketEvent => (m.ev === "ws.message" || m.ev === "ws.ping" || m.ev === "ws.pong" || m.ev === "ws.close") && m.sid === sid;
}

export class Socket {
  readonly #sid: number;
  readonly #tags: Record<string, string>;
  readonly #handlers = new Map<string, Handler[]>();
  #timers: Timer[] = [];
  /** open → closing (inside the close path's sync.Once) → closed. */
  #state: "open" | "closing" | "closed" = "open";

  constructor(sid: number, tags: Record<string, string>) {
    this.#sid = sid;
    this.#tags = tags;
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  on(event: unknown, handler: unknown): void {
    if (typeof handler !== "function") return;
    const name = String(event);
    const list = this.#handlers.get(name) ?? [];
    list.push(handler as Handler);
    this.#handlers.set(name, list);
  }

  /** Runs every handler of an event in order; the first exception propagates, as common.Throw does. */
  fire(event: string, ...args: unknown[]): void {
    const list = this.#handlers.get(event);
    if (!list) return;
    for (const h of list.slice()) h(...args);
  }

  send(data: unknown): void {
    if (this.#state === "open") post({ op: "ws.send", sid: this.#sid, data: String(data) });
    else this.fire("error", goError(CLOSE_SENT));
    sample({ metric: "ws_msgs_sent", value: 1, tags: this.#tags });
  }

  sendBinary(): never {
    throw new Error("sendBinary is not modelled by the stand-in");
  }

  ping(): void {
    if (this.#state === "open") post({ op: "ws.ping", sid: this.#sid });
    else this.fire("error", goError(CLOSE_SENT));
  }

  setTimeout(fn: unknown, ms: unknown): void {
    const d = delayMs("setTimeout", ms);
    if (typeof fn !== "function") throw new TypeError("setTimeout needs a function");
    if (this.#state !== "closed") this.#timers.push({ due: Date.now() + d, everyMs: null, fn: fn as Handler });
  }

  setInterval(fn: unknown, ms: unknown): void {
    const d = delayMs("setInterval", ms);
    // The ticker is built from int(ms) milliseconds: below 1 ms Go panics and takes k6 down with it.
    if (Math.trunc(d) <= 0) throw new Error(`setInterval(${d}): k6 builds its ticker from whole milliseconds and would panic (non-positive interval for NewTicker)`);
    if (typeof fn !== "function") throw new TypeError("setInterval needs a function");
    if (this.#state !== "closed") this.#timers.push({ due: Date.now() + Math.trunc(d), everyMs: Math.trunc(d), fn: fn as Handler });
  }

  close(code?: unknown): void {
    this.closeConnection(code === undefined ? 1001 : Math.trunc(Number(code)));
  }

  closeConnection(code: number): void {
    if (this.#state === "closed") return;
    if (this.#state === "closing") {
      hang(
        "re-entrant close: socket.close() was called while the socket was already closing (from a close or error handler). " +
          "k6 v0.48 closes inside a sync.Once; this call never returns and the VU stays in ws.connect forever",
      );
    }
    this.#state = "closing";
    this.#timers = [];
    post({ op: "ws.close", sid: this.#sid, code });
    try {
      this.fire("close", code);
    } finally {
      this.#state = "closed";
      discard(isSocketEvent(this.#sid));
    }
  }

  /** The socket's event loop: one ready event or due timer at a time, until closed. */
  run(): void {
    const own = isSocketEvent(this.#sid);
    while (this.#state !== "closed") {
      if (vu.interrupted) {
        // k6: ctx.Done() closes the socket; the runtime is interrupted right after.
        this.closeConnection(1001);
        throw new Interrupted();
      }
      // Peek first: a timer that became due before the event arrived goes first, and the event stays queued.
      const ev = peek(own);
      const now = Date.now();
      let timer: Timer | undefined;
      for (const t of this.#timers) if (t.due <= now && (!timer || t.due < timer.due)) timer = t;
      if (ev && (!timer || ev.at <= timer.due)) {
        take((m: ToVu): m is SocketEvent => m === ev);
        this.#dispatch(ev);
        continue;
      }
      if (timer) {
        if (timer.everyMs === null) this.#timers.splice(this.#timers.indexOf(timer), 1);
        else {
          // A Go ticker drops ticks it could not deliver rather than queueing them.
          timer.due += timer.everyMs;
          if (timer.due <= now) timer.due = now + timer.everyMs - ((now - timer.due) % timer.everyMs);
        }
        try {
          timer.fn();
        } catch (e) {
          this.closeConnection(1001);
          throw e;
        }
        continue;
      }
      const next = this.#timers.reduce((min, t) => Math.min(min, t.due), Infinity);
      pump(next - Date.now());
    }
  }

  #dispatch(ev: SocketEvent): void {
    switch (ev.ev) {
      case "ws.message":
        sample({ metric: "ws_msgs_received", value: 1, tags: this.#tags });
        if (ev.binary) this.fire("binaryMessage", new TextEncoder().encode(ev.data).buffer);
        else this.fire("message", ev.data);
        break;
      case "ws.ping":
        this.fire("ping");
        break;
      case "ws.pong":
        this.fire("pong");
        break;
      case "ws.close":
        // gorilla reports a close frame with a code other than 1000/1001 as an error first.
        if (ev.frame && ev.code !== 1000 && ev.code !== 1001) {
          this.fire("error", goError(`websocket: close ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}`));
        }
        // Without a close frame (a dropped connection) k6 closes with 1001.
        this.closeConnection(ev.frame ? ev.code : 1001);
        break;
    }
  }
}

export interface WsResponse {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  error: string;
}

export function connect(url: unknown, ...args: unknown[]): WsResponse {
  if (vu.phase === "init") throw new Error("using websockets in the init context is not supported");
  let params: unknown;
  let callback: unknown;
  if (args.length === 2) [params, callback] = args;
  else if (args.length === 1) [callback] = args;
  else throw new Error("invalid number of arguments to ws.connect");
  if (typeof callback !== "function") throw new Error("last argument to ws.connect must be a function");
  const p = (params ?? {}) as { headers?: Record<string, unknown>; tags?: Record<string, unknown> };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.headers ?? {})) headers[k] = String(v);
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.tags ?? {})) tags[k] = String(v);

  const sid = nextSid++;
  const started = Date.now();
  const opened = request({ op: "ws.open", sid, url: String(url), headers }, (m: ToVu): m is Extract<ToVu, { ev: "ws.open" }> => m.ev === "ws.open" && m.sid === sid);
  sample({ metric: "ws_sessions", value: 1, tags });
  sample({ metric: "ws_connecting", value: Date.now() - started, tags });
  if (opened.error) {
    // The callback never ran, so no handler sees the error; without the throw option k6 warns and returns.
    post({ op: "log", level: "warn", text: `Attempt to establish a WebSocket connection failed: ${opened.error}` });
    post({ op: "ws.returned", sid });
    return { url: "", status: 0, headers: {}, body: "", error: opened.error };
  }

  const socket = new Socket(sid, tags);
  try {
    try {
      callback(socket);
    } catch (e) {
      socket.closeConnection(1001);
      throw e;
    }
    socket.fire("open");
    socket.run();
    return { url: String(url), status: opened.status, headers: opened.headers, body: "", error: "" };
  } finally {
    // k6's deferred socket.Close(): a no-op unless a handler threw.
    socket.closeConnection(1001);
    sample({ metric: "ws_session_duration", value: Date.now() - started, tags });
    post({ op: "ws.returned", sid });
  }
}

export default { connect };
