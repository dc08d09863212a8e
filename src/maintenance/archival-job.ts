/** Archives idle sessions (ARCHIVE_IDLE_DAYS) and continues full ones (SESSION_MAX_MESSAGES) that send time missed. */
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { MaintenanceJob } from "./scheduler.js";

export function archivalJob(lifecycle: LifecycleService, intervalMs: number): MaintenanceJob {
  return { name: "archival", intervalMs, run: ({ now, signal }) => lifecycle.archiveDue(now, signal) };
}
