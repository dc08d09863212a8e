/**
 * /metrics series of the maintenance jobs. The last run's time, duration and
 * outcome come from the shared lease table when scraped, so every node
 * reports the cluster's last run whichever node did it; runs counts this
 * node's own.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { JobStatus } from "../db/pg-maintenance-store.js";
import type { MaintenanceScheduler, RunRecord } from "./scheduler.js";

export function maintenanceMetrics(registry: Registry, scheduler: () => MaintenanceScheduler | undefined): (r: RunRecord) => void {
  const runs = new Counter({
    name: "chat_maintenance_runs_total",
    help: "Maintenance job runs on this node, by job and outcome",
    labelNames: ["job", "outcome"] as const,
    registers: [registry],
  });
  // The three gauges are collected side by side: one read of the table serves a scrape.
  let pending: Promise<JobStatus[]> | undefined;
  const statuses = async (): Promise<JobStatus[]> => {
    const s = scheduler();
    if (!s) return [];
    pending ??= s.statuses().finally(() => setTimeout(() => (pending = undefined), 0));
    try {
      return await pending;
    } catch {
      return []; // database down: keep the last values
    }
  };
  const gauge = (name: string, help: string, value: (j: JobStatus) => number) => {
    const g: Gauge<"job"> = new Gauge({
      name,
      help,
      labelNames: ["job"] as const,
      registers: [registry],
      async collect() {
        for (const j of await statuses()) if (j.lastRunAt) g.set({ job: j.name }, value(j));
      },
    });
  };
  gauge("chat_maintenance_last_run_timestamp_seconds", "When each maintenance job last ran, on any node", (j) => j.lastRunAt!.getTime() / 1000);
  gauge("chat_maintenance_last_duration_seconds", "How long each maintenance job's last run took", (j) => (j.lastDurationMs ?? 0) / 1000);
  gauge("chat_maintenance_last_success", "1 when each maintenance job's last run succeeded, 0 when it failed", (j) => (j.lastOutcome === "ok" ? 1 : 0));
  return (r) => runs.inc({ job: r.job, outcome: r.outcome });
}
