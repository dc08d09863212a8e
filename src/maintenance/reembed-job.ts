/** Backfills a new embedding version in slices, switches searches to it when complete, retires old versions. */
import type { ReembedSummary, Reembedder } from "../memory/reembedder.js";
import type { MaintenanceJob } from "./scheduler.js";

export const REEMBED_JOB = "reembed";

export function reembedJob(reembedder: Reembedder, idleIntervalMs: number): MaintenanceJob {
  return {
    name: REEMBED_JOB,
    intervalMs: idleIntervalMs,
    run: ({ signal }) => reembedder.run(signal),
    // While a backfill has work, the next slice follows at once (after the other due jobs).
    intervalAfter: (s) => ((s as ReembedSummary).outcome === "progress" || (s as ReembedSummary).outcome === "waiting" ? 0 : idleIntervalMs),
    quiet: (s) => (s as ReembedSummary).outcome === "idle" && !(s as ReembedSummary).retired,
  };
}
