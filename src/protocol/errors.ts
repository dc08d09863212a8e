/** Error codes of the ack envelope and REST error bodies (DESIGN.md section 5). */
export const ERROR_CODES = [
  "BAD_REQUEST",
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "CONFLICT",
  /** The session is archived: readable, but it takes no new messages until its owner unarchives it. */
  "ARCHIVED",
  "RATE_LIMITED",
  "UNAVAILABLE",
  "INTERNAL",
  /** REST only: a body over MAX_PAYLOAD_BYTES (HTTP 413). */
  "PAYLOAD_TOO_LARGE",
  /** REST only: a body whose Content-Type is not exactly application/json (HTTP 415). */
  "UNSUPPORTED_MEDIA_TYPE",
  /** A well-formed request whose settings are out of bounds (HTTP 422): `field` names the first, `issues` lists each. */
  "VALIDATION",
  /** The user's daily token quota is spent: no assistant turn starts until the reset (retryAfterMs, next midnight UTC). */
  "QUOTA_EXCEEDED",
  /** An upload that would take the user's stored files over STORAGE_QUOTA_BYTES (HTTP 507). */
  "STORAGE_QUOTA_EXCEEDED",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
  /** With VALIDATION: the first field in error, e.g. "temperature". */
  field?: string;
  /** With VALIDATION: every field in error with its message. */
  issues?: { field: string; message: string }[];
}

export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };

/** A failure the client is told about, with its code. Anything else thrown is INTERNAL. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "AppError";
  }

  toBody(): ErrorBody {
    return this.retryAfterMs === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfterMs: this.retryAfterMs };
  }
}

export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ARCHIVED: 409,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  VALIDATION: 422,
  QUOTA_EXCEEDED: 429,
  STORAGE_QUOTA_EXCEEDED: 507,
};

/** VALIDATION: the request parsed, but settings are out of bounds; each field in error is named. */
export class ValidationError extends AppError {
  constructor(readonly issues: { field: string; message: string }[]) {
    super("VALIDATION", issues.map((i) => i.message).join("; ") || "invalid settings");
    this.name = "ValidationError";
  }

  override toBody(): ErrorBody {
    return { code: this.code, message: this.message, field: this.issues[0]?.field ?? "", issues: this.issues };
  }
}
