/**
 * Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI,
 * Ollama, vLLM, llama.cpp, text-embeddings-inference...) through the `openai`
 * package. Inputs are sent in batches of at most `maxBatchSize`, a few batches
 * at a time; vectors are put back in input order by the `index` the server
 * returns and L2-normalised here, since not every server normalises.
 */
import type OpenAI from "openai";
import { createOpenAiClient } from "../llm/openai-client.js";
import type { Embedder } from "./types.js";

export interface OpenAiEmbedderOptions {
  /** Endpoint base including the version path, e.g. `https://api.openai.com/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer <apiKey>`; local servers often need none. */
  apiKey?: string;
  /** Model name sent with every request; also the identity stored with the vectors. */
  model: string;
  /** Width every returned vector must have. */
  dimensions: number;
  /**
   * Ask the server for `dimensions` (models such as text-embedding-3-* shorten
   * their vectors on request). Servers that reject the parameter need false. Default true.
   */
  sendDimensions?: boolean;
  /** Wire encoding asked for; "base64" is a quarter of the size of JSON floats. Default "base64". */
  encodingFormat?: "base64" | "float";
  /** Most inputs in one request. Default 128. */
  maxBatchSize?: number;
  /** Requests in flight at once for one embed() call. Default 4. */
  maxConcurrency?: number;
  /** Per-request timeout. Default 30 000 ms. */
  timeoutMs?: number;
  /** SDK retries on connection errors, 408, 409, 429 and 5xx. Default 2. */
  maxRetries?: number;
}

export class OpenAiEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  private readonly client: OpenAI;
  private readonly sendDimensions: boolean;
  private readonly encodingFormat: "base64" | "float";
  private readonly maxBatchSize: number;
  private readonly maxConcurrency: number;
  /**
   * One controller per request, aborted by close(). Not one long-lived signal: the SDK adds an
   * abort listener to the signal it is given and never removes it, which would grow without bound.
   */
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(options: OpenAiEmbedderOptions) {
    this.model = options.model;
    this.dimensions = positiveInt("dimensions", options.dimensions);
    this.sendDimensions = options.sendDimensions ?? true;
    this.encodingFormat = options.encodingFormat ?? "base64";
    this.maxBatchSize = positiveInt("maxBatchSize", options.maxBatchSize ?? 128);
    this.maxConcurrency = positiveInt("maxConcurrency", options.maxConcurrency ?? 4);
    this.client = createOpenAiClient({ baseURL: options.baseURL, apiKey: options.apiKey, timeoutMs: options.timeoutMs ?? 30_000, maxRetries: options.maxRetries ?? 2 });
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error("OpenAiEmbedder is closed");
    if (texts.length === 0) return [];
    const batches: { start: number; input: string[] }[] = [];
    for (let start = 0; start < texts.length; start += this.maxBatchSize) {
      batches.push({ start, input: texts.slice(start, start + this.maxBatchSize) });
    }
    const out = new Array<Float32Array>(texts.length);
    let next = 0;
    let failed = false;
    const run = async () => {
      // After one batch fails the call is lost; the other runners stop instead of spending requests on it.
      while (!failed && next < batches.length) {
        const batch = batches[next++]!;
        try {
          const vectors = await this.request(batch.input);
          vectors.forEach((v, i) => (out[batch.start + i] = v));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxConcurrency, batches.length) }, run));
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.inFlight) controller.abort();
  }

  private async request(input: string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error("OpenAiEmbedder is closed");
    const controller = new AbortController();
    this.inFlight.add(controller);
    let response;
    try {
      response = await this.client.embeddings.create(
        {
          model: this.model,
          input,
          encoding_format: this.encodingFormat,
          ...(this.sendDimensions ? { dimensions: this.dimensions } : {}),
        },
        { signal: controller.signal },
      );
    } finally {
      this.inFlight.delete(controller);
    }
    const data = response.data;
    if (!Array.isArray(data) || data.length !== input.length) {
      throw new Error(`embeddings endpoint returned ${Array.isArray(data) ? data.length : "no"} vectors for ${input.length} inputs`);
    }
    const vectors = new Array<Float32Array>(input.length);
    data.forEach((item, position) => {
      const index = typeof item.index === "number" ? item.index : position;
      if (!Number.isInteger(index) || index < 0 || index >= input.length || vectors[index]) {
        throw new Error(`embeddings endpoint returned an invalid or repeated index ${String(item.index)}`);
      }
      vectors[index] = this.toVector(item.embedding as unknown);
    });
    return vectors;
  }

  /** Accepts either encoding: some servers ignore `encoding_format` and always send floats. */
  private toVector(embedding: unknown): Float32Array {
    let vector: Float32Array;
    if (typeof embedding === "string") {
      const bytes = Buffer.from(embedding, "base64");
      if (bytes.length % 4 !== 0) throw new Error("embeddings endpoint returned base64 that is not float32 data");
      vector = new Float32Array(bytes.length / 4);
      new Uint8Array(vector.buffer).set(bytes);
      if (!littleEndianHost) vector = swapToHost(vector);
    } else if (Array.isArray(embedding) && embedding.every((x) => typeof x === "number")) {
      vector = Float32Array.from(embedding as number[]);
    } else {
      throw new Error("embeddings endpoint returned an embedding that is neither a float array nor base64");
    }
    if (vector.length !== this.dimensions) {
      throw new Error(
        `embeddings endpoint returned ${vector.length}-dimensional vectors for model ${this.model}, ${this.dimensions} expected`,
      );
    }
    let sumSquares = 0;
    for (const x of vector) sumSquares += x * x;
    const norm = Math.sqrt(sumSquares);
    if (!Number.isFinite(norm) || norm === 0) throw new Error("embeddings endpoint returned a zero or non-finite vector");
    for (let i = 0; i < vector.length; i++) vector[i]! /= norm;
    return vector;
  }
}

const littleEndianHost = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** base64 embeddings are little-endian float32 whatever the host. */
function swapToHost(v: Float32Array): Float32Array {
  const view = new DataView(v.buffer);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
