/**
 * Retrieval over attachment passages: the lexical leg (passage-queries.ts)
 * and the vector leg (the message collections, role "passage"), fused by
 * margin as messages are (fusion.ts). The scope is that of message memory,
 * with the uploader as author (passage-queries.ts says it in SQL). The
 * vector leg carries the tenant, session and author filters; what it finds
 * is read back through the same SQL scope, so a stale or stray point can
 * only be dropped, never shown.
 */
import type { Logger } from "pino";
import type { PgMemoryQueries, SessionScope } from "../db/memory-queries.js";
import type { PassageRow, PassageScope, PgPassageQueries } from "../db/passage-queries.js";
import { marginFusion } from "./fusion.js";
import { relatedWords } from "./query-terms.js";
import type { Embedder, VectorStore } from "./types.js";

export interface PassageHit extends PassageRow {
  score: number;
  source: "vector" | "lexical" | "hybrid";
}

export interface PassageQuery {
  userId: string;
  query: string;
  /** Search only this session (it is then the home session too). */
  sessionId?: string;
  homeSessionId?: string;
  audienceSessionId?: string;
  limit: number;
  minSimilarity?: number;
  /** The query's embedding when the caller computed it already (the message search did); null: none. */
  embedding?: Promise<Float32Array | null>;
  /** The sessions in scope, read by the caller for the message search too (same userId, sessionId and audience). */
  scopes?: Promise<SessionScope[]>;
}

export interface PassageSearchDeps {
  passages: PgPassageQueries;
  memory: PgMemoryQueries;
  /** The searched embedding version's embedder and store (passages live in its collection, like messages). */
  vectors: () => { embedder: Embedder; store: VectorStore } | undefined;
  defaultMinSimilarity: number;
  log: Logger;
}

export class PassageSearch {
  constructor(private readonly d: PassageSearchDeps) {}

  async search(q: PassageQuery): Promise<PassageHit[]> {
    if (q.limit <= 0) return [];
    const home = q.sessionId ?? q.homeSessionId;
    const scope: PassageScope = { userId: q.userId, sessionIds: q.sessionId ? [q.sessionId] : null, homeSessionId: home, audienceSessionId: q.audienceSessionId };
    const depth = Math.max(q.limit * 3, 12);
    // Most turns are in sessions without files: when no session in scope holds a passage, neither leg can find one.
    const scopes = q.scopes ? await q.scopes : undefined;
    if (scopes && !scopes.some((s) => s.hasPassages)) return [];
    if (scopes) q = { ...q, scopes: Promise.resolve(scopes) };
    const [lexical, vector] = await Promise.all([this.d.passages.search(scope, q.query, depth, relatedWords(q.query)), this.vectorSearch(q, scope, depth)]);
    const lex = lexical.map((h) => ({ ...h, source: "lexical" as const }));
    if (vector === null || vector.length === 0) return lex.slice(0, q.limit);
    // Fusion keys hits by messageId: here it carries the passage id.
    const keyed = <T extends { passageId: number }>(h: T) => ({ ...h, messageId: h.passageId });
    const vectorIds = new Set(vector.map((h) => h.passageId));
    const lexIds = new Set(lex.map((h) => h.passageId));
    return marginFusion(lex.map(keyed), vector.map(keyed), q.limit).map(({ messageId: _, ...h }) => ({
      ...h,
      source: vectorIds.has(h.passageId) && lexIds.has(h.passageId) ? ("hybrid" as const) : h.source,
    }));
  }

  /** Null when the vector half cannot answer (no embedder, store down). */
  private async vectorSearch(q: PassageQuery, scope: PassageScope, depth: number): Promise<PassageHit[] | null> {
    const target = this.d.vectors();
    if (!target) return null;
    const store = target.store;
    try {
      const vector = await (q.embedding ?? this.embed(target.embedder, q.query));
      if (!vector) return null;
      const scopes = await (q.scopes ?? this.d.memory.scopes(q.userId, q.sessionId, q.audienceSessionId));
      if (scopes.length === 0) return [];
      const byTenant = new Map<string, string[]>();
      for (const s of scopes) byTenant.set(s.ownerId, [...(byTenant.get(s.ownerId) ?? []), s.sessionId]);
      const authorScope = { authorId: q.userId, anyAuthorSessionIds: scope.homeSessionId ? [scope.homeSessionId] : [] };
      const lists = await Promise.all([...byTenant].map(([userId, sessionIds]) => store.searchPassages(vector, { userId, sessionIds, authorScope }, depth)));
      const min = q.minSimilarity ?? this.d.defaultMinSimilarity;
      const hits = lists.flat().filter((h) => h.score >= min).sort((a, b) => b.score - a.score).slice(0, depth);
      const rows = new Map((await this.d.passages.readable(scope, hits.map((h) => h.passageId))).map((r) => [r.passageId, r]));
      return hits.flatMap((h) => {
        const row = rows.get(h.passageId);
        return row ? [{ ...row, score: h.score, source: "vector" as const }] : [];
      });
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, "passage vector search failed; using lexical results only");
      return null;
    }
  }

  private async embed(embedder: Embedder, query: string): Promise<Float32Array | null> {
    const [v] = await embedder.embed([query], { priority: "interactive" });
    return v ?? null;
  }
}
