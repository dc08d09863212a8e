/**
 * Stands in for an OpenAI-compatible LLM endpoint (DESIGN.md section 8): a real
 * HTTP server on loopback that answers `POST /v1/chat/completions` the way the
 * API does, streaming `chat.completion.chunk` server-sent events, so the
 * production client (the `openai` package) runs unmodified against it.
 *
 *   const llm = new OpenAiLlmDouble();
 *   const { url, close } = await llm.start();      // url ends in /v1: pass it as baseURL
 *   llm.enqueue({ tokens: ["Hi", " there"] }, { failure: { type: "http-error", status: 500 } });
 *   ...
 *   llm.requests[0].body.messages                   // the prompt that was sent
 *   await close();
 *
 * Replies come from the queue first, then from the default script (a script or
 * a function of the request).
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { countTokens } from "gpt-tokenizer/model/gpt-4o";

export type LlmDoubleFailure =
  /** Answers with this status and an OpenAI-style error body; `retryAfter` becomes the retry-after header. */
  | { type: "http-error"; status: number; retryAfter?: string; message?: string }
  /**
   * Goes silent without closing. `after-headers` (default) sends 200, the
   * event-stream headers and `afterTokens` content tokens (default 0) first, as
   * a model stuck in a queue or stalled mid-reply does; `before-headers` sends nothing.
   */
  | { type: "hang"; when?: "before-headers" | "after-headers"; afterTokens?: number }
  /** Streams this many content tokens, then destroys the socket without finishing the response. */
  | { type: "drop"; afterTokens: number }
  /** Streams this many content tokens, then an event whose data is not JSON, then ends normally. */
  | { type: "malformed"; afterTokens: number };

export interface LlmDoubleScript {
  /** Content pieces; each is sent as one chunk. */
  tokens?: readonly string[];
  /** Wait before each content token, the first included. */
  tokenDelayMs?: number;
  failure?: LlmDoubleFailure;
  /**
   * `auto` (default): computed, sent when the request asks for it
   * (stream_options.include_usage, always for non-streaming); `omit`: never
   * sent; an object: sent verbatim when asked for.
   */
  usage?: "auto" | "omit" | { promptTokens: number; completionTokens: number };
  /** Pauses the stream before content token `afterTokens` (from 0) until `until` settles: a test decides when the reply goes on. */
  holds?: readonly { afterTokens: number; until: Promise<unknown> }[];
}

export type LlmDoubleScriptSource = LlmDoubleScript | ((request: RecordedLlmRequest) => LlmDoubleScript);

export interface RecordedChatMessage {
  role: string;
  content: string;
}

/** The parts of a chat completion request body the double reads; everything else is kept in `raw`. */
export interface RecordedChatBody {
  model: string;
  messages: RecordedChatMessage[];
  stream: boolean;
  stream_options?: { include_usage?: boolean };
  temperature?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  raw: Record<string, unknown>;
}

export type RecordedOutcome =
  | "pending"
  /** The response was written to its end. */
  | "completed"
  /** The client closed the connection before the response ended (an abort). */
  | "client-closed"
  /** The double destroyed the socket on purpose (`drop`), or was closed itself. */
  | "server-dropped";

export interface RecordedLlmRequest {
  /** Position among all requests this double received, from 0. */
  index: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Undefined when the body was not a JSON object (the double answered 400). */
  body: RecordedChatBody | undefined;
  receivedAt: number;
  outcome: RecordedOutcome;
  /** Settles when the response is over, whatever the outcome. */
  finished: Promise<RecordedOutcome>;
}

export interface OpenAiLlmDoubleOptions {
  /** Used once the queue is empty. */
  defaultScript?: LlmDoubleScriptSource;
  /** When set, requests without `Authorization: Bearer <apiKey>` get 401. */
  apiKey?: string;
}

export interface StartedLlmDouble {
  /** Base URL including `/v1`, ready for the `baseURL` of an OpenAI client. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_DOUBLE_TOKENS: readonly string[] = ["Hello", " from", " the", " LLM", " double", "."];

interface Pending {
  timers: Set<NodeJS.Timeout>;
}

export class OpenAiLlmDouble {
  readonly requests: RecordedLlmRequest[] = [];
  private readonly queue: LlmDoubleScript[] = [];
  private defaultScript: LlmDoubleScriptSource;
  private readonly apiKey: string | undefined;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<Pending>();
  private connections = 0;
  private closing: Promise<void> | undefined;
  private stopped = false;

  constructor(options: OpenAiLlmDoubleOptions = {}) {
    this.defaultScript = options.defaultScript ?? {};
    this.apiKey = options.apiKey;
  }

  /** TCP connections accepted so far (a client reusing a keep-alive socket adds none). */
  get connectionCount(): number {
    return this.connections;
  }

