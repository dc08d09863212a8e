/**
 * TransformersEmbedder on the generated tiny BERT (test/support/test-models.ts),
 * loaded through the real transformers.js pipeline in real worker threads.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmbedderUnavailableError, TransformersEmbedder } from "../../src/memory/transformers-embedder.js";
import { cosine, embedderContract, norm } from "../contracts/embedder-contract.js";
import { ensureTinyModel } from "../support/test-models.js";

embedderContract(
  "TransformersEmbedder (tiny test model, 2 workers)",
  async () => TransformersEmbedder.create({ modelPath: await ensureTinyModel(), poolSize: 2, maxBatchSize: 8, model: "test-tiny" }),
  // Dynamic quantization scales activations per batch, so a text's vector shifts slightly with its batch-mates.
  { dimensions: 384, minCrossBatchCosine: 0.99 },
);

describe("TransformersEmbedder", () => {
  let modelDir: string;
  let pool: TransformersEmbedder;
  let single: TransformersEmbedder;
  let fp32: TransformersEmbedder;

  beforeAll(async () => {
    modelDir = await ensureTinyModel();
    [pool, single, fp32] = await Promise.all([
      TransformersEmbedder.create({ modelPath: modelDir, poolSize: 2, maxBatchSize: 8 }),
      TransformersEmbedder.create({ modelPath: modelDir, poolSize: 1 }),
      TransformersEmbedder.create({ modelPath: modelDir, poolSize: 1, dtype: "fp32" }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([pool?.close(), single?.close(), fp32?.close()]);
  });

  const texts = ["the cat sat on the mat", "the mat sat on the cat", "Quarterly numbers look better than expected.", ""];

  it("gives the same normalised vectors in separate instances", async () => {
    // A quantized model's vectors depend on their batch-mates; one text per call keeps batches identical.
    for (const text of texts) {
      const [[a], [b]] = await Promise.all([pool.embed([text]), single.embed([text])]);
      expect(norm(a!)).toBeCloseTo(1, 4);
      expect(Array.from(a!)).toEqual(Array.from(b!));
    }
    expect(pool.model).toBe("Xenova/all-MiniLM-L6-v2");
  });

  it("loads fp32 weights on request, close to the default quantized ones", async () => {
    const [q8, full] = await Promise.all([single.embed(texts), fp32.embed(texts)]);
    q8.forEach((v, i) => {
      expect(norm(full[i]!)).toBeCloseTo(1, 4);
      expect(cosine(v, full[i]!)).toBeGreaterThan(0.98);
      expect(cosine(v, full[i]!)).toBeLessThan(1 - 1e-7);
    });
  });

  it("reads word order, not just a bag of words", async () => {
    const [a, b] = await single.embed(texts.slice(0, 2));
    expect(cosine(a!, b!)).toBeLessThan(0.9999);
  });

  it("coalesces concurrent calls into batches of at most maxBatchSize", async () => {
    const before = pool.stats();
    const inputs = Array.from({ length: 40 }, (_, i) => `message ${i} in a busy room`);
    const results = await Promise.all(inputs.map((t) => pool.embed([t])));
    const after = pool.stats();
    expect(results.every((r) => r.length === 1 && r[0]!.length === 384)).toBe(true);
    expect(after.textsEmbedded - before.textsEmbedded).toBe(40);
    const batches = after.batchesRun - before.batchesRun;
    expect(batches).toBeGreaterThanOrEqual(5); // 40 texts, at most 8 per batch
    expect(batches).toBeLessThan(20); // far fewer batches than calls
    expect(after).toMatchObject({ queuedTexts: 0, busyWorkers: 0, workers: 2, readyWorkers: 2 });
  });

  it("serves an interactive query before a queued indexing backlog", async () => {
    // One worker, small batches: the backlog is many batches deep when the query arrives.
    const order: string[] = [];
    const backlog = Array.from({ length: 12 }, (_, b) =>
      single.embed(Array.from({ length: 8 }, (_, i) => `backlog message ${b}-${i}`)).then(() => order.push(`backlog ${b}`)),
    );
    const query = single.embed(["what did I say about the backlog?"], { priority: "interactive" }).then(() => order.push("query"));
    await Promise.all([...backlog, query]);
    // At most the batch already running (and one coalesced with it) finishes first.
    expect(order.indexOf("query")).toBeLessThanOrEqual(2);
    expect(order.filter((o) => o.startsWith("backlog"))).toHaveLength(12);
  });

  it("rejects ready() and embed() cleanly when the model folder is missing", async () => {
    const missing = path.join(path.dirname(modelDir), "no-such-model");
    const embedder = new TransformersEmbedder({ modelPath: missing, poolSize: 2 });
    await expect(embedder.ready()).rejects.toThrow(EmbedderUnavailableError);
    await expect(embedder.ready()).rejects.toThrow(/no-such-model/);
    await expect(embedder.embed(["x"])).rejects.toThrow(/cannot load embedding model/);
    expect(embedder.unavailableReason).toMatch(/does not exist/);
    await embedder.close();
    await expect(TransformersEmbedder.create({ modelPath: missing, poolSize: 1 })).rejects.toThrow(EmbedderUnavailableError);
  });

  it("rejects a model whose vectors have the wrong width", async () => {
    await expect(TransformersEmbedder.create({ modelPath: modelDir, poolSize: 1, dimensions: 768 })).rejects.toThrow(
      /384-dimensional vectors, 768 expected/,
    );
  });

  it("lets the process exit after close(), and with an idle pool left open", async () => {
    const probe = fileURLToPath(new URL("../support/embedder-exit-probe.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", probe, modelDir], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`probe still running after 30 s: something holds the process open\n${stdout}\n${stderr}`));
      }, 30_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      dimensions: [384, 384],
      closed: { workers: 0 },
      idle: { workers: 1, readyWorkers: 1, busyWorkers: 0 },
    });
  });
});
