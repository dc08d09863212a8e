/**
 * Deletes the vectors of whole sessions from every collection of every
 * embedding version, not only the one in use: an account deletion must not
 * leave points behind in a collection an older model filled.
 */
import type pg from "pg";
import type { Logger } from "pino";
import { allCollections } from "../db/embedding-versions.js";
import { QdrantVectorStore, VectorStoreRequestError } from "./qdrant-vector-store.js";

export interface VectorPurge {
  /** Deletes every point of the sessions; throws when the store cannot (nothing is assumed deleted then). */
  deleteSessions(sessionIds: readonly string[]): Promise<void>;
}

/** The PostgreSQL store keeps every collection in one table: one statement covers them all. */
export class PgVectorPurge implements VectorPurge {
  constructor(private readonly pool: pg.Pool) {}

  async deleteSessions(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await this.pool.query("DELETE FROM message_vectors WHERE session_id = ANY ($1::uuid[])", [sessionIds]);
  }
}

/** Qdrant: each collection listed in embedding_versions, one filtered delete per session. */
export class QdrantVectorPurge implements VectorPurge {
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

  private storeFor(collection: string, dimensions: number): QdrantVectorStore {
    let s = this.stores.get(collection);
    if (!s) {
      s = new QdrantVectorStore({ url: this.qdrant.url, apiKey: this.qdrant.apiKey, collection, dimensions, logger: this.log });
      this.stores.set(collection, s);
    }
    return s;
  }
}
