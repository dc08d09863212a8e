/** REST routes: thin, like the socket handlers (parse, one domain call, map). */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AccountService } from "../account/account-service.js";
import type { AuthService } from "../auth/auth-service.js";
import type { ChatService } from "../chat/chat-service.js";
import type { LifecycleService } from "../chat/lifecycle-service.js";
import type { RateLimits } from "../chat/rate-limits.js";
import { type SessionList, sessionListQuery } from "../chat/session-list.js";
import type { AttachmentService } from "../files/attachment-service.js";
import { registerAttachmentRoutes } from "./attachment-routes.js";
import { clientAddress } from "./client-address.js";
import { type MemoryService, publicHit } from "../memory/memory-service.js";
import { AppError } from "../protocol/errors.js";
import { credentials, type ProtocolSchemas, uuid } from "../protocol/schemas.js";
import * as out from "../protocol/output-schemas.js";
import { z } from "zod";
import type { Metrics } from "./metrics.js";
import type { AnalyticsService } from "../analytics/analytics-service.js";
import type { QuotaService } from "../chat/quota-service.js";
import { registerAdminRoutes } from "./admin-routes.js";
import { registerConfigurationRoutes } from "./configuration-routes.js";
import type { ConfigurationService } from "../chat/configuration-service.js";
import { registerUsageRoutes } from "./usage-routes.js";
import { bearerToken, routeGuards } from "./route-guards.js";
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
  account: AccountService;
  sessionList: SessionList;
  trustProxy: boolean;
  /** Files in sessions; routes absent when not given. */
  attachments?: AttachmentService;
  /** When set, /metrics needs it as a bearer token. */
  metricsToken?: string;
  isDraining(): boolean;
  configurations: ConfigurationService;
  analytics: AnalyticsService;
  quota: QuotaService;
}

const bearer = bearerToken;

