import type { RemovalReason, ServerToClientEvents } from "../protocol/events.js";

/** How the domain tells a session's room about something; the realtime layer implements it. */
export interface RoomEvents {
  emit<E extends keyof ServerToClientEvents>(
    sessionId: string,
    event: E,
    payload: Parameters<ServerToClientEvents[E]>[0],
    /** A connection that must not receive it (the sender, who gets an ack instead). */
    exceptConnectionId?: string,
  ): void;
}

/**
 * Membership changes that must take effect on every node at once. The
 * realtime layer implements it; the domain calls it after the database
 * change committed.
 */
export interface MemberEvents {
  /** Tells every socket of the user, on every node. */
  toUser<E extends keyof ServerToClientEvents>(userId: string, event: E, payload: Parameters<ServerToClientEvents[E]>[0]): void;
  /**
   * Takes the users' sockets, on every node, out of the session's room, ends
   * their presence there and sends each socket session:removed.
   */
  evict(sessionId: string, userIds: readonly string[], reason: RemovalReason): void;
  /**
   * Changes whenever a socket on this node is evicted from a session: a join
   * that read the membership before an eviction reads it again once in the room.
   */
  evictions(): number;
}
