/**
 * Streaming chat completions from any OpenAI-compatible endpoint: one POST
 * through node:http(s) and a small SSE parser (sse-http.ts), not the `openai`
 * SDK's stream, which cost several times more CPU per chunk.
 *
 * Timeouts, the retry and the abort are ours, not the SDK's: the SDK retries
 * whole requests (which after the first token would duplicate text) and only
 * times out the wait for response headers, while a model that stalls
 * mid-reply is the failure a chat user actually sees.
 */
import http from "node:http";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import { BodyPieces, ConnectError, errorText, HttpStatusError, postForStream, SseParser, type SseEvent } from "./sse-http.js";
import { countMessageTokens, countTokens } from "./tokens.js";
import { LlmError, type LlmChunk, type LlmProvider, type LlmRequest } from "./types.js";

export interface OpenAiProviderOptions {
  /** Endpoint base including the version path, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  baseURL: string;
  /**
   * Sent as `Authorization: Bearer <apiKey>`. Local servers (Ollama, vLLM,
   * llama.cpp) usually need none; then no Authorization header is sent.
   */
  apiKey?: string;
  /** Model used when a request names none. */
  model: string;
  /** Longest wait for the response status and headers. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Longest silence between two streamed chunks, and between sending the
   * request and the first chunk. Default 30 000 ms.
   */
  idleTimeoutMs?: number;
  /**
   * Retries on a connection error, a 5xx, or a stream that breaks, only while
   * no text has been yielded. Default 1; 0 disables.
   */
  maxRetries?: number;
  /** Pause before the retry. Default 250 ms. */
  retryDelayMs?: number;
  /** Provider name in logs and metrics. Default "openai". */
  name?: string;
}

/** Marks an attempt's failure as safe to repeat, provided nothing was yielded yet. */
class AttemptFailure extends Error {
  constructor(
    readonly error: LlmError,
    readonly retryable: boolean,
  ) {
    super(error.message);
  }
}

export class OpenAiProvider implements LlmProvider {
  readonly name: string;
  private readonly url: URL;
  private readonly headers: Record<string, string>;
  private readonly agent: http.Agent;
  private readonly model: string;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;

