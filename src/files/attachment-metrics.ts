/**
 * /metrics series of attachments: this node's uploads (by outcome) and bytes,
 * and, read from the database when scraped, the cluster's stored attachments
 * and bytes by state and the objects waiting to be deleted from the store.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { AttachmentMetrics } from "./attachment-service.js";

export interface AttachmentTotalsSource {
  totals(): Promise<{ state: string; count: number; bytes: number }[]>;
  purgeBacklog(): Promise<number>;
}

export function attachmentMetrics(registry: Registry, source: () => AttachmentTotalsSource | undefined): AttachmentMetrics {
  const uploads = new Counter({
    name: "chat_attachment_uploads_total",
    help: "Uploads on this node by outcome: stored, or the error code that refused them",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const uploadedBytes = new Counter({ name: "chat_attachment_uploaded_bytes_total", help: "Bytes of uploads stored by this node", registers: [registry] });
  const purged = new Counter({ name: "chat_attachment_objects_purged_total", help: "Stored objects of deleted attachments removed from the file store by this node", registers: [registry] });
  let pending: Promise<{ state: string; count: number; bytes: number }[]> | undefined;
  const totals = () => {
    const s = source();
    if (!s) return Promise.resolve([]);
    pending ??= s.totals().finally(() => setTimeout(() => (pending = undefined), 0));
    return pending;
  };
  const STATES = ["uploading", "pending", "attached"];
  const stored: Gauge<"state"> = new Gauge({
    name: "chat_attachments",
    help: "Attachments in the database by state (uploading, pending = not yet sent, attached)",
    labelNames: ["state"] as const,
    registers: [registry],
    collect: async () => {
      try {
        const t = await totals();
        for (const state of STATES) stored.set({ state }, t.find((r) => r.state === state)?.count ?? 0);
      } catch {
        // database down: keep the last values
      }
    },
  });
  const bytes: Gauge<"state"> = new Gauge({
    name: "chat_attachment_bytes",
    help: "Bytes of attachments by state",
    labelNames: ["state"] as const,
    registers: [registry],
    collect: async () => {
      try {
        const t = await totals();
        for (const state of STATES) bytes.set({ state }, t.find((r) => r.state === state)?.bytes ?? 0);
      } catch {
        // database down: keep the last values
      }
    },
  });
  const backlog: Gauge = new Gauge({
    name: "chat_attachment_purge_backlog",
    help: "Stored objects of deleted attachments still waiting to be removed from the file store",
    registers: [registry],
    collect: async () => {
      const s = source();
      if (!s) return;
      try {
        backlog.set(await s.purgeBacklog());
      } catch {
        // database down: keep the last value
      }
    },
  });
  return {
    onUpload(outcome, n) {
      uploads.inc({ outcome });
      if (n > 0) uploadedBytes.inc(n);
    },
    onPurged: (n) => purged.inc(n),
  };
}
