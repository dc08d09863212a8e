/** Failures the library reports, with the server's code or one of its own. */
import type { ErrorCode } from "./protocol.js";

/** Codes from this side: no connection, no answer in time, the client was closed, the HTTP request failed. */
export type ClientErrorCode = "OFFLINE" | "TIMEOUT" | "CLOSED" | "NETWORK";

export class MemchatError extends Error {
  constructor(
    /** The server's ErrorCode, a ClientErrorCode, or an assistant:error code (e.g. LLM_UNAVAILABLE). */
    readonly code: ErrorCode | ClientErrorCode | (string & {}),
    message: string,
    /** Set with RATE_LIMITED: when trying again can succeed. */
    readonly retryAfterMs?: number,
    /** Set with VALIDATION: every field in error with its message (the first is the `field` the server names). */
    readonly issues?: { field: string; message: string }[],
  ) {
    super(message);
    this.name = "MemchatError";
  }
}

/** Worth sending again unchanged: the request may or may not have arrived, or the server was busy. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(["OFFLINE", "TIMEOUT", "UNAVAILABLE", "RATE_LIMITED", "INTERNAL", "NETWORK"]);

export const asMemchatError = (err: unknown): MemchatError =>
  err instanceof MemchatError ? err : new MemchatError("INTERNAL", err instanceof Error ? err.message : String(err));
