/**
 * Every live connection of a user, on every node: the Socket.IO adapter
 * carries disconnectSockets() of a per-user room (user-rooms.ts) to all nodes.
 */
import type { UserSockets } from "../account/account-service.js";
import type { ChatServer } from "./socket-server.js";
import { userRoom, userVersionRoom } from "./user-rooms.js";

export function userSockets(io: ChatServer): UserSockets {
  const nsp = io.of("/chat");
  return {
    disconnectAll(userId) {
      nsp.in(userRoom(userId)).disconnectSockets(true);
    },
    disconnectOlderThan(userId, tokenVersion) {
      nsp.in(userRoom(userId)).except(userVersionRoom(userId, tokenVersion)).disconnectSockets(true);
    },
  };
}
