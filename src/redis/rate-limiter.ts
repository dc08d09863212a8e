/**
 * Token buckets shared by every node: one Redis hash per key, read and written
 * by one Lua script, so concurrent callers on any number of nodes never
 * overdraw a bucket.
 */
import type { Redis } from "ioredis";
import type { RateDecision, RateLimiter, RateRule } from "../chat/ports.js";
import { assertRateRequest } from "../realtime/local-rate-limiter.js";
import { defineScript, LUA_PRELUDE, type ScriptCall, type ScriptDefinition } from "./scripts.js";

/**
 * KEYS[1] bucket hash {tokens, ts}; ARGV capacity, refillPerSecond, cost.
 * Returns {allowed 0|1, retryAfterMs, remaining}. Time is the Redis server's,
 * so nodes with skewed clocks agree. A missing bucket is a full one, so the
 * key expires when the bucket would be full again, and is deleted outright
 * when it already is.
 */
export const TOKEN_BUCKET_SCRIPT: ScriptDefinition = {
  name: "memchatTokenBucket",
  numberOfKeys: 1,
  lua: `${LUA_PRELUDE}
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = now_ms()
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
elseif now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
else
  -- The server clock went back (failover to another host): no refill, and
  -- restart the count from now rather than waiting for the old time.
  tokens = math.min(capacity, tokens)
end
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end
local to_full = math.ceil((capacity - tokens) * 1000 / rate)
if to_full > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
  redis.call('PEXPIRE', KEYS[1], to_full)
else
  redis.call('DEL', KEYS[1])
end
return { allowed, retry, math.floor(tokens) }
`,
};

export interface RedisRateLimiterOptions {
  /** Command client (not owned: the caller quits it). */
  client: Redis;
  /** Namespace for bucket keys, after the client's own keyPrefix (default "ratelimit:"). */
  prefix?: string;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly prefix: string;
  private readonly run: ScriptCall<[number, number, number]>;
  private closed = false;

  constructor(opts: RedisRateLimiterOptions) {
    this.prefix = opts.prefix ?? "ratelimit:";
    this.run = defineScript(opts.client, TOKEN_BUCKET_SCRIPT);
  }

  /** Rejects with the Redis error when Redis is unreachable (see isRedisUnavailable). */
  async consume(key: string, rule: RateRule, cost = 1): Promise<RateDecision> {
    if (this.closed) throw new Error("rate limiter is closed");
    assertRateRequest(rule, cost);
    const [allowed, retryAfterMs, remaining] = await this.run(this.prefix + key, rule.capacity, rule.refillPerSecond, cost);
    return { allowed: allowed === 1, retryAfterMs, remaining };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
