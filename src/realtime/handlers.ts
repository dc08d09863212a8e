/**
 * Glue between a socket event and a domain call: parse with the protocol
 * schema, spend a token of the event's rate-limit family, call, answer the
 * ack with the envelope. Nothing thrown escapes, so
 * no client input can crash the process.
 */
import type { Logger } from "pino";
import type { ZodTypeAny, z } from "zod";
import { describeZodError, toErrorBody } from "../error-body.js";
import type { LimitName } from "../chat/rate-limits.js";
import type { Metrics } from "../http/metrics.js";
import type { Ack } from "../protocol/errors.js";

export interface InFlight {
  /** Refuses new work once shutdown began. */
  draining: boolean;
  count: number;
  /** Resolves when count reaches 0. */
  idle(): Promise<void>;
  done(): void;
}

export function createInFlight(): InFlight {
  let waiters: (() => void)[] = [];
  return {
    draining: false,
    count: 0,
    idle() {
      return this.count === 0 ? Promise.resolve() : new Promise((r) => waiters.push(r));
    },
    done() {
      this.count--;
      if (this.count === 0) {
        const w = waiters;
        waiters = [];
        for (const r of w) r();
      }
    },
  };
}

export interface HandlerDeps {
  log: Logger;
  metrics: Metrics;
  inFlight: InFlight;
  /** Spends one token of `limit` for this connection's user (and address); throws RATE_LIMITED. */
  limit(limit: LimitName): Promise<void>;
}

/** What one client event does on a connection `C`: its rate-limit family, its schema, the domain call. */
export interface Route<C> {
  limit: LimitName;
  schema: ZodTypeAny;
  run(c: C, input: unknown): Promise<unknown> | unknown;
}

export function route<C, S extends ZodTypeAny>(limit: LimitName, schema: S, run: (c: C, input: z.infer<S>) => Promise<unknown> | unknown): Route<C> {
  return { limit, schema, run: run as Route<C>["run"] };
}

/**
 * Handles one event of a connection: parse with the route's schema, spend a
 * token of its rate-limit family, call, answer the ack with the envelope.
 * `args` are the event's arguments as Socket.IO passes them, the ack
 * callback last when the client wants one. Events sent without an ack
 * callback are still processed (typing is often fire-and-forget) but get no
 * reply. Input that does not parse is refused before it costs a token
 * (nothing was done). The routes are built once for every connection (one
 * table, one listener per socket, not a closure per event per socket: that
 * is most of what an idle connection costs).
 */
export async function handle<C>(r: Route<C>, c: C, deps: HandlerDeps, event: string, args: unknown[]): Promise<void> {
  const last = args.at(-1);
  const ack = typeof last === "function" ? (last as (reply: Ack<unknown>) => void) : undefined;
  const payload = ack ? args.slice(0, -1)[0] : args[0];
  const started = performance.now();
  const reply = (res: Ack<unknown>) => {
    if (!res.ok) deps.metrics.errors.inc({ code: res.error.code });
    deps.metrics.ackLatency.observe({ event }, (performance.now() - started) / 1000);
    ack?.(res);
  };
  if (deps.inFlight.draining) {
    reply({ ok: false, error: { code: "UNAVAILABLE", message: "server is shutting down, reconnect" } });
    return;
  }
  const parsed = r.schema.safeParse(payload);
  if (!parsed.success) {
    reply({ ok: false, error: { code: "BAD_REQUEST", message: describeZodError(parsed.error) } });
    return;
  }
  deps.inFlight.count++;
  try {
    await deps.limit(r.limit);
    reply({ ok: true, data: await r.run(c, parsed.data) });
  } catch (err) {
    reply({ ok: false, error: toErrorBody(err, deps.log.child({ event })) });
  } finally {
    deps.inFlight.done();
  }
}
