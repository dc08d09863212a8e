import { describe, expect, it } from "vitest";
import { QueryVectorReuse } from "../../src/memory/query-vector-reuse.js";
import type { EmbedOptions, Embedder } from "../../src/memory/types.js";

/** Embeds a text as [its length, call number], counting the texts it was asked for. */
class Counting implements Embedder {
  readonly model = "counting";
  readonly dimensions = 2;
  calls: string[][] = [];
  async embed(texts: readonly string[], _options?: EmbedOptions): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    return texts.map((t) => Float32Array.from([t.length, this.calls.length]));
  }
  async close(): Promise<void> {}
}

describe("QueryVectorReuse", () => {
  it("indexes a searched text with the search's vector, once, and embeds the rest of the batch", async () => {
    const inner = new Counting();
    let reused = 0;
    const e = new QueryVectorReuse(inner, { onReused: (n) => (reused += n) });
    const [q] = await e.embed(["where is the key"], { priority: "interactive" });
    const batch = await e.embed(["hello", "where is the key", "bye"]);
    expect(inner.calls).toEqual([["where is the key"], ["hello", "bye"]]);
    expect(Array.from(batch[1]!)).toEqual(Array.from(q!));
    expect(batch[1]).not.toBe(q); // a copy: the search may still hold its own
    expect(Array.from(batch[0]!)).toEqual([5, 2]);
    expect(Array.from(batch[2]!)).toEqual([3, 2]);
    expect(reused).toBe(1);
    // handed out once: the same text indexed again (another message) is embedded
    await e.embed(["where is the key"]);
    expect(inner.calls.at(-1)).toEqual(["where is the key"]);
    expect(e.model).toBe("counting");
    expect(e.dimensions).toBe(2);
  });

  it("keeps at most maxEntries vectors, the newest, for at most ttlMs", async () => {
    let now = 0;
    const inner = new Counting();
    let reused = 0;
    const e = new QueryVectorReuse(inner, { maxEntries: 2, ttlMs: 1000, now: () => now, onReused: (n) => (reused += n) });
    for (const q of ["a", "bb", "ccc"]) await e.embed([q], { priority: "interactive" });
    await e.embed(["a", "bb", "ccc"]);
    expect(inner.calls.at(-1)).toEqual(["a"]); // the oldest went
    await e.embed(["dddd"], { priority: "interactive" });
    now = 1001;
    await e.embed(["dddd"]);
    expect(inner.calls.at(-1)).toEqual(["dddd"]); // too old
    expect(reused).toBe(2);
  });

  it("never reuses for a search: interactive calls always embed", async () => {
    const inner = new Counting();
    const e = new QueryVectorReuse(inner);
    await e.embed(["same"], { priority: "interactive" });
    await e.embed(["same"], { priority: "interactive" });
    expect(inner.calls).toEqual([["same"], ["same"]]);
  });
});
