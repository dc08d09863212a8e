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

/** Weight of the vector leg's margin in `marginFusion` (chosen on bench:retrieval, see README). */
export const VECTOR_MARGIN_WEIGHT = 1;

/**
 * Hybrid fusion that a useless vector leg cannot drag below the lexical one.
 * A hit scores its BM25 score relative to the best lexical hit (0..1), plus
 * `weight` times how far its cosine similarity stands above the median of
 * the vector leg's candidates (0 when it does not, or was not found there).
 * A model whose similarities are all alike (random weights, or a question it
 * cannot tell apart) adds almost nothing, so the lexical order stands; a
 * model that singles a message out lifts it by that margin. RRF instead gives
 * every leg the same say whatever its scores, and rewards hits both legs
 * found: the messages that repeat a question's common words.
 */
export function marginFusion<T extends Ranked & { score: number }>(
  lexical: readonly T[],
  vector: readonly T[],
  limit: number,
  weight = VECTOR_MARGIN_WEIGHT,
): (T & { score: number })[] {
  const best = lexical.reduce((m, h) => Math.max(m, h.score), 0);
  const sims = vector.map((h) => h.score).sort((a, b) => a - b);
  const median = sims.length === 0 ? 0 : sims[Math.floor((sims.length - 1) / 2)]!;
  const fused = new Map<number, { item: T; score: number; rank: number }>();
  lexical.forEach((h, rank) => fused.set(h.messageId, { item: h, score: best > 0 ? h.score / best : 0, rank }));
  vector.forEach((h, rank) => {
    const lift = weight * Math.max(0, h.score - median);
    const e = fused.get(h.messageId);
    if (e) e.score += lift;
    else fused.set(h.messageId, { item: h, score: lift, rank: lexical.length + rank });
  });
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.rank - b.rank)
    .slice(0, limit)
    .map((e) => ({ ...e.item, score: e.score }));
}
