import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RedisPresence, type RedisPresenceOptions } from "../../src/redis/presence.js";
import { presenceContract } from "../contracts/presence-contract.js";
import { silentLogger } from "../support/logger.js";
import { connectTestRedis, type TestRedis } from "../support/redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL = 500;
const HEARTBEAT = 100;

let redis: TestRedis;
const made: RedisPresence[] = [];
/** Per test: sweeps walk one index per prefix, and must not find other tests' dead nodes. */
let prefix = "";
beforeAll(async () => {
  redis = await connectTestRedis();
});
beforeEach(() => {
  prefix = `presence-${randomUUID().slice(0, 8)}:`;
});
afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await redis.cleanup();
});

/** A presence instance standing for one server node. */
async function node(opts: Partial<RedisPresenceOptions> = {}): Promise<RedisPresence> {
  const p = new RedisPresence({
    client: opts.client ?? (await redis.newClient()),
    logger: silentLogger,
    prefix,
    ttlMs: TTL,
    heartbeatMs: HEARTBEAT,
    ...opts,
  });
  made.push(p);
  return p;
}

const users = async (p: RedisPresence, s: string) => (await p.list(s)).map((e) => e.userId).sort();

presenceContract("redis", () => node({ client: redis.client }));

describe("RedisPresence defaults", () => {
  it("heartbeats a third of the TTL and works under the default prefix", async () => {
    const p = new RedisPresence({ client: redis.client, logger: silentLogger, ttlMs: 300 });
    made.push(p);
    const s = randomUUID();
    await p.join(s, "u1", "c1");
    expect(await redis.client.exists(`presence:{${s}}:users`)).toBe(1);
    await sleep(700);
    expect(await p.list(s)).toEqual([{ userId: "u1" }]);
    expect(await p.leave(s, "u1", "c1")).toEqual({ last: true });
  });
});

