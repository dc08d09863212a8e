/** A LifecycleService on a test database, with the room and member events it sends recorded. */
import type pg from "pg";
import { LifecycleService, type LifecycleOptions } from "../../src/chat/lifecycle-service.js";
import type { MemberEvents, RoomEvents } from "../../src/chat/room-events.js";
import { PgLifecycleStore } from "../../src/db/pg-lifecycle-store.js";
import { vectorPurger } from "../../src/memory/vector-purge.js";
import { silentLogger } from "./logger.js";

export interface Recorded {
  room: { sessionId: string; event: string; payload: unknown }[];
  user: { userId: string; event: string; payload: unknown }[];
  evicted: { sessionId: string; userIds: readonly string[]; reason: string }[];
  cancelled: number[];
}

export function testLifecycle(pool: pg.Pool, opts: Partial<LifecycleOptions>): { lifecycle: LifecycleService; store: PgLifecycleStore; recorded: Recorded } {
  const recorded: Recorded = { room: [], user: [], evicted: [], cancelled: [] };
  const rooms: RoomEvents = { emit: (sessionId, event, payload) => void recorded.room.push({ sessionId, event, payload }) };
  const members: MemberEvents = {
    toUser: (userId, event, payload) => void recorded.user.push({ userId, event, payload }),
    evict: (sessionId, userIds, reason) => void recorded.evicted.push({ sessionId, userIds, reason }),
    evictions: () => recorded.evicted.length,
  };
  const store = new PgLifecycleStore(pool);
  const full: LifecycleOptions = {
    archiveIdleDays: undefined,
    sessionMaxMessages: undefined,
    retentionArchivedDays: undefined,
    batchSize: 1000,
    batchPauseMs: 0,
    ...opts,
  };
  const lifecycle = new LifecycleService({
    store,
    rooms,
    members,
    vectors: vectorPurger(store, undefined, full.batchSize),
    cancelReplies: async (ids) => void recorded.cancelled.push(...ids),
    log: silentLogger,
    opts: full,
  });
  return { lifecycle, store, recorded };
}
