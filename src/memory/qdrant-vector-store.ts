/**
 * VectorStore over Qdrant (cluster profile, DESIGN.md sections 2 and 7).
 * REST calls made: GET / (version, once), GET /collections/{c}, PUT /collections/{c},
 * PUT /collections/{c}/index, PUT /collections/{c}/points?wait=true,
 * POST /collections/{c}/points/query, POST /collections/{c}/points/delete?wait=true,
 * DELETE /collections/{c} (retiring an embedding version).
 */
import {
  QdrantClient,
  QdrantClientResourceExhaustedError,
  QdrantClientTimeoutError,
  QdrantClientUnexpectedResponseError,
  type Schemas,
} from "@qdrant/js-client-rest";
import type { Logger } from "pino";
import { z } from "zod";
import { isUuid } from "./point-id.js";
import { MESSAGE_ROLES, type MessageRole, type PassageFilter, type PassagePoint, type PassageVectorHit, type StoredRole, type VectorFilter, type VectorHit, type VectorPoint, type VectorStore } from "./types.js";

/** Qdrant could not be reached or could not serve the call now; retrying later may succeed. */
export class VectorStoreUnavailableError extends Error {
  readonly code = "VECTOR_STORE_UNAVAILABLE";
  constructor(
    message: string,
    options?: { cause?: unknown },
    /** Set when Qdrant said how long to back off (HTTP 429 with Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(message, options);
    this.name = "VectorStoreUnavailableError";
  }
}

/**
 * Qdrant answered and refused the call (bad input, wrong collection layout,
 * missing collection, auth): retrying the same call will fail the same way.
 */
export class VectorStoreRequestError extends Error {
  readonly code = "VECTOR_STORE_BAD_REQUEST";
  constructor(
    message: string,
    /** HTTP status from Qdrant; undefined when the call was refused before it was sent. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "VectorStoreRequestError";
  }
}

export interface QdrantVectorStoreOptions {
  /** e.g. http://qdrant:6333 */
  url: string;
  apiKey?: string;
  /** One collection per embedding version (DESIGN.md section 7). */
  collection: string;
  /** Must match the embedder; 384 for all-MiniLM-L6-v2. */
  dimensions: number;
  /** Per HTTP request, milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Points per upsert request. Default 256 (about 2 MB of JSON at 384 dimensions). */
  upsertBatchSize?: number;
  logger?: Logger;
}

/** Payload indexes the collection must carry; user_id is the tenant key. */
const PAYLOAD_INDEXES: ReadonlyArray<{ field: string; schema: Schemas["PayloadFieldSchema"] }> = [
  { field: "session_id", schema: "keyword" },
  { field: "user_id", schema: { type: "keyword", is_tenant: true } },
  { field: "author_id", schema: "keyword" },
  { field: "role", schema: "keyword" },
  { field: "message_id", schema: "integer" },
  { field: "timestamp_unix", schema: "integer" },
  // Passages of attachments (role "passage") share the collection.
  { field: "attachment_id", schema: "keyword" },
];

const HIT_PAYLOAD_FIELDS = ["session_id", "message_id", "role", "content", "author_id"];

const PASSAGE_HIT_FIELDS = ["session_id", "passage_id", "attachment_id"];

const passageHitSchema = z.object({
  session_id: z.string(),
  passage_id: z.union([z.number().int(), z.bigint()]).transform((v) => Number(v)),
  attachment_id: z.string(),
});

const hitPayloadSchema = z.object({
  session_id: z.string(),
  message_id: z.union([z.number().int(), z.bigint()]).transform((v) => Number(v)),
  role: z.enum(["user", "assistant", "system"]),
  content: z.string(),
  // Absent for a point without an author (gone, or written before authors were stored).
  author_id: z.string().optional(),
});

/** Statuses that mean "the service (or a proxy in front of it) cannot answer now". */
const UNAVAILABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** VectorStore over a Qdrant collection, through the official REST client. */
export class QdrantVectorStore implements VectorStore {
  private readonly client: QdrantClient;
  private readonly collection: string;
  private readonly dimensions: number;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private readonly logger: Logger | undefined;
  private versionChecked = false;
  private closed = false;

  constructor(options: QdrantVectorStoreOptions) {
    if (!Number.isInteger(options.dimensions) || options.dimensions < 1) {
      throw new RangeError(`dimensions must be a positive integer, got ${options.dimensions}`);
    }
    if (options.collection.length === 0) throw new RangeError("collection name must not be empty");
    this.collection = options.collection;
    this.dimensions = options.dimensions;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.batchSize = Math.max(1, Math.floor(options.upsertBatchSize ?? 256));
    this.logger = options.logger;
    this.client = new QdrantClient({
      url: options.url,
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
      timeout: this.timeoutMs,
      // The client's own check reports through console.warn from a detached
      // promise; ensureReady does it instead, through the logger.
      checkCompatibility: false,
    });
  }

  async ensureReady(): Promise<void> {
    this.assertOpen();
    await this.call("ensureReady", async () => {
      await this.checkServerVersion();
      let info = await this.getCollectionInfo();
      if (info === null) {
        await this.createCollection();
        info = await this.getCollectionInfo();
        if (info === null) {
          throw new VectorStoreRequestError(`collection ${this.collection} vanished right after it was created`);
        }
      }
      this.assertLayout(info);
      for (const { field, schema } of PAYLOAD_INDEXES) {
        const existing = info.payload_schema[field];
        const wanted = typeof schema === "string" ? schema : schema.type;
        if (existing === undefined) {
          // Creating an index that a racing node has just created is accepted by Qdrant.
          await this.client.createPayloadIndex(this.collection, { field_name: field, field_schema: schema, wait: true });
        } else if (existing.data_type !== wanted) {
          throw new VectorStoreRequestError(
            `collection ${this.collection} indexes ${field} as ${existing.data_type}, expected ${wanted}`,
          );
        }
      }
    });
  }

  async upsert(points: readonly VectorPoint[]): Promise<void> {
    this.assertOpen();
    if (points.length === 0) return;
    // Everything is checked before the first batch goes out, so a bad point
    // cannot leave the earlier batches of the same call written.
    const wire = points.map((p) => this.toWirePoint(p));
    await this.call("upsert", async () => {
      for (let i = 0; i < wire.length; i += this.batchSize) {
        await this.client.upsert(this.collection, { wait: true, points: wire.slice(i, i + this.batchSize) });
      }
    });
  }

  async search(vector: Float32Array, filter: VectorFilter, limit: number): Promise<VectorHit[]> {
    // Passages share the collection: a message search names the message roles.
    const points = await this.query(vector, { ...filter, roles: filter.roles ?? MESSAGE_ROLES }, limit, HIT_PAYLOAD_FIELDS);
    return points.map((p) => {
      const parsed = hitPayloadSchema.safeParse(p.payload);
      if (!parsed.success) {
        // Only this store writes the collection, so a malformed payload is a bug, not data to skip.
        throw new Error(`point ${String(p.id)} in ${this.collection} has a malformed payload: ${parsed.error.message}`);
      }
      const { session_id, message_id, role, content, author_id } = parsed.data;
      return { messageId: message_id, sessionId: session_id, score: p.score, role, content, authorId: author_id ?? null };
    });
  }

  async searchPassages(vector: Float32Array, filter: PassageFilter, limit: number): Promise<PassageVectorHit[]> {
    const points = await this.query(vector, { ...filter, roles: ["passage"] }, limit, PASSAGE_HIT_FIELDS);
    return points.map((p) => {
      const parsed = passageHitSchema.safeParse(p.payload);
      if (!parsed.success) throw new Error(`passage point ${String(p.id)} in ${this.collection} has a malformed payload: ${parsed.error.message}`);
      return { passageId: parsed.data.passage_id, attachmentId: parsed.data.attachment_id, sessionId: parsed.data.session_id, score: p.score };
    });
  }

  async upsertPassages(points: readonly PassagePoint[]): Promise<void> {
    this.assertOpen();
    if (points.length === 0) return;
    const wire = points.map((p): Schemas["PointStruct"] => {
      if (!isUuid(p.id)) throw new VectorStoreRequestError(`point id of passage ${p.payload.passageId} is not a UUID: ${p.id}`);
      this.assertVector(p.vector, `vector of passage ${p.payload.passageId}`);
      const { sessionId, userId, authorId, passageId, attachmentId, content, timestamp, timestampUnix } = p.payload;
      return {
        id: p.id,
        vector: Array.from(p.vector),
        payload: {
          session_id: sessionId,
          user_id: userId,
          ...(authorId !== null ? { author_id: authorId } : {}),
          role: "passage",
          passage_id: passageId,
          attachment_id: attachmentId,
          content,
          timestamp,
          timestamp_unix: timestampUnix,
        },
      };
    });
    await this.call("upsertPassages", async () => {
      for (let i = 0; i < wire.length; i += this.batchSize) {
        await this.client.upsert(this.collection, { wait: true, points: wire.slice(i, i + this.batchSize) });
      }
    });
  }

  async deleteByAttachment(attachmentId: string): Promise<void> {
    this.assertOpen();
    if (attachmentId.length === 0) throw new VectorStoreRequestError("deleteByAttachment needs an attachment id");
    await this.call("deleteByAttachment", () =>
      this.client.delete(this.collection, {
        wait: true,
        filter: { must: [{ key: "attachment_id", match: { value: attachmentId } }] },
      }),
    );
  }

  /** The filtered query both searches make: tenant, sessions, the author rule, and roles. */
  private async query(vector: Float32Array, filter: Omit<VectorFilter, "roles"> & { roles: readonly StoredRole[] }, limit: number, fields: string[]) {
    this.assertOpen();
    if (filter.userId.length === 0) {
      throw new VectorStoreRequestError("search needs a userId: the tenant filter is never optional");
    }
    this.assertVector(vector, "query vector");
    if (!Number.isFinite(limit)) throw new VectorStoreRequestError(`search limit must be finite, got ${limit}`);
    const top = Math.floor(limit);
    const sessionIds = [...new Set(filter.sessionIds)];
    if (top < 1 || sessionIds.length === 0 || filter.roles.length === 0) return [];
    const must: Schemas["Condition"][] = [
      { key: "user_id", match: { value: filter.userId } },
      { key: "session_id", match: { any: sessionIds } },
      { key: "role", match: { any: [...new Set<StoredRole>(filter.roles)] } },
    ];
    if (filter.authorScope !== undefined) {
      // The memory scoping rule: the search's own session, any author; elsewhere, the user's own text.
      const anyAuthor = [...new Set(filter.authorScope.anyAuthorSessionIds)];
      const should: Schemas["Condition"][] = [{ key: "author_id", match: { value: filter.authorScope.authorId } }];
      if (anyAuthor.length > 0) should.push({ key: "session_id", match: { any: anyAuthor } });
      must.push({ should });
    }
    const response = await this.call("search", () =>
      this.client.query(this.collection, {
        query: Array.from(vector),
        filter: { must },
        limit: top,
        with_payload: fields,
        with_vector: false,
      }),
    );
    return response.points;
  }

  async deleteBySession(sessionId: string): Promise<void> {
    this.assertOpen();
    if (sessionId.length === 0) throw new VectorStoreRequestError("deleteBySession needs a session id");
    await this.call("deleteBySession", () =>
      this.client.delete(this.collection, {
        wait: true,
        filter: { must: [{ key: "session_id", match: { value: sessionId } }] },
      }),
    );
  }

  /** Deletes the whole collection (a retired embedding version); a missing one counts as deleted. */
  async dropCollection(): Promise<void> {
    this.assertOpen();
    await this.call("dropCollection", () => this.client.deleteCollection(this.collection));
  }

  /**
   * The REST client keeps no resources this store could release (its undici
   * agent is private and lets idle sockets expire on their own); closing
   * makes later calls fail fast instead of reaching Qdrant during shutdown.
   */
  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new VectorStoreUnavailableError(`vector store for ${this.collection} is closed`);
  }

  private assertVector(vector: Float32Array, what: string): void {
    if (vector.length !== this.dimensions) {
      throw new VectorStoreRequestError(`${what} has ${vector.length} dimensions, the collection ${this.dimensions}`);
    }
    for (const x of vector) {
      if (!Number.isFinite(x)) throw new VectorStoreRequestError(`${what} contains ${x}`);
    }
  }

  private toWirePoint(p: VectorPoint): Schemas["PointStruct"] {
    if (!isUuid(p.id)) throw new VectorStoreRequestError(`point id of message ${p.payload.messageId} is not a UUID: ${p.id}`);
    this.assertVector(p.vector, `vector of message ${p.payload.messageId}`);
    const { sessionId, userId, authorId, messageId, role, content, timestamp, timestampUnix } = p.payload;
    return {
      id: p.id,
      vector: Array.from(p.vector),
      payload: {
        session_id: sessionId,
        user_id: userId,
        // Absent rather than null: a point without an author matches only its own session.
        ...(authorId !== null ? { author_id: authorId } : {}),
        message_id: messageId,
        role,
        content,
        timestamp,
        timestamp_unix: timestampUnix,
      },
    };
  }

  private async getCollectionInfo(): Promise<Schemas["CollectionInfo"] | null> {
    try {
      return await this.client.getCollection(this.collection);
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw err;
    }
  }

  private async createCollection(): Promise<void> {
    try {
      await this.client.createCollection(this.collection, {
        vectors: { size: this.dimensions, distance: "Cosine" },
        hnsw_config: { m: 16, ef_construct: 100 },
        on_disk_payload: true,
      });
      this.logger?.info({ collection: this.collection, dimensions: this.dimensions }, "created qdrant collection");
    } catch (err) {
      // Another node created it between our GET and PUT; its layout is checked next.
      if (httpStatusOf(err) !== 409) throw err;
    }
  }

  private assertLayout(info: Schemas["CollectionInfo"]): void {
    const vectors = info.config.params.vectors;
    const single = vectors && "size" in vectors ? (vectors as Schemas["VectorParams"]) : undefined;
    if (single === undefined) {
      throw new VectorStoreRequestError(`collection ${this.collection} has named vectors; this store needs one unnamed vector`);
    }
    if (single.size !== this.dimensions || single.distance !== "Cosine") {
      throw new VectorStoreRequestError(
        `collection ${this.collection} holds ${single.size}-dimension ${single.distance} vectors; ` +
          `this store needs ${this.dimensions}-dimension Cosine (one collection per embedding version)`,
      );
    }
  }

  private async checkServerVersion(): Promise<void> {
    if (this.versionChecked) return;
    const { version } = await this.client.versionInfo();
    this.versionChecked = true;
    if (!isCompatibleVersion(CLIENT_VERSION, version)) {
      this.logger?.warn(
        { serverVersion: version, clientVersion: CLIENT_VERSION },
        "qdrant server version differs from the client's by more than one minor version",
      );
    }
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classifyError(err, op, this.collection, this.timeoutMs);
    }
  }
}

/** Version of @qdrant/js-client-rest this module is written against (package.json pins 1.x). */
const CLIENT_VERSION = "1.18.0";

function isCompatibleVersion(client: string, server: string): boolean {
  const parse = (v: string) => v.split(".", 2).map((n) => Number.parseInt(n, 10));
  const [cMajor, cMinor] = parse(client);
  const [sMajor, sMinor] = parse(server);
  if (cMajor === undefined || cMinor === undefined || sMajor === undefined || sMinor === undefined) return false;
  if ([cMajor, cMinor, sMajor, sMinor].some(Number.isNaN)) return false;
  return cMajor === sMajor && Math.abs(cMinor - sMinor) <= 1;
}

/** The status of an HTTP error answered by Qdrant (the client throws the fetcher's ApiError). */
function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof Error && "status" in err && typeof err.status === "number" && "data" in err) return err.status;
  return undefined;
}

