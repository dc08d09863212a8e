/**
 * This node's view of the live embedding versions (sql/017): for the active
 * version and the building one, an embedder, a vector store and an indexer.
 *
 * The embedder of a version is the configured one when the models match;
 * otherwise it is loaded from what the version row says (src/memory/
 * embedder-from-spec.ts), so a node restarted with a new model still embeds
 * queries for the active (old) version while the new one builds, and a node
 * not yet restarted can embed for the new one.
 *
 * The view is read from PostgreSQL every `refreshMs` and at once on a NOTIFY
 * (src/db/embedding-versions.ts sends one with every state change), so a
 * switch reaches every node within milliseconds, and at worst within
 * refreshMs. Indexing claims are bound to a version in SQL, so a node whose
 * view is late never writes new messages to the previous version only.
 */
import type pg from "pg";
import type { Logger } from "pino";
import { type EmbeddingVersion, listVersions, VERSIONS_CHANNEL } from "../db/embedding-versions.js";
import type { PgIndexQueue, PgPassageIndexQueue } from "../db/index-queue.js";
import { PgListener } from "../db/listener.js";
import { PgVersionJobQueue } from "../db/version-job-queue.js";
import { Indexer, type IndexerMetrics, type IndexerOptions } from "./indexer.js";
import type { Embedder, VectorStore } from "./types.js";

export interface LoadedEmbedder {
  embedder: Embedder;
  /** Resolves when it can embed; rejects with why it cannot. */
  ready: Promise<void>;
  /** False for the configured embedder, which the runtime owns. */
  owned: boolean;
}

export interface VersionSetDeps {
  pool: pg.Pool;
  /** For LISTEN; undefined: polling only. */
  databaseUrl: string | undefined;
  queue: PgIndexQueue;
  /** Attachment passages: indexed by the active version's indexer only (a switch queues them again for the new one). */
  passageQueue?: PgPassageIndexQueue;
  /** The embedder for a version (the configured one, or loaded from its spec); throws when it cannot be had here. */
  embedderFor(version: EmbeddingVersion): LoadedEmbedder;
  storeFor(version: EmbeddingVersion): VectorStore;
  indexer: (IndexerOptions & { enabled: boolean }) | undefined;
  metrics?: IndexerMetrics;
  refreshMs: number;
  log: Logger;
}

/** One live version on this node. */
export class VersionHandle {
  embedder: Embedder | undefined;
  status = "loading";
  indexer: Indexer | undefined;
  indexerRole: "active" | "building" | undefined;

  constructor(
    public version: EmbeddingVersion,
    readonly store: VectorStore,
    readonly loaded: LoadedEmbedder | undefined,
  ) {}
}

export interface VectorTarget {
  version: EmbeddingVersion;
  embedder: Embedder;
  store: VectorStore;
}

export class EmbeddingVersionSet {
  private readonly handles = new Map<number, VersionHandle>();
  private timer: NodeJS.Timeout | undefined;
  private listener: PgListener | undefined;
  private refreshing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** The last refresh's error, for /readyz. */
  lastError: string | null = null;

  constructor(private readonly d: VersionSetDeps) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.d.refreshMs);
    this.timer.unref();
    if (this.d.databaseUrl) {
      this.listener = new PgListener(this.d.databaseUrl, VERSIONS_CHANNEL, () => void this.refresh().catch(() => undefined), this.d.log);
      this.listener.start();
    }
  }

  /** The searched version, when this node can embed queries for it. */
  active(): VectorTarget | undefined {
    return this.target("active");
  }

  building(): VectorTarget | undefined {
    return this.target("building");
  }

  handle(versionId: number): VersionHandle | undefined {
    return this.handles.get(versionId);
  }

  all(): VersionHandle[] {
    return [...this.handles.values()].sort((a, b) => a.version.id - b.version.id);
  }

  /** A message was queued: every indexer looks now. */
  wake(): void {
    for (const h of this.handles.values()) h.indexer?.wake();
  }

  /** Reads the live versions; overlapping calls share one read, and a call during a read gets another. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          await this.apply(await listVersions(this.d.pool, ["active", "building"]));
        } while (this.again && !this.stopped);
        this.lastError = null;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.d.log.warn({ err: this.lastError }, "could not read the embedding versions; keeping the last known ones");
        throw err;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.listener?.stop();
    await this.refreshing?.catch(() => undefined);
    await Promise.all([...this.handles.values()].map((h) => this.drop(h)));
    this.handles.clear();
  }

  private target(state: "active" | "building"): VectorTarget | undefined {
    for (const h of this.handles.values()) {
      if (h.version.state === state && h.embedder) return { version: h.version, embedder: h.embedder, store: h.store };
    }
    return undefined;
  }

  private async apply(versions: EmbeddingVersion[]): Promise<void> {
    if (this.stopped) return;
    const live = new Set(versions.map((v) => v.id));
    for (const [id, h] of this.handles) {
      if (!live.has(id)) {
        this.handles.delete(id);
        await this.drop(h);
      }
    }
    for (const v of versions) {
      let h = this.handles.get(v.id);
      if (!h) {
        h = this.open(v);
        this.handles.set(v.id, h);
      } else {
        if (h.version.state !== v.state) this.d.log.info({ version: v.id, model: v.model, from: h.version.state, to: v.state }, "embedding version changed state");
        h.version = v;
      }
      await this.placeIndexer(h);
    }
  }

  private open(v: EmbeddingVersion): VersionHandle {
    const store = this.d.storeFor(v);
    let loaded: LoadedEmbedder | undefined;
    try {
      loaded = this.d.embedderFor(v);
    } catch (err) {
      const h = new VersionHandle(v, store, undefined);
      h.status = `unavailable on this node: ${(err as Error).message}`;
      this.d.log.warn({ version: v.id, model: v.model, err: (err as Error).message }, "cannot load the embedder of an embedding version here");
      return h;
    }
    const h = new VersionHandle(v, store, loaded);
    loaded.ready.then(
      () => {
        h.embedder = loaded.embedder;
        h.status = `ready (${loaded.embedder.model}, ${loaded.embedder.dimensions} dimensions)`;
        if (this.handles.get(v.id) === h) void this.placeIndexer(h);
      },
      (err: Error) => {
        h.status = `unavailable: ${err.message}`;
      },
    );
    return h;
  }

  /** The active version drains the main queue; the building one its dual writes. */
  private async placeIndexer(h: VersionHandle): Promise<void> {
    const opts = this.d.indexer;
    if (!opts?.enabled || !h.embedder || this.stopped) return;
    const role = h.version.state === "active" || h.version.state === "building" ? h.version.state : undefined;
    if (h.indexerRole === role) return;
    const old = h.indexer;
    h.indexer = undefined;
    h.indexerRole = role;
    await old?.stop();
    if (!role || this.stopped) return;
    const jobs = role === "active" ? this.d.queue.forVersion(h.version.id) : new PgVersionJobQueue(this.d.pool, h.version.id);
    const passages = role === "active" ? this.d.passageQueue : undefined;
    h.indexer = new Indexer(jobs, h.embedder, h.store, opts, this.d.log.child({ version: h.version.id, role }), this.d.metrics, passages);
    h.indexer.start();
  }

  private async drop(h: VersionHandle): Promise<void> {
    await h.indexer?.stop();
    h.indexer = undefined;
    if (h.loaded?.owned) await h.loaded.embedder.close().catch(() => undefined);
    await h.store.close().catch(() => undefined);
  }
}
