/**
 * Memory search: vector, lexical, or both fused. Scope is always the
 * caller's membership: one session they belong to, or all of them. Vector
 * searches run per tenant (session owner) with both the tenant and the
 * session filter, so a store query can never reach another user's points.
 */
import type { Logger } from "pino";
import type { PgMemoryQueries, SessionScope } from "../db/memory-queries.js";
import { AppError } from "../protocol/errors.js";
import { reciprocalRankFusion } from "./fusion.js";
import type { Embedder, MessageRole, VectorStore } from "./types.js";

export type RetrievalMode = "hybrid" | "vector" | "lexical";

export interface MemoryHit {
  messageId: number;
  sessionId: string;
  score: number;
  role: MessageRole;
  content: string;
  /** Which retriever(s) found it. */
  source: "vector" | "lexical" | "hybrid";
  /** Who wrote it (for a reply: whose turn it was), when the retriever knows; null for a deleted user. */
  authorId?: string | null;
  /** The hit's session is archived (set on what search returns). */
  archived?: boolean;
}

/** A hit as search returns it. */
export type SearchHit = MemoryHit & { archived: boolean };

export interface MemoryQuery {
  userId: string;
  query: string;
  sessionId?: string;
  limit: number;
  mode?: RetrievalMode;
  /** Vector hits below this cosine similarity are dropped. */
  minSimilarity?: number;
  /** Message ids the caller already has (the recent window): never returned. */
  excludeIds?: readonly number[];
  /**
   * The session whose members will see what is found (an assistant reply's
   * session): only sessions all of them may read are searched.
   */
  audienceSessionId?: string;
}

export interface MemoryDeps {
  queries: PgMemoryQueries;
  /** Absent when no embedder could be loaded: lexical only. */
  embedder: () => Embedder | undefined;
  store: VectorStore | undefined;
  defaultMode: RetrievalMode;
  defaultMinSimilarity: number;
  log: Logger;
}

export class MemoryService {
  constructor(private readonly d: MemoryDeps) {}

  async search(q: MemoryQuery): Promise<{ hits: SearchHit[]; mode: RetrievalMode; degraded: boolean }> {
    const r = await this.searchUnmarked(q);
    const archived = new Set(r.scopes.filter((s) => s.archived).map((s) => s.sessionId));
    return { hits: r.hits.map((h) => ({ ...h, archived: archived.has(h.sessionId) })), mode: r.mode, degraded: r.degraded };
  }

  private async searchUnmarked(q: MemoryQuery): Promise<{ hits: MemoryHit[]; mode: RetrievalMode; degraded: boolean; scopes: SessionScope[] }> {
    const mode = q.mode ?? this.d.defaultMode;
    const exclude = q.excludeIds ?? [];
    // Candidates per retriever: more than asked, so fusion has something to fuse.
    const depth = Math.max(q.limit * 3, 20);
    const wantVector = mode !== "lexical";
    const wantLexical = mode !== "vector";
    const lexicalScope = q.sessionId ? [q.sessionId] : null; // the SQL checks membership itself
    // The lexical query needs no scope lookup, so it runs beside scope lookup + vector search.
    const scopesP = this.d.queries.scopes(q.userId, q.sessionId, q.audienceSessionId);
    // The query's embedding needs no scope either: it is computed while the scopes are read.
    const embeddingP = wantVector ? this.embedQuery(q.query) : Promise.resolve(null);
    const [scopes, vector, lexical] = await Promise.all([
      scopesP,
      wantVector ? Promise.all([scopesP, embeddingP]).then(([scopes, embedding]) => this.vectorSearch(q, embedding, scopes, depth, exclude)) : Promise.resolve(null),
      wantLexical ? this.d.queries.search(q.userId, lexicalScope, q.query, depth, exclude, q.audienceSessionId) : Promise.resolve(null),
    ]);
    if (q.sessionId && scopes.length === 0) throw new AppError("NOT_FOUND", "session not found");
    if (vector === null) {
      // The vector half is absent or down: serve what the lexical index finds.
      const lex = lexical ?? (await this.d.queries.search(q.userId, lexicalScope, q.query, q.limit, exclude, q.audienceSessionId));
      return { hits: lex.slice(0, q.limit).map((h) => ({ ...h, source: "lexical" as const })), mode: "lexical", degraded: wantVector, scopes };
    }
    const lexHits: MemoryHit[] = (lexical ?? []).map((h) => ({ ...h, source: "lexical" as const }));
    if (mode === "vector") return { hits: vector.slice(0, q.limit), mode, degraded: false, scopes };
    if (mode === "lexical") return { hits: lexHits.slice(0, q.limit), mode, degraded: false, scopes };
    const vectorIds = new Set(vector.map((h) => h.messageId));
    const lexIds = new Set(lexHits.map((h) => h.messageId));
    const fused = reciprocalRankFusion<MemoryHit>([vector, lexHits], q.limit).map((h) => ({
      ...h,
      source: vectorIds.has(h.messageId) && lexIds.has(h.messageId) ? ("hybrid" as const) : h.source,
    }));
    return { hits: fused, mode, degraded: false, scopes };
  }

  /** Null when there is no embedder or it fails (the search then serves lexical results). */
  private async embedQuery(query: string): Promise<Float32Array | null> {
    const embedder = this.d.embedder();
    if (!embedder || !this.d.store) return null;
    try {
      const [vector] = await embedder.embed([query], { priority: "interactive" });
      return vector ?? null;
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, "query embedding failed; using lexical results only");
      return null;
    }
  }

  /** Null when the vector half cannot answer (no embedding, store down). */
  private async vectorSearch(q: MemoryQuery, vector: Float32Array | null, scopes: SessionScope[], depth: number, exclude: readonly number[]): Promise<MemoryHit[] | null> {
    if (!vector || !this.d.store) return null;
    if (scopes.length === 0) return [];
    try {
      const byTenant = new Map<string, string[]>();
      for (const s of scopes) byTenant.set(s.ownerId, [...(byTenant.get(s.ownerId) ?? []), s.sessionId]);
      const skip = new Set(exclude);
      const min = q.minSimilarity ?? this.d.defaultMinSimilarity;
      const lists = await Promise.all(
        [...byTenant].map(([userId, sessionIds]) => this.d.store!.search(vector, { userId, sessionIds }, depth + skip.size)),
      );
      return lists
        .flat()
        .filter((h) => h.score >= min && !skip.has(h.messageId))
        .sort((a, b) => b.score - a.score)
        .slice(0, depth)
        .map((h) => ({ ...h, source: "vector" as const }));
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, "vector search failed; using lexical results only");
      return null;
    }
  }

  /** Deleting a session deletes its points; the rows themselves cascade in PostgreSQL. */
  async forgetSession(sessionId: string): Promise<void> {
    if (!this.d.store) return;
    try {
      await this.d.store.deleteBySession(sessionId);
    } catch (err) {
      // Searches are scoped to sessions the caller is a member of, so orphaned points are unreachable.
      this.d.log.warn({ err: (err as Error).message, sessionId }, "could not delete a deleted session's vectors");
    }
  }
}
