import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStreamBuffer } from "../../src/redis/stream-buffer.js";
import { streamBufferContract } from "../contracts/stream-buffer-contract.js";
import { connectTestRedis, type TestRedis } from "../support/redis.js";

const GRACE = 300;

let redis: TestRedis;
beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await redis.cleanup();
});

streamBufferContract("redis", () => new RedisStreamBuffer({ client: redis.client, endGraceMs: GRACE }), { endGraceMs: GRACE });

let id = 1_000_000 + Math.floor(Math.random() * 1e6);

describe("RedisStreamBuffer", () => {
  it("lets another node read what one node appended", async () => {
    const writer = new RedisStreamBuffer({ client: await redis.newClient() });
    const reader = new RedisStreamBuffer({ client: await redis.newClient() });
    const m = ++id;
    await writer.append(m, { seq: 1, text: "from" });
    await writer.append(m, { seq: 2, text: " node A" });
    expect(await reader.read(m, 1)).toEqual([{ seq: 2, text: " node A" }]);
  });

  it("expires a stream while streaming after liveTtlMs without appends, and each append pushes it back", async () => {
    const sb = new RedisStreamBuffer({ client: redis.client, liveTtlMs: 400, prefix: "sb:" });
    const m = ++id;
    await sb.append(m, { seq: 1, text: "a" });
    const ttl = await redis.client.pttl(`sb:${m}`);
    expect(ttl).toBeGreaterThan(300);
    expect(ttl).toBeLessThanOrEqual(400);
    await new Promise((r) => setTimeout(r, 250));
    await sb.append(m, { seq: 2, text: "b" });
    await new Promise((r) => setTimeout(r, 250));
    // 500 ms after the first append, but only 250 after the last.
    expect(await sb.read(m, 0)).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(await sb.read(m, 0)).toEqual([]);
  });

  it("shortens the lifetime to the grace period on end()", async () => {
    const sb = new RedisStreamBuffer({ client: redis.client, liveTtlMs: 60_000, endGraceMs: 5_000, prefix: "sb:" });
    const m = ++id;
    await sb.append(m, { seq: 1, text: "a" });
    expect(await redis.client.pttl(`sb:${m}`)).toBeGreaterThan(50_000);
    await sb.end(m);
    const ttl = await redis.client.pttl(`sb:${m}`);
    expect(ttl).toBeGreaterThan(4_000);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });

  it("caps a stream's length, keeping the newest deltas in order", async () => {
    const sb = new RedisStreamBuffer({ client: redis.client, maxLen: 100, prefix: "sb:" });
    const m = ++id;
    const pipeline = [];
    for (let seq = 1; seq <= 1000; seq++) pipeline.push(sb.append(m, { seq, text: String(seq) }));
    await Promise.all(pipeline);
    const len = await redis.client.xlen(`sb:${m}`);
    // "MAXLEN ~" trims whole nodes (100 entries by default), so somewhat above the cap.
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(300);
    const got = await sb.read(m, 0);
    expect(got).toHaveLength(len);
    expect(got.at(-1)).toEqual({ seq: 1000, text: "1000" });
    expect(got.map((d) => d.seq)).toEqual(Array.from({ length: len }, (_, i) => 1001 - len + i));
  });

  it("reads a delta once when an append was retried and stored twice", async () => {
    const sb = new RedisStreamBuffer({ client: redis.client });
    const m = ++id;
    await sb.append(m, { seq: 1, text: "a" });
    await sb.append(m, { seq: 2, text: "b" });
    await sb.append(m, { seq: 2, text: "b" });
    await sb.append(m, { seq: 3, text: "c" });
    expect(await sb.read(m, 0)).toEqual([
      { seq: 1, text: "a" },
      { seq: 2, text: "b" },
      { seq: 3, text: "c" },
    ]);
  });

  it("refuses bad input and use after close()", async () => {
    const sb = new RedisStreamBuffer({ client: redis.client });
    await expect(sb.append(++id, { seq: 0, text: "x" })).rejects.toThrow(RangeError);
    await expect(sb.read(1.5, 0)).rejects.toThrow(RangeError);
    expect(() => new RedisStreamBuffer({ client: redis.client, maxLen: 0 })).toThrow(RangeError);
    await sb.close();
    await expect(sb.read(++id, 0)).rejects.toThrow(/closed/);
  });
});
