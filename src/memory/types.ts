export interface EmbedOptions {
  /** Default "background". */
  priority?: "interactive" | "background";
}

/** A model that turns texts into fixed-size, L2-normalised vectors. */
export interface Embedder {
  /** Model identity, recorded with the embedding version whose collection holds its vectors (`embedding_versions.model`). */
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

/** The message roles: what a message search covers when it names no roles. */
export const MESSAGE_ROLES: readonly MessageRole[] = ["user", "assistant", "system"];
/**
 * What a stored point is: a message in one of its roles, or a passage of an
 * attachment. Passages share the collections of messages (one per embedding
 * version) and are told apart by this role, which both stores filter on.
 */
export type StoredRole = MessageRole | "passage";

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

/** What the store keeps beside a passage's vector (role "passage"). */
export interface PassagePayload {
  sessionId: string;
  /** The tenant: the session's owner. */
  userId: string;
  /** The attachment's uploader (the author, for the memory scoping rule); null when that user is gone. */
  authorId: string | null;
  passageId: number;
  attachmentId: string;
  content: string;
  /** ISO 8601: when the attachment was uploaded. */
  timestamp: string;
  timestampUnix: number;
}

export interface PassagePoint {
  /** UUID derived from the passage id (its own namespace: never a message's id). */
  id: string;
  vector: Float32Array;
  payload: PassagePayload;
}

/** As VectorFilter, without roles: a passage search finds passages only. */
export type PassageFilter = Omit<VectorFilter, "roles">;

export interface PassageVectorHit {
  passageId: number;
  attachmentId: string;
  sessionId: string;
  score: number;
}

export interface VectorStore {
  /** Creates the collection and its payload indexes if missing. Idempotent. */
  ensureReady(): Promise<void>;
  upsert(points: readonly VectorPoint[]): Promise<void>;
  /** Messages only (roles default to MESSAGE_ROLES): passages never come back from here. */
  search(vector: Float32Array, filter: VectorFilter, limit: number): Promise<VectorHit[]>;
  /** Deletes the session's points: messages and passages. */
  deleteBySession(sessionId: string): Promise<void>;
  upsertPassages(points: readonly PassagePoint[]): Promise<void>;
  /** Passages only, under the same tenant, session and author rules as `search`. */
  searchPassages(vector: Float32Array, filter: PassageFilter, limit: number): Promise<PassageVectorHit[]>;
  /** Deletes the attachment's passages. */
  deleteByAttachment(attachmentId: string): Promise<void>;
  close(): Promise<void>;
}
