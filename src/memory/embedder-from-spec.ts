/**
 * Embedders from configuration, and from a stored embedding version's spec
 * for a version this node is not configured for (the active one while a new
 * model builds, or the building one on a node not yet restarted).
 *
 * What can be loaded from a version row:
 * - the hash embedder, always;
 * - a transformers model: from EMBEDDING_PREVIOUS_MODEL_PATH when set, else
 *   from the folder recorded with the version when it exists on this node,
 *   else by hub id through DATA_DIR/models (a model fetched once before is
 *   cached there; without network and cache it cannot load);
 * - an OpenAI-compatible model: through this node's EMBEDDING_API_URL and
 *   EMBEDDING_API_KEY (keys are never stored in the database).
 * Versions registered before sql/017 have no spec: the model name tells
 * (`lexical-hash-v1-<n>` is the hash embedder, anything else a hub id).
 */
import { existsSync } from "node:fs";
import type { Config } from "../config.js";
import type { EmbedderSpec, EmbeddingVersion } from "../db/embedding-versions.js";
import type { LoadedEmbedder } from "./embedding-version-set.js";
import { HashEmbedder } from "./hash-embedder.js";
import { OpenAiEmbedder } from "./openai-embedder.js";
import { TransformersEmbedder } from "./transformers-embedder.js";
import type { Embedder } from "./types.js";

export function createConfiguredEmbedder(config: Config): Embedder | undefined {
  const c = config.embedding;
  switch (c.kind) {
    case "none":
      return undefined;
    case "hash":
      return new HashEmbedder({ dimensions: c.dimensions });
    case "openai":
      return new OpenAiEmbedder({ baseURL: c.api.url!, apiKey: c.api.key, model: c.api.model, dimensions: c.dimensions });
    case "transformers":
      return new TransformersEmbedder({
        modelPath: c.modelPath,
        modelId: c.modelId,
        dtype: c.dtype,
        poolSize: c.workers,
        maxBatchSize: c.batchSize,
        dimensions: c.dimensions,
        cacheDir: `${config.dataDir}/models`,
      });
  }
}

/** What is stored with the configured model's version, so other nodes can load it. */
export function configuredSpec(config: Config): EmbedderSpec | null {
  const c = config.embedding;
  switch (c.kind) {
    case "none":
      return null;
    case "hash":
      return { kind: "hash" };
    case "openai":
      return { kind: "openai", apiModel: c.api.model };
    case "transformers":
      return { kind: "transformers", modelId: c.modelId, modelPath: c.modelPath, dtype: c.dtype };
  }
}

export function readiness(embedder: Embedder): Promise<void> {
  return embedder instanceof TransformersEmbedder ? embedder.ready() : Promise.resolve();
}

/** Loads a stored version's embedder; throws when this node cannot. */
export function embedderFromSpec(v: EmbeddingVersion, config: Config): LoadedEmbedder {
  const spec: EmbedderSpec = v.spec ?? (v.model.startsWith("lexical-hash-v1-") ? { kind: "hash" } : { kind: "transformers", modelId: v.model });
  let embedder: Embedder;
  switch (spec.kind) {
    case "hash":
      embedder = new HashEmbedder({ dimensions: v.dimensions });
      break;
    case "openai":
      if (!config.embedding.api.url) throw new Error(`version ${v.id} (${v.model}) embeds through an OpenAI-compatible API and EMBEDDING_API_URL is not set here`);
      embedder = new OpenAiEmbedder({ baseURL: config.embedding.api.url, apiKey: config.embedding.api.key, model: spec.apiModel ?? v.model, dimensions: v.dimensions });
      break;
    case "transformers": {
      const modelPath = config.embedding.previousModelPath ?? (spec.modelPath && existsSync(spec.modelPath) ? spec.modelPath : undefined);
      embedder = new TransformersEmbedder({
        modelPath,
        modelId: spec.modelId ?? v.model,
        model: v.model,
        dtype: (spec.dtype as Config["embedding"]["dtype"] | undefined) ?? config.embedding.dtype,
        poolSize: config.embedding.previousWorkers,
        maxBatchSize: config.embedding.batchSize,
        dimensions: v.dimensions,
        cacheDir: `${config.dataDir}/models`,
      });
      break;
    }
  }
  if (embedder.model !== v.model) {
    void embedder.close();
    throw new Error(`the embedder loaded for version ${v.id} identifies as ${embedder.model}, not ${v.model}`);
  }
  return { embedder, ready: readiness(embedder), owned: true };
}