  /** HTTP requests received so far, whatever their path. */
  get requestCount(): number {
    return this.requests.length;
  }

  /** Sockets currently open. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Scripts for the next requests, in order. */
  enqueue(...scripts: LlmDoubleScript[]): void {
    this.queue.push(...scripts);
  }

  setDefaultScript(source: LlmDoubleScriptSource): void {
    this.defaultScript = source;
  }

  /** Forgets recorded requests and queued scripts, keeping the server up. */
  reset(): void {
    this.requests.length = 0;
    this.queue.length = 0;
  }

  async start(): Promise<StartedLlmDouble> {
    if (this.server) throw new Error("the LLM double is already started");
    this.stopped = false;
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on("connection", (socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/v1`, port, close: () => this.close() };
  }

  /** Stops listening and destroys every open socket. Idempotent. */
  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.closing ??= (async () => {
      // Responses cut off from here on were cut by us, not by the client.
      this.stopped = true;
      for (const p of this.pending) for (const t of p.timers) clearTimeout(t);
      this.pending.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hanging and keep-alive sockets would keep server.close() waiting forever.
      for (const socket of this.sockets) socket.destroy();
      server.closeAllConnections();
      await closed;
      this.server = undefined;
      this.closing = undefined;
    })();
    return this.closing;
  }

  private nextScript(request: RecordedLlmRequest): LlmDoubleScript {
    const queued = this.queue.shift();
    if (queued) return queued;
    const source = this.defaultScript;
    return typeof source === "function" ? source(request) : source;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let settle!: (o: RecordedOutcome) => void;
    const record: RecordedLlmRequest = {
      index: this.requests.length,
      method: req.method ?? "",
      path: (req.url ?? "").split("?")[0] ?? "",
      headers: req.headers,
      body: undefined,
      receivedAt: Date.now(),
      outcome: "pending",
      finished: new Promise<RecordedOutcome>((resolve) => (settle = resolve)),
    };
    this.requests.push(record);
    const pending: Pending = { timers: new Set() };
    this.pending.add(pending);
    let droppedByUs = false;
    res.on("close", () => {
      for (const t of pending.timers) clearTimeout(t);
      this.pending.delete(pending);
      record.outcome = res.writableFinished ? "completed" : droppedByUs || this.stopped ? "server-dropped" : "client-closed";
      settle(record.outcome);
    });
    const drop = () => {
      droppedByUs = true;
      req.socket.destroy();
    };

    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (record.method !== "POST" || !/^\/(v1\/)?chat\/completions$/.test(record.path)) {
        sendError(res, 404, `no route for ${record.method} ${record.path}`, "invalid_request_error");
        return;
      }
      if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
        sendError(res, 401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
        return;
      }
      const body = parseBody(Buffer.concat(chunks).toString("utf8"));
      if (typeof body === "string") {
        sendError(res, 400, body, "invalid_request_error");
        return;
      }
      record.body = body;
      const script = this.nextScript(record);
      const sleep = (ms: number, then: () => void) => {
        const t = setTimeout(() => {
          pending.timers.delete(t);
          then();
        }, ms);
        pending.timers.add(t);
      };
      respond(body, script, res, { sleep, drop });
    });
  }
}

function parseBody(text: string): RecordedChatBody | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return "We could not parse the JSON body of your request.";
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "The body must be a JSON object.";
  const o = raw as Record<string, unknown>;
  if (typeof o.model !== "string") return "you must provide a model parameter";
  if (!Array.isArray(o.messages)) return "'messages' is a required property";
  const messages: RecordedChatMessage[] = [];
  for (const m of o.messages as unknown[]) {
    const mm = m as Record<string, unknown> | null;
    if (!mm || typeof mm.role !== "string" || typeof mm.content !== "string") {
      return "each message needs a string role and a string content";
    }
    messages.push({ role: mm.role, content: mm.content });
  }
  const body: RecordedChatBody = { model: o.model, messages, stream: o.stream === true, raw: o };
  if (typeof o.stream_options === "object" && o.stream_options !== null) {
    body.stream_options = o.stream_options as { include_usage?: boolean };
  }
  if (typeof o.temperature === "number") body.temperature = o.temperature;
  if (typeof o.max_tokens === "number") body.max_tokens = o.max_tokens;
  if (typeof o.max_completion_tokens === "number") body.max_completion_tokens = o.max_completion_tokens;
  return body;
}

function sendError(res: http.ServerResponse, status: number, message: string, type: string, code: string | null = null, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify({ error: { message, type, param: null, code } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

interface Io {
  sleep(ms: number, then: () => void): void;
  drop(): void;
}

let idCounter = 0;

function respond(body: RecordedChatBody, script: LlmDoubleScript, res: http.ServerResponse, io: Io): void {
  const failure = script.failure;
  if (failure?.type === "http-error") {
    const headers: Record<string, string> = {};
    if (failure.retryAfter !== undefined) headers["retry-after"] = failure.retryAfter;
    const type = failure.status === 429 ? "rate_limit_exceeded" : failure.status >= 500 ? "server_error" : "invalid_request_error";
    sendError(res, failure.status, failure.message ?? `scripted failure ${failure.status}`, type, null, headers);
    return;
  }
  if (failure?.type === "hang" && failure.when === "before-headers") return;

  const limit = body.max_completion_tokens ?? body.max_tokens;
  let tokens = [...(script.tokens ?? DEFAULT_DOUBLE_TOKENS)];
  let finishReason: "stop" | "length" = "stop";
  if (limit !== undefined && tokens.length > limit) {
    tokens = tokens.slice(0, limit);
    finishReason = "length";
  }
  const id = `chatcmpl-double${++idCounter}`;
  const created = Math.floor(Date.now() / 1000);
  const model = body.model;
  const usage = usageFor(body, tokens, script.usage);
  const stopAfter =
    failure?.type === "drop" || failure?.type === "malformed"
      ? failure.afterTokens
      : failure?.type === "hang"
        ? (failure.afterTokens ?? 0)
        : Infinity;
  const delay = script.tokenDelayMs ?? 0;

  if (!body.stream) {
    const finish = () => {
      if (failure?.type === "drop") return io.drop();
      if (failure?.type === "malformed") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"id": "' + id + '", "choices": [');
        return;
      }
      const payload = JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: tokens.join(""), refusal: null }, logprobs: null, finish_reason: finishReason }],
        ...(usage ? { usage: usageJson(usage) } : {}),
        system_fingerprint: "fp_double",
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    };
    if (failure?.type === "hang") return;
    if (delay > 0) io.sleep(delay * tokens.length, finish);
    else finish();
    return;
  }

  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();

  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => {
    const obj: Record<string, unknown> = { id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_double", choices, ...extra };
    // The real API puts `usage: null` on every chunk but the last when usage was asked for.
    if (includeUsage && !("usage" in obj)) obj.usage = null;
    return `data: ${JSON.stringify(obj)}\n\n`;
  };
  const write = (text: string) => {
    if (!res.destroyed) res.write(text);
  };

  write(chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]));
  let i = 0;
  const passed = new Set<object>();
  const step = () => {
    if (res.destroyed) return;
    const hold = script.holds?.find((h) => h.afterTokens === i && !passed.has(h));
    if (hold && i < tokens.length) {
      passed.add(hold);
      const go = () => void setImmediate(step);
      hold.until.then(go, go);
      return;
    }
    // A failure whose token count exceeds the reply still fails, at the reply's end.
    if (failure && (i >= stopAfter || i >= tokens.length)) {
      if (failure.type === "hang") return;
      if (failure.type === "drop") return io.drop();
      write("data: {\"id\": \"" + id + "\", \"choices\": [{\"delta\": \n\n");
      res.end();
      return;
    }
    if (i < tokens.length) {
      write(chunk([{ index: 0, delta: { content: tokens[i] }, logprobs: null, finish_reason: null }]));
      i += 1;
      return next();
    }
    write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]));
    if (includeUsage && usage) write(chunk([], { usage: usageJson(usage) }));
    write("data: [DONE]\n\n");
    res.end();
  };
  const next = () => {
    const nextIsToken = i < tokens.length && i < stopAfter;
    if (nextIsToken && delay > 0) io.sleep(delay, step);
    else setImmediate(step);
  };
  next();
}

interface Usage {
  promptTokens: number;
  completionTokens: number;
}

function usageFor(body: RecordedChatBody, tokens: readonly string[], setting: LlmDoubleScript["usage"]): Usage | undefined {
  if (setting === "omit") return undefined;
  if (typeof setting === "object") return setting;
  const promptTokens = countTokens(
    body.messages.map((m) => ({ role: m.role, content: m.content })),
    { disallowedSpecial: new Set<string>() },
  );
  return { promptTokens, completionTokens: tokens.length };
}

function usageJson(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}
