/** Classifies driver errors so callers can tell "database down" from "bug". */

const UNAVAILABLE_SQLSTATE_PREFIXES = ["08", "57P", "53"]; // connection, shutdown, insufficient resources
const UNAVAILABLE_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND"]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (UNAVAILABLE_NODE_CODES.has(code)) return true;
    if (UNAVAILABLE_SQLSTATE_PREFIXES.some((p) => code.startsWith(p))) return true;
  }
  const m = err.message;
  return (
    m.includes("Connection terminated") ||
    m.includes("timeout exceeded when trying to connect") ||
    m.includes("Query read timeout") ||
    m.includes("Client has encountered a connection error") ||
    m.includes("Cannot use a pool after calling end")
  );
}

export const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  (err as { code?: string }).code === "23505" &&
  (constraint === undefined || (err as { constraint?: string }).constraint === constraint);

/** Foreign keys that point at users: violating one means the acting account no longer exists. */
const USER_FOREIGN_KEYS = new Set(["chat_sessions_owner_id_fkey", "chat_session_members_user_id_fkey", "chat_messages_user_id_fkey", "message_feedback_user_id_fkey"]);

/** A write by (or for) a user whose row was deleted meanwhile, e.g. on a connection opened before. */
export const isMissingUser = (err: unknown): boolean =>
  (err as { code?: string }).code === "23503" && USER_FOREIGN_KEYS.has((err as { constraint?: string }).constraint ?? "");
