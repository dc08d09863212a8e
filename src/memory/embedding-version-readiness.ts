/** The /readyz detail of the embedding versions: which one is searched, and how far a new one has come. */
import type pg from "pg";
import { listVersions } from "../db/embedding-versions.js";
import type { EmbeddingVersionSet } from "./embedding-version-set.js";

export async function embeddingVersionsReadiness(pool: pg.Pool, versions: EmbeddingVersionSet | undefined): Promise<string> {
  if (!versions) return "none (no embedder)";
  // Progress is read fresh (the backfill may run on another node); the embedders are this node's.
  const stored = await listVersions(pool, ["active", "building"]);
  const status = (id: number) => versions.handle(id)?.status ?? "not loaded here yet";
  const active = stored.find((v) => v.state === "active");
  const building = stored.find((v) => v.state === "building");
  const parts: string[] = [];
  if (active) parts.push(`active ${active.id} (${active.model}): ${status(active.id)}`);
  if (building) {
    const pct = building.backfillTotal ? ` (${Math.floor((100 * building.backfillDone) / Math.max(1, building.backfillTotal))}%)` : "";
    parts.push(`building ${building.id} (${building.model}): ${building.backfillDone}/${building.backfillTotal ?? "?"} messages${pct}, embedder ${status(building.id)}`);
  }
  const detail = parts.join("; ") || "no live version";
  const mine = active ? versions.handle(active.id) : undefined;
  if (mine?.status === "loading") return detail;
  // Vector search on this node needs the active version's embedder; without it retrieval is lexical.
  if (!mine?.embedder) throw new Error(`${detail}; vector search is lexical only on this node`);
  if (versions.lastError) throw new Error(`${detail}; could not re-read the versions: ${versions.lastError}`);
  return detail;
}
