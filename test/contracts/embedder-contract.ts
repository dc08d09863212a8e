/**
 * The behaviour every Embedder must show (DESIGN.md section 6), written against
 * the interface only, so the transformers.js pool, the hash embedder and the
 * OpenAI-compatible client are held to the same rules.
 *
 * Models may compute a text's vector slightly differently depending on what
 * else is in its batch (dynamically quantized models scale activations per
 * batch), so "the same vector" across different batches means a cosine of at
 * least `minCrossBatchCosine`, and each vector must still be closest to its own
 * text's vector. Within identical calls results must be identical.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/types.js";

export interface EmbedderContractOptions {
  /** Width the embedder must report and produce. */
  dimensions: number;
  /** Least cosine between a text's vectors from different batches. Default 0.999999 (exact up to rounding). */
  minCrossBatchCosine?: number;
}

const TEXTS = [
  "Hello, how are you today?",
  "My flight to Lisbon leaves at 7:45 on Friday.",
  "Remind me to water the tomatoes.",
  "The quarterly report is due next Tuesday, not Monday.",
  "Ich habe meinen Schlüssel verloren.",
  "What was the name of that ramen place near the station?",
  "42",
  "🙂 thanks!",
];

export function embedderContract(name: string, factory: () => Promise<Embedder>, options: EmbedderContractOptions): void {
  const minCos = options.minCrossBatchCosine ?? 0.999999;

  describe(`Embedder contract: ${name}`, () => {
    let embedder: Embedder;
    /** Each text embedded alone: the reference other calls are compared with. */
    let alone: Map<string, Float32Array>;

    beforeAll(async () => {
      embedder = await factory();
      alone = new Map();
      for (const text of TEXTS) {
        const [v] = await embedder.embed([text]);
        alone.set(text, v!);
      }
    });

    afterAll(async () => {
      await embedder?.close();
    });

    /** Each vector is its own text's (close to it, and closer to it than to any other text's). */
    function expectMatches(texts: readonly string[], vectors: readonly Float32Array[]): void {
      expect(vectors).toHaveLength(texts.length);
      const refs = TEXTS.map((t) => alone.get(t)!);
      texts.forEach((text, i) => {
        const v = vectors[i]!;
        expect(v).toBeInstanceOf(Float32Array);
        expect(v).toHaveLength(options.dimensions);
        expect(cosine(v, alone.get(text)!)).toBeGreaterThanOrEqual(minCos);
        const sims = refs.map((r) => cosine(v, r));
        expect(TEXTS[sims.indexOf(Math.max(...sims))]).toBe(text);
      });
    }

    it("reports its model and dimensions", () => {
      expect(typeof embedder.model).toBe("string");
      expect(embedder.model.length).toBeGreaterThan(0);
      expect(embedder.dimensions).toBe(options.dimensions);
    });

    it("returns one vector per input, in input order", async () => {
      const vectors = await embedder.embed(TEXTS);
      expectMatches(TEXTS, vectors);
      const reversed = [...TEXTS].reverse();
      expectMatches(reversed, await embedder.embed(reversed));
    });

    it("returns one vector per input when texts repeat", async () => {
      const texts = [TEXTS[0]!, TEXTS[1]!, TEXTS[0]!];
      const vectors = await embedder.embed(texts);
      expectMatches(texts, vectors);
      expect(cosine(vectors[0]!, vectors[2]!)).toBeGreaterThanOrEqual(minCos);
    });

    it("returns finite vectors of unit L2 norm", async () => {
      const long = Array.from({ length: 400 }, (_, i) => `word${i % 37} and more words`).join(" ");
      const texts = [...TEXTS, "a", "NAMES Like Zoë, numbers like 3.14159 and rare words like sesquipedalian"];
      // The long text alone: models that truncate must still return one unit vector for it.
      const vectors = [...(await embedder.embed(texts)), ...(await embedder.embed([long]))];
      expect(vectors).toHaveLength(texts.length + 1);
      for (const v of vectors) {
        expect(v).toHaveLength(options.dimensions);
        expect(v.every(Number.isFinite)).toBe(true);
        expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-3);
      }
    });

    it("is deterministic: the same call gives the same vectors", async () => {
      const first = await embedder.embed(TEXTS.slice(0, 3));
      const second = await embedder.embed(TEXTS.slice(0, 3));
      first.forEach((v, i) => expect(maxAbsDiff(v, second[i]!)).toBeLessThan(1e-6));
      for (const text of TEXTS) {
        const [again] = await embedder.embed([text]);
        expect(maxAbsDiff(again!, alone.get(text)!)).toBeLessThan(1e-6);
      }
    });

    it("gives different texts different vectors", () => {
      for (let i = 0; i < TEXTS.length; i++) {
        for (let j = i + 1; j < TEXTS.length; j++) {
          expect(cosine(alone.get(TEXTS[i]!)!, alone.get(TEXTS[j]!)!)).toBeLessThan(0.999);
        }
      }
    });

    it("returns an empty array for no texts", async () => {
      await expect(embedder.embed([])).resolves.toEqual([]);
    });

    it("hands out vectors the caller may modify", async () => {
      const [v] = await embedder.embed([TEXTS[2]!]);
      v!.fill(0);
      const [again] = await embedder.embed([TEXTS[2]!]);
      expect(maxAbsDiff(again!, alone.get(TEXTS[2]!)!)).toBeLessThan(1e-6);
    });

    it("answers concurrent calls each with their own vectors", async () => {
      const calls = Array.from({ length: 16 }, (_, c) =>
        Array.from({ length: 1 + (c % 5) }, (_, k) => TEXTS[(c * 3 + k) % TEXTS.length]!),
      );
      const results = await Promise.all(calls.map((texts) => embedder.embed(texts)));
      results.forEach((vectors, c) => expectMatches(calls[c]!, vectors));
    });

    it("closes: close() resolves, is idempotent, and later calls reject", async () => {
      await embedder.close();
      await embedder.close();
      await expect(embedder.embed([TEXTS[0]!])).rejects.toThrow();
    });
  });
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / (norm(a) * norm(b));
}

export function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
