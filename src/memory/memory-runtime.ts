/**
 * Builds the memory side from configuration: embedder, embedding versions
 * with their vector stores and indexers, search. The model loads in the
 * background: the server serves chat meanwhile, and if the model never
 * loads, retrieval stays lexical and /readyz says why.
 *
 * At start the configured model is reconciled with the stored embedding
 * versions (src/db/embedding-versions.ts): a new model becomes the building
 * version and is backfilled by the re-embed job while searches keep using
 * the active one.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { type EmbeddingVersion, registerConfigured, type RegisterOutcome } from "../db/embedding-versions.js";
import { INDEX_CHANNEL, PgIndexQueue, PgPassageIndexQueue } from "../db/index-queue.js";
import { PgListener } from "../db/listener.js";
import { PgMemoryQueries } from "../db/memory-queries.js";
import { PgPassageQueries } from "../db/passage-queries.js";
import { configuredSpec, createConfiguredEmbedder, embedderFromSpec, readiness } from "./embedder-from-spec.js";
import { QueryVectorReuse } from "./query-vector-reuse.js";
import { EmbeddingVersionSet } from "./embedding-version-set.js";
import type { Indexer, IndexerMetrics } from "./indexer.js";
import { MemoryService } from "./memory-service.js";
import { PassageSearch } from "./passage-search.js";
import { PgVectorStore } from "./pg-vector-store.js";
import { QdrantVectorStore } from "./qdrant-vector-store.js";
import type { VectorStore } from "./types.js";
import { PgVectorPurge, QdrantVectorPurge, type VectorPurge } from "./vector-purge.js";

export interface MemoryRuntime {
  memory: MemoryService;
  /** Retrieval over attachment passages, scoped like memory. */
  passages: PassageSearch;
  passageQueries: PgPassageQueries;
  queue: PgIndexQueue;
  passageQueue: PgPassageIndexQueue;
  versions: EmbeddingVersionSet | undefined;
  /** Deletes sessions' vectors in every collection of every version. */
  purge: VectorPurge;
  /** Qdrant's purge, when QDRANT_URL is set (retention and account deletion take it). */
  qdrantPurge: QdrantVectorPurge | undefined;
  /** What start-up did with the configured model, once it loaded (undefined: it did not load, or EMBEDDER=none). */
  registered: Promise<RegisterOutcome | undefined>;
  /** A message was stored: index it soon (here and, through NOTIFY, on other nodes). */
  messageStored(): void;
  embedderStatus(): string;
  /** Resolves when the embedder is usable (or rejects with why it is not). */
  embedderReady: Promise<void>;
  vectorStoreName: string;
  indexers(): Indexer[];
  /** A vector store for a version's collection (the re-embed job drops retired ones through it). */
  storeFor(v: Pick<EmbeddingVersion, "collection" | "dimensions">): VectorStore;
  stop(): Promise<void>;
}

