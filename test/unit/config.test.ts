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

  it("keeps pooled connections ten minutes idle by default, 0 meaning never closed", () => {
    expect(loadConfig({}).database.poolIdleMs).toBe(600_000);
    expect(loadConfig({ DB_POOL_IDLE_MS: "0" }).database.poolIdleMs).toBe(0);
    expect(() => loadConfig({ DB_POOL_IDLE_MS: "-1" })).toThrow(ConfigError);
  });

  it("reads roles, quotas and analytics retention (issue 15): quotas off by default, 0 meaning off", () => {
    const d = loadConfig({});
    expect(d.auth.adminUsernames).toEqual([]);
    expect(d.quota).toEqual({ dailyTokens: undefined, turnEstimateTokens: 1000 });
    expect(d.analytics).toEqual({ retentionDays: 730 });
    expect(d.rateLimits.rules.admin).toEqual({ capacity: 60, refillPerSecond: 5 });
    const c = loadConfig({ ADMIN_USERNAMES: " alice, Bob ,,", QUOTA_DAILY_TOKENS: "50000", QUOTA_TURN_ESTIMATE_TOKENS: "800", ANALYTICS_RETENTION_DAYS: "90" });
    expect(c.auth.adminUsernames).toEqual(["alice", "Bob"]);
    expect(c.quota).toEqual({ dailyTokens: 50000, turnEstimateTokens: 800 });
    expect(c.analytics.retentionDays).toBe(90);
    expect(loadConfig({ QUOTA_DAILY_TOKENS: "0" }).quota.dailyTokens).toBeUndefined();
    expect(() => loadConfig({ ANALYTICS_RETENTION_DAYS: "0" })).toThrow(ConfigError);
    expect(() => loadConfig({ QUOTA_DAILY_TOKENS: "-5" })).toThrow(ConfigError);
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

  it("leaves every lifecycle job off by default, and reads them when set", () => {
    const off = loadConfig({});
    expect(off.lifecycle).toMatchObject({ archiveIdleDays: undefined, sessionMaxMessages: undefined, retentionArchivedDays: undefined });
    expect(off.maintenance).toEqual({ enabled: true, intervalMs: 600_000, leaseMs: 120_000 });
    const on = loadConfig({ ARCHIVE_IDLE_DAYS: "30", SESSION_MAX_MESSAGES: "5000", RETENTION_ARCHIVED_DAYS: "0.5", MAINTENANCE_INTERVAL_MS: "60000" });
    expect(on.lifecycle).toMatchObject({ archiveIdleDays: 30, sessionMaxMessages: 5000, retentionArchivedDays: 0.5 });
    expect(on.maintenance.intervalMs).toBe(60_000);
    expect(() => loadConfig({ SESSION_MAX_MESSAGES: "3" })).toThrow(/SESSION_MAX_MESSAGES/);
    expect(() => loadConfig({ RETENTION_ARCHIVED_DAYS: "-1" })).toThrow(/RETENTION_ARCHIVED_DAYS/);
  });
  it("reads the re-embedding settings, with a throttled backfill and three kept versions by default", () => {
    const d = loadConfig({});
    expect(d.reembed).toEqual({ batchSize: 64, intervalMs: 200, keepVersions: 3, refreshMs: 2000 });
    expect(d.embedding).toMatchObject({ previousModelPath: undefined, previousWorkers: 1 });
    const c = loadConfig({ REEMBED_BATCH_SIZE: "8", REEMBED_INTERVAL_MS: "0", REEMBED_KEEP_VERSIONS: "5", EMBEDDING_PREVIOUS_MODEL_PATH: "models/old", EMBEDDING_PREVIOUS_WORKERS: "2" });
    expect(c.reembed).toMatchObject({ batchSize: 8, intervalMs: 0, keepVersions: 5 });
    expect(c.embedding.previousModelPath).toMatch(/\/models\/old$/);
    expect(c.embedding.previousWorkers).toBe(2);
    // At least the active version and one to build.
    expect(() => loadConfig({ REEMBED_KEEP_VERSIONS: "1" })).toThrow(/REEMBED_KEEP_VERSIONS/);
  });
});
