import { describe, expect, it } from "vitest";
import { groupByLength } from "../../src/memory/length-groups.js";

describe("groupByLength", () => {
  const texts = ["ok", "a much longer message that goes on and on for a while", "yes", "medium sized text", "no", "another medium text"];

  it("covers every input exactly once", () => {
    const groups = groupByLength(texts);
    expect(groups.flat().sort()).toEqual(texts.map((_, i) => i));
  });

  it("keeps short and long texts apart", () => {
    const groups = groupByLength(texts).map((g) => g.map((i) => texts[i]!));
    expect(groups).toEqual([["ok", "no", "yes"], ["medium sized text", "another medium text"], [texts[1]]]);
  });

  it("caps group size", () => {
    const same = Array.from({ length: 10 }, (_, i) => `text ${i}`);
    expect(groupByLength(same, { maxGroup: 4 }).map((g) => g.length)).toEqual([4, 4, 2]);
  });

  it("returns no groups for no texts", () => {
    expect(groupByLength([])).toEqual([]);
  });
});
