/** REST routes: thin, like the socket handlers (parse, one domain call, map). */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AuthService } from "../auth/auth-service.js";
import type { ChatService } from "../chat/chat-service.js";
import type { LimitName, RateLimits } from "../chat/rate-limits.js";
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
  memory: MemoryService;
  schemas: ProtocolSchemas;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  rateLimits: RateLimits;
  trustProxy: boolean;
  /** When set, /metrics needs it as a bearer token. */
  metricsToken?: string;
  isDraining(): boolean;
}

const bearer = (ctx: RequestContext) => /^Bearer\s+(\S+)$/i.exec(ctx.req.headers.authorization ?? "")?.[1];

/** Compares digests, so neither the time taken nor a length check tells how much of a guess was right. */
function sameSecret(given: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

const sessionIdParam = (ctx: RequestContext) => parseWith(uuid, ctx.params.id);

export function registerRoutes(router: Router, deps: RouteDeps): void {
  const { auth, chat, memory, schemas } = deps;
  const addressOf = (req: RequestContext["req"]) => clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], deps.trustProxy);
  // Logins and registrations are limited per client address (password guessing, account floods).
  const limitLogin = (ctx: RequestContext) => deps.rateLimits.checkFor("login", { address: addressOf(ctx.req) });
  // Every request, public ones included, spends a token of the per-address "rest" family.
  router.guardEachRequest((req) => deps.rateLimits.checkFor("rest", { address: addressOf(req) }));

  /** The caller, from the bearer token, once a token of `limit` (the route's family) is spent for them. */
  async function requireUser(ctx: RequestContext, limit: LimitName): Promise<User> {
    const token = bearer(ctx);
    const user = token ? await auth.authenticate(token) : null;
    if (!user) throw new AppError("UNAUTHENTICATED", "missing, invalid or expired bearer token");
    await deps.rateLimits.checkFor(limit, { userId: user.id, address: addressOf(ctx.req) });
    return user;
  }

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
      const user = await requireUser(ctx, "read");
      return { body: { sessions: await chat.listSessions(user) } };
    })
    .add("PATCH", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, "session");
      const sessionId = sessionIdParam(ctx);
      const { title } = await ctx.body(schemas.renameBody);
      return { body: await chat.renameSession({ user, connectionId: "rest" }, { sessionId, title }) };
    })
    .add("DELETE", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, "session");
      await chat.deleteSession(user, sessionIdParam(ctx));
      return { status: 204 };
    })
    .add("GET", "/api/sessions/:id/messages", async (ctx) => {
      const user = await requireUser(ctx, "read");
      const sessionId = sessionIdParam(ctx);
      const q = parseWith(schemas.historyQuery, Object.fromEntries(ctx.query));
      return { body: await chat.history(user, { sessionId, ...q }) };
    })
    .add("POST", "/api/sessions/:id/members", async (ctx) => {
      const user = await requireUser(ctx, "invite");
      const sessionId = sessionIdParam(ctx);
      const { username } = await ctx.body(schemas.inviteBody);
      return { status: 201, body: await chat.invite({ user, connectionId: "rest" }, { sessionId, username }) };
    })
    .add("DELETE", "/api/sessions/:id/members/:userId", async (ctx) => {
      const user = await requireUser(ctx, "session");
      await chat.removeMember(user, sessionIdParam(ctx), parseWith(uuid, ctx.params.userId));
      return { status: 204 };
    })
    .add("GET", "/api/memory/search", async (ctx) => {
      const user = await requireUser(ctx, "search");
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
    .add("GET", "/metrics", async (ctx) => {
      if (deps.metricsToken !== undefined && !sameSecret(bearer(ctx), deps.metricsToken)) {
        throw new AppError("UNAUTHENTICATED", "/metrics needs the METRICS_TOKEN bearer token");
      }
      return { body: await deps.metrics.registry.metrics(), contentType: deps.metrics.registry.contentType };
    });
}
