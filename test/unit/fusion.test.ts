import { describe, expect, it } from "vitest";
import { marginFusion } from "../../src/memory/fusion.js";

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
});
