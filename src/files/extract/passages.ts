/**
 * Splits extracted text into passages for retrieval: about `size`
 * characters each, cut at paragraph ends where possible, else at sentence
 * ends, else between words (a word longer than a passage is cut where it
 * must). Consecutive passages of a section share about `overlap`
 * characters, so a fact that straddles a cut is whole in one of them.
 * Passages never span two pages: each one's page is exact. Each passage is
 * the exact text of its section between `start` and `end`.
 */
import type { TextSection } from "./types.js";

export interface Passage {
  /** 0-based position in the document. */
  ordinal: number;
  page: number | null;
  /** Character offsets in the section's (page's) text. */
  start: number;
  end: number;
  content: string;
}

export interface PassageOptions {
  size: number;
  overlap: number;
}

interface Piece {
  start: number;
  end: number;
}

export function splitPassages(sections: readonly TextSection[], opts: PassageOptions): Passage[] {
  if (opts.size < 20) throw new RangeError(`passage size must be at least 20 characters, got ${opts.size}`);
  const overlap = Math.max(0, Math.min(opts.overlap, Math.floor(opts.size / 2)));
  const out: Passage[] = [];
  for (const section of sections) {
    const pieces = piecesOf(section.text, opts.size);
    let i = 0;
    while (i < pieces.length) {
      // Greedy: take pieces while the passage stays within size (always at least one).
      let j = i;
      while (j + 1 < pieces.length && pieces[j + 1]!.end - pieces[i]!.start <= opts.size) j++;
      const start = pieces[i]!.start;
      const end = pieces[j]!.end;
      const content = section.text.slice(start, end).trim();
      if (content.length > 0) out.push({ ordinal: out.length, page: section.page, start, end, content });
      if (j + 1 >= pieces.length) break;
      // The next passage starts at the earliest piece within `overlap` of this one's end, but always moves forward.
      let k = j + 1;
      while (k - 1 > i && end - pieces[k - 1]!.start <= overlap) k--;
      i = k;
    }
  }
  return out;
}

/**
 * The section cut into pieces no longer than `size`, covering all its
 * non-blank text: paragraphs, or the sentences of a long paragraph, or the
 * words of a long sentence, or slices of a long word.
 */
function piecesOf(text: string, size: number): Piece[] {
  const pieces: Piece[] = [];
  for (const para of spans(text, /\n\s*\n/g, 0, text.length)) {
    if (para.end - para.start <= size) {
      pieces.push(para);
      continue;
    }
    for (const sentence of spans(text, /(?<=[.!?;:])\s+|\n/g, para.start, para.end)) {
      if (sentence.end - sentence.start <= size) {
        pieces.push(sentence);
        continue;
      }
      for (const word of spans(text, /\s+/g, sentence.start, sentence.end)) {
        for (let s = word.start; s < word.end; s += size) pieces.push({ start: s, end: Math.min(word.end, s + size) });
      }
    }
  }
  return pieces;
}

/** The non-blank stretches of text[from, to) between matches of `separator`. */
function spans(text: string, separator: RegExp, from: number, to: number): Piece[] {
  const out: Piece[] = [];
  const push = (s: number, e: number) => {
    while (s < e && /\s/.test(text[s]!)) s++;
    while (e > s && /\s/.test(text[e - 1]!)) e--;
    if (e > s) out.push({ start: s, end: e });
  };
  const slice = text.slice(from, to);
  separator.lastIndex = 0;
  let last = 0;
  for (let m = separator.exec(slice); m; m = separator.exec(slice)) {
    if (m[0].length === 0) {
      separator.lastIndex++;
      continue;
    }
    push(from + last, from + m.index);
    last = m.index + m[0].length;
  }
  push(from + last, to);
  return out;
}
