/** Fusion of the lexical and vector legs of hybrid search. */

export interface Ranked {
  messageId: number;
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
 * model that singles a message out lifts it by that margin. Reciprocal rank
 * fusion (used before) gave every leg the same say whatever its scores and
 * rewarded hits both legs found: the messages that repeat a question's
 * common words (README, Retrieval quality).
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
