import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { OpenAiEmbedder, type OpenAiEmbedderOptions } from "../../src/memory/openai-embedder.js";
import { cosine, embedderContract, norm } from "../contracts/embedder-contract.js";
import { OpenAiEmbeddingsDouble } from "../support/openai-embeddings-double.js";

const doubles: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(doubles.map((d) => d.close()));
});

async function startDouble(options: ConstructorParameters<typeof OpenAiEmbeddingsDouble>[0] = {}) {
  const double = new OpenAiEmbeddingsDouble({ apiKey: "test-key", ...options });
  const server = await double.start();
  doubles.push(server);
  const make = (overrides: Partial<OpenAiEmbedderOptions> = {}) =>
    new OpenAiEmbedder({ baseURL: server.url, apiKey: "test-key", model: "double-embed", dimensions: 384, maxRetries: 0, ...overrides });
  return { double, make };
}

embedderContract(
  "OpenAiEmbedder against the /v1/embeddings double",
  async () => {
    const { make } = await startDouble({ models: ["double-embed"], defaultDimensions: 1536 });
    // A small batch size makes the contract's larger calls span several requests.
    return make({ maxBatchSize: 3 });
  },
  { dimensions: 384 },
);

describe("OpenAiEmbedder", () => {
  let env: Awaited<ReturnType<typeof startDouble>>;
  beforeAll(async () => {
    env = await startDouble();
  });

  const texts = Array.from({ length: 8 }, (_, i) => `message number ${i} about topic ${i * 7}`);
  const expected = new HashEmbedder();

  it("splits inputs into requests of at most maxBatchSize and keeps the order", async () => {
    const before = env.double.requests.length;
    const vectors = await env.make({ maxBatchSize: 3, maxConcurrency: 2 }).embed(texts);
    const sent = env.double.requests.slice(before);
    expect(sent.map((r) => (r.body?.input as string[]).length).sort()).toEqual([2, 3, 3]);
    expect(sent.flatMap((r) => r.body?.input as string[]).sort()).toEqual([...texts].sort());
    vectors.forEach((v, i) => expect(cosine(v, expected.embedOne(texts[i]!))).toBeCloseTo(1, 6));
  });

  it("sends the model, the dimensions and the key the API expects", async () => {
    const before = env.double.requests.length;
    await env.make().embed(["one"]);
    const [req] = env.double.requests.slice(before);
    expect(req!.path).toBe("/v1/embeddings");
    expect(req!.authorization).toBe("Bearer test-key");
    expect(req!.body).toMatchObject({ model: "double-embed", input: ["one"], dimensions: 384, encoding_format: "base64" });
  });

  it("decodes float and base64 responses to the same vectors", async () => {
    const a = await env.make({ encodingFormat: "float" }).embed(texts);
    const b = await env.make({ encodingFormat: "base64" }).embed(texts);
    a.forEach((v, i) => expect(cosine(v, b[i]!)).toBeCloseTo(1, 6));
  });

  it("orders by the index the server returns, not by position", async () => {
    const { make } = await startDouble({ shuffle: true });
    const vectors = await make().embed(texts);
    vectors.forEach((v, i) => expect(cosine(v, expected.embedOne(texts[i]!))).toBeCloseTo(1, 6));
  });

  it("normalises vectors from servers that do not", async () => {
    const { make } = await startDouble({ scale: 7.5 });
    for (const v of await make().embed(texts)) expect(norm(v)).toBeCloseTo(1, 5);
  });

  it("leaves out dimensions when told to, and rejects vectors of the wrong width", async () => {
    const { double, make } = await startDouble({ defaultDimensions: 768 });
    await expect(make({ sendDimensions: false }).embed(["x"])).rejects.toThrow(/768-dimensional vectors .* 384 expected/);
    expect(double.requests.at(-1)!.body).not.toHaveProperty("dimensions");
    const wide = make({ sendDimensions: false, dimensions: 768 });
    await expect(wide.embed(["x"])).resolves.toHaveLength(1);
  });

  it("surfaces API errors", async () => {
    await expect(env.make({ apiKey: "wrong" }).embed(["x"])).rejects.toThrow(/Incorrect API key/);
    env.double.failNext({ status: 400, message: "input too long" });
    await expect(env.make().embed(["x"])).rejects.toThrow(/input too long/);
  });

  it("retries server errors through the SDK", async () => {
    env.double.failNext({ status: 503 });
    const vectors = await env.make({ maxRetries: 1 }).embed(["retried"]);
    expect(cosine(vectors[0]!, expected.embedOne("retried"))).toBeCloseTo(1, 6);
  });

  it("aborts requests in flight on close()", async () => {
    const { make } = await startDouble({ delayMs: 2000 });
    const embedder = make();
    const pending = embedder.embed(["slow"]);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await embedder.close();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
