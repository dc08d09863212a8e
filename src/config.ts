/**
 * Every setting, read from the environment once and validated. Nothing else
 * in src/ reads process.env. Defaults give the embedded profile: run with
 * nothing set and the server brings its own PostgreSQL under DATA_DIR.
 */
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { LimitName, RateLimitPolicy } from "./chat/rate-limits.js";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((v) => ["true", "1", "yes", "on"].includes(v));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .pipe(z.string().url().optional());

/** Attachment types accepted when UPLOAD_ALLOWED_TYPES is unset: images, PDF and text-like files. */
export const DEFAULT_UPLOAD_TYPES = [
  "image/png",
  "image/jpeg",
  "image/webp",
  "image/gif",
  "application/pdf",
  "text/plain",
  "text/markdown",
  "text/csv",
  "application/json",
  "text/html",
] as const;

/** DB_POOL_IDLE_MS's default, also createPool's for pools made outside the server (scripts, tests). */
export const DEFAULT_POOL_IDLE_MS = 600_000;

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
  /**
   * How long a pooled PostgreSQL connection may sit idle before it is closed
   * (0: never). A new connection costs a turn about 30-40 ms (connecting,
   * and planning each named statement again), so a quiet spell shorter than
   * this keeps them warm (README, Assistant latency).
   */
  DB_POOL_IDLE_MS: int(0, 86_400_000).default(DEFAULT_POOL_IDLE_MS),
  /** Most message:send writes stored together in one batch (one round trip, one commit). */
  SEND_BATCH_MAX: int(1, 1000).default(64),
  /** Most send batches in PostgreSQL at once; sends arriving meanwhile wait and form the next batch. */
  SEND_BATCH_IN_FLIGHT: int(1, 100).default(2),
  /** HS256 secret for access tokens; generated once into DATA_DIR when unset. Set it on every node of a cluster. */
  JWT_SECRET: z.string().min(32, "JWT_SECRET must be at least 32 characters").optional(),
  /** Lifetime of an access token, in seconds. */
  JWT_TTL_SECONDS: int(60, 365 * 24 * 3600).default(7 * 24 * 3600),
  /** How long a node trusts what it read of a user's account state (exists, disabled, token version): logout-all and deletion reach every node within it. */
  AUTH_CACHE_MS: int(0, 60_000).default(5_000),
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

  /** transformers (in-process all-MiniLM-L6-v2), openai (EMBEDDING_API_URL), hash (lexical feature hashing), none. */
  EMBEDDER: z.enum(["transformers", "openai", "hash", "none"]).default("transformers"),
  /** Local model folder in the hub layout; when unset the model is fetched from the hub by id (needs network). */
  EMBEDDING_MODEL_PATH: z.string().optional(),
  EMBEDDING_MODEL_ID: z.string().default("Xenova/all-MiniLM-L6-v2"),
  /** q8 = quantized weights (onnx/model_quantized.onnx), fp32 = onnx/model.onnx. */
  EMBEDDING_DTYPE: z.enum(["q8", "fp32", "fp16", "int8", "uint8", "q4", "bnb4", "q4f16"]).default("q8"),
  /** Worker threads running the model; 0 = one per core. */
  EMBEDDING_WORKERS: int(0, 64).default(0),
  EMBEDDING_BATCH_SIZE: int(1, 1024).default(32),
  EMBEDDING_DIMENSIONS: int(1, 8192).default(384),
  /**
   * Re-embedding (README, Operations, "Changing the embedding model"): when the
   * active embedding version's model is not the configured one, this node loads
   * it from what the version recorded. Set this to its local folder (hub layout)
   * when the recorded folder does not exist on this node.
   */
  EMBEDDING_PREVIOUS_MODEL_PATH: z.string().optional(),
  /** Worker threads for a second (transformers) model loaded while a re-embed builds. */
  EMBEDDING_PREVIOUS_WORKERS: int(1, 64).default(1),
  /** Messages per re-embedding backfill batch. */
  REEMBED_BATCH_SIZE: int(1, 1024).default(64),
  /** Least time between the starts of two backfill batches: with REEMBED_BATCH_SIZE, caps the backfill's rate (64 per 200 ms: 320 messages/s). */
  REEMBED_INTERVAL_MS: int(0, 600_000).default(200),
  /** Embedding versions kept (active, building, and previous ones for a rollback); older ones are retired and their vectors deleted. */
  REEMBED_KEEP_VERSIONS: int(2, 100).default(3),
  /** How often each node re-reads the embedding versions (a switch also reaches nodes at once by NOTIFY). */
  EMBEDDING_VERSION_REFRESH_MS: int(50, 600_000).default(2000),
  /** OpenAI-compatible /v1/embeddings endpoint (EMBEDDER=openai). */
  EMBEDDING_API_URL: optionalUrl.optional(),
  EMBEDDING_API_KEY: z.string().optional(),
  EMBEDDING_API_MODEL: z.string().default("text-embedding-3-small"),

  /** Qdrant; when unset, vectors are kept in PostgreSQL with exact search. */
  QDRANT_URL: optionalUrl.optional(),
  QDRANT_API_KEY: z.string().optional(),
  /** Collections are named <prefix>_<model>_<dimensions>, one per embedding version. */
  QDRANT_COLLECTION_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default("chat_history"),
  /** PostgreSQL vector store: candidates of the code prefilter scored exactly per search; a filtered set this small or smaller is searched exactly. */
  VECTOR_RERANK_DEPTH: int(10, 1_000_000).default(400),

  /** Default retrieval for memory:search and the assistant: hybrid, vector or lexical. */
  RETRIEVAL_MODE: z.enum(["hybrid", "vector", "lexical"]).default("hybrid"),
  /** memory:search drops vector hits below this cosine similarity (the assistant uses its named configuration). */
  MEMORY_MIN_SIMILARITY: z.coerce.number().min(-1).max(1).default(0.2),
  /** Lexical search reads the user's latest this many messages whole; a history that fits is searched exactly. */
  MEMORY_LEXICAL_WINDOW: int(1, 1_000_000).default(2000),
  /** A query term in fewer of the user's messages than this is read from the full-text index; a commoner one only from the window. */
  MEMORY_LEXICAL_TERM_CAP: int(1, 1_000_000).default(500),

  INDEXER_ENABLED: bool.default("true"),
  INDEXER_BATCH_SIZE: int(1, 1024).default(64),
  /** Batches in flight per node, so the database work of one overlaps the embedding of the next. */
  INDEXER_CONCURRENCY: int(1, 16).default(2),
  INDEXER_POLL_MS: int(50, 600_000).default(1000),
  /** Wait after a wake-up or a partial batch, so a trickle of messages is indexed in batches. */
  INDEXER_LINGER_MS: int(0, 10_000).default(50),
  INDEXER_LEASE_MS: int(1000, 3_600_000).default(60_000),
  INDEXER_BASE_BACKOFF_MS: int(10, 600_000).default(1000),
  INDEXER_MAX_BACKOFF_MS: int(10, 3_600_000).default(60_000),
  /** Reading attachments (src/files/extract): characters kept per file, PDF pages read, time and heap per file, worker threads. */
  EXTRACT_MAX_CHARS: int(1000, 50_000_000).default(2_000_000),
  EXTRACT_MAX_PAGES: int(1, 100_000).default(1000),
  EXTRACT_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  EXTRACT_WORKER_HEAP_MB: int(32, 16_384).default(512),
  EXTRACT_WORKERS: int(1, 16).default(1),
  /** Passages of attachments: target length and overlap in characters; how many a reply may draw on. */
  PASSAGE_CHARS: int(100, 10_000).default(800),
  PASSAGE_OVERLAP_CHARS: int(0, 5_000).default(160),
  PASSAGE_TOP_K: int(0, 50).default(4),
  /**
   * Longest a reply waits for the files sent with its question to be read
   * (extracted into passages, which lexical search finds at once; embedding
   * may lag). Past it the reply goes on without them. 0: never waits.
   */
  ATTACHMENT_READ_WAIT_MS: int(0, 120_000).default(10_000),

  /** Any OpenAI-compatible endpoint, e.g. https://api.openai.com/v1. Unset: the offline responder answers. */
  OPENAI_BASE_URL: optionalUrl.optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_MODEL: z.string().default("gpt-4o-mini"),
  LLM_CONNECT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  LLM_IDLE_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Pause between the offline responder's words, so clients see a stream. */
  OFFLINE_TOKEN_DELAY_MS: int(0, 10_000).default(8),

  /** Longest a token waits to be sent together with the following ones. */
  ASSISTANT_COALESCE_MS: int(0, 1000).default(30),
  /** How often a streaming reply's text is saved to its row. */
  ASSISTANT_CHECKPOINT_MS: int(50, 60_000).default(1000),
  /** A node without a heartbeat this long is dead: its streaming replies become interrupted. */
  NODE_STALE_MS: int(1000, 600_000).default(15_000),
  SWEEP_INTERVAL_MS: int(100, 600_000).default(5000),
  /** How long a finished reply's delta log stays readable for resuming clients. */
  STREAM_GRACE_MS: int(0, 3_600_000).default(60_000),

  /** Redis: fan-out between nodes, rate limits, presence, stream buffers, cancel. Unset: all in-process. */
  REDIS_URL: optionalUrl.optional(),
  /** How long a connection stays present without its node's heartbeat (Redis presence). */
  PRESENCE_TTL_MS: int(1000, 3_600_000).default(30_000),

  RATE_LIMITS_ENABLED: bool.default("true"),
  /** RATE_<FAMILY>_BURST and RATE_<FAMILY>_PER_SEC for every family of RATE_DEFAULTS, added below. */

  /** Closes a connection that has not joined /chat (authenticated) this long after it opened. */
  AUTH_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, "METRICS_TOKEN must be at least 16 characters").optional(),

  /** Archive sessions without a message for this many days. Unset: never. */
  ARCHIVE_IDLE_DAYS: z.coerce.number().positive().optional(),
  /** A session that reaches this many messages is archived and continued in a new session with the same members. Unset: never. */
  SESSION_MAX_MESSAGES: int(10, 100_000_000).optional(),
  /** Delete archived sessions (messages, vectors, everything) this many days after they were archived. Unset: never. */
  RETENTION_ARCHIVED_DAYS: z.coerce.number().positive().optional(),
  /** Rows per statement when retention deletes, and sessions per archival statement. */
  RETENTION_BATCH_SIZE: int(10, 100_000).default(1000),
  /** Pause between two retention statements, so sends get the database in between. */
  RETENTION_BATCH_PAUSE_MS: int(0, 60_000).default(20),
  /** How often each maintenance job (archival, retention, analytics) runs, cluster-wide. */
  MAINTENANCE_INTERVAL_MS: int(1000, 7 * 24 * 3600 * 1000).default(600_000),
  /** How long a node holds a maintenance job's lease without renewing it (a crashed node's job runs elsewhere after this). */
  MAINTENANCE_LEASE_MS: int(1000, 24 * 3600 * 1000).default(120_000),
  MAINTENANCE_ENABLED: bool.default("true"),

  /** Comma-separated usernames that are admins (besides the first registered account): granted at registration and at each start; removing a name does not demote. */
  ADMIN_USERNAMES: z.string().default(""),
  /** Tokens (prompt + completion) a user may spend on assistant replies per UTC day; unset or 0: no cap. An admin may set a per-user override. */
  QUOTA_DAILY_TOKENS: int(0, 1_000_000_000_000).default(0),
  /** Tokens reserved when a turn starts, counted against the quota until the turn settles with its real count. */
  QUOTA_TURN_ESTIMATE_TOKENS: int(1, 10_000_000).default(1000),
  /** Daily analytics rows (and daily usage rows) older than this many days are deleted by the analytics job. */
  ANALYTICS_RETENTION_DAYS: int(1, 36_500).default(730),
  /** Largest file a member may upload, in bytes (streamed: never held whole in memory). */
  MAX_UPLOAD_BYTES: int(1, 5 * 1024 ** 3).default(25 * 1024 * 1024),
  /** Types a file may be, judged by its bytes (sniffed), not by its name or declared type; comma separated. */
  UPLOAD_ALLOWED_TYPES: z.string().default(DEFAULT_UPLOAD_TYPES.join(",")),
  /** Most attachments one message may carry. */
  MAX_ATTACHMENTS_PER_MESSAGE: int(1, 100).default(10),
  /** Bytes of attachments one user may keep stored (uploads and sent files, every session). Unset: no quota. */
  STORAGE_QUOTA_BYTES: int(1, Number.MAX_SAFE_INTEGER).optional(),
  /** An upload not sent with a message this long after it finished is removed. */
  ATTACHMENT_PENDING_TTL_MS: int(60_000, 30 * 24 * 3600 * 1000).default(3600_000),
  /** How often expired uploads are removed and the stored objects of deleted attachments are deleted. */
  ATTACHMENT_SWEEP_INTERVAL_MS: int(1000, 24 * 3600 * 1000).default(60_000),
  /** S3-compatible object store for attachments (cluster profile). Unset: files go to DATA_DIR/files. */
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not an S3 bucket name").optional(),
  /** Endpoint of a non-AWS store (MinIO: http://minio:9000); unset for AWS. */
  S3_ENDPOINT: optionalUrl.optional(),
  S3_REGION: z.string().default("us-east-1"),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** Path-style URLs (endpoint/bucket/key), which MinIO and most S3-compatible stores want. */
  S3_FORCE_PATH_STYLE: bool.default("true"),
  /** Prefix of every object key, so one bucket can serve several deployments. */
  S3_PREFIX: z.string().regex(/^([a-z0-9][a-z0-9._-]*\/)*$/, "lower-case path segments each ending in /").default(""),
});

