import net from "node:net";
import { ReplyError } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRedisClient,
  duplicateForSubscriber,
  isRedisUnavailable,
  reconnectDelay,
  RedisNotReadyError,
  waitUntilReady,
} from "../../src/redis/client.js";
import { silentLogger } from "../support/logger.js";
import { connectTestRedis, type TestRedis } from "../support/redis.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await redis.cleanup();
});

/** A pino logger that keeps what it writes. */
function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("reconnectDelay", () => {
  it("backs off exponentially, is capped, and never gives up", () => {
    const delays = Array.from({ length: 12 }, (_, i) => reconnectDelay(i + 1, 50, 2000));
    expect(delays[0]).toBeGreaterThanOrEqual(40);
    expect(delays[0]).toBeLessThanOrEqual(50);
    expect(delays[3]).toBeGreaterThanOrEqual(320);
    expect(delays[3]).toBeLessThanOrEqual(400);
    for (const d of delays) expect(d).toBeLessThanOrEqual(2000);
    expect(delays.at(-1)).toBeGreaterThanOrEqual(1600);
    expect(reconnectDelay(1_000_000, 50, 2000)).toBeLessThanOrEqual(2000);
    expect(reconnectDelay(1_000_000, 50, 2000)).toBeGreaterThan(0);
  });
});

describe("createRedisClient", () => {
  it("fails commands at once while Redis is unreachable, logs instead of crashing, and keeps retrying", async () => {
    const { logger, lines } = recordingLogger();
    const client = createRedisClient({ url: `redis://127.0.0.1:${await closedPort()}`, logger, name: "test", retryBaseMs: 20, retryMaxMs: 40 });
    try {
      const notReady = await waitUntilReady(client, 300).catch((e: unknown) => e);
      expect(notReady).toBeInstanceOf(RedisNotReadyError);
      expect(isRedisUnavailable(notReady)).toBe(true);
      const started = performance.now();
      const err = await client.get("k").catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(50);
      expect(isRedisUnavailable(err)).toBe(true);
      // Several failed attempts by now, one warning; the rest at debug.
      const warns = lines.filter((l) => l.level === 40);
      expect(warns).toHaveLength(1);
      expect(warns[0]!.msg).toBe("redis connection error");
      expect(lines.filter((l) => l.level === 20).length).toBeGreaterThan(1);
      expect(client.status).toMatch(/reconnecting|connecting|connect/);
    } finally {
      client.disconnect();
    }
  });

  it("connects a lazy client only when asked", async () => {
    const client = createRedisClient({ url: redis.url, logger: silentLogger, lazyConnect: true });
    try {
      expect(client.status).toBe("wait");
      await waitUntilReady(client);
      expect(await client.ping()).toBe("PONG");
    } finally {
      client.disconnect();
    }
  });

  it("applies the key prefix; a subscriber duplicate keeps the settings but has an offline queue", async () => {
    const a = await redis.newClient();
    await a.set("prefixed", "1");
    const raw = createRedisClient({ url: redis.url, logger: silentLogger });
    const sub = duplicateForSubscriber(a, silentLogger);
    try {
      await waitUntilReady(raw);
      expect(await raw.get(`${redis.keyPrefix}prefixed`)).toBe("1");
      expect(sub.options.keyPrefix).toBe(redis.keyPrefix);
      expect(sub.options.commandTimeout).toBe(a.options.commandTimeout);
      expect(sub.options.enableOfflineQueue).toBe(true);
      await waitUntilReady(sub);
      const channel = redis.channel("dup");
      const got = new Promise<string>((resolve) => sub.on("message", (_c: string, m: string) => resolve(m)));
      await sub.subscribe(channel);
      await a.publish(channel, "hello");
      expect(await got).toBe("hello");
    } finally {
      raw.disconnect();
      sub.disconnect();
    }
  });
});

describe("isRedisUnavailable", () => {
  it("does not take a wrong request for an outage", async () => {
    await redis.client.set("str", "x");
    const wrongType = await redis.client.lpush("str", "y").catch((e: unknown) => e);
    expect(wrongType).toBeInstanceOf(ReplyError);
    expect(isRedisUnavailable(wrongType)).toBe(false);
    const badScript = await redis.client.eval("return redis.call('NOPE')", 0).catch((e: unknown) => e);
    expect(isRedisUnavailable(badScript)).toBe(false);
    expect(isRedisUnavailable(new Error("boom"))).toBe(false);
    expect(isRedisUnavailable(new RangeError("cost exceeds capacity"))).toBe(false);
    expect(isRedisUnavailable("ECONNREFUSED")).toBe(false);
    expect(isRedisUnavailable(null)).toBe(false);
  });

  it("recognises replies that mean the server cannot serve right now", () => {
    expect(isRedisUnavailable(new ReplyError("LOADING Redis is loading the dataset in memory"))).toBe(true);
    expect(isRedisUnavailable(new ReplyError("READONLY You can't write against a read only replica."))).toBe(true);
    expect(isRedisUnavailable(new ReplyError("MASTERDOWN Link with MASTER is down"))).toBe(true);
    expect(isRedisUnavailable(new ReplyError("LOADINGX not a real code"))).toBe(false);
  });

  it("looks inside wrapped and aggregated errors", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(isRedisUnavailable(new AggregateError([refused], "all attempts failed"))).toBe(true);
    expect(isRedisUnavailable(new Error("write failed", { cause: refused }))).toBe(true);
  });
});
