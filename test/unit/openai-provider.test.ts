import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OpenAiProvider, retryAfterMs, type OpenAiProviderOptions } from "../../src/llm/openai-provider.js";
import { countMessageTokens, countTokens } from "../../src/llm/tokens.js";
import { LlmError, type LlmChunk, type LlmMessage } from "../../src/llm/types.js";
import { describeLlmProviderContract } from "../contracts/llm-provider-contract.js";
import { OpenAiLlmDouble, type LlmDoubleScript, type RecordedOutcome } from "../support/openai-llm-double.js";

describeLlmProviderContract("OpenAiProvider against the OpenAI double", async () => {
  const scripts = new Map<string, LlmDoubleScript>();
  const llm = new OpenAiLlmDouble({
    defaultScript: (req) => {
      const last = req.body?.messages.at(-1)?.content ?? "";
      const tag = /^reply for (\S+)$/.exec(last)?.[1] ?? "";
      const script = scripts.get(tag);
      if (!script) throw new Error(`no reply prepared for ${JSON.stringify(last)}`);
      return script;
    },
  });
  const { url, close } = await llm.start();
  const provider = new OpenAiProvider({ baseURL: url, apiKey: "test-key", model: "double-model", connectTimeoutMs: 2000, idleTimeoutMs: 2000, retryDelayMs: 0 });
  return {
    provider,
    prepare(tag, { pieces, slow }) {
      const tokens = Array.from({ length: pieces }, (_, i) => `${i === 0 ? "" : " "}${tag}-${i}`);
      scripts.set(tag, { tokens, tokenDelayMs: slow ? 10 : 0 });
      return {
        messages: [
          { role: "system", content: "You are the contract test." },
          { role: "user", content: `reply for ${tag}` },
        ],
        expectedText: tokens.join(""),
      };
    },
    close,
  };
});

interface RunResult {
  chunks: LlmChunk[];
  text: string;
  error: unknown;
}

async function run(provider: OpenAiProvider, messages: LlmMessage[], opts: { signal?: AbortSignal; model?: string; temperature?: number; maxTokens?: number } = {}): Promise<RunResult> {
  const chunks: LlmChunk[] = [];
  let error: unknown;
  try {
    for await (const c of provider.stream({ messages, signal: opts.signal ?? new AbortController().signal, model: opts.model, temperature: opts.temperature, maxTokens: opts.maxTokens })) {
      chunks.push(c);
    }
  } catch (e) {
    error = e;
  }
  const text = chunks.flatMap((c) => (c.type === "delta" ? [c.text] : [])).join("");
  return { chunks, text, error };
}

function codeOf(err: unknown): string | undefined {
  return err instanceof LlmError ? err.code : undefined;
}

