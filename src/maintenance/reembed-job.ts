/** Backfills a new embedding version in slices, switches searches to it when complete, retires old versions. */
import type { ReembedSummary, Reembedder } from "../memory/reembedder.js";
import type { MaintenanceJob } from "./scheduler.js";

export const REEMBED_JOB = "reembed";
const WAITING_RETRY_MS = 3_000;

export function reembedJob(reembedder: Reembedder, idleIntervalMs: number): MaintenanceJob {
  return {
    name: REEMBED_JOB,
    intervalMs: idleIntervalMs,
    run: ({ signal }) => reembedder.run(signal),
    // While a backfill has work, the next slice follows at once (after the other due jobs); while it waits
    // (for a model to load here, for dual writes), a few seconds later, on whichever node ticks first.
    intervalAfter: (s) => {
      const outcome = (s as ReembedSummary).outcome;
      return outcome === "progress" ? 0 : outcome === "waiting" ? Math.min(WAITING_RETRY_MS, idleIntervalMs) : idleIntervalMs;
    },
    quiet: (s) => (s as ReembedSummary).outcome === "idle" && !(s as ReembedSummary).retired,
  };
}
