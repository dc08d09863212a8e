import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisCancelBus } from "../../src/redis/cancel-bus.js";
import { duplicateForSubscriber } from "../../src/redis/client.js";
import { cancelBusContract } from "../contracts/cancel-bus-contract.js";
import { silentLogger } from "../support/logger.js";
import { connectTestRedis, eventually, type TestRedis } from "../support/redis.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await redis.cleanup();
});

// Every node has its own command connection and its own subscriber, as
// separate server processes would; a world is one channel.
cancelBusContract("redis", () => {
  const channel = redis.channel("cancel");
  return {
    node: async () => new RedisCancelBus({ client: await redis.newClient(), channel, logger: silentLogger }),
  };
});

describe("RedisCancelBus", () => {
  it("keeps delivering to the other handlers when one throws, and skips malformed messages", async () => {
    const channel = redis.channel("cancel");
    const bus = new RedisCancelBus({ client: redis.client, channel, logger: silentLogger });
    const got: number[] = [];
    let done!: () => void;
    const delivered = new Promise<void>((resolve) => (done = resolve));
    await bus.subscribe(() => {
      throw new Error("handler bug");
    });
    await bus.subscribe((id) => {
      got.push(id);
      if (id === 2) done();
    });
    await redis.client.publish(channel, "not-a-number");
    await bus.publish(1);
    await bus.publish(2);
    await delivered;
    expect(got).toEqual([1, 2]);
    await bus.close();
  });

  it("uses a subscriber connection it was given, and leaves it open", async () => {
    const channel = redis.channel("cancel");
    const sub = await redis.newClient();
    const bus = new RedisCancelBus({ client: redis.client, subscriber: sub, channel, logger: silentLogger });
    let resolveGot!: (id: number) => void;
    const got = new Promise<number>((resolve) => (resolveGot = resolve));
    await bus.subscribe((id) => resolveGot(id));
    await bus.publish(9);
    expect(await got).toBe(9);
    await bus.close();
    expect(sub.status).toBe("ready");
    // Unsubscribed from the channel: the connection is usable for commands again.
    expect(await sub.ping()).toBe("PONG");
  });

  it("keeps a subscription made while its connection is still starting up", async () => {
    // Regression: a SUBSCRIBE sent between TCP connect and ioredis's ready
    // check made the ready check fail, and the reconnect dropped the channel.
    const channel = redis.channel("cancel");
    const sub = duplicateForSubscriber(redis.client, silentLogger);
    const bus = new RedisCancelBus({ client: redis.client, subscriber: sub, channel, logger: silentLogger });
    try {
      await once(sub, "connect");
      expect(sub.status).toBe("connect");
      const got: number[] = [];
      await bus.subscribe((id) => got.push(id));
      await bus.publish(11);
      await eventually(async () => expect(got).toEqual([11]), 2000);
      await new Promise((r) => setTimeout(r, 200));
      await bus.publish(12);
      await eventually(async () => expect(got).toEqual([11, 12]), 2000);
    } finally {
      await bus.close();
      sub.disconnect();
    }
  });

  it("refuses use after close()", async () => {
    const bus = new RedisCancelBus({ client: redis.client, channel: redis.channel("cancel"), logger: silentLogger });
    await bus.close();
    await expect(bus.publish(1)).rejects.toThrow(/closed/);
    await expect(bus.subscribe(() => {})).rejects.toThrow(/closed/);
  });
});