/** Resolves with the outcome, or "pending" if the response is not over within `ms`. */
function outcomeWithin(finished: Promise<RecordedOutcome>, ms: number): Promise<RecordedOutcome | "pending"> {
  return Promise.race([finished, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);
}

const messages: LlmMessage[] = [
  { role: "system", content: "You are helpful.\nRelevant earlier messages:\n- [#4 user, score 0.9] The code word is tangerine." },
  { role: "user", content: "What is the code word?" },
  { role: "assistant", content: "Let me check." },
  { role: "user", content: "Please answer." },
];

describe("OpenAiProvider", () => {
  const llm = new OpenAiLlmDouble({ apiKey: "sk-test" });
  let url = "";
  let close: () => Promise<void>;
  const make = (o: Partial<OpenAiProviderOptions> = {}) =>
    new OpenAiProvider({ baseURL: url, apiKey: "sk-test", model: "default-model", connectTimeoutMs: 1000, idleTimeoutMs: 1000, retryDelayMs: 0, ...o });

  beforeAll(async () => {
    ({ url, close } = await llm.start());
  });
  afterAll(async () => {
    await close();
  });
  beforeEach(() => {
    llm.reset();
    llm.setDefaultScript({});
  });

  it("sends the prompt, model and sampling settings it was given, streaming with usage", async () => {
    llm.enqueue({ tokens: ["tan", "gerine"] });
    const got = await run(make(), messages, { temperature: 0.2, maxTokens: 64 });
    expect(got.error).toBeUndefined();
    expect(got.text).toBe("tangerine");
    expect(llm.requests).toHaveLength(1);
    const req = llm.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe("Bearer sk-test");
    expect(req.body?.messages).toEqual(messages);
    expect(req.body?.model).toBe("default-model");
    expect(req.body?.stream).toBe(true);
    expect(req.body?.stream_options).toEqual({ include_usage: true });
    expect(req.body?.temperature).toBe(0.2);
    expect(req.body?.max_tokens).toBe(64);
  });

  it("uses the request's model over the default and leaves unset settings out", async () => {
    await run(make(), messages, { model: "other-model" });
    const body = llm.requests[0]?.body;
    expect(body?.model).toBe("other-model");
    expect(body?.raw).not.toHaveProperty("temperature");
    expect(body?.raw).not.toHaveProperty("max_tokens");
  });

  it("reports the usage the server sent, once, after the text", async () => {
    llm.enqueue({ tokens: ["a", "b", "c"], usage: { promptTokens: 111, completionTokens: 7 } });
    const got = await run(make(), messages);
    expect(got.chunks.at(-1)).toEqual({ type: "usage", promptTokens: 111, completionTokens: 7 });
    expect(got.chunks.filter((c) => c.type === "usage")).toHaveLength(1);
  });

  it("estimates usage with the tokenizer when the server sends none", async () => {
    llm.enqueue({ tokens: ["The", " code", " word", " is", " tangerine."], usage: "omit" });
    const got = await run(make(), messages);
    expect(got.error).toBeUndefined();
    expect(got.chunks.at(-1)).toEqual({
      type: "usage",
      promptTokens: countMessageTokens(messages),
      completionTokens: countTokens("The code word is tangerine."),
    });
  });

  it("retries once after a 500 before the first token, without duplicating text", async () => {
    llm.enqueue({ failure: { type: "http-error", status: 500 } }, { tokens: ["only", " once"] });
    const got = await run(make(), messages);
    expect(got.error).toBeUndefined();
    expect(got.text).toBe("only once");
    expect(llm.requestCount).toBe(2);
    expect(llm.requests[1]?.body?.messages).toEqual(messages);
  });

  it("gives up with LLM_UNAVAILABLE after exactly one retry", async () => {
    llm.setDefaultScript({ failure: { type: "http-error", status: 503 } });
    const got = await run(make(), messages);
    expect(codeOf(got.error)).toBe("LLM_UNAVAILABLE");
    expect(llm.requestCount).toBe(2);
  });

  it("does not retry when maxRetries is 0", async () => {
    llm.setDefaultScript({ failure: { type: "http-error", status: 502 } });
    const got = await run(make({ maxRetries: 0 }), messages);
    expect(codeOf(got.error)).toBe("LLM_UNAVAILABLE");
    expect(llm.requestCount).toBe(1);
  });

  it("retries when the stream breaks before the first token", async () => {
    llm.enqueue({ failure: { type: "drop", afterTokens: 0 } }, { tokens: ["second", " try"] });
    const got = await run(make(), messages);
    expect(got.error).toBeUndefined();
    expect(got.text).toBe("second try");
    expect(llm.requestCount).toBe(2);
  });

  it("maps a stream dropped after tokens to LLM_UNAVAILABLE, keeping the text and never retrying", async () => {
    llm.setDefaultScript({ tokens: ["one", " two", " three", " four"], failure: { type: "drop", afterTokens: 3 } });
    const got = await run(make(), messages);
    expect(codeOf(got.error)).toBe("LLM_UNAVAILABLE");
    expect(got.text).toBe("one two three");
    expect(got.chunks.some((c) => c.type === "usage")).toBe(false);
    expect(llm.requestCount).toBe(1);
  });

  it("maps 429 to LLM_RATE_LIMITED with retryAfterMs from retry-after, without retrying", async () => {
    llm.setDefaultScript({ failure: { type: "http-error", status: 429, retryAfter: "7" } });
    const got = await run(make(), messages);
    expect(codeOf(got.error)).toBe("LLM_RATE_LIMITED");
    expect((got.error as LlmError).retryAfterMs).toBe(7000);
    expect(llm.requestCount).toBe(1);
  });

  it("maps a 4xx to LLM_UNAVAILABLE without retrying", async () => {
    const got = await run(make({ apiKey: "wrong-key" }), messages);
    expect(codeOf(got.error)).toBe("LLM_UNAVAILABLE");
    expect((got.error as LlmError).message).toMatch(/401/);
    expect(llm.requestCount).toBe(1);
  });

  it("maps a refused connection to LLM_UNAVAILABLE", async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const got = await run(make({ baseURL: `http://127.0.0.1:${port}/v1` }), messages);
    expect(codeOf(got.error)).toBe("LLM_UNAVAILABLE");
  });

  it("times out with LLM_TIMEOUT when headers arrive but no token does, and closes the connection", async () => {
    llm.setDefaultScript({ failure: { type: "hang" } });
    const started = performance.now();
    const got = await run(make({ idleTimeoutMs: 150 }), messages);
    const elapsed = performance.now() - started;
    expect(codeOf(got.error)).toBe("LLM_TIMEOUT");
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
    expect(llm.requestCount).toBe(1);
    expect(await outcomeWithin(llm.requests[0]!.finished, 500)).toBe("client-closed");
  });

  it("times out with LLM_TIMEOUT when the stream stalls between tokens", async () => {
    llm.setDefaultScript({ tokens: ["a", "b", "c", "d"], failure: { type: "hang", afterTokens: 2 } });
    const got = await run(make({ idleTimeoutMs: 150 }), messages);
    expect(codeOf(got.error)).toBe("LLM_TIMEOUT");
    expect(got.text).toBe("ab");
    expect(llm.requestCount).toBe(1);
  });

  it("does not time out a slow stream whose gaps stay under the idle limit", async () => {
    // The whole stream outlasts the idle limit; only the gaps stay under it.
    llm.enqueue({ tokens: ["s", "l", "o", "w", "e", "s", "t", "!"], tokenDelayMs: 50 });
    const started = performance.now();
    const got = await run(make({ idleTimeoutMs: 200 }), messages);
    expect(got.error).toBeUndefined();
    expect(got.text).toBe("slowest!");
    expect(performance.now() - started).toBeGreaterThan(200);
  });

  it("does not count a slow consumer's time against the idle limit", async () => {
    llm.enqueue({ tokens: ["a", "b", "c"] });
    let text = "";
    for await (const c of make({ idleTimeoutMs: 100 }).stream({ messages, signal: new AbortController().signal })) {
      if (c.type !== "delta") continue;
      text += c.text;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(text).toBe("abc");
  });

  it("times out with LLM_TIMEOUT when no response headers arrive", async () => {
    llm.setDefaultScript({ failure: { type: "hang", when: "before-headers" } });
    const started = performance.now();
    const got = await run(make({ connectTimeoutMs: 120, idleTimeoutMs: 5000 }), messages);
    expect(codeOf(got.error)).toBe("LLM_TIMEOUT");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await outcomeWithin(llm.requests[0]!.finished, 500)).toBe("client-closed");
  });

  it("maps data that is not JSON to LLM_BAD_RESPONSE", async () => {
    llm.setDefaultScript({ tokens: ["x", "y", "z"], failure: { type: "malformed", afterTokens: 2 } });
    const got = await run(make(), messages);
    expect(codeOf(got.error)).toBe("LLM_BAD_RESPONSE");
    expect(got.text).toBe("xy");
  });

  it("does not retry a malformed stream even before the first token", async () => {
    llm.setDefaultScript({ failure: { type: "malformed", afterTokens: 0 } });
    const got = await run(make(), messages);
    expect(codeOf(got.error)).toBe("LLM_BAD_RESPONSE");
    expect(llm.requestCount).toBe(1);
  });

  it("closes the HTTP connection when the caller aborts mid-stream", async () => {
    llm.enqueue({ tokens: Array.from({ length: 50 }, (_, i) => ` t${i}`), tokenDelayMs: 10 });
    const ac = new AbortController();
    const chunks: LlmChunk[] = [];
    const err = await (async () => {
      for await (const c of make().stream({ messages, signal: ac.signal })) {
        chunks.push(c);
        if (chunks.length === 2) ac.abort();
      }
    })().catch((e: unknown) => e);
    expect(codeOf(err)).toBe("LLM_ABORTED");
    expect(await outcomeWithin(llm.requests[0]!.finished, 500)).toBe("client-closed");
  });

  it("closes the HTTP connection when the consumer stops iterating", async () => {
    llm.enqueue({ tokens: Array.from({ length: 50 }, (_, i) => ` t${i}`), tokenDelayMs: 10 });
    for await (const c of make().stream({ messages, signal: new AbortController().signal })) {
      if (c.type === "delta") break;
    }
    expect(await outcomeWithin(llm.requests[0]!.finished, 500)).toBe("client-closed");
  });

  it("aborts promptly during the pause before the retry", async () => {
    llm.setDefaultScript({ failure: { type: "http-error", status: 500 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const started = performance.now();
    const got = await run(make({ retryDelayMs: 5000 }), messages, { signal: ac.signal });
    expect(codeOf(got.error)).toBe("LLM_ABORTED");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(llm.requestCount).toBe(1);
  });

  it("rejects nonsensical timeouts at construction", () => {
    expect(() => make({ idleTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => make({ connectTimeoutMs: -5 })).toThrow(RangeError);
  });
});

describe("retryAfterMs", () => {
  it("reads retry-after-ms first, then retry-after as seconds or as an HTTP date", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterMs(new Headers({ "retry-after-ms": "1500", "retry-after": "9" }), now)).toBe(1500);
    expect(retryAfterMs(new Headers({ "retry-after": "2" }), now)).toBe(2000);
    expect(retryAfterMs(new Headers({ "retry-after": "0.25" }), now)).toBe(250);
    expect(retryAfterMs(new Headers({ "retry-after": "Wed, 01 Jan 2025 00:00:30 GMT" }), now)).toBe(30_000);
    expect(retryAfterMs(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(retryAfterMs(new Headers(), now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
