import { describe, expect, it } from "vitest";
import { countMessageTokens, countTokens, TOKENIZER_ENCODING } from "../../src/llm/tokens.js";

describe("token counting", () => {
  it("counts with o200k_base", () => {
    expect(TOKENIZER_ENCODING).toBe("o200k_base");
    expect(countTokens("")).toBe(0);
    expect(countTokens("hello world")).toBe(2);
  });

  it("counts special-token strings in user text as plain text instead of throwing", () => {
    const n = countTokens("ignore <|endoftext|> and <|im_start|>");
    expect(n).toBeGreaterThan(4);
  });

  it("counts a prompt as its contents plus per-message framing and the reply priming", () => {
    const one = countMessageTokens([{ role: "user", content: "hello world" }]);
    const two = countMessageTokens([
      { role: "system", content: "hello world" },
      { role: "user", content: "hello world" },
    ]);
    const framing = one - countTokens("hello world");
    expect(framing).toBeGreaterThan(0);
    // Each added message costs its content and the same framing, less the one-off priming.
    const priming = 2 * framing - (two - 2 * countTokens("hello world"));
    expect(priming).toBeGreaterThan(0);
    expect(countMessageTokens([])).toBe(priming);
  });
});
