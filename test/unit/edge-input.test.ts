/** The edge's parsing: canonical uuids, well-formed text, the REST media type, and rate-limit families from config. */
import { describe, expect, it } from "vitest";
import { LIMITS } from "../../src/chat/rate-limits.js";
import { loadConfig } from "../../src/config.js";
import { isJsonMediaType } from "../../src/http/router.js";
import { credentials, protocolSchemas, sessionTitle, uuid } from "../../src/protocol/schemas.js";

const schemas = protocolSchemas({ maxMessageChars: 100, historyPageMax: 50 });
const ID = "0f8fad5b-d9cb-469f-a165-70867728950e";

describe("uuid", () => {
  it("parses every spelling to lower case", () => {
    expect(uuid.parse(ID.toUpperCase())).toBe(ID);
    expect(schemas["session:join"].parse({ sessionId: "0F8FAD5B-d9cb-469F-A165-70867728950E" }).sessionId).toBe(ID);
    expect(schemas.memoryQuery.parse({ q: "x", sessionId: ID.toUpperCase() }).sessionId).toBe(ID);
  });

  it("still refuses what is not a uuid", () => {
    expect(uuid.safeParse(`${ID}x`).success).toBe(false);
    expect(uuid.safeParse(`{${ID}}`).success).toBe(false);
  });
});

describe("well-formed text", () => {
  const lone = ["\uD800", "\uDBFF", "\uDC00", "\uDFFF", "a\uD800b", "\uDE00\uD83D" /* pair in the wrong order */];

  it("refuses a lone surrogate in every text field", () => {
    const send = (clientMessageId: string, content: string) => schemas["message:send"].safeParse({ sessionId: ID, clientMessageId, content });
    for (const s of lone) {
      expect(send(`id${s}`, "hi").success, JSON.stringify(s)).toBe(false);
      expect(send("id", `hi${s}`).success).toBe(false);
      expect(credentials.safeParse({ username: "alice", password: `password${s}` }).success).toBe(false);
      expect(sessionTitle.safeParse(`t${s}`).success).toBe(false);
      expect(schemas["memory:search"].safeParse({ query: `q${s}` }).success).toBe(false);
      expect(schemas.memoryQuery.safeParse({ q: `q${s}` }).success).toBe(false);
      expect(schemas["message:feedback"].safeParse({ messageId: 1, rating: 1, comment: s }).success).toBe(false);
      expect(schemas.renameBody.safeParse({ title: s }).success).toBe(false);
    }
  });

  it("keeps surrogate pairs and other text as given", () => {
    const text = "emoji \uD83D\uDE00, CJK 漢字, accents é";
    expect(schemas["message:send"].parse({ sessionId: ID, clientMessageId: text, content: text }).content).toBe(text);
    expect(credentials.parse({ username: "alice", password: text }).password).toBe(text);
  });
});

describe("isJsonMediaType", () => {
  it.each(["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8", 'application/json; charset="utf-8"', "application/json;"])(
    "accepts %s",
    (t) => expect(isJsonMediaType(t)).toBe(true),
  );
  it.each([
    undefined,
    "",
    "text/plain; x=application/json",
    "text/plain;charset=application/json",
    "application/jsonp",
    "application/json-patch+json",
    "application/json; charset=iso-8859-1",
    "application/json; x=1",
    "application/json; charset",
    "application/x-www-form-urlencoded",
  ])("refuses %s", (t) => expect(isJsonMediaType(t)).toBe(false));
});

describe("rate-limit families in config", () => {
  it("has a RATE_<FAMILY>_BURST / _PER_SEC pair for every family, defaults included", () => {
    const c = loadConfig({ RATE_INVITE_BURST: "7", RATE_INVITE_PER_SEC: "0.25" });
    expect(Object.keys(c.rateLimits.rules).sort()).toEqual(Object.keys(LIMITS).sort());
    expect(c.rateLimits.rules.invite).toEqual({ capacity: 7, refillPerSecond: 0.25 });
    expect(c.rateLimits.rules.message).toEqual({ capacity: 30, refillPerSecond: 2 });
    // Invites reveal whether a username exists: by default they are no cheaper to ask than logins.
    const d = loadConfig({}).rateLimits.rules;
    expect(d.invite.capacity).toBeLessThanOrEqual(d.login.capacity);
    expect(d.invite.refillPerSecond).toBeLessThanOrEqual(d.login.refillPerSecond);
  });

  it("refuses a bad value with the variable's name", () => {
    expect(() => loadConfig({ RATE_TYPING_PER_SEC: "0" })).toThrow(/RATE_TYPING_PER_SEC/);
    expect(() => loadConfig({ METRICS_TOKEN: "short" })).toThrow(/METRICS_TOKEN/);
  });
});
