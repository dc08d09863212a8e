/**
 * The wire half of the streaming chat call: one POST through node:http(s)
 * and a small server-sent-events line parser over the response body.
 *
 * Why not the `openai` SDK's stream: it goes through fetch's web streams, a
 * generic SSE decoder and a promise per chunk at every layer, which cost
 * about 6% of the server's CPU per assistant turn (README, "Assistant
 * latency"). The protocol we read is small: `data:` lines holding JSON
 * chunks, `[DONE]`, and an `error` object in place of a chunk.
 */
import http from "node:http";
import https from "node:https";
import type { IncomingMessage } from "node:http";

/** A non-2xx answer; `message` is built as the SDK built it ("429 slow down"), so logs read the same. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly headers: { get(name: string): string | null },
    message: string,
  ) {
    super(message);
  }
}

/** The request never got an answer (refused, reset, DNS ...), as opposed to an answer that broke off. */
export class ConnectError extends Error {
  constructor(cause: Error) {
    super("Connection error.", { cause });
  }
}

/** One SSE event's fields; `event` is null for the default ("message") type. */
export interface SseEvent {
  event: string | null;
  data: string;
}

/**
 * Incremental SSE parsing (the subset the chat endpoints use: `data:`,
 * `event:`, comments, LF or CRLF line ends). `push` returns the events that
 * a piece of the body completed; a line split across pieces waits in `rest`.
 */
export class SseParser {
  private rest = "";
  private data: string[] = [];
  private event: string | null = null;

  push(piece: string): SseEvent[] {
    const text = this.rest === "" ? piece : this.rest + piece;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.line(text, start, end, out);
      start = nl + 1;
    }
    this.rest = start === text.length ? "" : text.slice(start);
    return out;
  }

  private line(text: string, start: number, end: number, out: SseEvent[]): void {
    if (start === end) {
      if (this.data.length > 0) out.push({ event: this.event, data: this.data.length === 1 ? this.data[0]! : this.data.join("\n") });
      this.data = [];
      this.event = null;
      return;
    }
    if (text.charCodeAt(start) === 58 /* ":" comment */) return;
    const colon = text.indexOf(":", start);
    const fieldEnd = colon < 0 || colon > end ? end : colon;
    let valueStart = fieldEnd === end ? end : fieldEnd + 1;
    if (valueStart < end && text.charCodeAt(valueStart) === 32) valueStart++;
    const field = text.slice(start, fieldEnd);
    if (field === "data") this.data.push(text.slice(valueStart, end));
    else if (field === "event") this.event = text.slice(valueStart, end);
  }
}

/**
 * POSTs `body` and resolves with the response once its status is 2xx;
 * rejects with HttpStatusError otherwise (after reading the error body),
 * ConnectError when no response came, or the signal's abort.
 */
export function postForStream(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, agent: http.Agent): Promise<http.IncomingMessage> {
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, {
      method: "POST",
      agent,
      signal,
      headers: { ...headers, "content-type": "application/json", accept: "text/event-stream", "content-length": Buffer.byteLength(body) },
    });
    req.on("error", (err) => reject(signal.aborted ? signal.reason : new ConnectError(err)));
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      res.setEncoding("utf8");
      if (status >= 200 && status < 300) {
        resolve(res);
        return;
      }
      let text = "";
      res.on("data", (piece: string) => {
        if (text.length < 65_536) text += piece;
      });
      res.on("error", (err) => reject(signal.aborted ? signal.reason : err));
      res.on("end", () => reject(new HttpStatusError(status, headerGetter(res.headers), statusMessage(status, text))));
    });
    req.end(body);
  });
}

function headerGetter(h: http.IncomingHttpHeaders): { get(name: string): string | null } {
  return {
    get(name: string) {
      const v = h[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
    },
  };
}

/** "<status> <error.message>", falling back as the SDK's APIError did. */
function statusMessage(status: number, body: string): string {
  let error: unknown;
  try {
    const json = JSON.parse(body) as { error?: unknown } | null;
    error = json && typeof json === "object" && "error" in json ? json.error : json;
  } catch {
    error = body.trim() === "" ? undefined : body;
  }
  const msg = errorText(error);
  return msg ? `${status} ${msg}` : `${status} status code (no body)`;
}

/** The text of an endpoint's `error` value: its message, else the value itself. */
export function errorText(error: unknown): string {
  if (error === undefined || error === null) return "";
  if (typeof error === "string") return error;
  const m = (error as { message?: unknown }).message;
  if (m !== undefined && m !== null) return typeof m === "string" ? m : JSON.stringify(m);
  return JSON.stringify(error);
}

/** Pieces read ahead of the consumer before the response is paused (what an async iterator's buffer held). */
const READ_AHEAD = 16;

/**
 * A response body as pieces of text, read from its `data` events: the
 * consumer takes what has arrived without a promise, and waits (one promise)
 * only when it has caught up. Node's async iterator over a stream makes
 * several promises and event hops per piece, per streamed token here.
 */
export class BodyPieces {
  private readonly queue: string[] = [];
  private head = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;

  constructor(
    private readonly res: IncomingMessage,
    private readonly signal: AbortSignal,
  ) {
    res.on("data", (piece: string) => {
      this.queue.push(piece);
      if (this.queue.length - this.head >= READ_AHEAD) res.pause();
      this.notify();
    });
    res.on("end", () => {
      this.ended = true;
      this.notify();
    });
    res.on("error", (err) => this.fail(err));
    // A connection closed before the end of the body (no 'error' on every Node version).
    res.on("close", () => {
      if (!this.ended && !res.complete) this.fail(new Error("terminated"));
    });
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = () => this.fail(this.signal.reason);

  private fail(err: unknown): void {
    if (this.failure === undefined && !this.ended) this.failure = err ?? new Error("terminated");
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next piece that has arrived; undefined when none has (see `wait`) or the body is over (see `done`). Throws once the body failed or the signal aborted. */
  take(): string | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (this.head === this.queue.length) return undefined;
    const piece = this.queue[this.head++]!;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      if (this.res.isPaused()) this.res.resume();
    }
    return piece;
  }

  /** Whole body taken. */
  get done(): boolean {
    return this.ended && this.head === this.queue.length;
  }

  /** Resolves when a piece, the end, a failure or the abort arrives. */
  wait(): Promise<void> {
    if (this.head < this.queue.length || this.ended || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** Stops listening to the signal (the body's listeners go with the response). */
  close(): void {
    this.signal.removeEventListener("abort", this.onAbort);
  }
}
