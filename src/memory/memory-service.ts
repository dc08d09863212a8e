/**
 * Memory search: vector, lexical, or both fused. Scope is always the
 * caller's membership: one session they belong to, or all of them, and
 * outside the session the search is in, only what the caller wrote or was
 * answered in (the memory scoping rule, README "Memory"). Vector
 * searches run per tenant (session owner) with both the tenant and the
 * session filter, so a store query can never reach another user's points.
 */
import type { Logger } from "pino";
import type { LexicalHit, PgMemoryQueries, SessionScope } from "../db/memory-queries.js";
import type { MemoryHitPayload } from "../protocol/events.js";
import { AppError } from "../protocol/errors.js";
import { marginFusion } from "./fusion.js";
import { relatedWords, timeWindow } from "./query-terms.js";
import type { Embedder, MessageRole, VectorStore } from "./types.js";
import type { VectorPurge } from "./vector-purge.js";

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
  /**
   * The session the turn is in (the assistant's context builder). With
   * `sessionId` given, that session is the home. The memory scoping rule:
   * in the home session, any message the user may read; in their other
   * sessions, only what they wrote or were answered in.
   */
  homeSessionId?: string;
  /** The query's embedding, when the caller computed it for another search too (attachment passages). */
  embedding?: Promise<Float32Array | null>;
  /** The sessions in scope, when the caller read them for another search too: `scopes(userId, sessionId, audienceSessionId)`. */
  scopes?: Promise<SessionScope[]>;
}

export interface MemoryDeps {
  queries: PgMemoryQueries;
  /**
   * The active embedding version's embedder and store, read once per search
   * (a search never mixes versions); absent when this node cannot embed for
   * it: lexical only.
   */
  vectors: () => { embedder: Embedder; store: VectorStore } | undefined;
  /** Deletes a session's points in every collection of every version. */
  purge: VectorPurge | undefined;
  defaultMode: RetrievalMode;
  defaultMinSimilarity: number;
  log: Logger;
}

/** A hit of the lexical leg: the row's other columns (createdAt) are not part of MemoryHit. */
const lexicalHit = (h: LexicalHit): MemoryHit => ({
  messageId: h.messageId,
  sessionId: h.sessionId,
  score: h.score,
  role: h.role,
  content: h.content,
  source: "lexical",
  authorId: h.authorId,
});

/** What a client is sent of a hit (the protocol's MemoryHitPayload): the author stays inside, for prompts. */
export const publicHit = (h: MemoryHit): MemoryHitPayload => ({
  messageId: h.messageId,
  sessionId: h.sessionId,
  score: h.score,
  role: h.role,
  content: h.content,
  source: h.source,
  archived: h.archived ?? false,
});

export class MemoryService {
  constructor(private readonly d: MemoryDeps) {}

  async search(q: MemoryQuery): Promise<{ hits: SearchHit[]; mode: RetrievalMode; degraded: boolean }> {
    const r = await this.searchUnmarked(q);
    const archived = new Set(r.scopes.filter((s) => s.archived).map((s) => s.sessionId));
    const hits = await this.withAuthors(r.hits);
    return { hits: hits.map((h) => ({ ...h, archived: archived.has(h.sessionId) })), mode: r.mode, degraded: r.degraded };
  }

  /**
   * Every hit names its author, so a prompt can attribute what it quotes. A
   * vector store without one for a point (written before authors were
   * stored) is answered from the message row; a deleted author stays null.
   */
  private async withAuthors(hits: MemoryHit[]): Promise<MemoryHit[]> {
    const unknown = hits.filter((h) => h.source !== "lexical" && (h.authorId ?? null) === null).map((h) => h.messageId);
    if (unknown.length === 0) return hits;
    const authors = await this.d.queries.authorsOf(unknown);
    return hits.map((h) => (authors.has(h.messageId) ? { ...h, authorId: authors.get(h.messageId)! } : h));
  }