function qdrantMessage(err: unknown): string {
  const data = (err as { data?: unknown }).data;
  if (typeof data === "object" && data !== null) {
    const status = (data as { status?: unknown }).status;
    if (typeof status === "object" && status !== null && typeof (status as { error?: unknown }).error === "string") {
      return (status as { error: string }).error;
    }
  }
  if (typeof data === "string" && data.length > 0) return data.slice(0, 500);
  return (err as Error).message;
}

function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some(isNetworkError)) return true;
    // Node's fetch reports every transport failure as this TypeError, with the socket error as cause.
    if (e instanceof TypeError && e.message === "fetch failed") return true;
  }
  return false;
}

function classifyError(err: unknown, op: string, collection: string, timeoutMs: number): Error {
  if (err instanceof VectorStoreUnavailableError || err instanceof VectorStoreRequestError) return err;
  const where = `qdrant ${op} on ${collection}`;
  if (err instanceof QdrantClientTimeoutError) {
    return new VectorStoreUnavailableError(`${where} timed out after ${timeoutMs} ms`, { cause: err });
  }
  if (err instanceof QdrantClientUnexpectedResponseError) {
    // A 2xx other than 200/201: something between us and Qdrant answered in its place.
    return new VectorStoreRequestError(`${where}: ${err.message}`, undefined, { cause: err });
  }
  if (err instanceof QdrantClientResourceExhaustedError) {
    return new VectorStoreUnavailableError(`${where}: rate limited`, { cause: err }, err.retry_after * 1000);
  }
  const status = httpStatusOf(err);
  if (status !== undefined) {
    const message = `${where} failed with HTTP ${status}: ${qdrantMessage(err)}`;
    return UNAVAILABLE_STATUSES.has(status)
      ? new VectorStoreUnavailableError(message, { cause: err })
      : new VectorStoreRequestError(message, status, { cause: err });
  }
  if (isNetworkError(err)) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return new VectorStoreUnavailableError(`${where}: qdrant unreachable${cause}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
