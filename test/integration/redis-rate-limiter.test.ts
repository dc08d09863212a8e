import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisRateLimiter } from "../../src/redis/rate-limiter.js";
import { rateLimiterContract } from "../contracts/rate-limiter-contract.js";
import { connectTestRedis, type TestRedis } from "../support/redis.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await redis.cleanup();
});

rateLimiterContract("redis", () => new RedisRateLimiter({ client: redis.client }));

describe("RedisRateLimiter across nodes", () => {
  it("shares one bucket between two nodes", async () => {
    const a = new RedisRateLimiter({ client: await redis.newClient() });
    const b = new RedisRateLimiter({ client: await redis.newClient() });
    const key = randomUUID();
    const rule = { capacity: 6, refillPerSecond: 0.01 };
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).consume(key, rule)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(6);
    expect((await a.consume(key, rule)).allowed).toBe(false);
    expect((await b.consume(key, rule)).allowed).toBe(false);
  });

  it("times buckets by the Redis clock, not the node's", async () => {
    const a = new RedisRateLimiter({ client: redis.client });
    const key = randomUUID();
    const rule = { capacity: 2, refillPerSecond: 0.01 };
    await a.consume(key, rule, 2);
    // A node whose clock runs an hour ahead must not see an hour of refill.
    vi.useFakeTimers({ toFake: ["Date", "performance"], now: Date.now() });
    vi.advanceTimersByTime(3_600_000);
    try {
      const d = await a.consume(key, rule);
      expect(d.allowed).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it("stores a bucket only until it would be full again", async () => {
    const rl = new RedisRateLimiter({ client: redis.client, prefix: "rl-test:" });
    const key = randomUUID();
    const rule = { capacity: 4, refillPerSecond: 10 };
    await rl.consume(key, rule, 3);
    // Three tokens at 10/s: full again in 300 ms.
    const ttl = await redis.client.pttl(`rl-test:${key}`);
    expect(ttl).toBeGreaterThan(200);
    expect(ttl).toBeLessThanOrEqual(300);
    expect(await redis.client.hgetall(`rl-test:${key}`)).toMatchObject({ tokens: expect.stringMatching(/^1(\.0*)?$/) });
    await new Promise((r) => setTimeout(r, 400));
    expect(await redis.client.exists(`rl-test:${key}`)).toBe(0);
    expect(await rl.consume(key, rule)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 3 });
  });

  it("stores the bucket time as a plain millisecond number, not rounded by Lua's tostring", async () => {
    const rl = new RedisRateLimiter({ client: redis.client, prefix: "rl-prec:" });
    const key = randomUUID();
    await rl.consume(key, { capacity: 1000, refillPerSecond: 0.5 });
    const { tokens, ts } = await redis.client.hgetall(`rl-prec:${key}`);
    const [sec, usec] = await redis.client.time();
    // A timestamp rounded to 14 digits would be off by up to 10 ms.
    expect(Math.abs(Number(ts) - (Number(sec) * 1000 + Number(usec) / 1000))).toBeLessThan(1000);
    expect(ts).toMatch(/^\d{13}(\.\d+)?$/);
    expect(Number(tokens)).toBe(999);
  });
});
