/** Fusion of the lexical and vector legs of hybrid search. */

export interface Ranked {
  messageId: number;
}

/** Weight of the vector leg's margin in `marginFusion` (chosen on bench:retrieval, see README). */
export const VECTOR_MARGIN_WEIGHT = 1;

/**
 * A vector leg whose best candidate stands less than this (in cosine
 * similarity) above the median of its candidates tells its candidates
 * apart no better than chance, and counts for nothing. The generated
 * MiniLM-shaped model with random weights stands at most 0.044 above its
 * median on the evaluation (0.013 at the median question); the hash
 * embedder 0.09 at the median question, a real sentence model far more.
 */
export const VECTOR_SPREAD_FLOOR = 0.05;

/**
 * Hybrid fusion that an uninformative vector leg cannot drag below the
 * lexical one.
 *
 * A lexical hit scores its BM25 score relative to the best lexical hit
 * (0..1), capped by the score of every hit the lexical leg ranked before it,
 * so the leg's own order is never reversed by fusion itself, whatever
 * scores come with it (the search returns them sorted; the cap makes that
 * a property of fusion, not an assumption about its input). A hit the vector leg found adds
 * `weight` times how far its cosine similarity stands above the median of
 * that leg's candidates, but only when the leg's best candidate stands at
 * least `floor` above that median: a model whose similarities are all alike
 * (random weights, or a question it cannot tell apart) adds exactly nothing.
 * Ties keep the lexical order; hits only the vector leg found follow in its
 * order.
 *
 * Hence: with no informative vector leg the result is the lexical leg's
 * order exactly, and with no lexical hits it is the vector leg's order. A
 * hit that both legs rank at least as high as another is never placed after
 * it, so hits both legs put first come first. Reciprocal rank fusion (used
 * before) gave every leg the same say whatever its scores and rewarded hits
 * both legs found: the messages that repeat a question's common words
 * (README, Retrieval quality).
 */
export function marginFusion<T extends Ranked & { score: number }>(
  lexical: readonly T[],
  vector: readonly T[],
  limit: number,
  weight = VECTOR_MARGIN_WEIGHT,
  floor = VECTOR_SPREAD_FLOOR,
): (T & { score: number })[] {
  const best = lexical.reduce((m, h) => Math.max(m, h.score), 0);
  const sims = vector.map((h) => h.score).sort((a, b) => a - b);
  const median = sims.length === 0 ? 0 : sims[Math.floor((sims.length - 1) / 2)]!;
  const informative = sims.length > 0 && sims[sims.length - 1]! - median >= floor;
  const fused = new Map<number, { item: T; score: number; rank: number }>();
  let cap = Infinity;
  lexical.forEach((h, rank) => {
    if (fused.has(h.messageId)) return;
    cap = Math.min(cap, best > 0 ? h.score / best : 0);
    fused.set(h.messageId, { item: h, score: cap, rank });
  });
  vector.forEach((h, rank) => {
    const lift = informative ? weight * Math.max(0, h.score - median) : 0;
    const e = fused.get(h.messageId);
    if (e) e.score += lift;
    else fused.set(h.messageId, { item: h, score: lift, rank: lexical.length + rank });
  });
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.rank - b.rank)
    .slice(0, limit)
    .map((e) => ({ ...e.item, score: e.score }));
}
