/**
 * Who may call a REST route: the caller from the bearer token, once a token
 * of the route's rate family is spent for them, and for admin routes their
 * role. The role is read with the account state on every request (through
 * AuthService's AUTH_CACHE_MS cache), never from the token, so a promotion
 * or demotion reaches every node within that window.
 */
import type { AuthService } from "../auth/auth-service.js";
import type { LimitName, RateLimits } from "../chat/rate-limits.js";
import { AppError } from "../protocol/errors.js";
import type { User, UserRole } from "../protocol/types.js";
import { clientAddress } from "./client-address.js";
import type { RequestContext } from "./router.js";

export interface Caller {
  user: User;
  role: UserRole;
}

export interface RouteGuards {
  /** The client's address (X-Forwarded-For when TRUST_PROXY). */
  addressOf(req: RequestContext["req"]): string;
  /** The caller with their role; UNAUTHENTICATED without a valid token, RATE_LIMITED past `limit`. */
  requireCaller(ctx: RequestContext, limit: LimitName): Promise<Caller>;
  /** Like requireCaller, for the user alone. */
  requireUser(ctx: RequestContext, limit: LimitName): Promise<User>;
  /** Like requireUser, and FORBIDDEN unless the caller is an admin. */
  requireAdmin(ctx: RequestContext, limit?: LimitName): Promise<User>;
}

export const bearerToken = (ctx: RequestContext) => /^Bearer\s+(\S+)$/i.exec(ctx.req.headers.authorization ?? "")?.[1];

export function routeGuards(deps: { auth: AuthService; rateLimits: RateLimits; trustProxy: boolean }): RouteGuards {
  const addressOf = (req: RequestContext["req"]) => clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], deps.trustProxy);
  async function requireCaller(ctx: RequestContext, limit: LimitName): Promise<Caller> {
    const token = bearerToken(ctx);
    const claims = token ? await deps.auth.authenticateClaims(token) : null;
    if (!claims) throw new AppError("UNAUTHENTICATED", "missing, invalid or expired bearer token");
    await deps.rateLimits.checkFor(limit, { userId: claims.user.id, address: addressOf(ctx.req) });
    return { user: claims.user, role: claims.role };
  }
  return {
    addressOf,
    requireCaller,
    requireUser: async (ctx, limit) => (await requireCaller(ctx, limit)).user,
    async requireAdmin(ctx, limit = "admin") {
      const caller = await requireCaller(ctx, limit);
      if (caller.role !== "admin") throw new AppError("FORBIDDEN", "this route is for admins");
      return caller.user;
    },
  };
}
