/** The /readyz detail of the embedding versions: which one is searched, and how far a new one has come. */
import type { EmbeddingVersionSet } from "./embedding-version-set.js";

export async function embeddingVersionsReadiness(versions: EmbeddingVersionSet | undefined): Promise<string> {
  if (!versions) return "none (no embedder)";
  const handles = versions.all();
  const active = handles.find((h) => h.version.state === "active");
  const building = handles.find((h) => h.version.state === "building");
  const parts: string[] = [];
  if (active) parts.push(`active ${active.version.id} (${active.version.model}): ${active.status}`);
  if (building) {
    const v = building.version;
    const pct = v.backfillTotal ? ` (${Math.floor((100 * v.backfillDone) / Math.max(1, v.backfillTotal))}%)` : "";
    parts.push(`building ${v.id} (${v.model}): ${v.backfillDone}/${v.backfillTotal ?? "?"} messages${pct}, embedder ${building.status}`);
  }
  const detail = parts.join("; ") || "no live version";
  // Vector search on this node needs the active version's embedder; without it retrieval is lexical.
  if (active?.status === "loading") return detail;
  if (!active?.embedder) throw new Error(`${detail}; vector search is lexical only on this node`);
  if (versions.lastError) throw new Error(`${detail}; could not re-read the versions: ${versions.lastError}`);
  return detail;
}
