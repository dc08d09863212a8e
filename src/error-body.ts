/**
 * What a client is told when something fails, for socket acks and REST
 * alike: an AppError's own code, UNAVAILABLE when a backing service is down,
 * INTERNAL (logged) for anything else.
 */
import type { Logger } from "pino";
import type { z } from "zod";
import { isDatabaseUnavailable, isMissingUser } from "./db/errors.js";
import { AppError, type ErrorBody } from "./protocol/errors.js";
import { isRedisUnavailable } from "./redis/client.js";

export function toErrorBody(err: unknown, log: Logger): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  if (isDatabaseUnavailable(err)) {
    log.warn({ err: (err as Error).message }, "database unavailable");
    return { code: "UNAVAILABLE", message: "storage is unavailable, try again" };
  }
  if (isMissingUser(err)) return { code: "UNAUTHENTICATED", message: "this account no longer exists" };
  if (isRedisUnavailable(err)) {
    log.warn({ err: (err as Error).message }, "redis unavailable");
    return { code: "UNAVAILABLE", message: "coordination service is unavailable, try again" };
  }
  log.error({ err }, "unhandled error in handler");
  return { code: "INTERNAL", message: "internal error" };
}

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}
