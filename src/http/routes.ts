/** REST routes: thin, like the socket handlers (parse, one domain call, map). */
import type { AuthService } from "../auth/auth-service.js";
import type { ChatService } from "../chat/chat-service.js";
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { RateLimits } from "../chat/rate-limits.js";
import { clientAddress } from "./client-address.js";
import type { MemoryService } from "../memory/memory-service.js";
import { AppError } from "../protocol/errors.js";
import { credentials, type ProtocolSchemas, uuid } from "../protocol/schemas.js";
import type { User } from "../protocol/types.js";
import type { Metrics } from "./metrics.js";
import { parseWith, type RequestContext, type Router } from "./router.js";

export interface ReadinessCheck {
  name: string;
  /** Resolves with a short status; throws (or rejects) when not ready. */
  check(): Promise<string>;
  /** When false, a failure is reported but does not make /readyz fail (a degraded extra). */
  critical: boolean;
}

export interface RouteDeps {
  auth: AuthService;
  chat: ChatService;
  lifecycle: LifecycleService;
  memory: MemoryService;
  schemas: ProtocolSchemas;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  rateLimits: RateLimits;
  trustProxy: boolean;
  isDraining(): boolean;
}

async function requireUser(ctx: RequestContext, auth: AuthService): Promise<User> {
  const header = ctx.req.headers.authorization ?? "";
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  const user = m ? await auth.authenticate(m[1]) : null;
  if (!user) throw new AppError("UNAUTHENTICATED", "missing, invalid or expired bearer token");
  return user;
}

const sessionIdParam = (ctx: RequestContext) => parseWith(uuid, ctx.params.id);

export function registerRoutes(router: Router, deps: RouteDeps): void {
  const { auth, chat, memory, schemas } = deps;
  // Logins and registrations are limited per client address (password guessing, account floods).
  const limitLogin = (ctx: RequestContext) =>
    deps.rateLimits.check("login", clientAddress(ctx.req.socket.remoteAddress, ctx.req.headers["x-forwarded-for"], deps.trustProxy));

  router
    .add("POST", "/api/auth/register", async (ctx) => {
      await limitLogin(ctx);
      const c = await ctx.body(credentials);
      return { status: 201, body: await auth.register(c.username, c.password) };
    })
    .add("POST", "/api/auth/login", async (ctx) => {
      await limitLogin(ctx);
      const c = await ctx.body(credentials);
      return { body: await auth.login(c.username, c.password) };
    })
    .add("GET", "/api/sessions", async (ctx) => {
      const user = await requireUser(ctx, auth);
      const { archived } = parseWith(schemas.sessionListQuery, Object.fromEntries(ctx.query));
      const filter = archived === "true" ? "archived" : archived === "all" ? "all" : "active";
      return { body: { sessions: await chat.listSessions(user, 100, filter) } };
    })
    .add("POST", "/api/sessions/:id/archive", async (ctx) => {
      const user = await requireUser(ctx, auth);
      return { body: await deps.lifecycle.setArchived(user, sessionIdParam(ctx), true) };
    })
    .add("POST", "/api/sessions/:id/unarchive", async (ctx) => {
      const user = await requireUser(ctx, auth);
      return { body: await deps.lifecycle.setArchived(user, sessionIdParam(ctx), false) };
    })
    .add("PATCH", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, auth);
      const sessionId = sessionIdParam(ctx);
      const { title } = await ctx.body(schemas.renameBody);
      return { body: await chat.renameSession({ user, connectionId: "rest" }, { sessionId, title }) };
    })
    .add("DELETE", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, auth);
      await chat.deleteSession(user, sessionIdParam(ctx));
      return { status: 204 };
    })
    .add("GET", "/api/sessions/:id/messages", async (ctx) => {
      const user = await requireUser(ctx, auth);
      const sessionId = sessionIdParam(ctx);
      const q = parseWith(schemas.historyQuery, Object.fromEntries(ctx.query));
      return { body: await chat.history(user, { sessionId, ...q }) };
    })
    .add("POST", "/api/sessions/:id/members", async (ctx) => {
      const user = await requireUser(ctx, auth);
      const sessionId = sessionIdParam(ctx);
      const { username } = await ctx.body(schemas.inviteBody);
      return { status: 201, body: await chat.invite({ user, connectionId: "rest" }, { sessionId, username }) };
    })
    .add("DELETE", "/api/sessions/:id/members/:userId", async (ctx) => {
      const user = await requireUser(ctx, auth);
      await chat.removeMember(user, sessionIdParam(ctx), parseWith(uuid, ctx.params.userId));
      return { status: 204 };
    })
    .add("GET", "/api/invitations", async (ctx) => {
      const user = await requireUser(ctx, auth);
      return { body: { invitations: await chat.invitations(user) } };
    })
    .add("POST", "/api/invitations/:id/accept", async (ctx) => {
      const user = await requireUser(ctx, auth);
      return { body: await chat.acceptInvitation({ user, connectionId: "rest" }, sessionIdParam(ctx)) };
    })
    .add("POST", "/api/invitations/:id/decline", async (ctx) => {
      const user = await requireUser(ctx, auth);
      return { body: await chat.declineInvitation(user, sessionIdParam(ctx)) };
    })
    .add("GET", "/api/memory/search", async (ctx) => {
      const user = await requireUser(ctx, auth);
      const q = parseWith(schemas.memoryQuery, Object.fromEntries(ctx.query));
      const r = await memory.search({ userId: user.id, query: q.q, sessionId: q.sessionId, limit: q.limit ?? 10, mode: q.mode });
      return { body: { hits: r.hits, mode: r.mode, degraded: r.degraded } };
    })
    .add("GET", "/healthz", () => ({ body: { status: "ok" } }))
    .add("GET", "/readyz", async () => {
      const checks: Record<string, { ok: boolean; status: string; critical: boolean }> = {};
      await Promise.all(
        deps.readiness.map(async (c) => {
          try {
            checks[c.name] = { ok: true, status: await c.check(), critical: c.critical };
          } catch (err) {
            checks[c.name] = { ok: false, status: (err as Error).message, critical: c.critical };
          }
        }),
      );
      const draining = deps.isDraining();
      const ready = !draining && Object.values(checks).every((c) => c.ok || !c.critical);
      return { status: ready ? 200 : 503, body: { status: draining ? "draining" : ready ? "ready" : "not ready", checks } };
    })
    .add("GET", "/metrics", async () => ({
      body: await deps.metrics.registry.metrics(),
      contentType: deps.metrics.registry.contentType,
    }));
}
