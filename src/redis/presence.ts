/**
 * Presence shared by every node, per user rather than per socket, that
 * survives a node dying: every connection is an entry with an expiry time,
 * the node holding the connection pushes that time forward on a heartbeat,
 * and a node that stops heartbeating loses its users once the TTL has passed.
 *
 * Keys (after the client's keyPrefix and `prefix`; `{sid}` is a Redis Cluster
 * hash tag so one session's keys share a slot):
 *   {sid}:users      ZSET userId -> when the user's last connection expires
 *   {sid}:c:<userId> ZSET connectionId -> when that connection expires
 *   expiry           ZSET "sid|userId" -> same time as in {sid}:users; the
 *                    index sweepExpired() walks to find users whose node died
 * Every time is the Redis server's clock (TIME), so nodes never disagree about
 * what has expired. Each key also carries a PEXPIRE a while past its newest
 * entry, so that nothing is left behind if every node goes away at once.
 *
 * Each departure is reported exactly once: either leave() answers
 * `last: true`, or sweepExpired() returns the user, never both, because both
 * remove the user's entries in the same atomic script that decides.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Presence } from "../chat/ports.js";
import type { PresenceEntry } from "../protocol/types.js";
import { defineScript, LUA_PRELUDE, queueScript, type ScriptCall, type ScriptDefinition } from "./scripts.js";

/**
 * Lua shared by join and heartbeat: raises the user's expiry to `exp` in the
 * session set and the index (never lowers it: another node may use a longer
 * TTL), and makes sure the keys outlive it.
 */
const LUA_TOUCH_USER = `
local function touch_user(users, conns, index, uid, member, exp, key_ttl)
  local cur = tonumber(redis.call('ZSCORE', users, uid))
  if cur == nil or cur < exp then
    redis.call('ZADD', users, exp, uid)
    redis.call('ZADD', index, exp, member)
  end
  for _, k in ipairs({ users, conns, index }) do
    if redis.call('PTTL', k) < key_ttl then redis.call('PEXPIRE', k, key_ttl) end
  end
end
`;

/**
 * KEYS users, conns, index; ARGV userId, "sid|userId", connectionId, ttlMs, keyTtlMs.
 * Drops the user's expired connections, then adds this one; returns 1 when the
 * user had no live connection before (first), else 0.
 */
const JOIN_SCRIPT: ScriptDefinition = {
  name: "memchatPresenceJoin",
  numberOfKeys: 3,
  lua: `${LUA_PRELUDE}${LUA_TOUCH_USER}
local now = now_ms()
local exp = now + tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local live = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], exp, ARGV[3])
touch_user(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], exp, tonumber(ARGV[5]))
if live == 0 then return 1 end
return 0
`,
};

/**
 * KEYS users, conns, index; ARGV userId, "sid|userId", connectionId.
 * Removes the connection; when it was present and the user has no other live
 * connection, removes the user everywhere and returns 1 (last). Otherwise the
 * user's expiry becomes that of their newest remaining connection.
 */
const LEAVE_SCRIPT: ScriptDefinition = {
  name: "memchatPresenceLeave",
  numberOfKeys: 3,
  lua: `${LUA_PRELUDE}
if redis.call('ZREM', KEYS[2], ARGV[3]) == 0 then return 0 end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] == nil then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
redis.call('ZADD', KEYS[3], top[2], ARGV[2])
return 0
`,
};

/**
 * KEYS users, conns, index; ARGV userId, "sid|userId", ttlMs, keyTtlMs, connectionId...
 * Pushes the expiry of each listed connection that is still present; returns
 * the ones that are gone (swept while this node could not heartbeat). Never
 * re-creates a connection itself: that is a join, and the caller decides.
 */
