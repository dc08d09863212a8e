import type { Embedder } from "./types.js";

export interface HashEmbedderOptions {
  /** Vector width; 384 matches all-MiniLM-L6-v2 so both can share a collection layout. */
  dimensions?: number;
}

/**
 * A lexical embedder: feature hashing of lower-cased word unigrams and bigrams
 * into a fixed number of dimensions, L2-normalised. Texts that share words get
 * similar vectors; synonyms and paraphrases do not. It needs no model and no
 * network, so it serves tests and machines where no embedding model can be
 * loaded, chosen explicitly by configuration; it is not a semantic model.
 */
export class HashEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  private closed = false;

  constructor(options: HashEmbedderOptions = {}) {
    const dimensions = options.dimensions ?? 384;
    if (!Number.isInteger(dimensions) || dimensions < 2) {
      throw new RangeError(`HashEmbedder dimensions must be an integer >= 2, got ${dimensions}`);
    }
    this.dimensions = dimensions;
    // The width is part of the identity: vectors of different widths are different models.
    this.model = `lexical-hash-v1-${dimensions}`;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error("HashEmbedder is closed");
    return texts.map((text) => this.embedOne(text));
  }

  /** Synchronous form, for callers that need a vector without a round trip. */
  embedOne(text: string): Float32Array {
    const vector = new Float32Array(this.dimensions);
    const words = tokenize(text);
    if (words.length === 0) {
      // Every vector must be unit length; texts without words share one fixed direction.
      this.add(vector, "\u0000empty", 1);
    }
    for (let i = 0; i < words.length; i++) {
      this.add(vector, `u\u0000${words[i]}`, 1);
      // Bigrams weigh less: shared words should dominate, word order only refine.
      if (i > 0) this.add(vector, `b\u0000${words[i - 1]}\u0000${words[i]}`, 0.5);
    }
    let sumSquares = 0;
    for (const v of vector) sumSquares += v * v;
    const norm = Math.sqrt(sumSquares);
    if (norm === 0) {
      // Features cancelled out exactly (signed hashing); fall back to the first feature's slot.
      vector[fnv1a(words[0] ?? "") % this.dimensions] = 1;
      return vector;
    }
    for (let i = 0; i < vector.length; i++) vector[i]! /= norm;
    return vector;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private add(vector: Float32Array, feature: string, weight: number): void {
    const h = fnv1a(feature);
    // A second, independent bit picks the sign, so collisions cancel on average instead of piling up.
    const sign = mix(h) & 1 ? 1 : -1;
    vector[h % this.dimensions]! += sign * weight;
  }
}

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu;

function tokenize(text: string): string[] {
  return text.normalize("NFKC").toLowerCase().match(WORD) ?? [];
}

/** 32-bit FNV-1a over UTF-16 code units: stable across platforms and releases. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser, to draw a sign bit uncorrelated with the bucket. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