describe("RedisPresence across nodes", () => {
  it("sees joins made on other nodes, per user", async () => {
    const [a, b] = [await node(), await node()];
    const s = randomUUID();
    expect(await a.join(s, "u1", "a1")).toEqual({ first: true });
    // The same user in a second tab, served by another node.
    expect(await b.join(s, "u1", "b1")).toEqual({ first: false });
    expect(await users(b, s)).toEqual(["u1"]);
    expect(await a.leave(s, "u1", "a1")).toEqual({ last: false });
    expect(await b.leave(s, "u1", "b1")).toEqual({ last: true });
    expect(await users(a, s)).toEqual([]);
  });

  it("keeps a live node's users present past the TTL through heartbeats", async () => {
    const a = await node();
    const s = randomUUID();
    await a.join(s, "u1", "c1");
    await sleep(TTL * 2.5);
    expect(await users(a, s)).toEqual(["u1"]);
    expect(await a.sweepExpired()).toEqual([]);
    expect(await a.leave(s, "u1", "c1")).toEqual({ last: true });
  });

  it("drops the users of a node that stops heartbeating within the TTL, and reports each once", async () => {
    const [dying, alive] = [await node(), await node()];
    const s = randomUUID();
    await dying.join(s, "gone", "d1");
    await dying.join(s, "both", "d2");
    await alive.join(s, "stays", "a1");
    await alive.join(s, "both", "a2");
    // The node dies without leaving: no more heartbeats.
    await dying.close();
    await sleep(TTL + HEARTBEAT);
    expect(await users(alive, s)).toEqual(["both", "stays"]);
    const swept = await Promise.all([alive.sweepExpired(), alive.sweepExpired(), (await node()).sweepExpired()]);
    expect(swept.flat()).toEqual([{ sessionId: s, userId: "gone" }]);
    expect(await alive.sweepExpired()).toEqual([]);
    // "both" was still connected through the live node; their dead tab is forgotten.
    expect(await alive.leave(s, "both", "a2")).toEqual({ last: true });
    expect(await users(alive, s)).toEqual(["stays"]);
  });

  it("answers last on leave when the user's other connections expired, and then the sweep stays quiet", async () => {
    const [dying, alive] = [await node(), await node()];
    const s = randomUUID();
    await dying.join(s, "u1", "dead-tab");
    await alive.join(s, "u1", "live-tab");
    await dying.close();
    await sleep(TTL + HEARTBEAT);
    expect(await alive.leave(s, "u1", "live-tab")).toEqual({ last: true });
    expect(await alive.sweepExpired()).toEqual([]);
    expect(await alive.list(s)).toEqual([]);
  });

  it("answers first on join when the user's only connections had expired", async () => {
    const [dying, alive] = [await node(), await node()];
    const s = randomUUID();
    await dying.join(s, "u1", "old");
    await dying.close();
    await sleep(TTL + HEARTBEAT);
    expect(await alive.join(s, "u1", "new")).toEqual({ first: true });
    // Present again, so the expired tab is not a departure to report.
    expect(await alive.sweepExpired()).toEqual([]);
    expect(await users(alive, s)).toEqual(["u1"]);
  });

  it("lists only users with a live connection even before any sweep", async () => {
    const [dying, alive] = [await node(), await node()];
    const s = randomUUID();
    await dying.join(s, "u1", "c1");
    await alive.join(s, "u2", "c2");
    await dying.close();
    expect(await users(alive, s)).toEqual(["u1", "u2"]);
    await sleep(TTL + HEARTBEAT);
    expect(await users(alive, s)).toEqual(["u2"]);
  });

  it("puts back connections swept while a node could not reach Redis, and says who came back", async () => {
    const rejoined: [string, string][] = [];
    const cut = await redis.newClient();
    const stalled = await node({ client: cut, onRejoin: (s, u) => rejoined.push([s, u]) });
    const other = await node();
    const s = randomUUID();
    await stalled.join(s, "u1", "c1");
    await stalled.join(s, "u2", "c2");
    await other.join(s, "u2", "c3");
    // Cut off past its TTL: its heartbeats fail meanwhile.
    cut.disconnect();
    await sleep(TTL + HEARTBEAT);
    expect(await other.sweepExpired()).toEqual([{ sessionId: s, userId: "u1" }]);
    await cut.connect();
    await stalled.heartbeat();
    // u1 is back (and was announced gone, so reported); u2 never left.
    expect(rejoined).toEqual([[s, "u1"]]);
    expect(await users(other, s)).toEqual(["u1", "u2"]);
    expect(await stalled.leave(s, "u2", "c2")).toEqual({ last: false });
    expect(await stalled.leave(s, "u1", "c1")).toEqual({ last: true });
  });

  it("does not bring back a connection that left while a heartbeat was in flight", async () => {
    const a = await node();
    const s = randomUUID();
    await a.join(s, "u1", "c1");
    const beat = a.heartbeat();
    const left = a.leave(s, "u1", "c1");
    await Promise.all([beat, left]);
    expect(await left).toEqual({ last: true });
    expect(await a.list(s)).toEqual([]);
    await a.heartbeat();
    expect(await a.list(s)).toEqual([]);
  });

  it("sweeps in batches", async () => {
    const [dying, alive] = [await node(), await node()];
    const sessions = Array.from({ length: 7 }, () => randomUUID());
    for (const s of sessions) await dying.join(s, "u", "c");
    await dying.close();
    await sleep(TTL + HEARTBEAT);
    const swept = await alive.sweepExpired(3);
    expect(swept.map((e) => e.sessionId).sort()).toEqual([...sessions].sort());
  });

  it("gives its keys an expiry, so nothing outlives the nodes", async () => {
    const a = await node({ keyGraceMs: 1000 });
    const s = randomUUID();
    await a.join(s, "u1", "c1");
    for (const key of [`${prefix}{${s}}:users`, `${prefix}{${s}}:c:u1`, `${prefix}expiry`]) {
      const ttl = await redis.client.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(TTL + 1000);
    }
  });

  it("rejects settings and ids it cannot work with", async () => {
    expect(() => new RedisPresence({ client: redis.client, logger: silentLogger, ttlMs: 100, heartbeatMs: 100 })).toThrow(RangeError);
    const a = await node({ client: redis.client });
    await expect(a.join("a|b", "u1", "c1")).rejects.toThrow(RangeError);
    await expect(a.list("{x}")).rejects.toThrow(RangeError);
  });
});
