import type http from "node:http";
import type { Logger } from "pino";
import { Server, type Socket } from "socket.io";
import type { AuthService } from "../auth/auth-service.js";
import type { AssistantService } from "../chat/assistant-service.js";
import type { Actor, ChatService } from "../chat/chat-service.js";
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { ConfigurationService } from "../chat/configuration-service.js";
import type { LimitName, RateLimits } from "../chat/rate-limits.js";
import { type MemoryService, publicHit } from "../memory/memory-service.js";
import { AppError, type ErrorBody } from "../protocol/errors.js";
import { clientAddress } from "../http/client-address.js";
import type { RoomEvents } from "../chat/room-events.js";
import type { Config } from "../config.js";
import type { Metrics } from "../http/metrics.js";
import {
  type ClientToServerEvents,
  type InterServerEvents,
  roomOf,
  ROOM_PREFIX,
  type ServerToClientEvents,
  type SocketData,
} from "../protocol/events.js";
import type { ProtocolSchemas } from "../protocol/schemas.js";
import { handle, type HandlerDeps, type InFlight, type Route, route } from "./handlers.js";
import type { SocketMemberEvents } from "./member-events.js";
import { userRoom, userVersionRoom } from "./user-rooms.js";

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

export interface SocketServerDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  inFlight: InFlight;
  auth: AuthService;
  chat: ChatService;
  assistant: AssistantService;
  memory: MemoryService;
  schemas: ProtocolSchemas;
  rateLimits: RateLimits;
  members: SocketMemberEvents;
  lifecycle: LifecycleService;
  configurations: ConfigurationService;
}

export const KNOWN_EVENTS = new Set<string>([
  "session:create",
  "session:join",
  "session:leave",
  "session:rename",
  "session:invite",
  "session:archive",
  "session:configure",
  "invitation:list",
  "invitation:accept",
  "invitation:decline",
  "member:leave",
  "member:remove",
  "message:send",
  "message:history",
  "typing",
  "assistant:cancel",
  "assistant:regenerate",
  "message:feedback",
  "memory:search",
  "message:context",
]);

export function createSocketServer(httpServer: http.Server, config: Config, rateLimits: RateLimits): ChatServer {
  const io: ChatServer = new Server(httpServer, {
    maxHttpBufferSize: config.limits.maxPayloadBytes,
    cors: { origin: config.corsOrigin },
    pingInterval: 25_000,
    pingTimeout: 20_000,
    // socket.io closes a connection that has joined no namespace this long after it opened:
    // one whose /chat auth failed, or that never tried.
    connectTimeout: config.authTimeoutMs,
    // Connections are counted at the engine.io handshake, before any namespace, so none escapes the limit.
    allowRequest: (req, callback) => {
      const address = clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], config.trustProxy);
      rateLimits.checkFor("connect", { address }).then(
        () => callback(null, true),
        (err: unknown) => callback(err instanceof AppError ? `${err.message} (retry after ${err.retryAfterMs ?? 1000} ms)` : "refused", false),
      );
    },
  });
  // socket.io always has the main namespace "/"; only /chat serves clients, so "/" refuses every connect.
  io.of("/").use((_socket, next) => next(refusal({ code: "NOT_FOUND", message: "no such namespace: connect to /chat" })));
  return io;
}

/** A middleware refusal: the client's connect_error carries the error body as `data`. */
function refusal(body: ErrorBody): Error {
  return Object.assign(new Error(body.code), { data: body });
}

/** Room events backed by the /chat namespace (and, through its adapter, every node). */
export function socketRoomEvents(io: ChatServer): RoomEvents {
  const nsp = io.of("/chat");
  return {
    emit(sessionId, event, payload, exceptConnectionId) {
      const target = exceptConnectionId ? nsp.to(roomOf(sessionId)).except(exceptConnectionId) : nsp.to(roomOf(sessionId));
      (target.emit as (e: string, p: unknown) => boolean)(event, payload);
    },
  };
}

