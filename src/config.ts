/**
 * Every setting, read from the environment once and validated. Nothing else
 * in src/ reads process.env. Defaults give the embedded profile: run with
 * nothing set and the server brings its own PostgreSQL under DATA_DIR.
 */
import os from "node:os";
import path from "node:path";
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((v) => ["true", "1", "yes", "on"].includes(v));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .pipe(z.string().url().optional());

const envSchema = z.object({
  /** HTTP and Socket.IO port. */
  PORT: int(0, 65535).default(3000),
  /** Interface to listen on. */
  HOST: z.string().default("0.0.0.0"),
  /** Where the embedded profile keeps PostgreSQL data and the generated JWT secret. */
  DATA_DIR: z.string().default("./data"),
  /** External PostgreSQL; when set, no embedded PostgreSQL is started. */
  DATABASE_URL: optionalUrl.optional(),
  /** Port of the embedded PostgreSQL; 0 picks a free loopback port at each start. */
  EMBEDDED_PG_PORT: int(0, 65535).default(0),
  /** Connections in the PostgreSQL pool of this process. */
  DB_POOL_SIZE: int(1, 500).default(20),
  /** HS256 secret for access tokens; generated once into DATA_DIR when unset. Set it on every node of a cluster. */
  JWT_SECRET: z.string().min(32, "JWT_SECRET must be at least 32 characters").optional(),
  /** Lifetime of an access token, in seconds. */
  JWT_TTL_SECONDS: int(60, 365 * 24 * 3600).default(7 * 24 * 3600),
  /** scrypt cost (N, a power of two): memory is 128 * N * 8 bytes per hash (16 MiB at 16384). */
  PASSWORD_SCRYPT_N: int(1024, 1 << 20)
    .refine((n) => (n & (n - 1)) === 0, "PASSWORD_SCRYPT_N must be a power of two")
    .default(16384),
  /** Longest message content accepted, in characters. */
  MAX_MESSAGE_CHARS: int(1, 1_000_000).default(8000),
  /** Largest Socket.IO packet accepted, in bytes (also caps REST bodies). */
  MAX_PAYLOAD_BYTES: int(1024, 64 * 1024 * 1024).default(64 * 1024),
  /** Default and largest page of message:history. */
  HISTORY_PAGE_SIZE: int(1, 500).default(50),
  HISTORY_PAGE_MAX: int(1, 1000).default(200),
  /** Allowed CORS origin(s) for browsers, comma separated; `*` for any. */
  CORS_ORIGIN: z.string().default("*"),
  /** How long shutdown waits for in-flight requests before closing anyway. */
  SHUTDOWN_TIMEOUT_MS: int(0, 120_000).default(10_000),
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Identity of this node in logs and in the rows it owns (defaults to hostname-pid). */
  NODE_ID: z.string().min(1).max(100).optional(),
  /** Trust X-Forwarded-For from a load balancer for client addresses. */
  TRUST_PROXY: bool.default("false"),
});

export type Env = z.input<typeof envSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  database: { url: string | undefined; embeddedPort: number; poolSize: number };
  auth: { jwtSecret: string | undefined; tokenTtlSeconds: number; scryptN: number };
  limits: { maxMessageChars: number; maxPayloadBytes: number; historyPageSize: number; historyPageMax: number };
  corsOrigin: string | string[];
  shutdownTimeoutMs: number;
  logLevel: string;
  nodeId: string;
  trustProxy: boolean;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const origins = e.CORS_ORIGIN.split(",").map((s) => s.trim()).filter(Boolean);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.DATA_DIR),
    database: { url: e.DATABASE_URL, embeddedPort: e.EMBEDDED_PG_PORT, poolSize: e.DB_POOL_SIZE },
    auth: { jwtSecret: e.JWT_SECRET, tokenTtlSeconds: e.JWT_TTL_SECONDS, scryptN: e.PASSWORD_SCRYPT_N },
    limits: {
      maxMessageChars: e.MAX_MESSAGE_CHARS,
      maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
      historyPageSize: Math.min(e.HISTORY_PAGE_SIZE, e.HISTORY_PAGE_MAX),
      historyPageMax: e.HISTORY_PAGE_MAX,
    },
    corsOrigin: origins.length === 1 && origins[0] === "*" ? "*" : origins,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    nodeId: e.NODE_ID ?? `${os.hostname()}-${process.pid}`,
    trustProxy: e.TRUST_PROXY,
  };
}
