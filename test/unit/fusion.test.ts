import { describe, expect, it } from "vitest";
import { reciprocalRankFusion, RRF_K } from "../../src/memory/fusion.js";

const ids = (xs: { messageId: number }[]) => xs.map((x) => x.messageId);

describe("reciprocalRankFusion", () => {
  it("ranks what both lists found above what one found", () => {
    const vector = [{ messageId: 1 }, { messageId: 2 }, { messageId: 3 }];
    const lexical = [{ messageId: 3 }, { messageId: 4 }];
    const fused = reciprocalRankFusion([vector, lexical], 10);
    expect(ids(fused)[0]).toBe(3);
    expect(fused[0]!.score).toBeCloseTo(1 / (RRF_K + 3) + 1 / (RRF_K + 1));
    expect(new Set(ids(fused))).toEqual(new Set([1, 2, 3, 4]));
  });

  it("respects the limit and breaks ties by best rank", () => {
    const fused = reciprocalRankFusion([[{ messageId: 10 }, { messageId: 11 }], [{ messageId: 20 }, { messageId: 21 }]], 3);
    expect(fused).toHaveLength(3);
    expect(ids(fused).slice(0, 2).sort()).toEqual([10, 20]);
  });

  it("handles empty lists", () => {
    expect(reciprocalRankFusion([[], []], 5)).toEqual([]);
    expect(ids(reciprocalRankFusion([[{ messageId: 7 }], []], 5))).toEqual([7]);
  });
});