const HEARTBEAT_SCRIPT: ScriptDefinition = {
  name: "memchatPresenceHeartbeat",
  numberOfKeys: 3,
  lua: `${LUA_PRELUDE}${LUA_TOUCH_USER}
local exp = now_ms() + tonumber(ARGV[3])
local missing = {}
local refreshed = 0
for i = 5, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], exp, ARGV[i])
    refreshed = refreshed + 1
  else
    table.insert(missing, ARGV[i])
  end
end
if refreshed > 0 then
  touch_user(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], exp, tonumber(ARGV[4]))
end
return missing
`,
};

/** KEYS users. Users with a connection that has not expired. */
const LIST_SCRIPT: ScriptDefinition = {
  name: "memchatPresenceList",
  numberOfKeys: 1,
  readOnly: true,
  lua: `${LUA_PRELUDE}
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%.3f', now_ms()), '+inf')
`,
};

/**
 * KEYS index; ARGV key base (keyPrefix + prefix), limit.
 * For up to `limit` index entries past their expiry: drops the user's expired
 * connections; if none is left, removes the user and returns them, else
 * (a heartbeat got there first) corrects the user's expiry. The per-session
 * keys are built here from the base because they are only known after reading
 * the index, so this script is for a single Redis, not Redis Cluster.
 */
const SWEEP_SCRIPT: ScriptDefinition = {
  name: "memchatPresenceSweep",
  numberOfKeys: 1,
  lua: `${LUA_PRELUDE}
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local gone = {}
for _, member in ipairs(due) do
  local bar = string.find(member, '|', 1, true)
  local sid = string.sub(member, 1, bar - 1)
  local uid = string.sub(member, bar + 1)
  local users = ARGV[1] .. '{' .. sid .. '}:users'
  local conns = ARGV[1] .. '{' .. sid .. '}:c:' .. uid
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if top[2] == nil then
    redis.call('DEL', conns)
    redis.call('ZREM', users, uid)
    redis.call('ZREM', KEYS[1], member)
    table.insert(gone, sid)
    table.insert(gone, uid)
  else
    redis.call('ZADD', users, top[2], uid)
    redis.call('ZADD', KEYS[1], top[2], member)
  end
end
return gone
`,
};

export interface RedisPresenceOptions {
  /** Command client (not owned: the caller quits it). */
  client: Redis;
  logger: Logger;
  /** Namespace after the client's keyPrefix (default "presence:"). */
  prefix?: string;
  /**
   * How long a connection stays present without a heartbeat (default 30 s):
   * the longest a dead node's users are still listed.
   */
  ttlMs?: number;
  /** How often this node refreshes its connections (default ttlMs / 3); must be below ttlMs. */
  heartbeatMs?: number;
  /**
   * How long keys outlive their newest entry (default max(ttlMs, 60 s)); only
   * matters when no node is left to sweep.
   */
  keyGraceMs?: number;
  /**
   * Called when a heartbeat finds that connections this node still holds were
   * swept (the node could not reach Redis for longer than the TTL) and puts
   * them back, for each user who thereby became present again: the server
   * should send presence:join for them, since a presence:leave went out.
   */
  onRejoin?: (sessionId: string, userId: string) => void;
}

export interface ExpiredPresence {
  sessionId: string;
  userId: string;
}

export class RedisPresence implements Presence {
  private readonly client: Redis;
  private readonly logger: Logger;
  private readonly prefix: string;
  /** prefix with the client's keyPrefix, for keys the sweep script builds itself. */
  private readonly keyBase: string;
  private readonly ttlMs: number;
  private readonly keyTtlMs: number;
  private readonly onRejoin: ((sessionId: string, userId: string) => void) | undefined;
  private readonly joinScript: ScriptCall<number>;
  private readonly leaveScript: ScriptCall<number>;
  private readonly listScript: ScriptCall<string[]>;
  private readonly sweepScript: ScriptCall<string[]>;
  /** Connections this node holds: session -> user -> connection ids. What the heartbeat refreshes. */
  private readonly held = new Map<string, Map<string, Set<string>>>();
  private readonly timer: NodeJS.Timeout;
  private beating: Promise<void> | undefined;
  private closed = false;

