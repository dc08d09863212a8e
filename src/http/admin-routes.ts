/**
 * Admin-only REST routes (issue 15): every one answers FORBIDDEN to members,
 * through RouteGuards.requireAdmin, and draws from the per-user "admin" rate
 * family.
 */
import { z } from "zod";
import type { AnalyticsService } from "../analytics/analytics-service.js";
import type { AuthService } from "../auth/auth-service.js";
import type { QuotaService } from "../chat/quota-service.js";
import { analyticsQuery, analyticsReport, quotaBody, quotaResult } from "../protocol/analytics-schemas.js";
import * as out from "../protocol/output-schemas.js";
import { uuid } from "../protocol/schemas.js";
import type { RouteGuards } from "./route-guards.js";
import { parseWith, type Router } from "./router.js";

export interface AdminRouteDeps {
  auth: AuthService;
  guards: RouteGuards;
  analytics: AnalyticsService;
  quota: QuotaService;
}

const userParams = z.object({ id: uuid });
const roleBody = z.object({ role: z.enum(["member", "admin"]) }).strict();

export function registerAdminRoutes(router: Router, deps: AdminRouteDeps): void {
  const { guards } = deps;
  router.add("PUT", "/api/admin/users/:id/role", async (ctx) => {
    await guards.requireAdmin(ctx);
    const id = parseWith(uuid, ctx.params.id);
    const { role } = await ctx.body(roleBody);
    return { body: await deps.auth.setRole(id, role) };
  }, {
    summary: "Make an account an admin or a member (admin only); the last admin cannot be demoted",
    tag: "admin",
    auth: true,
    params: userParams,
    body: roleBody,
    responses: { 200: { description: "the account and its new role", body: out.me } },
    errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "UNAVAILABLE"],
  });
  router.add("PUT", "/api/admin/users/:id/quota", async (ctx) => {
    const admin = await guards.requireAdmin(ctx);
    const id = parseWith(uuid, ctx.params.id);
    const { dailyTokens } = await ctx.body(quotaBody);
    return { body: await deps.quota.setOverride(id, dailyTokens, admin.id) };
  }, {
    summary: "Set (or with null remove) a user's daily token cap over QUOTA_DAILY_TOKENS (admin only); applies from their next turn",
    tag: "admin",
    auth: true,
    params: userParams,
    body: quotaBody,
    responses: { 200: { description: "the override and the cap now in force", body: quotaResult } },
    errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
  });
  router.add("GET", "/api/admin/analytics", async (ctx) => {
    await guards.requireAdmin(ctx);
    const q = parseWith(analyticsQuery, Object.fromEntries(ctx.query));
    return { body: await deps.analytics.report(q) };
  }, {
    summary: "Daily analytics per configuration over a range of UTC days (at most 366), with per-configuration totals (admin only)",
    description: "Rows are rolled up by the `analytics` maintenance job (MAINTENANCE_INTERVAL_MS): today's figures lag by up to one interval.",
    tag: "admin",
    auth: true,
    query: analyticsQuery,
    responses: { 200: { description: "daily rows and totals", body: analyticsReport } },
    errors: ["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "UNAVAILABLE"],
  });
}
