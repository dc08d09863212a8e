/**
 * What nodes share: fan-out between Socket.IO servers, presence, rate limit
 * buckets, reply stream buffers and cancel requests. In-process for one node
 * (embedded profile); Redis when REDIS_URL is set, so any number of nodes can
 * sit behind a load balancer.
 */
import { createAdapter } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { LocalCancelBus } from "../chat/local-cancel-bus.js";
import { LocalStreamBuffer } from "../chat/local-stream-buffer.js";
import type { CancelBus, Presence, RateLimiter, StreamBuffer } from "../chat/ports.js";
import type { RoomEvents } from "../chat/room-events.js";
import type { Config } from "../config.js";
import type { ReadinessCheck } from "../http/routes.js";
import { RedisCancelBus } from "../redis/cancel-bus.js";
import { createRedisClient, duplicateForSubscriber, waitUntilReady } from "../redis/client.js";
import { RedisPresence } from "../redis/presence.js";
import { RedisRateLimiter } from "../redis/rate-limiter.js";
import { RedisStreamBuffer } from "../redis/stream-buffer.js";
import { LocalPresence } from "./local-presence.js";
import { LocalRateLimiter } from "./local-rate-limiter.js";
import type { ChatServer } from "./socket-server.js";

export interface Coordination {
  kind: "local" | "redis";
  presence: Presence;
  rateLimiter: RateLimiter;
  streamBuffer: StreamBuffer;
  cancelBus: CancelBus;
  /** Connects the Socket.IO server to the other nodes. */
  attach(io: ChatServer): void;
  /** Starts periodic work that needs the room events (presence expiry). */
  start(rooms: RoomEvents, usernameOf: (userId: string) => Promise<string>): void;
  readiness: ReadinessCheck[];
  stop(): Promise<void>;
}

export async function createCoordination(config: Config, log: Logger): Promise<Coordination> {
  if (!config.redis.url) {
    const streamBuffer = new LocalStreamBuffer({ graceMs: config.assistant.streamGraceMs });
    const cancelBus = new LocalCancelBus();
    const rateLimiter = new LocalRateLimiter();
    return {
      kind: "local",
      presence: new LocalPresence(),
      rateLimiter,
      streamBuffer,
      cancelBus,
      attach: () => undefined,
      start: () => undefined,
      readiness: [],
      async stop() {
        await streamBuffer.close();
        await cancelBus.close();
        await rateLimiter.close();
      },
    };
  }

  const rlog = log.child({ component: "redis" });
  const client = createRedisClient({ url: config.redis.url, logger: rlog, name: `memchat-${config.nodeId}` });
  await waitForRedis(client, rlog);
  const adapterPub = createRedisClient({ url: config.redis.url, logger: rlog, name: `memchat-${config.nodeId}-pub` });
  const adapterSub = duplicateForSubscriber(adapterPub, rlog, `memchat-${config.nodeId}-sub`);
  await Promise.all([waitUntilReady(adapterPub, 30_000), waitUntilReady(adapterSub, 30_000)]);

  let rooms: RoomEvents | undefined;
  let usernameOfRef: ((userId: string) => Promise<string>) | undefined;
  const presence = new RedisPresence({
    client,
    logger: rlog,
    ttlMs: config.redis.presenceTtlMs,
    onRejoin: (sessionId, userId) => {
      // This node was cut off long enough for its users to be swept; they are back.
      void usernameOfRef?.(userId).then((username) => rooms?.emit(sessionId, "presence:join", { sessionId, userId, username }));
    },
  });
  const rateLimiter = new RedisRateLimiter({ client });
  const streamBuffer = new RedisStreamBuffer({ client, endGraceMs: config.assistant.streamGraceMs });
  const cancelBus = new RedisCancelBus({ client, logger: rlog });
  let sweepTimer: NodeJS.Timeout | undefined;

  return {
    kind: "redis",
    presence,
    rateLimiter,
    streamBuffer,
    cancelBus,
    attach(io) {
      // Plain pub/sub adapter: each event is published once and every node
      // delivers it to its own sockets in the room. See README for why not the
      // sharded or streams adapter.
      io.adapter(createAdapter(adapterPub, adapterSub, { key: "memchat" }));
    },
    start(r, usernameOf) {
      rooms = r;
      usernameOfRef = usernameOf;
      // Users whose node died (no heartbeat for the TTL) leave their rooms; one node reports each.
      sweepTimer = setInterval(() => {
        presence
          .sweepExpired()
          .then(async (gone) => {
            for (const g of gone) {
              const username = await usernameOf(g.userId).catch(() => "");
              r.emit(g.sessionId, "presence:leave", { sessionId: g.sessionId, userId: g.userId, username });
            }
          })
          .catch((err) => rlog.debug({ err: (err as Error).message }, "presence sweep failed"));
      }, Math.max(1000, Math.floor(config.redis.presenceTtlMs / 3)));
      sweepTimer.unref();
    },
    readiness: [
      {
        name: "redis",
        critical: false,
        async check() {
          const pong = await client.ping();
          if (pong !== "PONG") throw new Error(`unexpected PING reply ${pong}`);
          return `ok (${client.status}); fan-out, presence, rate limits and stream buffers shared through Redis`;
        },
      },
    ],
    async stop() {
      if (sweepTimer) clearInterval(sweepTimer);
      await presence.close();
      await cancelBus.close();
      await streamBuffer.close();
      await rateLimiter.close();
      for (const c of [adapterSub, adapterPub, client]) await c.quit().catch(() => c.disconnect());
    },
  };
}

/** Redis may still be starting (docker-compose): wait, like for the database. */
async function waitForRedis(client: Redis, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await waitUntilReady(client, 5_000);
      return;
    } catch (err) {
      if (attempt >= 12) throw new Error(`Redis not reachable: ${(err as Error).message}`);
      log.warn({ attempt }, "Redis not reachable yet, waiting");
    }
  }
}
