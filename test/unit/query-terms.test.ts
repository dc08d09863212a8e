import { describe, expect, it } from "vitest";
import { relatedWords, timeWindow } from "../../src/memory/query-terms.js";

describe("relatedWords", () => {
  it("adds the group of each word, possessives and plurals included, but not the question's own words", () => {
    const r = relatedWords("What is my dog's name?").split(" ");
    expect(r).toEqual(expect.arrayContaining(["beagle", "puppy", "called", "named"]));
    expect(r).not.toContain("dog");
    expect(r).not.toContain("name");
    expect(relatedWords("the quarterly figures")).toBe("");
  });
});

describe("timeWindow", () => {
  const now = new Date("2026-12-02T16:00:00Z");
  it("reads a month as the latest one not after now", () => {
    expect(timeWindow("what did I say about the gym in March?", now)).toEqual({ from: new Date("2026-03-01T00:00:00Z"), to: new Date("2026-04-01T00:00:00Z") });
    expect(timeWindow("back in december", new Date("2026-11-02T00:00:00Z"))).toEqual({ from: new Date("2025-12-01T00:00:00Z"), to: new Date("2026-01-01T00:00:00Z") });
  });
  it("reads 'may' as a month only after 'in'", () => {
    expect(timeWindow("may I ask about the gym", now)).toBeNull();
    expect(timeWindow("the gym in May", now)!.from).toEqual(new Date("2026-05-01T00:00:00Z"));
  });
  it("reads yesterday, last week and last month relative to now", () => {
    expect(timeWindow("what did I say yesterday", now)).toEqual({ from: new Date("2026-12-01T00:00:00Z"), to: new Date("2026-12-02T00:00:00Z") });
    expect(timeWindow("last week", now)!.from).toEqual(new Date("2026-11-25T00:00:00Z"));
    expect(timeWindow("last month", now)).toEqual({ from: new Date("2026-11-01T00:00:00Z"), to: new Date("2026-12-01T00:00:00Z") });
    expect(timeWindow("what is my dog called", now)).toBeNull();
  });
});