/** Compares digests, so neither the time taken nor a length check tells how much of a guess was right. */
function sameSecret(given: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

const sessionIdParam = (ctx: RequestContext) => parseWith(uuid, ctx.params.id);
const sessionParams = z.object({ id: uuid });
const memberParams = z.object({ id: uuid, userId: uuid });

export function registerRoutes(router: Router, deps: RouteDeps): void {
  const { auth, chat, memory, schemas } = deps;
  const guards = routeGuards(deps);
  const { addressOf, requireUser, requireCaller } = guards;
  registerAdminRoutes(router, { auth, guards, analytics: deps.analytics, quota: deps.quota });
  registerUsageRoutes(router, { guards, quota: deps.quota });
  registerConfigurationRoutes(router, { configurations: deps.configurations, guards });
  // Logins and registrations are limited per client address (password guessing, account floods).
  const limitLogin = (ctx: RequestContext) => deps.rateLimits.checkFor("login", { address: addressOf(ctx.req) });
  // Every request, public ones included, spends a token of the per-address "rest" family.
  router.guardEachRequest((req) => deps.rateLimits.checkFor("rest", { address: addressOf(req) }));
  if (deps.attachments) registerAttachmentRoutes(router, deps.attachments, requireUser);

  router
    .add("POST", "/api/auth/register", async (ctx) => {
      await limitLogin(ctx);
      const c = await ctx.body(credentials);
      return { status: 201, body: await auth.register(c.username, c.password) };
    }, {
      summary: "Create an account; answers a token",
      tag: "auth",
      auth: false,
      body: credentials,
      responses: { 201: { description: "registered", body: out.authResult } },
      errors: ["BAD_REQUEST", "CONFLICT", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/auth/login", async (ctx) => {
      await limitLogin(ctx);
      const c = await ctx.body(credentials);
      return { body: await auth.login(c.username, c.password) };
    }, {
      summary: "Sign in; answers a token",
      tag: "auth",
      auth: false,
      body: credentials,
      responses: { 200: { description: "signed in", body: out.authResult } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/sessions", async (ctx) => {
      const user = await requireUser(ctx, "read");
      const q = parseWith(sessionListQuery, Object.fromEntries(ctx.query));
      return { body: await deps.sessionList.page(user, q) };
    }, {
      summary: "The caller's sessions, newest activity first, a page at a time (keyset cursor)",
      tag: "sessions",
      auth: true,
      query: sessionListQuery,
      responses: { 200: { description: "a page of sessions", body: out.sessionPage } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/auth/logout-all", async (ctx) => {
      const user = await requireUser(ctx, "account");
      await deps.account.logoutAll(user);
      return { status: 204 };
    }, {
      summary: "Revoke every token of the caller and disconnect their sockets on every node",
      tag: "auth",
      auth: true,
      responses: { 204: { description: "revoked" } },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/me", async (ctx) => {
      const { user, role } = await requireCaller(ctx, "read");
      return { body: { user, role } };
    }, {
      summary: "The caller and their role (member or admin)",
      tag: "account",
      auth: true,
      responses: { 200: { description: "the caller", body: out.me } },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("DELETE", "/api/me", async (ctx) => {
      const user = await requireUser(ctx, "account");
      const outcome = await deps.account.deleteAccount(user);
      // 202: the account is locked and its data is still being deleted in the background.
      return outcome === "deleted" ? { status: 204 } : { status: 202, body: { status: "deleting" as const } };
    }, {
      summary: "Delete the caller's account with everything it owns",
      tag: "account",
      auth: true,
      responses: {
        204: { description: "deleted" },
        202: { description: "locked; the rest is deleted in the background", body: z.object({ status: z.literal("deleting") }) },
      },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/me/export", async (ctx) => {
      const user = await requireUser(ctx, "account");
      return {
        stream: await deps.account.exportData(user),
        headers: { "content-disposition": `attachment; filename="memchat-export-${user.id}.json"` },
      };
    }, {
      summary: "The caller's data as one JSON document (memchat-export/1), streamed",
      tag: "account",
      auth: true,
      responses: { 200: { description: "profile, sessions, the caller's messages and the replies to them, daily token usage, their ratings of replies", body: out.accountExport } },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/sessions/:id/archive", async (ctx) => {
      const user = await requireUser(ctx, "session");
      return { body: await deps.lifecycle.setArchived(user, sessionIdParam(ctx), true) };
    }, {
      summary: "Archive a session (owner only): read-only, out of the default list, still searchable",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      responses: { 200: { description: "archived", body: z.object({ session: out.session }) } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/sessions/:id/unarchive", async (ctx) => {
      const user = await requireUser(ctx, "session");
      return { body: await deps.lifecycle.setArchived(user, sessionIdParam(ctx), false) };
    }, {
      summary: "Unarchive a session (owner only)",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      responses: { 200: { description: "unarchived", body: z.object({ session: out.session }) } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("PATCH", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, "session");
      const sessionId = sessionIdParam(ctx);
      const { title } = await ctx.body(schemas.renameBody);
      return { body: await chat.renameSession({ user, connectionId: "rest" }, { sessionId, title }) };
    }, {
      summary: "Rename a session (owner only); the room hears session:updated",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      body: schemas.renameBody,
      responses: { 200: { description: "renamed", body: z.object({ session: out.session }) } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("DELETE", "/api/sessions/:id", async (ctx) => {
      const user = await requireUser(ctx, "session");
      await chat.deleteSession(user, sessionIdParam(ctx));
      return { status: 204 };
    }, {
      summary: "Delete a session (owner only) with its messages and vectors",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      responses: { 204: { description: "deleted" } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("GET", "/api/sessions/:id/messages", async (ctx) => {
      const user = await requireUser(ctx, "read");
      const sessionId = sessionIdParam(ctx);
      const q = parseWith(schemas.historyQuery, Object.fromEntries(ctx.query));
      return { body: await chat.history(user, { sessionId, ...q }) };
    }, {
      summary: "A page of a session's history, oldest first",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      query: schemas.historyQuery,
      responses: { 200: { description: "messages before `beforeSeq`", body: out.historyResult } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("POST", "/api/sessions/:id/members", async (ctx) => {
      const user = await requireUser(ctx, "invite");
      const sessionId = sessionIdParam(ctx);
      const { username } = await ctx.body(schemas.inviteBody);
      return { status: 201, body: await chat.invite({ user, connectionId: "rest" }, { sessionId, username }) };
    }, {
      summary: "Invite a user into a session (owner only, idempotent); they become a member when they accept",
      tag: "sessions",
      auth: true,
      params: sessionParams,
      body: schemas.inviteBody,
      responses: { 201: { description: "invited (pending), or already a member", body: out.inviteResult } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("DELETE", "/api/sessions/:id/members/:userId", async (ctx) => {
      const user = await requireUser(ctx, "session");
      await chat.removeMember(user, sessionIdParam(ctx), parseWith(uuid, ctx.params.userId));
      return { status: 204 };
    }, {
      summary: "End a membership: your own (leave; not the owner), or as the owner anyone's; or withdraw a pending invitation",
      tag: "sessions",
      auth: true,
      params: memberParams,
      responses: { 204: { description: "removed" } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("GET", "/api/invitations", async (ctx) => {
      const user = await requireUser(ctx, "read");
      return { body: { invitations: await chat.invitations(user) } };
    }, {
      summary: "The caller's pending invitations, newest first (at most 100)",
      tag: "invitations",
      auth: true,
      responses: { 200: { description: "pending invitations", body: z.object({ invitations: z.array(out.invitation) }) } },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/invitations/:id/accept", async (ctx) => {
      const user = await requireUser(ctx, "session");
      return { body: await chat.acceptInvitation({ user, connectionId: "rest" }, sessionIdParam(ctx)) };
    }, {
      summary: "Accept an invitation: the caller becomes a member; the room hears member:joined",
      tag: "invitations",
      auth: true,
      params: sessionParams,
      responses: { 200: { description: "joined", body: z.object({ session: out.session }) } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/invitations/:id/decline", async (ctx) => {
      const user = await requireUser(ctx, "session");
      return { body: await chat.declineInvitation(user, sessionIdParam(ctx)) };
    }, {
      summary: "Decline an invitation",
      tag: "invitations",
      auth: true,
      params: sessionParams,
      responses: { 200: { description: "declined", body: z.object({ declined: z.boolean() }) } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/memory/search", async (ctx) => {
      const user = await requireUser(ctx, "search");
      const q = parseWith(schemas.memoryQuery, Object.fromEntries(ctx.query));
      const r = await memory.search({ userId: user.id, query: q.q, sessionId: q.sessionId, limit: q.limit ?? 10, mode: q.mode });
      return { body: { hits: r.hits.map(publicHit), mode: r.mode, degraded: r.degraded } };
    }, {
      summary: "Search the caller's earlier messages (vector, lexical or hybrid)",
      tag: "memory",
      auth: true,
      query: schemas.memoryQuery,
      responses: { 200: { description: "hits, best first", body: out.memorySearchResult } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "UNAVAILABLE"],
    })
    .add("GET", "/healthz", () => ({ body: { status: "ok" as const } }), {
      summary: "Liveness: the process answers",
      tag: "operations",
      auth: false,
      responses: { 200: { description: "alive", body: out.health } },
      errors: [],
    })
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
      return { status: ready ? 200 : 503, body: { status: draining ? ("draining" as const) : ready ? ("ready" as const) : ("not ready" as const), checks } };
    }, {
      summary: "Readiness: database reachable and migrated, not draining; degraded extras reported",
      tag: "operations",
      auth: false,
      responses: {
        200: { description: "ready", body: out.readiness },
        503: { description: "not ready or draining", body: out.readiness },
      },
      errors: [],
    })
    .add("GET", "/metrics", async (ctx) => {
      if (deps.metricsToken !== undefined && !sameSecret(bearer(ctx), deps.metricsToken)) {
        throw new AppError("UNAUTHENTICATED", "/metrics needs the METRICS_TOKEN bearer token");
      }
      return { body: await deps.metrics.registry.metrics(), contentType: deps.metrics.registry.contentType };
    }, {
      summary: "Prometheus metrics of this node (bearer METRICS_TOKEN when set)",
      tag: "operations",
      auth: false,
      responses: { 200: { description: "Prometheus text exposition format", contentType: "text/plain" } },
      errors: ["UNAUTHENTICATED"],
    });
}