export function attachChatNamespace(io: ChatServer, deps: SocketServerDeps): void {
  const nsp = io.of("/chat");
  const { auth, chat, assistant, memory, schemas, metrics, log } = deps;

  nsp.use(async (socket, next) => {
    try {
      const claims = await auth.authenticateClaims(socket.handshake.auth?.token);
      const user = claims?.user;
      if (!user) {
        metrics.authFailures.inc();
        return next(refusal({ code: "UNAUTHENTICATED", message: "missing, invalid or expired token" }));
      }
      socket.data.user = user;
      socket.data.tokenVersion = claims.tokenVersion;
      next();
    } catch (err) {
      if (err instanceof AppError) return next(refusal(err.toBody()));
      log.error({ err }, "auth middleware failed");
      next(new Error("INTERNAL"));
    }
  });

  deps.members.bind(async (socket, sessionId) => {
    await chat.leaveSession({ user: socket.data.user, connectionId: socket.id }, sessionId, () => socket.leave(roomOf(sessionId)));
  });

  // One table for every connection (see `handle`): a connection holds no closure per event.
  const routes = new Map<string, Route<Conn>>([
    ["session:create", route("session", schemas["session:create"], (c: Conn, input) => chat.createSession(c.actor, input))],
    [
      "session:join",
      route("session", schemas["session:join"], (c: Conn, input) =>
        chat.joinSession(
          c.actor,
          input,
          () => c.socket.join(roomOf(input.sessionId)),
          () => c.socket.leave(roomOf(input.sessionId)),
        ),
      ),
    ],
    ["session:leave", route("session", schemas["session:leave"], (c: Conn, input) => chat.leaveSession(c.actor, input.sessionId, () => c.socket.leave(roomOf(input.sessionId))))],
    ["session:invite", route("invite", schemas["session:invite"], (c: Conn, input) => chat.invite(c.actor, input))],
    ["invitation:list", route("read", schemas["invitation:list"], async (c: Conn) => ({ invitations: await chat.invitations(c.actor.user) }))],
    ["invitation:accept", route("session", schemas["invitation:accept"], (c: Conn, input) => chat.acceptInvitation(c.actor, input.sessionId))],
    ["invitation:decline", route("session", schemas["invitation:decline"], (c: Conn, input) => chat.declineInvitation(c.actor.user, input.sessionId))],
    ["member:leave", route("session", schemas["member:leave"], async (c: Conn, input) => ({ left: (await chat.removeMember(c.actor.user, input.sessionId, c.actor.user.id)).removed }))],
    ["member:remove", route("session", schemas["member:remove"], (c: Conn, input) => chat.removeMember(c.actor.user, input.sessionId, input.userId))],
    ["session:rename", route("session", schemas["session:rename"], (c: Conn, input) => chat.renameSession(c.actor, input))],
    ["session:archive", route("session", schemas["session:archive"], (c: Conn, input) => deps.lifecycle.setArchived(c.actor.user, input.sessionId, input.archived))],
    [
      "session:configure",
      route("session", schemas["session:configure"], (c: Conn, input) =>
        deps.configurations.configureSession(c.actor.user, input.sessionId, input.configurationId, c.socket.id),
      ),
    ],
    [
      "message:send",
      route("message", schemas["message:send"], async (c: Conn, input) => {
        const { message, duplicate, replyRefused } = await chat.sendMessage(c.actor, input);
        if (!duplicate) metrics.messagesAccepted.inc();
        return replyRefused ? { message, replyRefused } : { message };
      }),
    ],
    ["message:history", route("read", schemas["message:history"], (c: Conn, input) => chat.history(c.actor.user, input))],
    ["typing", route("typing", schemas.typing, (c: Conn, input) => chat.typing(c.actor, input, c.socket.rooms.has(roomOf(input.sessionId))))],
    ["assistant:cancel", route("cancel", schemas["assistant:cancel"], (c: Conn, input) => assistant.cancel(c.actor, input))],
    ["assistant:regenerate", route("turn", schemas["assistant:regenerate"], (c: Conn, input) => assistant.regenerate(c.actor, input))],
    ["message:feedback", route("feedback", schemas["message:feedback"], (c: Conn, input) => assistant.feedback(c.actor, input))],
    ["message:context", route("read", schemas["message:context"], (c: Conn, input) => assistant.context(c.actor, input.messageId))],
    [
      "memory:search",
      route("search", schemas["memory:search"], async (c: Conn, input) => {
        const r = await memory.search({ userId: c.actor.user.id, query: input.query, sessionId: input.sessionId, limit: input.limit ?? 10, mode: input.mode });
        return { hits: r.hits.map(publicHit), mode: r.mode, degraded: r.degraded };
      }),
    ],
  ]);

  nsp.on("connection", (socket) => {
    const user = socket.data.user;
    const address = clientAddress(socket.handshake.address, socket.handshake.headers["x-forwarded-for"], deps.config.trustProxy);
    const conn = new Conn(socket, deps, { userId: user.id, address });
    const actor = conn.actor;
    metrics.socketsConnected.inc();
    log.debug({ socketId: socket.id, userId: user.id }, "socket connected");
    // Invitations, evictions, logout-all and account deletion reach this connection from any node.
    void socket.join([userRoom(user.id), userVersionRoom(user.id, socket.data.tokenVersion ?? 0)]);
    chat
      .invitations(user)
      .then((invitations) => {
        if (invitations.length > 0) socket.emit("session:invitations", { invitations });
      })
      .catch((err) => conn.log.warn({ err: (err as Error).message }, "could not list pending invitations"));

    socket.onAny((event: string, ...args: unknown[]) => {
      const r = routes.get(event);
      if (r) {
        void handle(r, conn, conn, event, args);
        return;
      }
      metrics.errors.inc({ code: "BAD_REQUEST" });
      const ack = args.at(-1);
      if (typeof ack === "function") ack({ ok: false, error: { code: "BAD_REQUEST", message: `unknown event '${String(event).slice(0, 64)}'` } });
    });

    socket.on("disconnecting", () => {
      const sessionIds = [...socket.rooms].filter((r) => r.startsWith(ROOM_PREFIX)).map((r) => r.slice(ROOM_PREFIX.length));
      chat.disconnect(actor, sessionIds).catch((err) => conn.log.warn({ err }, "presence cleanup failed"));
    });
    socket.on("disconnect", (reason) => {
      // Left /chat but kept the connection: it would stay open with no namespace (the connect timeout is over).
      if (reason === "client namespace disconnect") socket.conn.close();
      metrics.socketsConnected.dec();
      log.debug({ socketId: socket.id, userId: user.id, reason }, "socket disconnected");
    });
  });
}

type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/**
 * One connection's state as its handlers need it: what an idle connection
 * holds besides Socket.IO's own objects. Its logger child is made on first use.
 */
class Conn implements HandlerDeps {
  readonly actor: Actor;
  private logger: Logger | undefined;

  constructor(
    readonly socket: ChatSocket,
    private readonly deps: SocketServerDeps,
    private readonly requester: { userId: string; address: string },
  ) {
    this.actor = { user: socket.data.user, connectionId: socket.id };
  }

  get log(): Logger {
    return (this.logger ??= this.deps.log.child({ socketId: this.socket.id, userId: this.actor.user.id }));
  }

  get metrics(): Metrics {
    return this.deps.metrics;
  }

  get inFlight(): InFlight {
    return this.deps.inFlight;
  }

  limit(name: LimitName): Promise<void> {
    return this.deps.rateLimits.checkFor(name, this.requester);
  }
}
