import { describe, expect, it } from "vitest";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { cosine, embedderContract, norm } from "../contracts/embedder-contract.js";

embedderContract("HashEmbedder", async () => new HashEmbedder(), { dimensions: 384 });

describe("HashEmbedder", () => {
  const embedder = new HashEmbedder();
  const sim = (a: string, b: string) => cosine(embedder.embedOne(a), embedder.embedOne(b));

  it("ranks texts by shared words", () => {
    const query = "when does my flight to Lisbon leave";
    const related = "the flight to Lisbon leaves at seven";
    const unrelated = "remember to water the tomatoes";
    expect(sim(query, related)).toBeGreaterThan(sim(query, unrelated) + 0.2);
  });

  it("ignores case, punctuation and Unicode compatibility forms", () => {
    expect(sim("Hello, WORLD!", "hello world")).toBeCloseTo(1, 6);
    expect(sim("ﬁle", "file")).toBeCloseTo(1, 6);
  });

  it("tells word order apart through bigrams, but only a little", () => {
    const s = sim("the dog bit the man", "the man bit the dog");
    expect(s).toBeLessThan(0.999);
    expect(s).toBeGreaterThan(0.6);
  });

  it("gives a text without words a fixed unit vector", async () => {
    const [a, b] = await embedder.embed(["", "?!"]);
    expect(norm(a!)).toBeCloseTo(1, 6);
    expect(Array.from(a!)).toEqual(Array.from(b!));
  });

  it("is the same function in every instance", () => {
    expect(Array.from(new HashEmbedder().embedOne("stable across instances"))).toEqual(
      Array.from(new HashEmbedder().embedOne("stable across instances")),
    );
  });

  it("takes its width from the options and names it in the model id", async () => {
    const wide = new HashEmbedder({ dimensions: 1024 });
    const [v] = await wide.embed(["some text"]);
    expect(v).toHaveLength(1024);
    expect(wide.dimensions).toBe(1024);
    expect(wide.model).not.toBe(embedder.model);
    expect(() => new HashEmbedder({ dimensions: 0 })).toThrow(RangeError);
  });
});
