/**
 * /metrics series of the maintenance jobs. The last run's time, duration and
 * outcome come from the shared lease table when scraped, so every node
 * reports the cluster's last run whichever node did it; runs counts this
 * node's own.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { MaintenanceScheduler, RunRecord } from "./scheduler.js";

export function maintenanceMetrics(registry: Registry, scheduler: () => MaintenanceScheduler | undefined): (r: RunRecord) => void {
  const runs = new Counter({
    name: "chat_maintenance_runs_total",
    help: "Maintenance job runs on this node, by job and outcome",
    labelNames: ["job", "outcome"] as const,
    registers: [registry],
  });
  // Registered first, so its collect fills the two gauges below before they are read.
  const lastRun: Gauge<"job"> = new Gauge({
    name: "chat_maintenance_last_run_timestamp_seconds",
    help: "When each maintenance job last ran, on any node",
    labelNames: ["job"] as const,
    registers: [registry],
    async collect() {
      const s = scheduler();
      if (!s) return;
      try {
        for (const j of await s.statuses()) {
          if (!j.lastRunAt) continue;
          lastRun.set({ job: j.name }, j.lastRunAt.getTime() / 1000);
          lastDuration.set({ job: j.name }, (j.lastDurationMs ?? 0) / 1000);
          lastSuccess.set({ job: j.name }, j.lastOutcome === "ok" ? 1 : 0);
        }
      } catch {
        // database down: keep the last values
      }
    },
  });
  const lastDuration = new Gauge({
    name: "chat_maintenance_last_duration_seconds",
    help: "How long each maintenance job's last run took",
    labelNames: ["job"] as const,
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: "chat_maintenance_last_success",
    help: "1 when each maintenance job's last run succeeded, 0 when it failed",
    labelNames: ["job"] as const,
    registers: [registry],
  });
  return (r) => runs.inc({ job: r.job, outcome: r.outcome });
}
