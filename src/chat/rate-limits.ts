/**
 * The server's rate limits: which bucket each kind of request draws from.
 * One rule per family of requests (LIMITS below); every socket event and REST
 * route names its family. If the limiter itself is unreachable (Redis down),
 * requests pass and the failure is logged: a rate limiter outage must not
 * take chat down with it.
 */
import type { Logger } from "pino";
import { AppError } from "../protocol/errors.js";
import type { RateLimiter, RateRule } from "./ports.js";

/** Whose bucket a family draws from: the user's, the client address's, or both (each must have a token). */
type Scope = "user" | "address" | "both";

/**
 * Every family, what it covers (for the refusal message) and its scope. Per
 * address where there is no user yet (connections, logins, public routes);
 * invites per user and per address, since a refused invite tells whether a
 * username exists, the fact a login hides: it must not be cheaper to ask.
 */
export const LIMITS = {
  message: { what: "messages", scope: "user" },
  turn: { what: "assistant turns", scope: "user" },
  connect: { what: "connections", scope: "address" },
  login: { what: "logins", scope: "address" },
  session: { what: "session changes", scope: "user" },
  invite: { what: "invitations", scope: "both" },
  typing: { what: "typing events", scope: "user" },
  read: { what: "reads", scope: "user" },
  search: { what: "searches", scope: "user" },
  feedback: { what: "feedback events", scope: "user" },
  cancel: { what: "cancellations", scope: "user" },
  rest: { what: "requests", scope: "address" },
  account: { what: "account operations", scope: "user" },
  admin: { what: "admin requests", scope: "user" },
  upload: { what: "uploads", scope: "user" },
} as const satisfies Record<string, { what: string; scope: Scope }>;

export type LimitName = keyof typeof LIMITS;

export interface RateLimitPolicy {
  enabled: boolean;
  rules: Record<LimitName, RateRule>;
}

/** Who is asking: the user once authenticated, and the client's address. */
export interface Requester {
  userId?: string;
  address?: string;
}

export class RateLimits {
  private lastWarn = 0;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly policy: RateLimitPolicy,
    private readonly log: Logger,
    private readonly onRefused?: (limit: LimitName) => void,
  ) {}

  /** Throws RATE_LIMITED (with retryAfterMs) when `key` has no token left for `limit`. */
  async check(limit: LimitName, key: string): Promise<void> {
    if (!this.policy.enabled) return;
    let decision;
    try {
      decision = await this.limiter.consume(`${limit}:${key}`, this.policy.rules[limit]);
    } catch (err) {
      const now = Date.now();
      if (now - this.lastWarn > 10_000) {
        this.lastWarn = now;
        this.log.warn({ err: (err as Error).message }, "rate limiter unavailable: letting requests through");
      }
      return;
    }
    if (!decision.allowed) {
      this.onRefused?.(limit);
      throw new AppError("RATE_LIMITED", `too many ${LIMITS[limit].what}, slow down`, Math.max(1, Math.ceil(decision.retryAfterMs)));
    }
  }

  /**
   * Checks `limit` for the buckets its scope names. A scope part the
   * requester lacks is skipped (a per-user family asked before login counts
   * nothing): callers pass the user once they have one.
   */
  async checkFor(limit: LimitName, who: Requester): Promise<void> {
    if (!this.policy.enabled) return;
    const scope: Scope = LIMITS[limit].scope;
    if (scope !== "address" && who.userId !== undefined) await this.check(limit, who.userId);
    // "a:" keeps address buckets apart from user ones (user ids are uuids).
    if (scope !== "user" && who.address !== undefined) await this.check(limit, scope === "both" ? `a:${who.address}` : who.address);
  }
}
