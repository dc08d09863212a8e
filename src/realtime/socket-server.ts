import type http from "node:http";
import type { Logger } from "pino";
import { Server } from "socket.io";
import type { AuthService } from "../auth/auth-service.js";
import type { AssistantService } from "../chat/assistant-service.js";
import type { ChatService } from "../chat/chat-service.js";
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { ConfigurationService } from "../chat/configuration-service.js";
import type { RateLimits } from "../chat/rate-limits.js";
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
import { type HandlerDeps, type InFlight, on } from "./handlers.js";
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

  nsp.on("connection", (socket) => {
    const user = socket.data.user;
    const slog = log.child({ socketId: socket.id, userId: user.id });
    const address = clientAddress(socket.handshake.address, socket.handshake.headers["x-forwarded-for"], deps.config.trustProxy);
    const requester = { userId: user.id, address };
    const h: HandlerDeps = { log: slog, metrics, inFlight: deps.inFlight, limit: (name) => deps.rateLimits.checkFor(name, requester) };
    const actor = { user, connectionId: socket.id };
    metrics.socketsConnected.inc();
    slog.debug("socket connected");
    // Invitations, evictions, logout-all and account deletion reach this connection from any node.
    void socket.join([userRoom(user.id), userVersionRoom(user.id, socket.data.tokenVersion ?? 0)]);
    chat
      .invitations(user)
      .then((invitations) => {
        if (invitations.length > 0) socket.emit("session:invitations", { invitations });
      })
      .catch((err) => slog.warn({ err: (err as Error).message }, "could not list pending invitations"));

    on(socket, "session:create", "session", schemas["session:create"], h, (input) => chat.createSession(actor, input));
    on(socket, "session:join", "session", schemas["session:join"], h, (input) =>
      chat.joinSession(
        actor,
        input,
        () => socket.join(roomOf(input.sessionId)),
        () => socket.leave(roomOf(input.sessionId)),
      ),
    );
    on(socket, "session:leave", "session", schemas["session:leave"], h, (input) =>
      chat.leaveSession(actor, input.sessionId, () => socket.leave(roomOf(input.sessionId))),
    );
    on(socket, "session:invite", "invite", schemas["session:invite"], h, (input) => chat.invite(actor, input));
    on(socket, "invitation:list", "read", schemas["invitation:list"], h, async () => ({ invitations: await chat.invitations(user) }));
    on(socket, "invitation:accept", "session", schemas["invitation:accept"], h, (input) => chat.acceptInvitation(actor, input.sessionId));
    on(socket, "invitation:decline", "session", schemas["invitation:decline"], h, (input) => chat.declineInvitation(user, input.sessionId));
    on(socket, "member:leave", "session", schemas["member:leave"], h, async (input) => ({ left: (await chat.removeMember(user, input.sessionId, user.id)).removed }));
    on(socket, "member:remove", "session", schemas["member:remove"], h, (input) => chat.removeMember(user, input.sessionId, input.userId));
    on(socket, "session:rename", "session", schemas["session:rename"], h, (input) => chat.renameSession(actor, input));
    on(socket, "session:archive", "session", schemas["session:archive"], h, (input) => deps.lifecycle.setArchived(user, input.sessionId, input.archived));
    on(socket, "session:configure", "session", schemas["session:configure"], h, (input) =>
      deps.configurations.configureSession(user, input.sessionId, input.configurationId, socket.id),
    );
    on(socket, "message:send", "message", schemas["message:send"], h, async (input) => {
      const { message, duplicate, replyRefused } = await chat.sendMessage(actor, input);
      if (!duplicate) metrics.messagesAccepted.inc();
      return replyRefused ? { message, replyRefused } : { message };
    });
    on(socket, "message:history", "read", schemas["message:history"], h, (input) => chat.history(user, input));
    on(socket, "typing", "typing", schemas.typing, h, (input) => chat.typing(actor, input, socket.rooms.has(roomOf(input.sessionId))));
    on(socket, "assistant:cancel", "cancel", schemas["assistant:cancel"], h, (input) => assistant.cancel(actor, input));
    on(socket, "assistant:regenerate", "turn", schemas["assistant:regenerate"], h, (input) => assistant.regenerate(actor, input));
    on(socket, "message:feedback", "feedback", schemas["message:feedback"], h, (input) => assistant.feedback(actor, input));
    on(socket, "message:context", "read", schemas["message:context"], h, (input) => assistant.context(actor, input.messageId));
    on(socket, "memory:search", "search", schemas["memory:search"], h, async (input) => {
      const r = await memory.search({ userId: user.id, query: input.query, sessionId: input.sessionId, limit: input.limit ?? 10, mode: input.mode });
      return { hits: r.hits.map(publicHit), mode: r.mode, degraded: r.degraded };
    });

    socket.onAny((event: string, ...args: unknown[]) => {
      if (KNOWN_EVENTS.has(event)) return;
      metrics.errors.inc({ code: "BAD_REQUEST" });
      const ack = args.at(-1);
      if (typeof ack === "function") ack({ ok: false, error: { code: "BAD_REQUEST", message: `unknown event '${String(event).slice(0, 64)}'` } });
    });

    socket.on("disconnecting", () => {
      const sessionIds = [...socket.rooms].filter((r) => r.startsWith(ROOM_PREFIX)).map((r) => r.slice(ROOM_PREFIX.length));
      chat.disconnect(actor, sessionIds).catch((err) => slog.warn({ err }, "presence cleanup failed"));
    });
    socket.on("disconnect", (reason) => {
      // Left /chat but kept the connection: it would stay open with no namespace (the connect timeout is over).
      if (reason === "client namespace disconnect") socket.conn.close();
      metrics.socketsConnected.dec();
      slog.debug({ reason }, "socket disconnected");
    });
  });
}
