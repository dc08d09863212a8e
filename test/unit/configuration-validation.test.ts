import { describe, expect, it } from "vitest";
import { parseSettings } from "../../src/chat/configuration-service.js";
import { CONFIGURATION_BOUNDS, configurationCreate, configurationUpdate } from "../../src/protocol/configuration-schemas.js";
import { ValidationError } from "../../src/protocol/errors.js";

const base = { name: "n", systemPrompt: "p" };
const issuesOf = (raw: unknown, schema: typeof configurationCreate | typeof configurationUpdate = configurationCreate) => {
  try {
    parseSettings(schema, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).toBody();
  }
  return undefined;
};

describe("configuration settings", () => {
  it("accept every bound itself and refuse just past it, naming the field and its range", () => {
    for (const [field, { min, max }] of Object.entries(CONFIGURATION_BOUNDS)) {
      expect(issuesOf({ ...base, [field]: min }), `${field}=${min}`).toBeUndefined();
      expect(issuesOf({ ...base, [field]: max }), `${field}=${max}`).toBeUndefined();
      const step = Number.isInteger(min) && field !== "temperature" && field !== "similarityThreshold" ? 1 : 0.001;
      for (const v of [min - step, max + step]) {
        const body = issuesOf({ ...base, [field]: v });
        expect(body, `${field}=${v}`).toMatchObject({ code: "VALIDATION", field });
        expect(body!.message).toContain(`between ${min} and ${max}`);
      }
    }
  });

  it("wants whole numbers where a count is meant, and numbers, not strings", () => {
    for (const field of ["maxTokens", "topK", "historyWindow", "contextTokenBudget"]) {
      expect(issuesOf({ ...base, [field]: 20.5 })).toMatchObject({ field });
    }
    expect(issuesOf({ ...base, temperature: "0.5" })).toMatchObject({ field: "temperature", message: "temperature must be a number" });
    expect(issuesOf({ ...base, temperature: Number.NaN })).toMatchObject({ field: "temperature" });
  });

  it("checks text: name trimmed and bounded, a prompt that says something, a plausible model name, known modes", () => {
    expect(parseSettings(configurationCreate, { name: "  Terse  ", systemPrompt: "p" }).name).toBe("Terse");
    expect(issuesOf({ ...base, name: "\t" })).toMatchObject({ field: "name", message: "name is empty" });
    expect(issuesOf({ ...base, name: "a\u0007b" })).toMatchObject({ field: "name" });
    expect(issuesOf({ ...base, systemPrompt: "x".repeat(8001) })).toMatchObject({ field: "systemPrompt" });
    expect(issuesOf({ ...base, systemPrompt: "a\u0000b" })).toMatchObject({ field: "systemPrompt" });
    expect(issuesOf({ ...base, model: "gpt-4o-mini" })).toBeUndefined();
    expect(issuesOf({ ...base, model: null })).toBeUndefined();
    expect(issuesOf({ ...base, model: "rm -rf" })).toMatchObject({ field: "model" });
    expect(issuesOf({ ...base, retrievalMode: "none" })).toBeUndefined();
    expect(issuesOf({ ...base, retrievalMode: "all" })).toMatchObject({ field: "retrievalMode" });
  });

  it("lists every field in error, and names unknown ones", () => {
    const body = issuesOf({ ...base, temperature: 9, topK: 0, similarityThreshold: -1 })!;
    expect(body.issues!.map((i) => i.field)).toEqual(["temperature", "topK", "similarityThreshold"]);
    expect(body.field).toBe("temperature");
    expect(issuesOf({ ...base, colour: "red" })).toMatchObject({ field: "colour", message: "unknown setting 'colour'" });
    expect(issuesOf({})!.issues!.map((i) => i.field)).toEqual(["name", "systemPrompt"]);
  });

  it("takes a partial edit, but not an empty one", () => {
    expect(parseSettings(configurationUpdate, { topK: 5 })).toEqual({ topK: 5 });
    expect(issuesOf({}, configurationUpdate)).toMatchObject({ code: "VALIDATION", message: "nothing to change: send at least one setting" });
    expect(issuesOf({ temperature: 2.5 }, configurationUpdate)).toMatchObject({ field: "temperature" });
  });
});
