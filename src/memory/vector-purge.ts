/**
 * Deletes a session's vectors from every collection (every embedding
 * version), for retention. Vectors are derived data, but a deleted session's
 * must not outlive it: retention removes the session row only after this
 * succeeded, and tries again on its next run when it did not.
 */
import type { Logger } from "pino";
import type { LifecycleStore } from "../chat/ports.js";
import { QdrantVectorStore, VectorStoreRequestError } from "./qdrant-vector-store.js";

export interface VectorPurger {
  purgeSession(sessionId: string): Promise<void>;
}

export interface QdrantTarget {
  url: string;
  apiKey: string | undefined;
  dimensions: number;
}

export function vectorPurger(store: LifecycleStore, qdrant: QdrantTarget | undefined, batchSize: number, log: Logger): VectorPurger {
  if (!qdrant) {
    return {
      async purgeSession(sessionId) {
        while ((await store.purgeLocalVectors(sessionId, batchSize)) >= batchSize);
      },
    };
  }
  const stores = new Map<string, QdrantVectorStore>();
  return {
    async purgeSession(sessionId) {
      for (const collection of await store.collections()) {
        let s = stores.get(collection);
        if (!s) {
          s = new QdrantVectorStore({ url: qdrant.url, apiKey: qdrant.apiKey, collection, dimensions: qdrant.dimensions, logger: log });
          stores.set(collection, s);
        }
        try {
          await s.deleteBySession(sessionId);
        } catch (err) {
          // A version whose collection was never created (or was dropped) holds nothing to delete.
          if (err instanceof VectorStoreRequestError && err.status === 404) continue;
          throw err;
        }
      }
    },
  };
}