  constructor(options: OpenAiProviderOptions) {
    this.name = options.name ?? "openai";
    this.model = options.model;
    this.connectTimeoutMs = positive(options.connectTimeoutMs ?? 10_000, "connectTimeoutMs");
    this.idleTimeoutMs = positive(options.idleTimeoutMs ?? 30_000, "idleTimeoutMs");
    this.maxRetries = Math.max(0, Math.floor(options.maxRetries ?? 1));
    this.retryDelayMs = Math.max(0, options.retryDelayMs ?? 250);
    this.url = new URL(`${options.baseURL.replace(/\/+$/, "")}/chat/completions`);
    this.headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
    // Connections are kept for the next turn: a new TCP (or TLS) handshake per turn costs more than the turn's parsing.
    this.agent = this.url.protocol === "https:" ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  async *stream(request: LlmRequest): AsyncGenerator<LlmChunk> {
    if (request.signal.aborted) throw abortedError();
    let yieldedText = false;
    for (let attempt = 0; ; attempt++) {
      try {
        for await (const chunk of this.attempt(request)) {
          if (chunk.type === "delta") yieldedText = true;
          yield chunk;
        }
        return;
      } catch (err) {
        if (!(err instanceof AttemptFailure)) throw err;
        if (!err.retryable || yieldedText || attempt >= this.maxRetries) throw err.error;
      }
      await abortableDelay(this.retryDelayMs, request.signal);
    }
  }

  private async *attempt(request: LlmRequest): AsyncGenerator<LlmChunk> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(abortedError());
    request.signal.addEventListener("abort", onAbort, { once: true });
    // Abort reasons are LlmErrors so that whichever limit fires first names the failure.
    const connectTimer = setTimeout(
      () => ac.abort(new LlmError("LLM_TIMEOUT", `no response from the LLM endpoint within ${this.connectTimeoutMs} ms`)),
      this.connectTimeoutMs,
    ).unref();
    let text = "";
    // One idle timer for the whole attempt: each piece moves `lastHeard` (a
    // clock read, not a timer re-armed per token); when the timer fires early
    // it sleeps for what is left of the limit. While the caller holds a chunk
    // the clock does not run (`holding`): a slow consumer is not a silent endpoint.
    let lastHeard = performance.now();
    let holding = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const onIdle = () => {
      const quiet = performance.now() - lastHeard;
      if (holding || quiet < this.idleTimeoutMs) {
        idleTimer = setTimeout(onIdle, holding ? this.idleTimeoutMs : this.idleTimeoutMs - quiet).unref();
        return;
      }
      const when = text === "" ? "before the first token" : "between tokens";
      ac.abort(new LlmError("LLM_TIMEOUT", `the LLM sent nothing for ${this.idleTimeoutMs} ms ${when}`));
    };
    const armIdle = () => {
      lastHeard = performance.now();
      idleTimer ??= setTimeout(onIdle, this.idleTimeoutMs).unref();
    };
    const aborted = new Promise<never>((_, reject) => {
      ac.signal.addEventListener("abort", () => reject(ac.signal.reason), { once: true });
    });
    aborted.catch(() => {});

    let finished = false;
    let res: IncomingMessage | undefined;
    let pieces: BodyPieces | undefined;
    try {
      armIdle();
      const body = JSON.stringify({
        model: request.model ?? this.model,
        messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
        stream: true,
        stream_options: { include_usage: true },
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      });
      try {
        res = await Promise.race([postForStream(this.url, this.headers, body, ac.signal, this.agent), aborted]);
      } catch (err) {
        throw classify(err, ac.signal);
      }
      clearTimeout(connectTimer);
      pieces = new BodyPieces(res, ac.signal);
      const parser = new SseParser();

      let sawFinish = false;
      let done = false;
      let usage: { promptTokens: number; completionTokens: number } | undefined;
      for (;;) {
        let piece: string | undefined;
        try {
          piece = pieces.take();
          if (piece === undefined) {
            if (pieces.done) break;
            await pieces.wait();
            continue;
          }
        } catch (err) {
          throw classify(err, ac.signal);
        }
        armIdle();
        // A body piece may hold several events: their text goes out as one delta.
        let pieceText = "";
        for (const event of parser.push(piece)) {
          if (done) continue; // whatever follows [DONE] is read (the connection stays reusable) but ignored
          if (event.data.startsWith("[DONE]")) {
            done = true;
            continue;
          }
          const parsed = readChunk(decode(event));
          if (parsed.usage) usage = parsed.usage;
          if (parsed.finished) sawFinish = true;
          pieceText += parsed.text;
        }
        if (pieceText) {
          text += pieceText;
          holding = true;
          yield { type: "delta", text: pieceText };
          holding = false;
          armIdle();
        }
      }
      if (ac.signal.aborted) throw classify(ac.signal.reason, ac.signal);
      if (!sawFinish) {
        throw new AttemptFailure(new LlmError("LLM_UNAVAILABLE", "the LLM stream ended before the reply was complete"), true);
      }
      finished = true;
      yield {
        type: "usage",
        promptTokens: usage?.promptTokens ?? countMessageTokens(request.messages),
        completionTokens: usage?.completionTokens ?? countTokens(text),
      };
    } finally {
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      pieces?.close();
      request.signal.removeEventListener("abort", onAbort);
      // Covers failures and a consumer that stops early: aborting the fetch is
      // what closes the HTTP connection, so the endpoint stops generating.
      if (!finished && !ac.signal.aborted) ac.abort(abortedError());
      if (!finished) res?.destroy();
    }
  }
}

interface ParsedChunk {
  text: string;
  finished: boolean;
  usage?: { promptTokens: number; completionTokens: number };
}