/**
 * Token buckets per family of requests (src/chat/rate-limits.ts says which
 * events and routes each covers, and whether per user or per address): burst
 * size and sustained rate per second.
 */
const RATE_DEFAULTS: Record<LimitName, readonly [burst: number, perSecond: number]> = {
  message: [30, 2],
  turn: [10, 0.5],
  connect: [500, 200],
  login: [50, 10],
  session: [60, 10],
  invite: [20, 1],
  typing: [30, 10],
  read: [120, 20],
  search: [20, 2],
  feedback: [30, 2],
  cancel: [30, 5],
  rest: [600, 100],
  // logout-all, export, deletion
  account: [10, 0.2],
  // admin routes: analytics, quotas, configurations
  admin: [60, 5],
  upload: [20, 0.5],
};
const rateVar = (name: string, part: "BURST" | "PER_SEC") => `RATE_${name.toUpperCase()}_${part}`;
const rateSchema: z.ZodType<Record<string, number>, z.ZodTypeDef, unknown> = z.object(
  Object.fromEntries(
    Object.entries(RATE_DEFAULTS).flatMap(([name, [burst, perSecond]]) => [
      [rateVar(name, "BURST"), z.coerce.number().positive().default(burst)],
      [rateVar(name, "PER_SEC"), z.coerce.number().positive().default(perSecond)],
    ]),
  ),
);

