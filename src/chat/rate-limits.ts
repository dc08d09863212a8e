/**
 * The server's rate limits: which bucket each kind of request draws from.
 * Limits are per user for messages and assistant turns, per client address
 * for connections and logins. If the limiter itself is unreachable (Redis
 * down), requests pass and the failure is logged: a rate limiter outage must
 * not take chat down with it.
 */
import type { Logger } from "pino";
import { AppError } from "../protocol/errors.js";
import type { RateLimiter, RateRule } from "./ports.js";

export type LimitName = "message" | "turn" | "connect" | "login" | "session";

export interface RateLimitPolicy {
  enabled: boolean;
  rules: Record<LimitName, RateRule>;
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
      throw new AppError("RATE_LIMITED", `too many ${limit === "turn" ? "assistant turns" : limit === "session" ? "session changes" : `${limit}s`}, slow down`, Math.max(1, Math.ceil(decision.retryAfterMs)));
    }
  }
}