  constructor(opts: RedisPresenceOptions) {
    this.client = opts.client;
    this.logger = opts.logger;
    this.prefix = opts.prefix ?? "presence:";
    this.keyBase = (opts.client.options.keyPrefix ?? "") + this.prefix;
    this.ttlMs = opts.ttlMs ?? 30_000;
    const heartbeatMs = opts.heartbeatMs ?? Math.floor(this.ttlMs / 3);
    if (!(this.ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${this.ttlMs}`);
    if (!(heartbeatMs > 0 && heartbeatMs < this.ttlMs)) {
      throw new RangeError(`heartbeatMs must be positive and below ttlMs (${this.ttlMs}), got ${heartbeatMs}`);
    }
    this.keyTtlMs = this.ttlMs + (opts.keyGraceMs ?? Math.max(this.ttlMs, 60_000));
    this.onRejoin = opts.onRejoin;
    this.joinScript = defineScript(this.client, JOIN_SCRIPT);
    this.leaveScript = defineScript(this.client, LEAVE_SCRIPT);
    this.listScript = defineScript(this.client, LIST_SCRIPT);
    this.sweepScript = defineScript(this.client, SWEEP_SCRIPT);
    // Heartbeats run against the HEARTBEAT_SCRIPT through a pipeline; make
    // sure the client knows it before the first tick.
    defineScript(this.client, HEARTBEAT_SCRIPT);
    this.timer = setInterval(() => void this.heartbeat(), heartbeatMs);
    this.timer.unref();
  }

  async join(sessionId: string, userId: string, connectionId: string): Promise<{ first: boolean }> {
    this.assertOpen();
    checkIds(sessionId, userId);
    // Held before the script runs, so that a leave() racing this join removes
    // it and the heartbeat never brings back a connection that has gone.
    const wasHeld = this.held.get(sessionId)?.get(userId)?.has(connectionId) ?? false;
    this.hold(sessionId, userId, connectionId);
    try {
      const first = await this.joinScript(...this.keys(sessionId, userId), userId, `${sessionId}|${userId}`, connectionId, this.ttlMs, this.keyTtlMs);
      return { first: first === 1 };
    } catch (err) {
      if (!wasHeld) this.release(sessionId, userId, connectionId);
      throw err;
    }
  }

  async leave(sessionId: string, userId: string, connectionId: string): Promise<{ last: boolean }> {
    this.assertOpen();
    checkIds(sessionId, userId);
    // Released first: should the script fail, the entry expires on its own
    // and sweepExpired() reports the departure.
    this.release(sessionId, userId, connectionId);
    const last = await this.leaveScript(...this.keys(sessionId, userId), userId, `${sessionId}|${userId}`, connectionId);
    return { last: last === 1 };
  }

  async list(sessionId: string): Promise<PresenceEntry[]> {
    this.assertOpen();
    checkSessionId(sessionId);
    // Read-only: expired users are left for sweepExpired(), which removes them
    // and reports them; pruning them here would lose their presence:leave.
    const users = await this.listScript(this.usersKey(sessionId));
    return users.map((userId) => ({ userId }));
  }

  /**
   * Removes users whose every connection expired (their node died or lost
   * Redis for longer than the TTL) and returns them, so the server can send
   * presence:leave. Any number of nodes may call this concurrently: each
   * expired user is returned by exactly one call.
   */
  async sweepExpired(batch = 500): Promise<ExpiredPresence[]> {
    this.assertOpen();
    const out: ExpiredPresence[] = [];
    for (;;) {
      const flat = await this.sweepScript(this.indexKey(), this.keyBase, batch);
      for (let i = 0; i + 1 < flat.length; i += 2) out.push({ sessionId: flat[i]!, userId: flat[i + 1]! });
      if (flat.length / 2 < batch) return out;
    }
  }

  /**
   * Refreshes every connection this node holds; the timer calls it, and it
   * is public so a caller can force one (shutdown checks, tests). Failures
   * are logged: the next tick tries again, and the TTL absorbs a few misses.
   */
  async heartbeat(): Promise<void> {
    if (this.closed) return;
    // One at a time: a slow Redis must not pile up overlapping heartbeats.
    this.beating ??= this.beat().finally(() => (this.beating = undefined));
    return this.beating;
  }

  /** Stops heartbeating. Entries stay until they expire: a graceful shutdown leaves each connection first. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.beating;
    this.held.clear();
  }

  private async beat(): Promise<void> {
    const batch: { sessionId: string; userId: string }[] = [];
    const pipeline = this.client.pipeline();
    for (const [sessionId, users] of this.held) {
      for (const [userId, conns] of users) {
        queueScript(pipeline, HEARTBEAT_SCRIPT, [
          ...this.keys(sessionId, userId),
          userId,
          `${sessionId}|${userId}`,
          this.ttlMs,
          this.keyTtlMs,
          ...conns,
        ]);
        batch.push({ sessionId, userId });
      }
    }
    if (batch.length === 0) return;
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      this.logger.warn({ err }, "presence heartbeat failed");
      return;
    }
    const rejoins: Promise<void>[] = [];
    let failed = 0;
    let firstError: Error | undefined;
    (results ?? []).forEach(([err, missing], i) => {
      const { sessionId, userId } = batch[i]!;
      if (err) {
        failed++;
        firstError ??= err;
        return;
      }
      for (const connectionId of missing as string[]) {
        // Still held now (the pipeline's reply came after any leave() that
        // ran meanwhile), so the connection is really open on this node.
        if (this.held.get(sessionId)?.get(userId)?.has(connectionId)) {
          rejoins.push(this.rejoin(sessionId, userId, connectionId));
        }
      }
    });
    // One line per beat, not per user: an outage fails every entry at once.
    if (failed > 0) this.logger.warn({ err: firstError, failed, total: batch.length }, "presence heartbeat failed");
    await Promise.all(rejoins);
  }

  private async rejoin(sessionId: string, userId: string, connectionId: string): Promise<void> {
    try {
      const first = await this.joinScript(...this.keys(sessionId, userId), userId, `${sessionId}|${userId}`, connectionId, this.ttlMs, this.keyTtlMs);
      this.logger.info({ sessionId, userId }, "presence restored after missed heartbeats");
      if (first === 1) this.onRejoin?.(sessionId, userId);
    } catch (err) {
      this.logger.warn({ err, sessionId }, "presence rejoin failed");
    }
  }

  private hold(sessionId: string, userId: string, connectionId: string): void {
    let users = this.held.get(sessionId);
    if (!users) this.held.set(sessionId, (users = new Map()));
    let conns = users.get(userId);
    if (!conns) users.set(userId, (conns = new Set()));
    conns.add(connectionId);
  }

  private release(sessionId: string, userId: string, connectionId: string): void {
    const users = this.held.get(sessionId);
    const conns = users?.get(userId);
    if (!users || !conns) return;
    conns.delete(connectionId);
    if (conns.size === 0) users.delete(userId);
    if (users.size === 0) this.held.delete(sessionId);
  }

  private keys(sessionId: string, userId: string): [string, string, string] {
    return [this.usersKey(sessionId), `${this.prefix}{${sessionId}}:c:${userId}`, this.indexKey()];
  }

  private usersKey(sessionId: string): string {
    return `${this.prefix}{${sessionId}}:users`;
  }

  private indexKey(): string {
    return `${this.prefix}expiry`;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("presence is closed");
  }
}

/**
 * The sweep splits "sid|userId" at the first bar and keys use {sid} as a hash
 * tag, so a session id must contain neither; session ids are UUIDs.
 */
function checkSessionId(sessionId: string): void {
  if (sessionId.length === 0 || /[{}|]/.test(sessionId)) throw new RangeError(`invalid session id for presence: ${JSON.stringify(sessionId)}`);
}

function checkIds(sessionId: string, userId: string): void {
  checkSessionId(sessionId);
  if (userId.length === 0) throw new RangeError("empty user id");
}