export type Env = z.input<typeof envSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  database: { url: string | undefined; embeddedPort: number; poolSize: number; poolIdleMs: number; sendBatchMax: number; sendBatchInFlight: number };
  auth: { jwtSecret: string | undefined; tokenTtlSeconds: number; scryptN: number; cacheMs: number; adminUsernames: string[] };
  limits: { maxMessageChars: number; maxPayloadBytes: number; historyPageSize: number; historyPageMax: number };
  corsOrigin: string | string[];
  shutdownTimeoutMs: number;
  logLevel: string;
  nodeId: string;
  trustProxy: boolean;
  embedding: {
    kind: "transformers" | "openai" | "hash" | "none";
    modelPath: string | undefined;
    modelId: string;
    dtype: Env["EMBEDDING_DTYPE"] & string;
    workers: number;
    batchSize: number;
    dimensions: number;
    api: { url: string | undefined; key: string | undefined; model: string };
    previousModelPath: string | undefined;
    previousWorkers: number;
  };
  reembed: { batchSize: number; intervalMs: number; keepVersions: number; refreshMs: number };
  qdrant: { url: string | undefined; apiKey: string | undefined; collectionPrefix: string };
  pgVectors: { rerankDepth: number };
  retrieval: { mode: "hybrid" | "vector" | "lexical"; minSimilarity: number; lexicalWindow: number; lexicalTermCap: number };
  indexer: { enabled: boolean; batchSize: number; concurrency: number; pollMs: number; lingerMs: number; leaseMs: number; baseBackoffMs: number; maxBackoffMs: number };
  extract: { maxChars: number; maxPages: number; timeoutMs: number; workerHeapMb: number; workers: number; passageChars: number; passageOverlap: number; passageTopK: number; readWaitMs: number };
  llm: {
    baseUrl: string | undefined;
    apiKey: string | undefined;
    model: string;
    connectTimeoutMs: number;
    idleTimeoutMs: number;
    offlineTokenDelayMs: number;
  };
  assistant: { coalesceMs: number; checkpointMs: number; nodeStaleMs: number; sweepIntervalMs: number; streamGraceMs: number };
  redis: { url: string | undefined; presenceTtlMs: number };
  rateLimits: RateLimitPolicy;
  authTimeoutMs: number;
  metricsToken: string | undefined;
  lifecycle: {
    archiveIdleDays: number | undefined;
    sessionMaxMessages: number | undefined;
    retentionArchivedDays: number | undefined;
    batchSize: number;
    batchPauseMs: number;
  };
  maintenance: { enabled: boolean; intervalMs: number; leaseMs: number };
  /** Per-user daily token caps (issue 15). */
  quota: { dailyTokens: number | undefined; turnEstimateTokens: number };
  analytics: { retentionDays: number };
  files: {
    maxUploadBytes: number;
    allowedTypes: string[];
    maxPerMessage: number;
    quotaBytes: number | undefined;
    pendingTtlMs: number;
    sweepIntervalMs: number;
    /** Set: attachments go to this S3-compatible store; unset: DATA_DIR/files. */
    s3:
      | { bucket: string; endpoint: string | undefined; region: string; accessKeyId: string | undefined; secretAccessKey: string | undefined; forcePathStyle: boolean; prefix: string }
      | undefined;
  };
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable (FOO= in a compose file) means "not set", not "the empty string".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const parsed = envSchema.safeParse(present);
  const rates = rateSchema.safeParse(present);
  if (!parsed.success || !rates.success) {
    const issues = [...(parsed.success ? [] : parsed.error.issues), ...(rates.success ? [] : rates.error.issues)];
    const lines = issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const r = rates.data;
  if (e.EMBEDDER === "openai" && !e.EMBEDDING_API_URL) throw new ConfigError("invalid configuration:\n  EMBEDDER=openai needs EMBEDDING_API_URL");
  const origins = e.CORS_ORIGIN.split(",").map((s) => s.trim()).filter(Boolean);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.DATA_DIR),
    database: { url: e.DATABASE_URL, embeddedPort: e.EMBEDDED_PG_PORT, poolSize: e.DB_POOL_SIZE, poolIdleMs: e.DB_POOL_IDLE_MS, sendBatchMax: e.SEND_BATCH_MAX, sendBatchInFlight: e.SEND_BATCH_IN_FLIGHT },
    auth: {
      jwtSecret: e.JWT_SECRET,
      tokenTtlSeconds: e.JWT_TTL_SECONDS,
      scryptN: e.PASSWORD_SCRYPT_N,
      cacheMs: e.AUTH_CACHE_MS,
      adminUsernames: e.ADMIN_USERNAMES.split(",").map((s) => s.trim()).filter(Boolean),
    },
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
    embedding: {
      kind: e.EMBEDDER,
      modelPath: e.EMBEDDING_MODEL_PATH ? path.resolve(e.EMBEDDING_MODEL_PATH) : undefined,
      modelId: e.EMBEDDING_MODEL_ID,
      dtype: e.EMBEDDING_DTYPE,
      workers: e.EMBEDDING_WORKERS || Math.max(1, os.availableParallelism()),
      batchSize: e.EMBEDDING_BATCH_SIZE,
      dimensions: e.EMBEDDING_DIMENSIONS,
      api: { url: e.EMBEDDING_API_URL, key: e.EMBEDDING_API_KEY, model: e.EMBEDDING_API_MODEL },
      previousModelPath: e.EMBEDDING_PREVIOUS_MODEL_PATH ? path.resolve(e.EMBEDDING_PREVIOUS_MODEL_PATH) : undefined,
      previousWorkers: e.EMBEDDING_PREVIOUS_WORKERS,
    },
    reembed: {
      batchSize: e.REEMBED_BATCH_SIZE,
      intervalMs: e.REEMBED_INTERVAL_MS,
      keepVersions: e.REEMBED_KEEP_VERSIONS,
      refreshMs: e.EMBEDDING_VERSION_REFRESH_MS,
    },
    qdrant: { url: e.QDRANT_URL, apiKey: e.QDRANT_API_KEY, collectionPrefix: e.QDRANT_COLLECTION_PREFIX },
    pgVectors: { rerankDepth: e.VECTOR_RERANK_DEPTH },
    retrieval: { mode: e.RETRIEVAL_MODE, minSimilarity: e.MEMORY_MIN_SIMILARITY, lexicalWindow: e.MEMORY_LEXICAL_WINDOW, lexicalTermCap: e.MEMORY_LEXICAL_TERM_CAP },
    indexer: {
      enabled: e.INDEXER_ENABLED,
      batchSize: e.INDEXER_BATCH_SIZE,
      concurrency: e.INDEXER_CONCURRENCY,
      pollMs: e.INDEXER_POLL_MS,
      lingerMs: e.INDEXER_LINGER_MS,
      leaseMs: e.INDEXER_LEASE_MS,
      baseBackoffMs: e.INDEXER_BASE_BACKOFF_MS,
      maxBackoffMs: e.INDEXER_MAX_BACKOFF_MS,
    },
    extract: {
      maxChars: e.EXTRACT_MAX_CHARS,
      maxPages: e.EXTRACT_MAX_PAGES,
      timeoutMs: e.EXTRACT_TIMEOUT_MS,
      workerHeapMb: e.EXTRACT_WORKER_HEAP_MB,
      workers: e.EXTRACT_WORKERS,
      passageChars: e.PASSAGE_CHARS,
      passageOverlap: e.PASSAGE_OVERLAP_CHARS,
      passageTopK: e.PASSAGE_TOP_K,
      readWaitMs: e.ATTACHMENT_READ_WAIT_MS,
    },
    llm: {
      baseUrl: e.OPENAI_BASE_URL,
      apiKey: e.OPENAI_API_KEY,
      model: e.OPENAI_MODEL,
      connectTimeoutMs: e.LLM_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: e.LLM_IDLE_TIMEOUT_MS,
      offlineTokenDelayMs: e.OFFLINE_TOKEN_DELAY_MS,
    },
    assistant: {
      coalesceMs: e.ASSISTANT_COALESCE_MS,
      checkpointMs: e.ASSISTANT_CHECKPOINT_MS,
      nodeStaleMs: e.NODE_STALE_MS,
      sweepIntervalMs: e.SWEEP_INTERVAL_MS,
      streamGraceMs: e.STREAM_GRACE_MS,
    },
    redis: { url: e.REDIS_URL, presenceTtlMs: e.PRESENCE_TTL_MS },
    authTimeoutMs: e.AUTH_TIMEOUT_MS,
    metricsToken: e.METRICS_TOKEN,
    rateLimits: {
      enabled: e.RATE_LIMITS_ENABLED,
      rules: Object.fromEntries(
        Object.keys(RATE_DEFAULTS).map((name) => [
          name,
          { capacity: r[rateVar(name, "BURST")]!, refillPerSecond: r[rateVar(name, "PER_SEC")]! },
        ]),
      ) as RateLimitPolicy["rules"],
    },
    lifecycle: {
      archiveIdleDays: e.ARCHIVE_IDLE_DAYS,
      sessionMaxMessages: e.SESSION_MAX_MESSAGES,
      retentionArchivedDays: e.RETENTION_ARCHIVED_DAYS,
      batchSize: e.RETENTION_BATCH_SIZE,
      batchPauseMs: e.RETENTION_BATCH_PAUSE_MS,
    },
    maintenance: { enabled: e.MAINTENANCE_ENABLED, intervalMs: e.MAINTENANCE_INTERVAL_MS, leaseMs: e.MAINTENANCE_LEASE_MS },
    quota: { dailyTokens: e.QUOTA_DAILY_TOKENS > 0 ? e.QUOTA_DAILY_TOKENS : undefined, turnEstimateTokens: e.QUOTA_TURN_ESTIMATE_TOKENS },
    analytics: { retentionDays: e.ANALYTICS_RETENTION_DAYS },
    files: {
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
      allowedTypes: e.UPLOAD_ALLOWED_TYPES.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean),
      maxPerMessage: e.MAX_ATTACHMENTS_PER_MESSAGE,
      quotaBytes: e.STORAGE_QUOTA_BYTES,
      pendingTtlMs: e.ATTACHMENT_PENDING_TTL_MS,
      sweepIntervalMs: e.ATTACHMENT_SWEEP_INTERVAL_MS,
      s3: e.S3_BUCKET
        ? {
            bucket: e.S3_BUCKET,
            endpoint: e.S3_ENDPOINT,
            region: e.S3_REGION,
            accessKeyId: e.S3_ACCESS_KEY_ID,
            secretAccessKey: e.S3_SECRET_ACCESS_KEY,
            forcePathStyle: e.S3_FORCE_PATH_STYLE,
            prefix: e.S3_PREFIX,
          }
        : undefined,
    },
  };
}
