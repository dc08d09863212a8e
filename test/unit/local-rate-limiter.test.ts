import { describe, expect, it } from "vitest";
import { LocalRateLimiter } from "../../src/realtime/local-rate-limiter.js";
import { rateLimiterContract } from "../contracts/rate-limiter-contract.js";

rateLimiterContract("in-process", () => new LocalRateLimiter());

describe("LocalRateLimiter memory", () => {
  const rule = { capacity: 4, refillPerSecond: 2 };

  it("drops buckets once they have refilled, and a dropped bucket is a full one", async () => {
    let now = 1_000;
    const rl = new LocalRateLimiter({ now: () => now });
    await rl.consume("a", rule, 4);
    await rl.consume("b", rule, 1);
    expect(rl.size).toBe(2);
    // "b" is full again after 0.5 s, "a" after 2 s.
    now += 600;
    rl.sweep();
    expect(rl.size).toBe(1);
    now += 1_400;
    rl.sweep();
    expect(rl.size).toBe(0);
    expect(await rl.consume("a", rule)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 3 });
    await rl.close();
  });

  it("stays within maxBuckets under a flood of keys, keeping the most recently used", async () => {
    const now = 0;
    const rl = new LocalRateLimiter({ now: () => now, maxBuckets: 100 });
    for (let i = 0; i < 1_000; i++) await rl.consume(`ip-${i}`, rule, 4);
    expect(rl.size).toBe(100);
    // The newest key is remembered (still empty), the oldest was forgotten.
    expect((await rl.consume("ip-999", rule)).allowed).toBe(false);
    expect((await rl.consume("ip-0", rule)).allowed).toBe(true);
    await rl.close();
  });

  it("sweeps on its own timer", async () => {
    let now = 0;
    const rl = new LocalRateLimiter({ now: () => now, sweepIntervalMs: 20 });
    await rl.consume("a", rule);
    now += 10_000;
    await new Promise((r) => setTimeout(r, 80));
    expect(rl.size).toBe(0);
    await rl.close();
  });

  it("refuses to work after close()", async () => {
    const rl = new LocalRateLimiter();
    await rl.close();
    await expect(rl.consume("a", rule)).rejects.toThrow(/closed/);
  });
});
