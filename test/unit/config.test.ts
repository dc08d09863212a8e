import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

describe("loadConfig", () => {
  it("gives the embedded profile with nothing set", () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.database.url).toBeUndefined();
    expect(c.dataDir).toBe(path.resolve("./data"));
    expect(c.limits.maxMessageChars).toBe(8000);
    expect(c.corsOrigin).toBe("*");
  });

  it("reads and coerces values", () => {
    const c = loadConfig({ PORT: "8080", DATABASE_URL: "postgres://u:p@db:5432/chat", CORS_ORIGIN: "https://a.example, https://b.example", TRUST_PROXY: "yes" });
    expect(c.port).toBe(8080);
    expect(c.database.url).toBe("postgres://u:p@db:5432/chat");
    expect(c.corsOrigin).toEqual(["https://a.example", "https://b.example"]);
    expect(c.trustProxy).toBe(true);
  });

  it("treats an empty DATABASE_URL as unset", () => {
    expect(loadConfig({ DATABASE_URL: "" }).database.url).toBeUndefined();
  });

  it("names every invalid setting", () => {
    try {
      loadConfig({ PORT: "http", JWT_SECRET: "short", PASSWORD_SCRYPT_N: "1000", LOG_LEVEL: "loud" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      for (const key of ["PORT", "JWT_SECRET", "PASSWORD_SCRYPT_N", "LOG_LEVEL"]) expect(msg).toContain(key);
    }
  });
});
