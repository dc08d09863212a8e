/**
 * What the Redis adapters do while Redis is down and after it is back, on a
 * private redis-server this file stops and restarts. The restarted server is
 * empty (no persistence), like a Redis that failed over or lost its memory.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisCancelBus } from "../../src/redis/cancel-bus.js";
import { createRedisClient, isRedisUnavailable, waitUntilReady } from "../../src/redis/client.js";
import { RedisPresence } from "../../src/redis/presence.js";
import { RedisRateLimiter } from "../../src/redis/rate-limiter.js";
import { RedisStreamBuffer } from "../../src/redis/stream-buffer.js";
import { silentLogger } from "../support/logger.js";
import { eventually, type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a caller waits for a failure during an outage, with its error. */
async function failure(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = performance.now();
  const err = await p.then(
    () => new Error("expected a failure, got a result"),
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - started };
}

// Needs the binary; absent only when TEST_REDIS_URL points at another Redis.
describe.skipIf(!redisServerAvailable())("Redis outage", () => {
  let server: RedisServerHandle;
  const clients: Redis[] = [];
  const client = async () => {
    const c = createRedisClient({ url: server.url, logger: silentLogger, commandTimeoutMs: 500, retryBaseMs: 20, retryMaxMs: 100 });
    clients.push(c);
    await waitUntilReady(c);
    return c;
  };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    // Each test starts with a running server.
    await server.restart();
  });
  afterAll(async () => {
    await server.dispose();
  });

  it("rate limiter: fails fast with an unavailable error, then works again on the same client", async () => {
    const rl = new RedisRateLimiter({ client: await client() });
    const rule = { capacity: 3, refillPerSecond: 0.01 };
    const key = randomUUID();
    expect((await rl.consume(key, rule)).allowed).toBe(true);
    await server.stop();
    // The first call may already be on the wire when the socket closes.
    const first = await failure(rl.consume(key, rule));
    expect(isRedisUnavailable(first.err), String(first.err)).toBe(true);
    expect(first.ms).toBeLessThan(1000);
    await sleep(50);
    for (let i = 0; i < 5; i++) {
      const { err, ms } = await failure(rl.consume(key, rule));
      expect(isRedisUnavailable(err), String(err)).toBe(true);
      expect(ms).toBeLessThan(50);
    }
    await server.restart();
    // The restarted server lost both the bucket and the script cache (EVALSHA -> NOSCRIPT -> EVAL).
    const after = await eventually(() => rl.consume(key, rule), 5000);
    expect(after).toEqual({ allowed: true, retryAfterMs: 0, remaining: 2 });
  });

  it("stream buffer and presence: fail fast with an unavailable error", async () => {
    const c = await client();
    const sb = new RedisStreamBuffer({ client: c });
    const presence = new RedisPresence({ client: c, logger: silentLogger, ttlMs: 1000 });
    await server.stop();
    await sleep(50);
    for (const p of [sb.append(1, { seq: 1, text: "x" }), sb.read(1, 0), presence.join(randomUUID(), "u", "c"), presence.list(randomUUID())]) {
      const { err, ms } = await failure(p);
      expect(isRedisUnavailable(err), String(err)).toBe(true);
      expect(ms).toBeLessThan(50);
    }
    await presence.close();
  });

  it("presence: heartbeats put this node's users back into a Redis that lost them", async () => {
    const rejoined: string[] = [];
    const presence = new RedisPresence({
      client: await client(),
      logger: silentLogger,
      ttlMs: 600,
      heartbeatMs: 100,
      onRejoin: (_s, u) => rejoined.push(u),
    });
    const s = randomUUID();
    await presence.join(s, "u1", "c1");
    await presence.join(s, "u2", "c2");
    await server.restart();
    await eventually(async () => expect((await presence.list(s)).map((e) => e.userId).sort()).toEqual(["u1", "u2"]), 5000);
    expect(rejoined.sort()).toEqual(["u1", "u2"]);
    await presence.close();
  });

  it("cancel bus: subscribers hear cancels again after Redis comes back", async () => {
    const a = new RedisCancelBus({ client: await client(), channel: "cancel", logger: silentLogger });
    const b = new RedisCancelBus({ client: await client(), channel: "cancel", logger: silentLogger });
    const got: number[] = [];
    await a.subscribe((id) => got.push(id));
    await b.publish(1);
    await eventually(async () => expect(got).toEqual([1]));
    await server.stop();
    const { err } = await failure(b.publish(2));
    expect(isRedisUnavailable(err), String(err)).toBe(true);
    await server.restart();
    // Publishing works as soon as b is back; a hears it once its subscriber has re-subscribed.
    await eventually(async () => {
      await b.publish(3);
      await sleep(50);
      expect(got).toContain(3);
    }, 5000);
    expect(got.filter((id) => id === 2)).toEqual([]);
    await a.close();
    await b.close();
  });
});
