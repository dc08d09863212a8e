/**
 * Builds the reading of attachments from configuration: the extraction
 * workers, the passage runner, its wake-ups (NOTIFY from sql/021's trigger,
 * so an upload on any node is read promptly) and its /metrics series.
 */
import type pg from "pg";
import type { Logger } from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Config } from "../config.js";
import { PgListener } from "../db/listener.js";
import { EXTRACT_CHANNEL, PgPassageStore } from "../db/pg-passage-store.js";
import type { AttachmentVectorPurge } from "../memory/vector-purge.js";
import { TextExtractor } from "./extract/text-extractor.js";
import { PassageRunner, type FileReader } from "./passage-runner.js";

export interface PassageRuntime {
  runner: PassageRunner;
  stop(): Promise<void>;
}

export async function startPassageRunner(
  config: Config,
  pool: pg.Pool,
  databaseUrl: string,
  files: FileReader,
  purge: AttachmentVectorPurge,
  onPassages: () => void,
  log: Logger,
  registry: Registry,
  /** An extraction was settled (read, skipped or given up): replies waiting for their files check again. */
  onSettled?: () => void,
): Promise<PassageRuntime> {
  const plog = log.child({ component: "passages" });
  const store = new PgPassageStore(pool);
  const c = config.extract;
  const extractor = new TextExtractor({
    workers: c.workers,
    timeoutMs: c.timeoutMs,
    maxHeapMb: c.workerHeapMb,
    limits: { maxChars: c.maxChars, maxPages: c.maxPages, maxDepth: 64 },
  });
  const extracted = new Counter({ name: "chat_attachment_extractions_total", help: "Attachments read by this node, by outcome (done, skipped: not text-like, failed)", labelNames: ["outcome"] as const, registers: [registry] });
  const seconds = new Histogram({ name: "chat_attachment_extraction_seconds", help: "Time to read one attachment (fetch, extract, split, store)", buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] });
  new Gauge({
    name: "chat_attachment_extraction_backlog",
    help: "Attachments waiting to be read",
    registers: [registry],
    async collect() {
      try {
        this.set(await store.backlog());
      } catch {
        // The database is away: the scrape goes on without this series' update.
      }
    },
  });
  const runner = new PassageRunner({
    store,
    extractor,
    files,
    purge,
    onPassages,
    opts: {
      pollMs: config.indexer.pollMs,
      leaseMs: Math.max(config.indexer.leaseMs, c.timeoutMs * 2),
      maxBytes: config.files.maxUploadBytes,
      passages: { size: c.passageChars, overlap: c.passageOverlap },
      maxAttempts: 5,
    },
    log: plog,
    metrics: {
      onExtracted(outcome, s) {
        extracted.inc({ outcome });
        if (outcome !== "failed") seconds.observe(s);
        onSettled?.();
      },
    },
  });
  runner.start();
  const listener = new PgListener(databaseUrl, EXTRACT_CHANNEL, () => runner.wake(), plog);
  listener.start();
  return {
    runner,
    async stop() {
      await listener.stop();
      await runner.stop();
      await extractor.close();
    },
  };
}
