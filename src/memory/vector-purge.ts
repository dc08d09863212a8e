/**
 * Deletes the vectors of whole sessions from every collection of every
 * embedding version, not only the one in use: an account deletion or a
 * retention sweep must not leave points behind in a collection an older
 * model filled. Retention removes a session row only after this succeeded,
 * and tries again on its next run when it did not.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { LifecycleStore } from "../chat/ports.js";
import { allCollections } from "../db/embedding-versions.js";
import { pruneVectorDeletions } from "./pg-vector-store.js";
import { QdrantVectorStore, VectorStoreRequestError } from "./qdrant-vector-store.js";

export interface VectorPurge {
  /** Deletes every point of the sessions; throws when the store cannot (nothing is assumed deleted then). */
  deleteSessions(sessionIds: readonly string[]): Promise<void>;
}

/** Deletes every passage point of attachments, in every collection (the passage runner drains sql/021's queue through it). */
export interface AttachmentVectorPurge {
  deleteAttachments(attachmentIds: readonly string[]): Promise<void>;
}

/** The PostgreSQL store keeps every collection in one table: one statement covers them all. */
export class PgVectorPurge implements VectorPurge, AttachmentVectorPurge {
  constructor(private readonly pool: pg.Pool) {}

  async deleteSessions(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await this.pool.query("DELETE FROM message_vectors WHERE session_id = ANY ($1::uuid[])", [sessionIds]);
    await pruneVectorDeletions(this.pool);
  }

  /** sql/021's trigger deletes passage rows with their passages; this covers rows written after (an indexer racing the delete). */
  async deleteAttachments(attachmentIds: readonly string[]): Promise<void> {
    if (attachmentIds.length === 0) return;
    await this.pool.query("DELETE FROM message_vectors WHERE attachment_id = ANY ($1::uuid[])", [attachmentIds]);
  }
}

/** Qdrant: each collection listed in embedding_versions, one filtered delete per session. */
export class QdrantVectorPurge implements VectorPurge, AttachmentVectorPurge {
  private readonly stores = new Map<string, QdrantVectorStore>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly qdrant: { url: string; apiKey: string | undefined },
    private readonly log: Logger,
  ) {}

  async deleteSessions(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    for (const { collection, dimensions } of await allCollections(this.pool)) {
      const store = this.storeFor(collection, dimensions);
      for (const sessionId of sessionIds) {
        try {
          await store.deleteBySession(sessionId);
        } catch (err) {
          // A version whose collection was never created (or was dropped) holds nothing to delete.
          if (err instanceof VectorStoreRequestError && err.status === 404) break;
          throw err;
        }
      }
    }
  }

  async deleteAttachments(attachmentIds: readonly string[]): Promise<void> {
    if (attachmentIds.length === 0) return;
    for (const { collection, dimensions } of await allCollections(this.pool)) {
      const store = this.storeFor(collection, dimensions);
      for (const attachmentId of attachmentIds) {
        try {
          await store.deleteByAttachment(attachmentId);
        } catch (err) {
          if (err instanceof VectorStoreRequestError && err.status === 404) break;
          throw err;
        }
      }
    }
  }

  private storeFor(collection: string, dimensions: number): QdrantVectorStore {
    let s = this.stores.get(collection);
    if (!s) {
      s = new QdrantVectorStore({ url: this.qdrant.url, apiKey: this.qdrant.apiKey, collection, dimensions, logger: this.log });
      this.stores.set(collection, s);
    }
    return s;
  }
}

/** One session at a time, for retention. */
export interface VectorPurger {
  purgeSession(sessionId: string): Promise<void>;
}

/**
 * Retention's purge: on the PostgreSQL store in batches of `batchSize` rows
 * (a session's vectors may be many; each batch holds its locks briefly), on
 * Qdrant through `qdrant` (every collection).
 */
export function vectorPurger(store: LifecycleStore, qdrant: VectorPurge | undefined, batchSize: number): VectorPurger {
  if (qdrant) return { purgeSession: (sessionId) => qdrant.deleteSessions([sessionId]) };
  return {
    async purgeSession(sessionId) {
      while ((await store.purgeLocalVectors(sessionId, batchSize)) >= batchSize);
    },
  };
}
