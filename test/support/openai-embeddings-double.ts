/**
 * Stands in for an OpenAI-compatible embeddings endpoint (DESIGN.md section 8):
 * a real HTTP server on loopback answering `POST /v1/embeddings` in the API's
 * wire format (JSON floats or base64 little-endian float32, `index` per item,
 * usage, OpenAI-style error bodies), so the production client runs unmodified.
 * Vectors come from the lexical HashEmbedder at the requested width.
 *
 *   const double = new OpenAiEmbeddingsDouble({ apiKey: "k" });
 *   const { url, close } = await double.start();     // url ends in /v1: pass it as baseURL
 *   double.failNext({ status: 500 });
 *   double.requests[0].body.input                    // what was sent
 *   await close();
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { countTokens } from "gpt-tokenizer/model/gpt-4o";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";

export interface OpenAiEmbeddingsDoubleOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`, else 401. */
  apiKey?: string;
  /** Width when the request names none, as a model's native width. Default 384. */
  defaultDimensions?: number;
  /** Models the server knows; others get 404 model_not_found. Default: any. */
  models?: readonly string[];
  /** Most inputs accepted in one request (OpenAI: 2048). */
  maxInputs?: number;
  /** Multiplies every vector, to play a server that does not normalise. Default 1. */
  scale?: number;
  /** Returns items in reverse order (each still with its `index`), as a server is free to. */
  shuffle?: boolean;
  /** Delay before each response. */
  delayMs?: number;
}

export interface RecordedEmbeddingsRequest {
  index: number;
  method: string;
  path: string;
  authorization: string | undefined;
  /** Parsed JSON body, or undefined when it was not JSON. */
  body: EmbeddingsRequestBody | undefined;
  status: number;
}

export interface EmbeddingsRequestBody {
  model?: unknown;
  input?: unknown;
  dimensions?: unknown;
  encoding_format?: unknown;
  [key: string]: unknown;
}

export interface DoubleFailure {
  status: number;
  message?: string;
}

export class OpenAiEmbeddingsDouble {
  readonly requests: RecordedEmbeddingsRequest[] = [];
  private readonly failures: DoubleFailure[] = [];
  private readonly embedders = new Map<number, HashEmbedder>();
  private server: http.Server | undefined;

  constructor(private readonly options: OpenAiEmbeddingsDoubleOptions = {}) {}

  /** The next request(s) get these failures, in order, before normal answers resume. */
  failNext(...failures: DoubleFailure[]): void {
    this.failures.push(...failures);
  }

  async start(): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/v1`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    let body: EmbeddingsRequestBody | undefined;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as EmbeddingsRequestBody;
    } catch {
      body = undefined;
    }
    const record: RecordedEmbeddingsRequest = {
      index: this.requests.length,
      method: req.method ?? "",
      path: new URL(req.url ?? "/", "http://x").pathname,
      authorization: req.headers.authorization,
      body,
      status: 0,
    };
    this.requests.push(record);
    if (this.options.delayMs) await new Promise((r) => setTimeout(r, this.options.delayMs));

    const reply = (status: number, payload: unknown) => {
      record.status = status;
      const text = JSON.stringify(payload);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    const error = (status: number, message: string, type: string, param: string | null = null, code: string | null = null) =>
      reply(status, { error: { message, type, param, code } });

    if (record.path !== "/v1/embeddings") return error(404, `Unknown request URL: ${req.method} ${record.path}`, "invalid_request_error");
    if (req.method !== "POST") return error(405, `Method ${req.method} not allowed`, "invalid_request_error");
    if (this.options.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      return error(401, "Incorrect API key provided.", "invalid_request_error", null, "invalid_api_key");
    }
    const failure = this.failures.shift();
    if (failure) return error(failure.status, failure.message ?? `injected failure ${failure.status}`, "server_error");
    if (!body) return error(400, "We could not parse the JSON body of your request.", "invalid_request_error");

    const { model, dimensions, encoding_format: format = "float" } = body;
    if (typeof model !== "string" || model === "") return error(400, "you must provide a model parameter", "invalid_request_error", "model");
    if (this.options.models && !this.options.models.includes(model)) {
      return error(404, `The model \`${model}\` does not exist or you do not have access to it.`, "invalid_request_error", null, "model_not_found");
    }
    if (format !== "float" && format !== "base64") {
      return error(400, `'${String(format)}' is not one of ['float', 'base64'] - 'encoding_format'`, "invalid_request_error", "encoding_format");
    }
    if (dimensions !== undefined && (!Number.isInteger(dimensions) || (dimensions as number) < 2)) {
      return error(400, "Invalid value for 'dimensions'.", "invalid_request_error", "dimensions");
    }
    const inputs = normaliseInput(body.input);
    if (!inputs) return error(400, "'$.input' is invalid. Please check the API reference.", "invalid_request_error", "input");
    if (inputs.length > (this.options.maxInputs ?? 2048)) {
      return error(400, `'$.input' must have at most ${this.options.maxInputs ?? 2048} items`, "invalid_request_error", "input");
    }

    const embedder = this.embedder((dimensions as number | undefined) ?? this.options.defaultDimensions ?? 384);
    const scale = this.options.scale ?? 1;
    const data = inputs.map((text, index) => {
      const vector = embedder.embedOne(text).map((x) => x * scale);
      const embedding = format === "base64" ? Buffer.from(littleEndianBytes(vector)).toString("base64") : Array.from(vector);
      return { object: "embedding", index, embedding };
    });
    if (this.options.shuffle) data.reverse();
    const promptTokens = inputs.reduce((n, text) => n + countTokens(text), 0);
    reply(200, { object: "list", data, model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } });
  }

  private embedder(dimensions: number): HashEmbedder {
    let embedder = this.embedders.get(dimensions);
    if (!embedder) {
      embedder = new HashEmbedder({ dimensions });
      this.embedders.set(dimensions, embedder);
    }
    return embedder;
  }
}

/** The API's four input forms: a string, strings, a token array, token arrays. Empty strings are invalid. */
function normaliseInput(input: unknown): string[] | undefined {
  const isTokens = (x: unknown): x is number[] => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t));
  const items = typeof input === "string" || isTokens(input) ? [input] : input;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const texts: string[] = [];
  for (const item of items) {
    if (typeof item === "string" && item.length > 0) texts.push(item);
    else if (isTokens(item)) texts.push(`tokens ${item.join(" ")}`);
    else return undefined;
  }
  return texts;
}

function littleEndianBytes(v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length * 4);
  const view = new DataView(out.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return out;
}
