import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { splitPassages } from "../../src/files/extract/passages.js";

const opts = { size: 100, overlap: 30 };

describe("splitPassages", () => {
  it("keeps a short section whole, with its page and offsets", () => {
    const text = "  A short page of text.  ";
    expect(splitPassages([{ page: 3, text }], opts)).toEqual([{ ordinal: 0, page: 3, start: 2, end: 23, content: "A short page of text." }]);
  });

  it("cuts at paragraph ends first, and each passage is its exact slice of the section", () => {
    const paras = ["First paragraph about the harbour budget.", "Second paragraph: the vault code is 7781.", "Third paragraph closes the report with thanks."];
    const text = paras.join("\n\n");
    const ps = splitPassages([{ page: null, text }], opts);
    for (const p of ps) {
      expect(text.slice(p.start, p.end).trim()).toBe(p.content);
      expect(p.content.length).toBeLessThanOrEqual(opts.size);
    }
    // No passage starts or ends inside a paragraph when paragraphs fit.
    for (const p of ps) {
      expect(paras.some((x) => p.content.startsWith(x))).toBe(true);
      expect(paras.some((x) => p.content.endsWith(x))).toBe(true);
    }
    expect(ps.map((p) => p.content).join("\n")).toContain("7781");
  });

  it("splits a long paragraph at sentence ends with overlap", () => {
    const sentences = Array.from({ length: 12 }, (_, i) => `Sentence number ${i} is here.`);
    const text = sentences.join(" ");
    const ps = splitPassages([{ page: 1, text }], opts);
    expect(ps.length).toBeGreaterThan(3);
    for (const p of ps) expect(p.content).toMatch(/^Sentence number \d+ is here\.( Sentence number \d+ is here\.)*$/);
    // Consecutive passages share text (the overlap) and move forward.
    for (let i = 1; i < ps.length; i++) {
      expect(ps[i]!.start).toBeGreaterThan(ps[i - 1]!.start);
      expect(ps[i]!.start).toBeLessThan(ps[i - 1]!.end);
    }
  });

  it("never spans pages, and numbers passages across the document", () => {
    const ps = splitPassages([{ page: 1, text: "page one text" }, { page: 2, text: "page two text" }], opts);
    expect(ps.map((p) => [p.ordinal, p.page, p.content])).toEqual([[0, 1, "page one text"], [1, 2, "page two text"]]);
  });

  it("cuts a word longer than a passage", () => {
    const ps = splitPassages([{ page: null, text: "x".repeat(250) }], opts);
    expect(ps.map((p) => p.content.length)).toEqual([100, 100, 50]);
  });

  it("covers every word of any text, within size, moving forward (property)", () => {
    const word = fc.stringMatching(/^[a-z]{1,15}$/);
    const sep = fc.constantFrom(" ", " ", ". ", "\n", "\n\n", "! ");
    const textArb = fc.array(fc.tuple(word, sep), { minLength: 1, maxLength: 200 }).map((parts) => parts.map(([w, s]) => w + s).join(""));
    fc.assert(
      fc.property(textArb, fc.integer({ min: 20, max: 300 }), fc.integer({ min: 0, max: 150 }), (text, size, overlap) => {
        const ps = splitPassages([{ page: null, text }], { size, overlap });
        const covered = new Uint8Array(text.length);
        let prev = -1;
        for (const p of ps) {
          expect(p.content.length).toBeLessThanOrEqual(size);
          expect(p.start).toBeGreaterThan(prev);
          prev = p.start;
          covered.fill(1, p.start, p.end);
        }
        for (let i = 0; i < text.length; i++) if (!/\s/.test(text[i]!)) expect(covered[i]).toBe(1);
      }),
      { numRuns: 300 },
    );
  });
});