  private async searchUnmarked(q: MemoryQuery): Promise<{ hits: MemoryHit[]; mode: RetrievalMode; degraded: boolean; scopes: SessionScope[] }> {
    const mode = q.mode ?? this.d.defaultMode;
    const exclude = q.excludeIds ?? [];
    // Candidates per retriever: more than asked, so fusion has something to fuse.
    const depth = Math.max(q.limit * 3, 20);
    const wantVector = mode !== "lexical";
    const wantLexical = mode !== "vector";
    const lexical0 = {
      userId: q.userId,
      sessionIds: q.sessionId ? [q.sessionId] : null, // the SQL checks membership itself
      query: q.query,
      excludeIds: exclude,
      audienceSessionId: q.audienceSessionId,
      homeSessionId: q.sessionId ?? q.homeSessionId,
      related: relatedWords(q.query),
      window: timeWindow(q.query, new Date()),
    };
    // The lexical query needs no scope lookup, so it runs beside scope lookup + vector search.
    const scopesP = q.scopes ?? this.d.queries.scopes(q.userId, q.sessionId, q.audienceSessionId);
    // The query's embedding needs no scope either: it is computed while the scopes are read.
    const target = wantVector ? this.d.vectors() : undefined;
    const embeddingP = target ? (q.embedding ?? this.embedWith(target.embedder, q.query)) : Promise.resolve(null);
    const [scopes, vector, lexical] = await Promise.all([
      scopesP,
      target ? Promise.all([scopesP, embeddingP]).then(([scopes, embedding]) => this.vectorSearch(target.store, q, embedding, scopes, depth, exclude)) : Promise.resolve(null),
      // One search: an answer told over two messages joined by a name is scored as one text inside it (PgMemoryQueries.search).
      wantLexical ? this.d.queries.search({ ...lexical0, limit: depth }) : Promise.resolve(null),
    ]);
    if (q.sessionId && scopes.length === 0) throw new AppError("NOT_FOUND", "session not found");
    if (vector === null) {
      // The vector half is absent or down: serve what the lexical index finds.
      const lex = lexical ?? (await this.d.queries.search({ ...lexical0, limit: q.limit }));
      return { hits: lex.slice(0, q.limit).map(lexicalHit), mode: "lexical", degraded: wantVector, scopes };
    }
    const lexHits: MemoryHit[] = (lexical ?? []).map(lexicalHit);
    if (mode === "vector") return { hits: vector.slice(0, q.limit), mode, degraded: false, scopes };
    if (mode === "lexical") return { hits: lexHits.slice(0, q.limit), mode, degraded: false, scopes };
    const vectorIds = new Set(vector.map((h) => h.messageId));
    const lexIds = new Set(lexHits.map((h) => h.messageId));
    const fused = marginFusion<MemoryHit>(lexHits, vector, q.limit).map((h) => ({
      ...h,
      source: vectorIds.has(h.messageId) && lexIds.has(h.messageId) ? ("hybrid" as const) : h.source,
    }));
    return { hits: fused, mode, degraded: false, scopes };
  }

  /** The sessions a search by `userId` covers (see PgMemoryQueries.scopes); one read can serve the message and passage searches. */
  scopes(userId: string, sessionId?: string, audienceSessionId?: string): Promise<SessionScope[]> {
    return this.d.queries.scopes(userId, sessionId, audienceSessionId);
  }

  /** Null when there is no embedder or it fails (the search then serves lexical results). */
  async embedQuery(query: string): Promise<Float32Array | null> {
    const target = this.d.vectors();
    return target ? this.embedWith(target.embedder, query) : null;
  }

  private async embedWith(embedder: Embedder, query: string): Promise<Float32Array | null> {
    try {
      const [vector] = await embedder.embed([query], { priority: "interactive" });
      return vector ?? null;
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, "query embedding failed; using lexical results only");
      return null;
    }
  }

  /** Null when the vector half cannot answer (no embedding, store down). */
  private async vectorSearch(
    store: VectorStore,
    q: MemoryQuery,
    vector: Float32Array | null,
    scopes: SessionScope[],
    depth: number,
    exclude: readonly number[],
  ): Promise<MemoryHit[] | null> {
    if (!vector) return null;
    if (scopes.length === 0) return [];
    try {
      const byTenant = new Map<string, string[]>();
      for (const s of scopes) byTenant.set(s.ownerId, [...(byTenant.get(s.ownerId) ?? []), s.sessionId]);
      const skip = new Set(exclude);
      const home = q.sessionId ?? q.homeSessionId;
      const authorScope = { authorId: q.userId, anyAuthorSessionIds: home ? [home] : [] };
      const min = q.minSimilarity ?? this.d.defaultMinSimilarity;
      const lists = await Promise.all(
        [...byTenant].map(([userId, sessionIds]) => store.search(vector, { userId, sessionIds, authorScope }, depth + skip.size)),
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

  /** Deleting a session deletes its points in every version's collection; the rows themselves cascade in PostgreSQL. */
  async forgetSession(sessionId: string): Promise<void> {
    if (!this.d.purge) return;
    try {
      await this.d.purge.deleteSessions([sessionId]);
    } catch (err) {
      // Searches are scoped to sessions the caller is a member of, so orphaned points are unreachable.
      this.d.log.warn({ err: (err as Error).message, sessionId }, "could not delete a deleted session's vectors");
    }
  }
}
