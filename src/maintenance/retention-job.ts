/** Deletes archived sessions older than RETENTION_ARCHIVED_DAYS, in short batches. */
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { MaintenanceJob } from "./scheduler.js";

export function retentionJob(lifecycle: LifecycleService, intervalMs: number): MaintenanceJob {
  return { name: "retention", intervalMs, run: ({ now, signal }) => lifecycle.purgeExpired(now, signal) };
}
