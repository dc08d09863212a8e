/**
 * What every LlmProvider must do (DESIGN.md section 6), run against each
 * implementation from its own test file:
 *
 *   describeLlmProviderContract("OpenAiProvider", async () => ({ provider, prepare, close }));
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlmError, type LlmChunk, type LlmMessage, type LlmProvider } from "../../src/llm/types.js";

export interface LlmContractReply {
  messages: LlmMessage[];
  /** The whole reply the provider must stream for these messages. */
  expectedText: string;
}

export interface LlmContractFixture {
  provider: LlmProvider;
  /**
   * Arranges a reply told apart from others by `tag`, streamed in about
   * `pieces` deltas. `slow` asks for pieces some milliseconds apart (at most
   * tens), so that a stream of 40 pieces is still running when aborted 20 ms in.
   */
  prepare(tag: string, options: { pieces: number; slow?: boolean }): LlmContractReply;
  close(): Promise<void>;
}

interface Collected {
  chunks: LlmChunk[];
  text: string;
  deltas: string[];
}

async function collect(provider: LlmProvider, messages: LlmMessage[], signal = new AbortController().signal): Promise<Collected> {
  const chunks: LlmChunk[] = [];
  for await (const chunk of provider.stream({ messages, signal })) chunks.push(chunk);
  const deltas = chunks.flatMap((c) => (c.type === "delta" ? [c.text] : []));
  return { chunks, deltas, text: deltas.join("") };
}

function expectLlmError(err: unknown, code: LlmError["code"]): void {
  expect(err).toBeInstanceOf(LlmError);
  expect((err as LlmError).code).toBe(code);
}

export function describeLlmProviderContract(name: string, createFixture: () => Promise<LlmContractFixture>): void {
  describe(`LlmProvider contract: ${name}`, () => {
    let fx: LlmContractFixture;
    beforeAll(async () => {
      fx = await createFixture();
    });
    afterAll(async () => {
      await fx?.close();
    });

    it("has a name", () => {
      expect(fx.provider.name).toMatch(/\S/);
    });

    it("streams non-empty deltas that concatenate to the full reply", async () => {
      const reply = fx.prepare("whole", { pieces: 8 });
      const got = await collect(fx.provider, reply.messages);
      expect(got.deltas.length).toBeGreaterThan(1);
      for (const d of got.deltas) expect(d.length).toBeGreaterThan(0);
      expect(got.text).toBe(reply.expectedText);
    });

    it("ends with exactly one usage chunk, after every delta", async () => {
      const reply = fx.prepare("usage", { pieces: 5 });
      const got = await collect(fx.provider, reply.messages);
      const usages = got.chunks.filter((c) => c.type === "usage");
      expect(usages).toHaveLength(1);
      const last = got.chunks.at(-1);
      expect(last?.type).toBe("usage");
      if (last?.type !== "usage") return;
      expect(Number.isInteger(last.promptTokens) && last.promptTokens > 0).toBe(true);
      expect(Number.isInteger(last.completionTokens) && last.completionTokens > 0).toBe(true);
    });

    it("refuses a request whose signal is already aborted, yielding nothing", async () => {
      const reply = fx.prepare("pre-aborted", { pieces: 5 });
      const ac = new AbortController();
      ac.abort();
      const chunks: LlmChunk[] = [];
      const err = await (async () => {
        for await (const c of fx.provider.stream({ messages: reply.messages, signal: ac.signal })) chunks.push(c);
      })().catch((e: unknown) => e);
      expectLlmError(err, "LLM_ABORTED");
      expect(chunks).toHaveLength(0);
    });

    it("stops with LLM_ABORTED when aborted between two chunks", async () => {
      const reply = fx.prepare("abort-inline", { pieces: 40, slow: true });
      const ac = new AbortController();
      const deltas: string[] = [];
      const err = await (async () => {
        for await (const c of fx.provider.stream({ messages: reply.messages, signal: ac.signal })) {
          if (c.type === "delta") {
            deltas.push(c.text);
            ac.abort();
          }
        }
      })().catch((e: unknown) => e);
      expectLlmError(err, "LLM_ABORTED");
      expect(deltas).toHaveLength(1);
    });

    it("stops promptly with LLM_ABORTED when aborted while waiting for the next chunk", async () => {
      const reply = fx.prepare("abort-timer", { pieces: 40, slow: true });
      const ac = new AbortController();
      let abortedAt = 0;
      const chunks: LlmChunk[] = [];
      const err = await (async () => {
        for await (const c of fx.provider.stream({ messages: reply.messages, signal: ac.signal })) {
          chunks.push(c);
          if (chunks.length === 1) {
            setTimeout(() => {
              abortedAt = performance.now();
              ac.abort();
            }, 20);
          }
        }
      })().catch((e: unknown) => e);
      const stoppedAfterMs = performance.now() - abortedAt;
      expectLlmError(err, "LLM_ABORTED");
      expect(abortedAt).toBeGreaterThan(0);
      expect(stoppedAfterMs).toBeLessThan(250);
      const text = chunks.flatMap((c) => (c.type === "delta" ? [c.text] : [])).join("");
      expect(text.length).toBeGreaterThan(0);
      expect(text.length).toBeLessThan(reply.expectedText.length);
      expect(chunks.some((c) => c.type === "usage")).toBe(false);
    });

    it("keeps concurrent streams apart", async () => {
      const replies = ["alpha", "bravo", "charlie"].map((tag) => fx.prepare(tag, { pieces: 10, slow: true }));
      const results = await Promise.all(replies.map((r) => collect(fx.provider, r.messages)));
      results.forEach((got, i) => {
        expect(got.text).toBe(replies[i]?.expectedText);
        expect(got.chunks.filter((c) => c.type === "usage")).toHaveLength(1);
      });
      expect(new Set(results.map((r) => r.text)).size).toBe(3);
    });

    it("serves the next request normally after an aborted one", async () => {
      const first = fx.prepare("before-abort", { pieces: 20, slow: true });
      const ac = new AbortController();
      await (async () => {
        for await (const c of fx.provider.stream({ messages: first.messages, signal: ac.signal })) {
          if (c.type === "delta") ac.abort();
        }
      })().catch(() => undefined);
      const next = fx.prepare("after-abort", { pieces: 5 });
      const got = await collect(fx.provider, next.messages);
      expect(got.text).toBe(next.expectedText);
    });
  });
}
