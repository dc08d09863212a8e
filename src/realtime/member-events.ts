/**
 * Membership changes that take effect on every node at once. Every socket
 * joins its user's room (`user:<id>`, user-rooms.ts), so a user is reachable wherever they
 * are connected. An eviction is handled by each node for its own sockets:
 * they leave the session's room, their presence there ends (presence:leave
 * when it was the user's last connection) and each is sent session:removed.
 * Other nodes hear of it through the adapter (serverSideEmit: one PUBLISH
 * with Redis), this node directly.
 */
import type { Logger } from "pino";
import type { Socket } from "socket.io";
import type { MemberEvents } from "../chat/room-events.js";
import { type ClientToServerEvents, type InterServerEvents, type RemovalReason, roomOf, type ServerToClientEvents, type SocketData } from "../protocol/events.js";
import { userRoom } from "./user-rooms.js";
import type { ChatServer } from "./socket-server.js";

type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
type Eviction = Parameters<InterServerEvents["member:evict"]>[0];

export class SocketMemberEvents implements MemberEvents {
  private generation = 0;
  private leave: ((socket: ChatSocket, sessionId: string) => Promise<void>) | undefined;

  constructor(
    private readonly io: ChatServer,
    /** True when other nodes share the adapter (Redis); the in-memory adapter has nobody to tell. */
    private readonly clustered: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * Called once the namespace's handlers exist: `leave` takes one socket out
   * of a session as session:leave does (room, presence).
   */
  bind(leave: (socket: ChatSocket, sessionId: string) => Promise<void>): void {
    this.leave = leave;
    this.io.of("/chat").on("member:evict", (e: Eviction) => this.evictLocal(e));
  }

  toUser: MemberEvents["toUser"] = (userId, event, payload) => {
    (this.io.of("/chat").to(userRoom(userId)).emit as (e: string, p: unknown) => boolean)(event, payload);
  };

  evict(sessionId: string, userIds: readonly string[], reason: RemovalReason): void {
    const e: Eviction = { sessionId, userIds: [...userIds], reason };
    if (this.clustered) this.io.of("/chat").serverSideEmit("member:evict", e);
    this.evictLocal(e);
  }

  evictions(): number {
    return this.generation;
  }

  private evictLocal({ sessionId, userIds, reason }: Eviction): void {
    const nsp = this.io.of("/chat");
    const room = roomOf(sessionId);
    for (const userId of userIds) {
      const ids = nsp.adapter.rooms.get(userRoom(userId));
      if (!ids || ids.size === 0) continue;
      this.generation++;
      for (const id of ids) {
        const socket = nsp.sockets.get(id) as ChatSocket | undefined;
        if (!socket) continue;
        if (socket.rooms.has(room) && this.leave) {
          this.leave(socket, sessionId).catch((err) => this.log.warn({ err: (err as Error).message, sessionId }, "eviction presence cleanup failed"));
        }
        socket.emit("session:removed", { sessionId, reason });
      }
    }
  }
}
