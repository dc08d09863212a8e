/**
 * ioredis clients for the cluster profile.
 *
 * The chat layer must answer a user within a second or two even when Redis is
 * down (it maps Redis failures to UNAVAILABLE), so commands fail fast instead
 * of waiting for a reconnect, while the connection itself keeps reconnecting
 * for as long as the process lives.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";

export interface RedisClientOptions {
  url: string;
  logger: Logger;
  /** Shown in CLIENT LIST and in this process's logs. */
  name?: string;
  /**
   * Do not connect until asked (`waitUntilReady(client)` or `client.connect()`).
   * Because the offline queue is off, a command sent to a client that is not
   * ready fails at once rather than triggering the connection and waiting.
   */
  lazyConnect?: boolean;
  /** Prepended to every key (not to pub/sub channels); tests use it to stay apart. */
  keyPrefix?: string;
  /** A command without a reply after this long fails (default 2000 ms). */
  commandTimeoutMs?: number;
  /** TCP connect + handshake limit per attempt (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect attempts a command already sent may wait through before it fails (default 1). */
  maxRetriesPerRequest?: number;
  /** First reconnect delay (default 50 ms); doubles per attempt up to retryMaxMs. */
  retryBaseMs?: number;
  /** Longest wait between reconnect attempts (default 2000 ms). */
  retryMaxMs?: number;
}

/**
 * Delay before reconnect attempt `attempt` (1-based): exponential, capped, with
 * up to 20% jitter so that many nodes losing the same Redis do not reconnect in
 * lockstep. Never gives up: a number is always returned.
 */
export function reconnectDelay(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.max(1, Math.round(exp * (0.8 + Math.random() * 0.2)));
}

export function createRedisClient(opts: RedisClientOptions): Redis {
  const base = opts.retryBaseMs ?? 50;
  const max = opts.retryMaxMs ?? 2000;
  const options: RedisOptions = {
    lazyConnect: opts.lazyConnect ?? false,
    connectionName: opts.name,
    keyPrefix: opts.keyPrefix,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
    retryStrategy: (attempt) => reconnectDelay(attempt, base, max),
    // Off: while disconnected a command fails immediately ("Stream isn't
    // writeable") instead of queueing. Queued commands would hold acks open for
    // the whole outage, pile up in memory, and then all run at once on
    // reconnect, long after the user was told anything. Failing fast lets the
    // chat layer answer UNAVAILABLE and the client retry.
    enableOfflineQueue: false,
    // Off: a command whose connection dropped before the reply has an unknown
    // outcome, and its caller is failed anyway (by commandTimeout, or by the
    // maxRetriesPerRequest flush); replaying it after reconnect could apply it
    // twice behind the caller's back (a token charged twice, a delta appended
    // twice).
    autoResendUnfulfilledCommands: false,
    // After a failover the old primary answers READONLY: reconnect (DNS / the
    // proxy then lead to the new primary) instead of failing every write.
    reconnectOnError: (err) => err.message.startsWith("READONLY"),
  };
  const client = new Redis(opts.url, options);
  attachLogging(client, opts.logger, opts.name ?? "redis");
  return client;
}

/**
 * A second connection with the same settings, for SUBSCRIBE (a subscribed
 * connection cannot send other commands). Unlike the command client it keeps an
 * offline queue: subscriptions are few, and ioredis re-sends them itself after
 * every reconnect (autoResubscribe), so queueing is the behaviour we want there.
 *
 * Only SUBSCRIBE once the connection is "ready" (waitUntilReady): in the
 * "connect" state, between TCP connect and the ready check, ioredis writes
 * SUBSCRIBE straight away, the connection enters subscriber mode, the ready
 * check's INFO is then refused, and ioredis reconnects without the
 * subscription while the subscribe() call has already succeeded.
 */
export function duplicateForSubscriber(client: Redis, logger: Logger, name = "redis-sub"): Redis {
  const sub = client.duplicate({ enableOfflineQueue: true, connectionName: name, autoResubscribe: true });
  attachLogging(sub, logger, name);
  return sub;
}

/** waitUntilReady gave up; isRedisUnavailable() recognises it. */
export class RedisNotReadyError extends Error {
  override readonly name = "RedisNotReadyError";
}

/**
 * Resolves once the client can take commands: at start-up, so the first
 * requests do not fail, and before SUBSCRIBE (see duplicateForSubscriber).
 */
export async function waitUntilReady(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === "ready") return;
  if (client.status === "end") throw new Error("Connection is closed.");
  if (client.status === "wait") client.connect().catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new RedisNotReadyError(`redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    timer.unref();
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", onReady);
  });
}

/**
 * Logs connection trouble instead of letting an unhandled "error" event crash
 * the process. ioredis emits an error for every failed reconnect attempt; only
 * the first one of an outage is a warning, the repeats are debug, and the
 * recovery is logged once.
 */
function attachLogging(client: Redis, logger: Logger, name: string): void {
  let failing = false;
  client.on("error", (err: Error) => {
    if (!failing) {
      failing = true;
      logger.warn({ err, redis: name }, "redis connection error");
    } else {
      logger.debug({ err, redis: name }, "redis connection error (still failing)");
    }
  });
  client.on("ready", () => {
    if (failing) logger.info({ redis: name }, "redis connection restored");
    failing = false;
  });
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
]);

const UNAVAILABLE_MESSAGES = [
  "Stream isn't writeable", // offline queue disabled and not connected
  "Connection is closed", // client quit, or gave up
  "Command timed out", // commandTimeout: no reply in time
  "Reached the max retries per request limit", // MaxRetriesPerRequestError
];

/** Server replies that mean "not now" rather than "wrong request". */
const UNAVAILABLE_REPLIES = ["LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "BUSY"];

/**
 * True when `err` means Redis could not be reached or could not serve the
 * request right now (the request may succeed later), as opposed to a bug such
 * as a wrong argument or a script error. The chat layer answers UNAVAILABLE for
 * these and INTERNAL for the rest.
 */
export function isRedisUnavailable(err: unknown): boolean {
  return check(err, 0);
}

function check(err: unknown, depth: number): boolean {
  if (depth > 4 || typeof err !== "object" || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; errors?: unknown; previousErrors?: unknown };
  if (e.name === "MaxRetriesPerRequestError" || e.name === "RedisNotReadyError") return true;
  if (typeof e.code === "string" && UNAVAILABLE_CODES.has(e.code)) return true;
  const message = typeof e.message === "string" ? e.message : "";
  if (UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true;
  if (e.name === "ReplyError" && UNAVAILABLE_REPLIES.some((p) => message.startsWith(p + " ") || message === p)) return true;
  // Dual-stack connect failures arrive as an AggregateError; pipelines and
  // transactions wrap the failing command's error.
  for (const list of [e.errors, e.previousErrors]) {
    if (Array.isArray(list) && list.some((x) => check(x, depth + 1))) return true;
  }
  return e.cause !== undefined && check(e.cause, depth + 1);
}
