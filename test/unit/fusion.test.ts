import { describe, expect, it } from "vitest";
import { marginFusion, VECTOR_SPREAD_FLOOR } from "../../src/memory/fusion.js";

describe("marginFusion", () => {
  const hit = (messageId: number, score: number) => ({ messageId, score });

  it("keeps the lexical order when the vector leg's similarities are all alike", () => {
    const lexical = [hit(1, 9), hit(2, 5), hit(3, 4)];
    // A model with random weights: everything about equally similar, and the hits both legs found first.
    const vector = [hit(3, 0.981), hit(2, 0.98), hit(9, 0.979), hit(1, 0.978)];
    expect(marginFusion(lexical, vector, 4).map((h) => h.messageId)).toEqual([1, 2, 3, 9]);
  });

  it("lifts a message the vector leg singles out, by its margin over the median", () => {
    const lexical = [hit(1, 10), hit(2, 9), hit(3, 2)];
    const vector = [hit(7, 0.9), hit(3, 0.5), hit(8, 0.3), hit(9, 0.3), hit(1, 0.2)];
    const fused = marginFusion(lexical, vector, 5, 1);
    // 7: 0.6 above the median; 3: 0.2 + 0.2; 1: 1 + 0; 2: 0.9
    expect(fused.map((h) => h.messageId)).toEqual([1, 2, 7, 3, 8]);
    expect(fused[2]!.score).toBeCloseTo(0.6, 6);
    expect(fused[3]!.score).toBeCloseTo(0.4, 6);
  });

  it("serves either leg alone, and nothing from nothing", () => {
    expect(marginFusion([hit(4, 3), hit(5, 1)], [], 5).map((h) => h.messageId)).toEqual([4, 5]);
    expect(marginFusion([], [hit(6, 0.9), hit(7, 0.5), hit(8, 0.1)], 5).map((h) => h.messageId)).toEqual([6, 7, 8]);
    expect(marginFusion([], [], 5)).toEqual([]);
  });

  /** A seeded generator, so a failing case can be replayed. */
  function rng(seed: number): () => number {
    let x = seed >>> 0;
    return () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return x / 2 ** 32;
    };
  }
  /** Distinct ids drawn from a small pool, so the legs overlap. */
  function ids(r: () => number, n: number): number[] {
    const out = new Set<number>();
    while (out.size < n) out.add(1 + Math.floor(r() * 40));
    return [...out];
  }

  it("keeps the lexical order exactly when the vector leg's spread is below the floor, whatever the scores", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      // Lexical scores in any order (the second hop puts its anchors first, whatever their scores).
      const lexical = ids(r, 1 + Math.floor(r() * 15)).map((id) => hit(id, r() * 20));
      const base = r();
      const vector = ids(r, 1 + Math.floor(r() * 20))
        .map((id) => hit(id, base + r() * VECTOR_SPREAD_FLOOR * 0.99))
        .sort((a, b) => b.score - a.score);
      const lexIds = lexical.map((h) => h.messageId);
      const expected = [...lexIds, ...vector.map((h) => h.messageId).filter((id) => !lexIds.includes(id))];
      expect(marginFusion(lexical, vector, 100).map((h) => h.messageId)).toEqual(expected);
    }
  });

  it("does not reverse the lexical leg's own order even when its scores do", () => {
    // Anchors of the first hop (scores 3 and 2) before the second hop's hits (9, 8).
    const lexical = [hit(1, 3), hit(2, 2), hit(3, 9), hit(4, 8)];
    expect(marginFusion(lexical, [], 4).map((h) => h.messageId)).toEqual([1, 2, 3, 4]);
  });

  it("counts a vector leg whose spread reaches the floor", () => {
    const lexical = [hit(1, 10), hit(2, 9.9)];
    const vector = [hit(2, 0.5 + VECTOR_SPREAD_FLOOR), hit(1, 0.5), hit(3, 0.5)];
    expect(marginFusion(lexical, vector, 3).map((h) => h.messageId)).toEqual([2, 1, 3]);
    const flat = [hit(2, 0.5 + VECTOR_SPREAD_FLOOR / 2), hit(1, 0.5), hit(3, 0.5)];
    expect(marginFusion(lexical, flat, 3).map((h) => h.messageId)).toEqual([1, 2, 3]);
  });

  it("puts the hits both legs agree on first", () => {
    const lexical = [hit(1, 10), hit(2, 8), hit(3, 7), hit(4, 1)];
    const vector = [hit(1, 0.8), hit(2, 0.7), hit(5, 0.69), hit(6, 0.2), hit(7, 0.1), hit(8, 0.1)];
    expect(marginFusion(lexical, vector, 4).map((h) => h.messageId).slice(0, 2)).toEqual([1, 2]);
  });

  it("never places a hit after one that both legs rank no higher", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const lexical = ids(r, 1 + Math.floor(r() * 15)).map((id) => hit(id, r() * 20));
      const vector = ids(r, 1 + Math.floor(r() * 20))
        .map((id) => hit(id, r()))
        .sort((a, b) => b.score - a.score);
      const fused = marginFusion(lexical, vector, 100).map((h) => h.messageId);
      const lexRank = (id: number) => { const i = lexical.findIndex((h) => h.messageId === id); return i < 0 ? Infinity : i; };
      const vecRank = (id: number) => { const i = vector.findIndex((h) => h.messageId === id); return i < 0 ? Infinity : i; };
      for (const [i, a] of fused.entries()) {
        for (const b of fused.slice(i + 1)) {
          // b after a: b must not be ranked before a by both legs (strictly by one).
          const dominates = lexRank(b) <= lexRank(a) && vecRank(b) <= vecRank(a) && (lexRank(b) < lexRank(a) || vecRank(b) < vecRank(a));
          expect(dominates, `seed ${seed}: ${b} placed after ${a}`).toBe(false);
        }
      }
    }
  });
});
