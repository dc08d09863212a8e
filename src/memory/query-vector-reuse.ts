/**
 * An embedder that hands the vector of a text embedded for a search (an
 * interactive call: a turn's question) to the indexing call that embeds the
 * same text moments later (the question, stored as a message), so a turn's
 * question is embedded once instead of twice. With the default in-process
 * model, embedding a message costs the node about 3-4 ms of CPU (README,
 * Tails at a fixed load), and a turn embeds its question, then indexes the
 * question and the reply.
 *
 * Invariants: a kept vector is handed out at most once, to a background
 * (indexing) call, as a copy of what the search got; it is kept at most
 * `ttlMs` and at most `maxEntries` are kept (the oldest go first), so texts
 * that are never indexed (memory:search queries) cost a bounded amount of
 * memory. A text indexed on another node is simply embedded there. The
 * vector is the same model's for the same text, so the index holds what it
 * would have held.
 */
import type { EmbedOptions, Embedder } from "./types.js";

export interface QueryVectorReuseOptions {
  /** Default 512 (384 dimensions: about 0.8 MB). */
  maxEntries?: number;
  /** Default 60,000: an indexer normally takes a message within a linger. */
  ttlMs?: number;
  now?: () => number;
  /** Called with how many texts of an indexing call were taken from searches (for /metrics). */
  onReused?: (count: number) => void;
}

export class QueryVectorReuse implements Embedder {
  private readonly kept = new Map<string, { vector: Float32Array; at: number }>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onReused: ((count: number) => void) | undefined;

  constructor(
    private readonly inner: Embedder,
    opts: QueryVectorReuseOptions = {},
  ) {
    this.maxEntries = opts.maxEntries ?? 512;
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.onReused = opts.onReused;
  }

  get model(): string {
    return this.inner.model;
  }

  get dimensions(): number {
    return this.inner.dimensions;
  }

  async embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]> {
    if (options?.priority === "interactive") {
      const vectors = await this.inner.embed(texts, options);
      texts.forEach((text, i) => this.keep(text, vectors[i]!));
      return vectors;
    }
    const out: (Float32Array | undefined)[] = texts.map((text) => this.take(text));
    const missing = texts.filter((_, i) => !out[i]);
    if (missing.length > 0) {
      const vectors = await this.inner.embed(missing, options);
      let k = 0;
      for (let i = 0; i < out.length; i++) if (!out[i]) out[i] = vectors[k++]!;
    }
    const reused = texts.length - missing.length;
    if (reused > 0) this.onReused?.(reused);
    return out as Float32Array[];
  }

  close(): Promise<void> {
    this.kept.clear();
    return this.inner.close();
  }

  private keep(text: string, vector: Float32Array): void {
    this.kept.delete(text); // re-inserted as the newest
    this.kept.set(text, { vector: vector.slice(), at: this.now() });
    for (const oldest of this.kept.keys()) {
      if (this.kept.size <= this.maxEntries) break;
      this.kept.delete(oldest);
    }
  }

  private take(text: string): Float32Array | undefined {
    const entry = this.kept.get(text);
    if (!entry) return undefined;
    this.kept.delete(text);
    return this.now() - entry.at <= this.ttlMs ? entry.vector : undefined;
  }
}