/** `genericPlans`: the node's genericPlanPool (src/db/pool.ts), for the searches' hot reads. */
export async function startMemory(config: Config, pool: pg.Pool, genericPlans: pg.Pool, databaseUrl: string, log: Logger, metrics: IndexerMetrics): Promise<MemoryRuntime> {
  const mlog = log.child({ component: "memory" });
  const queue = new PgIndexQueue(pool);
  const queries = new PgMemoryQueries(pool, { windowRows: config.retrieval.lexicalWindow, termCap: config.retrieval.lexicalTermCap }, genericPlans);
  const passageQueue = new PgPassageIndexQueue(pool);
  const passageQueries = new PgPassageQueries(pool);

  let status = "loading";
  // Constructing is quick; a transformers.js model then loads in its workers in the background.
  const created = createConfiguredEmbedder(config);
  // What the turns' searches and this node's indexers embed with: a question is embedded once, not again when indexed.
  const shared = created ? new QueryVectorReuse(created, { onReused: (n) => metrics.onReused?.(n) }) : undefined;
  const embedderReady = (async () => {
    if (!created) throw new Error("disabled (EMBEDDER=none)");
    await readiness(created);
    status = `ready (${created.model}, ${created.dimensions} dimensions)`;
  })();
  embedderReady.catch((err: Error) => {
    status = `unavailable: ${err.message}`;
    mlog.warn({ err: err.message }, "embedder unavailable: retrieval falls back to lexical search, messages wait unindexed");
  });

  const storeFor = (v: Pick<EmbeddingVersion, "collection" | "dimensions">): VectorStore =>
    config.qdrant.url
      ? new QdrantVectorStore({ url: config.qdrant.url, apiKey: config.qdrant.apiKey, collection: v.collection, dimensions: v.dimensions, logger: mlog })
      : new PgVectorStore(pool, v.collection, v.dimensions, { rerankDepth: config.pgVectors.rerankDepth }, genericPlans);
  const qdrantPurge = config.qdrant.url ? new QdrantVectorPurge(pool, { url: config.qdrant.url, apiKey: config.qdrant.apiKey }, log.child({ component: "purge" })) : undefined;
  const purge = qdrantPurge ?? new PgVectorPurge(pool);

  let registration: RegisterOutcome | undefined;
  let versions: EmbeddingVersionSet | undefined;
  let registered: Promise<RegisterOutcome | undefined> = Promise.resolve(undefined);
  if (created) {
    const set = new EmbeddingVersionSet({
      pool,
      databaseUrl,
      queue,
      passageQueue,
      embedderFor: (v) =>
        v.model === created.model && v.dimensions === created.dimensions ? { embedder: shared!, ready: embedderReady, owned: false } : embedderFromSpec(v, config),
      // The vector store may be down at start; the indexer retries, search degrades to lexical.
      storeFor: (v) => ensuringStore(storeFor(v), mlog),
      indexer: config.indexer,
      metrics,
      refreshMs: config.reembed.refreshMs,
      log: mlog,
    });
    versions = set;
    await set.start();
    // The configured model is registered once it has loaded: a model this node cannot load
    // (a wrong path, no network) never becomes a version, and the stored ones stay as they are.
    registered = embedderReady.then(
      async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            registration = await registerConfigured(pool, config.qdrant.collectionPrefix, created.model, config.embedding.dimensions, configuredSpec(config));
            break;
          } catch (err) {
            if (attempt >= 10) throw err;
            mlog.warn({ err: (err as Error).message, attempt }, "could not register the embedding model yet; retrying");
            await new Promise((r) => setTimeout(r, 500 * attempt));
          }
        }
        logRegistration(registration, created.model, mlog);
        await set.refresh().catch(() => undefined);
        return registration;
      },
      () => undefined,
    );
    registered.catch((err: Error) => mlog.error({ err: err.message }, "could not register the embedding model"));
  }
  const vectorStoreName = config.qdrant.url ? "qdrant" : "postgresql";

  const memory = new MemoryService({
    queries,
    vectors: () => versions?.active(),
    purge,
    defaultMode: config.retrieval.mode,
    defaultMinSimilarity: config.retrieval.minSimilarity,
    log: mlog,
  });

  const passages = new PassageSearch({
    passages: passageQueries,
    memory: queries,
    vectors: () => versions?.active(),
    defaultMinSimilarity: config.retrieval.minSimilarity,
    log: mlog,
  });

  let listener: PgListener | undefined;
  if (config.indexer.enabled && versions) {
    const set = versions;
    listener = new PgListener(databaseUrl, INDEX_CHANNEL, () => set.wake(), mlog);
    listener.start();
  }

  let notifyTimer: NodeJS.Timeout | undefined;
  return {
    memory,
    passages,
    passageQueries,
    queue,
    passageQueue,
    versions,
    purge,
    qdrantPurge,
    registered,
    embedderReady,
    vectorStoreName,
    storeFor,
    embedderStatus: () => status,
    indexers: () => (versions?.all() ?? []).flatMap((h) => (h.indexer ? [h.indexer] : [])),
    messageStored() {
      versions?.wake();
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
      await versions?.stop();
      await created?.close();
    },
  };
}

function logRegistration(r: RegisterOutcome, model: string, log: Logger): void {
  const v = r.version;
  if (r.kind === "current") return void log.info({ version: v.id, model, collection: v.collection }, "embedding model is the active version");
  if (r.kind === "first") return void log.info({ version: v.id, model, collection: v.collection }, "embedding model registered as the active version");
  log.warn(
    { version: v.id, model, collection: v.collection, resumed: r.resumed, abandoned: r.abandoned?.model, backfillTarget: v.backfillTarget },
    r.resumed
      ? "the configured embedding model is still being backfilled; searches use the active version until it completes"
      : "the configured embedding model differs from the active version: registered a new version, backfilled in the background; searches use the active version until it completes",
  );
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
    async upsertPassages(points) {
      await ensure();
      await store.upsertPassages(points);
    },
    searchPassages: (v, f, l) => store.searchPassages(v, f, l),
    deleteByAttachment: (a) => store.deleteByAttachment(a),
    close: () => store.close(),
  };
}
