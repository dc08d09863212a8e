/**
 * Splits a batch of texts into groups of similar length. A padded batch costs
 * as much as its longest text times its size (attention more), so one long
 * message in a batch of short ones multiplies the work; measured on the
 * MiniLM-L6 shape with chat-like messages, one unsorted batch of 32 ran at less
 * than half the rate of the same texts embedded one by one, and length groups
 * beat both. Text length in characters stands in for token count: it is free
 * and close enough to keep padding low.
 */
export interface LengthGroupOptions {
  /** A group's longest text may be this many times its shortest (plus `slack`). */
  ratio?: number;
  /** Characters of tolerance, so very short texts still group. */
  slack?: number;
  /** Most texts in one group. */
  maxGroup?: number;
}

/** Index groups covering every input exactly once, each group's texts of similar length. */
export function groupByLength(texts: readonly string[], options: LengthGroupOptions = {}): number[][] {
  const ratio = options.ratio ?? 1.5;
  const slack = options.slack ?? 8;
  const maxGroup = Math.max(1, options.maxGroup ?? 32);
  const order = texts.map((_, i) => i).sort((a, b) => texts[a]!.length - texts[b]!.length || a - b);
  const groups: number[][] = [];
  let current: number[] = [];
  let shortest = 0;
  for (const i of order) {
    const length = texts[i]!.length;
    if (current.length > 0 && (length > ratio * shortest + slack || current.length >= maxGroup)) {
      groups.push(current);
      current = [];
    }
    if (current.length === 0) shortest = length;
    current.push(i);
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
