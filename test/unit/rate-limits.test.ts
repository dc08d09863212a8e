/** RateLimits over the in-process limiter: scopes (user, address, both) and the refusal it answers. */
import { describe, expect, it } from "vitest";
import { LIMITS, type LimitName, RateLimits } from "../../src/chat/rate-limits.js";
import { AppError } from "../../src/protocol/errors.js";
import { LocalRateLimiter } from "../../src/realtime/local-rate-limiter.js";
import { silentLogger } from "../support/logger.js";

const rules = Object.fromEntries(Object.keys(LIMITS).map((n) => [n, { capacity: 2, refillPerSecond: 0.001 }])) as Record<LimitName, { capacity: number; refillPerSecond: number }>;

function limits(enabled = true) {
  const refused: LimitName[] = [];
  const rl = new RateLimits(new LocalRateLimiter(), { enabled, rules }, silentLogger, (l) => refused.push(l));
  return { rl, refused };
}

async function refusal(p: Promise<void>): Promise<AppError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe("RateLimits.checkFor", () => {
  it("answers RATE_LIMITED with retryAfterMs and names what was limited", async () => {
    const { rl, refused } = limits();
    await rl.checkFor("typing", { userId: "u1" });
    await rl.checkFor("typing", { userId: "u1" });
    const err = await refusal(rl.checkFor("typing", { userId: "u1" }));
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.retryAfterMs).toBeGreaterThan(0);
    expect(err.message).toContain("typing events");
    expect(refused).toEqual(["typing"]);
  });

  it("keeps families apart, and users apart within a family", async () => {
    const { rl } = limits();
    for (let i = 0; i < 2; i++) await rl.checkFor("read", { userId: "u1", address: "a" });
    await refusal(rl.checkFor("read", { userId: "u1", address: "a" }));
    await rl.checkFor("search", { userId: "u1", address: "a" });
    await rl.checkFor("read", { userId: "u2", address: "a" }); // per user: the address does not matter
  });

  it("counts per-address families by address only", async () => {
    const { rl } = limits();
    await rl.checkFor("rest", { userId: "u1", address: "a" });
    await rl.checkFor("rest", { userId: "u2", address: "a" });
    await refusal(rl.checkFor("rest", { userId: "u3", address: "a" }));
    await rl.checkFor("rest", { address: "b" });
  });

  it("counts invites per user and per address: a new account on the same address is refused too", async () => {
    const { rl } = limits();
    await rl.checkFor("invite", { userId: "u1", address: "a" });
    await rl.checkFor("invite", { userId: "u1", address: "a" });
    await refusal(rl.checkFor("invite", { userId: "u1", address: "b" })); // the user's bucket
    await refusal(rl.checkFor("invite", { userId: "u2", address: "a" })); // the address's bucket
    await rl.checkFor("invite", { userId: "u3", address: "c" });
  });

  it("lets everything through when limits are disabled", async () => {
    const { rl } = limits(false);
    for (let i = 0; i < 10; i++) await rl.checkFor("session", { userId: "u1" });
  });
});
