export interface EmbedOptions {
  /** Default "background". */
  priority?: "interactive" | "background";
}

/** A model that turns texts into fixed-size, L2-normalised vectors. */
export interface Embedder {
  /** Model identity stored with every indexed message (`chat_messages.embedding_model`). */
  readonly model: string;
  readonly dimensions: number;
  /**
   * Embeds texts in order; the result has one vector per input text.
   * `interactive` work (a query someone is waiting on) goes ahead of queued
   * `background` work (indexing), where the implementation queues at all.
   */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export type MessageRole = "user" | "assistant" | "system";

/** What the vector store keeps beside each vector (DESIGN.md section 7). */
export interface VectorPayload {
  sessionId: string;
  /** The tenant: the session's owner. */
  userId: string;
  /**
   * chat_messages.user_id: the author of a user message; for an assistant
   * row, the user whose turn it was. Null when that user is gone.
   */
  authorId: string | null;
  messageId: number;
  role: MessageRole;
  content: string;
  /** ISO 8601 */
  timestamp: string;
  timestampUnix: number;
}

export interface VectorPoint {
  /** UUID derived from the message id, so a retried upsert overwrites. */
  id: string;
  vector: Float32Array;
  payload: VectorPayload;
}

/**
 * Every search carries the tenant filter. `sessionIds` narrows further: the
 * caller passes the sessions the user may read (one, or all they are a member of).
 */
export interface VectorFilter {
  userId: string;
  sessionIds: readonly string[];
  roles?: readonly MessageRole[];
  /**
   * The memory scoping rule (README, Memory): when set, a point matches only
   * if its session is in `anyAuthorSessionIds` (the session the search is
   * in) or its author is `authorId`: in the user's other sessions, only what
   * they wrote or were answered in.
   */
  authorScope?: { authorId: string; anyAuthorSessionIds: readonly string[] };
}

export interface VectorHit {
  messageId: number;
  sessionId: string;
  score: number;
  role: MessageRole;
  content: string;
  /**
   * The point's author (VectorPayload.authorId), so a quoted memory can be
   * attributed. Null when none is stored: the author is gone, or the point
   * predates authors (a Qdrant point written before migration 009).
   */
  authorId: string | null;
}

export interface VectorStore {
  /** Creates the collection and its payload indexes if missing. Idempotent. */
  ensureReady(): Promise<void>;
  upsert(points: readonly VectorPoint[]): Promise<void>;
  search(vector: Float32Array, filter: VectorFilter, limit: number): Promise<VectorHit[]>;
  deleteBySession(sessionId: string): Promise<void>;
  close(): Promise<void>;
}
