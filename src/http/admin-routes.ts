/**
 * Admin-only REST routes (issue 15): every one answers FORBIDDEN to members,
 * through RouteGuards.requireAdmin, and draws from the per-user "admin" rate
 * family.
 */
import { z } from "zod";
import type { AuthService } from "../auth/auth-service.js";
import * as out from "../protocol/output-schemas.js";
import { uuid } from "../protocol/schemas.js";
import type { RouteGuards } from "./route-guards.js";
import { parseWith, type Router } from "./router.js";

export interface AdminRouteDeps {
  auth: AuthService;
  guards: RouteGuards;
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
}
