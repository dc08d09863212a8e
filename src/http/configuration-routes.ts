/**
 * REST routes of named assistant configurations: the admin's editor
 * (/api/admin/configurations, FORBIDDEN to members, "admin" rate family),
 * the list any user reads to pick one, and a session owner's pick.
 * Settings are parsed by ConfigurationService (VALIDATION with the field).
 */
import { z } from "zod";
import type { ConfigurationService } from "../chat/configuration-service.js";
import * as cout from "../protocol/configuration-output.js";
import { uuid } from "../protocol/schemas.js";
import { adminConfigurationQuery, configurationCreate, configurationIdParam, configurationParams, configurationUpdate, sessionConfigurationBody } from "../protocol/configuration-schemas.js";
import type { RouteGuards } from "./route-guards.js";
import { parseWith, type Router } from "./router.js";

export interface ConfigurationRouteDeps {
  configurations: ConfigurationService;
  guards: RouteGuards;
}

const ADMIN_ERRORS = ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"] as const;
const one = z.object({ configuration: cout.configuration });

export function registerConfigurationRoutes(router: Router, deps: ConfigurationRouteDeps): void {
  const { guards, configurations } = deps;
  const idParam = (params: Record<string, string>) => parseWith(configurationIdParam, params.id);

  router
    .add("GET", "/api/configurations", async (ctx) => {
      await guards.requireUser(ctx, "read");
      return { body: await configurations.listActive() };
    }, {
      summary: "The active assistant configurations (without their prompts), to pick one for a session you own",
      tag: "configurations",
      auth: true,
      responses: { 200: { description: "the default first, then by name", body: cout.configurationSummaryList } },
      errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("PUT", "/api/sessions/:id/configuration", async (ctx) => {
      const user = await guards.requireUser(ctx, "session");
      const sessionId = parseWith(uuid, ctx.params.id);
      const { configurationId } = await ctx.body(sessionConfigurationBody);
      return { body: await configurations.configureSession(user, sessionId, configurationId) };
    }, {
      summary: "Pick the session's assistant configuration (owner only; an active one, or null for the default); applies from the next turn",
      tag: "sessions",
      auth: true,
      params: z.object({ id: uuid }),
      body: sessionConfigurationBody,
      responses: { 200: { description: "the room hears session:configured", body: cout.sessionConfigured } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/admin/configurations", async (ctx) => {
      await guards.requireAdmin(ctx);
      const q = parseWith(adminConfigurationQuery, Object.fromEntries(ctx.query));
      return { body: await configurations.adminList(q.retired === "true") };
    }, {
      summary: "Every assistant configuration with all its settings (admin only); retired ones with ?retired=true",
      tag: "admin",
      auth: true,
      query: adminConfigurationQuery,
      responses: { 200: { description: "the default first, then active ones, by name", body: cout.configurationList } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("POST", "/api/admin/configurations", async (ctx) => {
      const admin = await guards.requireAdmin(ctx);
      return { status: 201, body: await configurations.create(admin, await ctx.body(z.unknown())) };
    }, {
      summary: "Create a configuration (admin only): name and system prompt required, every other setting has a default",
      description: "Settings out of bounds answer 422 VALIDATION with `field` (the first) and `issues` (each field with its message); a name in use (case-insensitively) too.",
      tag: "admin",
      auth: true,
      body: configurationCreate,
      responses: { 201: { description: "created, active, not the default", body: one } },
      errors: [...ADMIN_ERRORS, "VALIDATION"],
    })
    .add("PATCH", "/api/admin/configurations/:id", async (ctx) => {
      const admin = await guards.requireAdmin(ctx);
      const id = idParam(ctx.params);
      return { body: await configurations.update(admin, id, await ctx.body(z.unknown())) };
    }, {
      summary: "Change settings of a configuration (admin only); sessions using it get them from their next turn",
      description: "Only the settings sent change. Out of bounds: 422 VALIDATION with `field` and `issues`.",
      tag: "admin",
      auth: true,
      params: configurationParams,
      body: configurationUpdate,
      responses: { 200: { description: "the configuration as stored", body: one } },
      errors: [...ADMIN_ERRORS, "VALIDATION"],
    })
    .add("POST", "/api/admin/configurations/:id/activate", async (ctx) => {
      const admin = await guards.requireAdmin(ctx);
      return { body: await configurations.activate(admin, idParam(ctx.params)) };
    }, {
      summary: "Activate a configuration again (admin only; idempotent): session owners may pick it",
      tag: "admin",
      auth: true,
      params: configurationParams,
      responses: { 200: { description: "active", body: one } },
      errors: [...ADMIN_ERRORS],
    })
    .add("POST", "/api/admin/configurations/:id/retire", async (ctx) => {
      const admin = await guards.requireAdmin(ctx);
      return { body: await configurations.retire(admin, idParam(ctx.params)) };
    }, {
      summary: "Retire a configuration (admin only): sessions using it follow the default from their next turn",
      description: "The default cannot be retired (409 CONFLICT): make another configuration the default first. Replies keep naming the configuration they used.",
      tag: "admin",
      auth: true,
      params: configurationParams,
      responses: { 200: { description: "retired; sessionsReset counts the sessions moved to the default", body: cout.retireResult } },
      errors: [...ADMIN_ERRORS, "CONFLICT"],
    })
    .add("POST", "/api/admin/configurations/:id/default", async (ctx) => {
      const admin = await guards.requireAdmin(ctx);
      return { body: await configurations.setDefault(admin, idParam(ctx.params)) };
    }, {
      summary: "Make an active configuration the default (admin only): sessions without a pick of their own use it from their next turn",
      tag: "admin",
      auth: true,
      params: configurationParams,
      responses: { 200: { description: "the new default", body: one } },
      errors: [...ADMIN_ERRORS, "CONFLICT"],
    });
}
