/** The caller's own token usage and quota (issue 15 item 3). */
import type { QuotaService } from "../chat/quota-service.js";
import { usageReport } from "../protocol/analytics-schemas.js";
import type { RouteGuards } from "./route-guards.js";
import type { Router } from "./router.js";

export function registerUsageRoutes(router: Router, deps: { guards: RouteGuards; quota: QuotaService }): void {
  router.add("GET", "/api/me/usage", async (ctx) => {
    const user = await deps.guards.requireUser(ctx, "read");
    return { body: await deps.quota.usage(user.id) };
  }, {
    summary: "The caller's tokens today against their daily quota, and the last 30 days",
    tag: "account",
    auth: true,
    responses: { 200: { description: "usage and quota", body: usageReport } },
    errors: ["UNAUTHENTICATED", "RATE_LIMITED", "UNAVAILABLE"],
  });
}
