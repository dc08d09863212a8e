/** Reciprocal rank fusion: merges ranked lists without comparing their scores. */

export interface Ranked {
  messageId: number;
}

/** Conventional constant from Cormack et al. (2009); damps the weight of the very top ranks. */
export const RRF_K = 60;

export function reciprocalRankFusion<T extends Ranked>(lists: readonly (readonly T[])[], limit: number, k = RRF_K): (T & { score: number })[] {
  const fused = new Map<number, { item: T; score: number; best: number }>();
  for (const list of lists) {
    list.forEach((item, rank) => {
      const add = 1 / (k + rank + 1);
      const e = fused.get(item.messageId);
      if (e) {
        e.score += add;
        e.best = Math.min(e.best, rank);
      } else fused.set(item.messageId, { item, score: add, best: rank });
    });
  }
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.best - b.best || b.item.messageId - a.item.messageId)
    .slice(0, limit)
    .map((e) => ({ ...e.item, score: e.score }));
}
