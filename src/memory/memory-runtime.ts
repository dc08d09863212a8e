/**
 * Builds the memory side from configuration: embedder, vector store,
 * indexer, search. The model loads in the background: the server serves chat
 * meanwhile, and if the model never loads, retrieval stays lexical and
 * /readyz says why.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { collectionFor } from "../db/embedding-versions.js";
import { INDEX_CHANNEL, PgIndexQueue } from "../db/index-queue.js";
import { PgListener } from "../db/listener.js";
import { PgMemoryQueries } from "../db/memory-queries.js";
import { HashEmbedder } from "./hash-embedder.js";
import { Indexer, type IndexerMetrics } from "./indexer.js";
import { MemoryService } from "./memory-service.js";
import { OpenAiEmbedder } from "./openai-embedder.js";
import { PgVectorStore } from "./pg-vector-store.js";
import { QdrantVectorStore } from "./qdrant-vector-store.js";
import { TransformersEmbedder } from "./transformers-embedder.js";
import type { Embedder, VectorStore } from "./types.js";

export interface MemoryRuntime {
  memory: MemoryService;
  queue: PgIndexQueue;
  /** A message was stored: index it soon (here and, through NOTIFY, on other nodes). */
  messageStored(): void;
  embedderStatus(): string;
  /** Resolves when the embedder is usable (or rejects with why it is not). */
  embedderReady: Promise<void>;
  vectorStoreName: string;
  indexer(): Indexer | undefined;
  stop(): Promise<void>;
}

export async function startMemory(config: Config, pool: pg.Pool, databaseUrl: string, log: Logger, metrics: IndexerMetrics): Promise<MemoryRuntime> {
  const mlog = log.child({ component: "memory" });
  const queue = new PgIndexQueue(pool);
  const queries = new PgMemoryQueries(pool, { windowRows: config.retrieval.lexicalWindow, termCap: config.retrieval.lexicalTermCap });

  let embedder: Embedder | undefined;
  let status = "loading";
  let ready = false;
  // Constructing is quick; a transformers.js model then loads in its workers in the background.
  const created = createEmbedder(config);
  const embedderReady = (async () => {
    if (!created) throw new Error("disabled (EMBEDDER=none)");
    if (created instanceof TransformersEmbedder) await created.ready();
    embedder = created;
    ready = true;
    status = `ready (${created.model}, ${created.dimensions} dimensions)`;
  })();
  embedderReady.catch((err: Error) => {
    status = `unavailable: ${err.message}`;
    mlog.warn({ err: err.message }, "embedder unavailable: retrieval falls back to lexical search, messages wait unindexed");
  });

  const dims = config.embedding.dimensions;
  let store: VectorStore;
  let vectorStoreName: string;
  const collection = await collectionFor(pool, config.qdrant.collectionPrefix, created?.model ?? "none", dims);
  if (config.qdrant.url) {
    store = new QdrantVectorStore({ url: config.qdrant.url, apiKey: config.qdrant.apiKey, collection, dimensions: dims, logger: mlog });
    vectorStoreName = `qdrant (${collection})`;
  } else {
    store = new PgVectorStore(pool, collection, dims);
    vectorStoreName = `postgresql (${collection})`;
  }
  // The vector store may be down at start; the indexer retries, search degrades to lexical.
  const indexStore = ensuringStore(store, mlog);

  const memory = new MemoryService({
    queries,
    embedder: () => (ready ? embedder : undefined),
    store,
    defaultMode: config.retrieval.mode,
    defaultMinSimilarity: config.retrieval.minSimilarity,
    log: mlog,
  });

  let indexer: Indexer | undefined;
  let listener: PgListener | undefined;
  if (config.indexer.enabled) {
    embedderReady.then(
      () => {
        indexer = new Indexer(queue, embedder!, indexStore, config.indexer, mlog, metrics);
        indexer.start();
        listener = new PgListener(databaseUrl, INDEX_CHANNEL, () => indexer?.wake(), mlog);
        listener.start();
        mlog.info({ store: vectorStoreName }, "indexer started");
      },
      () => undefined,
    );
  }

  let notifyTimer: NodeJS.Timeout | undefined;
  return {
    memory,
    queue,
    embedderReady,
    vectorStoreName,
    embedderStatus: () => status,
    indexer: () => indexer,
    messageStored() {
      indexer?.wake();
      // One NOTIFY per 250 ms at most: other nodes only need a hint, and NOTIFY serialises commits.
      if (notifyTimer) return;
      notifyTimer = setTimeout(() => {
        notifyTimer = undefined;
        queue.notify().catch(() => undefined);
      }, 250);
      notifyTimer.unref();
    },
    async stop() {
      if (notifyTimer) clearTimeout(notifyTimer);
      await listener?.stop();
      await indexer?.stop();
      await created?.close();
      await store.close();
    },
  };
}

function createEmbedder(config: Config): Embedder | undefined {
  const c = config.embedding;
  switch (c.kind) {
    case "none":
      return undefined;
    case "hash":
      return new HashEmbedder({ dimensions: c.dimensions });
    case "openai":
      return new OpenAiEmbedder({ baseURL: c.api.url!, apiKey: c.api.key, model: c.api.model, dimensions: c.dimensions });
    case "transformers":
      return new TransformersEmbedder({
        modelPath: c.modelPath,
        modelId: c.modelId,
        dtype: c.dtype,
        poolSize: c.workers,
        maxBatchSize: c.batchSize,
        dimensions: c.dimensions,
        cacheDir: `${config.dataDir}/models`,
      });
  }
}

/**
 * Prepares the collection now, and again before the next upsert for as long
 * as that fails (the store was down at start-up): one successful
 * ensureReady() serves every later upsert.
 */
function ensuringStore(store: VectorStore, log: Logger): VectorStore {
  let ready: Promise<void> | undefined;
  const ensure = () =>
    (ready ??= store.ensureReady().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));
  ensure().catch((err) => log.warn({ err: (err as Error).message }, "vector store not ready yet"));
  return {
    ensureReady: ensure,
    async upsert(points) {
      await ensure();
      await store.upsert(points);
    },
    search: (v, f, l) => store.search(v, f, l),
    deleteBySession: (s) => store.deleteBySession(s),
    close: () => store.close(),
  };
}
