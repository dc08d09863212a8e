/**
 * Token buckets for one process (embedded profile). Same arithmetic as the
 * Redis limiter's Lua script (src/redis/rate-limiter.ts), so a rule behaves the
 * same whichever profile runs.
 */
import type { RateDecision, RateLimiter, RateRule } from "../chat/ports.js";

/**
 * Rejects requests no bucket could ever grant, so that a misconfigured rule is
 * a loud error at the call site rather than a user refused forever.
 */
export function assertRateRequest(rule: RateRule, cost: number): void {
  if (!Number.isFinite(rule.capacity) || rule.capacity <= 0) {
    throw new RangeError(`rate rule capacity must be a positive number, got ${rule.capacity}`);
  }
  if (!Number.isFinite(rule.refillPerSecond) || rule.refillPerSecond <= 0) {
    throw new RangeError(`rate rule refillPerSecond must be a positive number, got ${rule.refillPerSecond}`);
  }
  if (!Number.isFinite(cost) || cost <= 0) throw new RangeError(`cost must be a positive number, got ${cost}`);
  if (cost > rule.capacity) {
    throw new RangeError(`cost ${cost} exceeds capacity ${rule.capacity}: the request could never be allowed`);
  }
}

export interface LocalRateLimiterOptions {
  /** How often buckets that have refilled completely are dropped (default 60 s). */
  sweepIntervalMs?: number;
  /**
   * Most buckets kept (default 100 000). Past it, full buckets are dropped
   * first, then the least recently used ones: forgetting a partly drained
   * bucket is lenient for that caller, but memory stays bounded even when
   * keys are attacker-chosen (IP addresses).
   */
  maxBuckets?: number;
  /** Clock in milliseconds; monotonic by default so wall-clock steps do not refill buckets. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was computed. */
  at: number;
  /** When the bucket will be full again; from then on it equals a missing bucket. */
  fullAt: number;
}

export class LocalRateLimiter implements RateLimiter {
  /** Insertion order is recency order: a touched bucket is re-inserted at the end. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxBuckets: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private lastOverflowSweep = Number.NEGATIVE_INFINITY;

  constructor(opts: LocalRateLimiterOptions = {}) {
    this.maxBuckets = opts.maxBuckets ?? 100_000;
    this.now = opts.now ?? (() => performance.now());
    this.timer = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 60_000);
    this.timer.unref();
  }

  /** Buckets currently held (for metrics and tests). */
  get size(): number {
    return this.buckets.size;
  }

  async consume(key: string, rule: RateRule, cost = 1): Promise<RateDecision> {
    if (this.closed) throw new Error("rate limiter is closed");
    assertRateRequest(rule, cost);
    const now = this.now();
    const rate = rule.refillPerSecond;
    const prev = this.buckets.get(key);
    let tokens: number;
    if (!prev) tokens = rule.capacity;
    else if (now > prev.at) tokens = Math.min(rule.capacity, prev.tokens + ((now - prev.at) * rate) / 1000);
    else tokens = Math.min(rule.capacity, prev.tokens);

    let allowed = false;
    let retryAfterMs = 0;
    if (tokens >= cost) {
      tokens -= cost;
      allowed = true;
    } else {
      retryAfterMs = Math.ceil(((cost - tokens) * 1000) / rate);
    }

    const toFullMs = Math.ceil(((rule.capacity - tokens) * 1000) / rate);
    this.buckets.delete(key);
    if (toFullMs > 0) {
      this.buckets.set(key, { tokens, at: now, fullAt: now + toFullMs });
      if (this.buckets.size > this.maxBuckets) this.evict(now);
    }
    return { allowed, retryAfterMs, remaining: Math.floor(tokens) };
  }

  /** Drops buckets that have refilled: a missing bucket is a full one. */
  sweep(now = this.now()): void {
    for (const [key, b] of this.buckets) {
      if (b.fullAt <= now) this.buckets.delete(key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.buckets.clear();
  }

  private evict(now: number): void {
    // A full sweep is O(buckets); under a flood of new keys do it at most once
    // a second and otherwise just drop the least recently used bucket.
    if (now - this.lastOverflowSweep >= 1000) {
      this.lastOverflowSweep = now;
      this.sweep(now);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxBuckets) break;
      this.buckets.delete(key);
    }
  }
}