function readChunk(chunk: unknown): ParsedChunk {
  const bad = (why: string) => new AttemptFailure(new LlmError("LLM_BAD_RESPONSE", `malformed chunk from the LLM: ${why}`), false);
  if (typeof chunk !== "object" || chunk === null) throw bad("not an object");
  const c = chunk as { choices?: unknown; usage?: unknown };
  if (!Array.isArray(c.choices)) throw bad("no choices array");
  let text = "";
  let finished = false;
  for (const choice of c.choices as unknown[]) {
    if (typeof choice !== "object" || choice === null) throw bad("choice is not an object");
    const ch = choice as { index?: unknown; delta?: unknown; finish_reason?: unknown };
    // Only the first choice is ours; n > 1 is never requested.
    if (ch.index !== undefined && ch.index !== 0) continue;
    if (ch.delta !== undefined && ch.delta !== null) {
      if (typeof ch.delta !== "object") throw bad("delta is not an object");
      const content = (ch.delta as { content?: unknown }).content;
      if (content !== undefined && content !== null) {
        if (typeof content !== "string") throw bad("delta content is not a string");
        text += content;
      }
    }
    if (ch.finish_reason !== undefined && ch.finish_reason !== null) {
      if (typeof ch.finish_reason !== "string") throw bad("finish_reason is not a string");
      finished = true;
    }
  }
  const parsed: ParsedChunk = { text, finished };
  if (c.usage !== undefined && c.usage !== null) {
    const u = c.usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
    if (!isCount(u.prompt_tokens) || !isCount(u.completion_tokens)) throw bad("usage without token counts");
    parsed.usage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
  }
  return parsed;
}

/** An event's JSON; an `error` object in place of a chunk (or an `error` event) is the endpoint failing mid-stream. */
function decode(event: SseEvent): unknown {
  let data: unknown;
  try {
    data = JSON.parse(event.data);
  } catch (err) {
    throw new AttemptFailure(new LlmError("LLM_BAD_RESPONSE", `the LLM sent data that is not JSON: ${(err as Error).message}`), false);
  }
  const error = data !== null && typeof data === "object" ? (data as { error?: unknown }).error : undefined;
  if (event.event === "error" || (error !== undefined && error !== null && error !== false)) {
    const why = errorText(error ?? data) || "(no status code or body)";
    throw new AttemptFailure(new LlmError("LLM_UNAVAILABLE", `the LLM reported an error mid-stream: ${why}`), false);
  }
  return data;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

/** Turns whatever an attempt threw into an AttemptFailure. */
function classify(err: unknown, signal: AbortSignal): AttemptFailure {
  if (err instanceof AttemptFailure) return err;
  // Our own abort (caller, or one of our timers) explains any error that follows it.
  if (signal.aborted && signal.reason instanceof LlmError) return new AttemptFailure(signal.reason, false);
  if (err instanceof LlmError) return new AttemptFailure(err, false);
  if (err instanceof ConnectError) {
    return new AttemptFailure(new LlmError("LLM_UNAVAILABLE", `cannot reach the LLM endpoint: ${causeText(err)}`), true);
  }
  if (err instanceof HttpStatusError) {
    if (err.status === 429) {
      return new AttemptFailure(
        new LlmError("LLM_RATE_LIMITED", `the LLM endpoint is rate limiting: ${err.message}`, retryAfterMs(err.headers)),
        false,
      );
    }
    return new AttemptFailure(new LlmError("LLM_UNAVAILABLE", `the LLM endpoint failed: ${err.message}`), err.status >= 500);
  }
  if (err instanceof SyntaxError) {
    return new AttemptFailure(new LlmError("LLM_BAD_RESPONSE", `the LLM sent data that is not JSON: ${err.message}`), false);
  }
  // What is left is the body stream failing under us (undici's "terminated"):
  // the connection broke mid-reply.
  return new AttemptFailure(new LlmError("LLM_UNAVAILABLE", `the LLM stream broke: ${causeText(err)}`), true);
}

function causeText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

/** From `retry-after-ms` (OpenAI's), else `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: { get(name: string): string | null } | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return undefined;
  const seconds = Number(ra);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
  const at = Date.parse(ra);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function abortedError(): LlmError {
  return new LlmError("LLM_ABORTED", "the request was aborted");
}

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${what} must be a positive number of milliseconds`);
  return n;
}

// Not unref()'d, unlike the watchdog timers: the pause is part of the request,
// and the process must not exit between the two attempts.
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
