/**
 * /metrics series of the embedding versions: the backfill's progress per
 * version, read from PostgreSQL when scraped (so every node reports the
 * cluster's progress, whichever node runs the backfill), and the messages
 * this node embedded into a new version.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type pg from "pg";
import { dualWriteBacklog, type EmbeddingVersion, listVersions } from "../db/embedding-versions.js";
import type { ReembedMetrics } from "./reembedder.js";

export function reembedMetrics(registry: Registry, pool: pg.Pool): ReembedMetrics {
  const embedded = new Counter({
    name: "chat_reembed_messages_total",
    help: "Messages this node embedded into a new embedding version by the backfill",
    labelNames: ["version"] as const,
    registers: [registry],
  });
  let pending: Promise<EmbeddingVersion[]> | undefined;
  const versions = async (): Promise<EmbeddingVersion[]> => {
    pending ??= listVersions(pool).finally(() => setTimeout(() => (pending = undefined), 0));
    try {
      return await pending;
    } catch {
      return [];
    }
  };
  const gauge = (name: string, help: string, value: (v: EmbeddingVersion) => number | null) => {
    const g: Gauge<"version" | "model" | "state"> = new Gauge({
      name,
      help,
      labelNames: ["version", "model", "state"] as const,
      registers: [registry],
      async collect() {
        g.reset();
        for (const v of await versions()) {
          const x = value(v);
          if (x !== null) g.set({ version: String(v.id), model: v.model, state: v.state }, x);
        }
      },
    });
  };
  gauge("chat_embedding_backfill_done_messages", "Messages the backfill embedded into each kept embedding version", (v) => v.backfillDone);
  gauge("chat_embedding_backfill_total_messages", "Messages the backfill of each embedding version has to embed (counted when it starts)", (v) => v.backfillTotal);
  gauge("chat_embedding_version_active", "1 for the embedding version searches use, 0 for the others kept", (v) => (v.state === "active" ? 1 : 0));
  const dualWrites: Gauge = new Gauge({
    name: "chat_reembed_dual_write_backlog",
    help: "Messages waiting to be written to the building embedding version (dual writes)",
    registers: [registry],
    async collect() {
      try {
        dualWrites.set(await dualWriteBacklog(pool));
      } catch {
        // database down: keep the last value
      }
    },
  });
  return { onBatch: (versionId, n) => embedded.inc({ version: String(versionId) }, n) };
}
