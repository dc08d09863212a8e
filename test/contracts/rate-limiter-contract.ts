import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { RateLimiter } from "../../src/chat/ports.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The contract every RateLimiter must keep: token buckets, atomic under
 * concurrency. Each test uses fresh keys, so `make` may return a shared
 * backing store.
 */
export function rateLimiterContract(name: string, make: () => Promise<RateLimiter> | RateLimiter) {
  describe(`RateLimiter contract: ${name}`, () => {
    const made: RateLimiter[] = [];
    const limiter = async () => {
      const l = await make();
      made.push(l);
      return l;
    };
    afterEach(async () => {
      await Promise.all(made.splice(0).map((l) => l.close()));
    });

    it("allows a burst of `capacity`, then refuses with a retry time", async () => {
      const rl = await limiter();
      const key = randomUUID();
      const rule = { capacity: 3, refillPerSecond: 1 };
      expect(await rl.consume(key, rule)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 2 });
      expect(await rl.consume(key, rule)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 1 });
      expect(await rl.consume(key, rule)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 0 });
      const refused = await rl.consume(key, rule);
      expect(refused.allowed).toBe(false);
      expect(refused.remaining).toBe(0);
      // One token at 1/s: due within a second, and most of it still to wait.
      expect(refused.retryAfterMs).toBeGreaterThan(500);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(1000);
    });

    it("refills over time, and retryAfterMs is when the request would pass", async () => {
      const rl = await limiter();
      const key = randomUUID();
      const rule = { capacity: 2, refillPerSecond: 10 };
      await rl.consume(key, rule);
      await rl.consume(key, rule);
      const refused = await rl.consume(key, rule);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
      // Refused requests take nothing: asking again does not push the time back.
      const again = await rl.consume(key, rule);
      expect(again.allowed).toBe(false);
      expect(again.retryAfterMs).toBeLessThanOrEqual(refused.retryAfterMs);
      await sleep(again.retryAfterMs + 15);
      expect((await rl.consume(key, rule)).allowed).toBe(true);
    });

    it("never refills past capacity", async () => {
      const rl = await limiter();
      const key = randomUUID();
      const rule = { capacity: 3, refillPerSecond: 1000 };
      await rl.consume(key, rule);
      await sleep(30);
      expect((await rl.consume(key, rule)).remaining).toBe(2);
    });

    it("charges `cost` tokens and computes the wait for all of them", async () => {
      const rl = await limiter();
      const key = randomUUID();
      const rule = { capacity: 10, refillPerSecond: 1 };
      expect(await rl.consume(key, rule, 4)).toMatchObject({ allowed: true, remaining: 6 });
      expect(await rl.consume(key, rule, 4)).toMatchObject({ allowed: true, remaining: 2 });
      const refused = await rl.consume(key, rule, 4);
      expect(refused).toMatchObject({ allowed: false, remaining: 2 });
      // Two tokens missing at 1/s.
      expect(refused.retryAfterMs).toBeGreaterThan(1500);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(2000);
      // A smaller request still fits in what is left.
      expect(await rl.consume(key, rule, 2)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it("keeps keys independent", async () => {
      const rl = await limiter();
      const [a, b] = [randomUUID(), randomUUID()];
      const rule = { capacity: 1, refillPerSecond: 0.01 };
      expect((await rl.consume(a, rule)).allowed).toBe(true);
      expect((await rl.consume(a, rule)).allowed).toBe(false);
      expect((await rl.consume(b, rule)).allowed).toBe(true);
    });

    it("never overdraws under concurrency: 200 parallel requests on a bucket of 50 allow exactly 50", async () => {
      const rl = await limiter();
      const key = randomUUID();
      const rule = { capacity: 50, refillPerSecond: 0.001 };
      const decisions = await Promise.all(Array.from({ length: 200 }, () => rl.consume(key, rule)));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
      expect(decisions.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0)).toBe(true);
      // Every allowed request saw a distinct number of tokens left.
      const remaining = decisions.filter((d) => d.allowed).map((d) => d.remaining);
      expect(new Set(remaining).size).toBe(50);
    });

    it("rejects requests no bucket could ever grant", async () => {
      const rl = await limiter();
      const key = randomUUID();
      await expect(rl.consume(key, { capacity: 2, refillPerSecond: 1 }, 3)).rejects.toThrow(RangeError);
      await expect(rl.consume(key, { capacity: 0, refillPerSecond: 1 })).rejects.toThrow(RangeError);
      await expect(rl.consume(key, { capacity: 2, refillPerSecond: 0 })).rejects.toThrow(RangeError);
      await expect(rl.consume(key, { capacity: 2, refillPerSecond: 1 }, 0)).rejects.toThrow(RangeError);
      // Nothing was charged by the rejected calls.
      expect(await rl.consume(key, { capacity: 2, refillPerSecond: 1 })).toMatchObject({ allowed: true, remaining: 1 });
    });
  });
}
