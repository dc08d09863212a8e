/**
 * A stand-in for a Qdrant server (DESIGN.md section 8): a loopback HTTP server
 * answering the REST calls @qdrant/js-client-rest 1.x makes, with Qdrant's
 * response envelope `{result, status: "ok", time}` and error body
 * `{status: {error}, time}`. It validates what it is sent the way the real
 * server does (vector size, point ids, filter shapes), so a wrong call fails
 * here as it would in production.
 *
 * Supported: GET /, GET /collections, GET /collections/{c}, GET /collections/{c}/exists,
 * PUT /collections/{c}, DELETE /collections/{c}, PUT /collections/{c}/index,
 * PUT /collections/{c}/points, POST /collections/{c}/points/query,
 * POST /collections/{c}/points/search, POST /collections/{c}/points/delete,
 * POST /collections/{c}/points/count. Search is exact (every point scored).
 * Features outside that set are answered with a 400 naming the feature, never
 * with a made-up result.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Distance = "Cosine" | "Dot" | "Euclid" | "Manhattan";
export type PointId = string | number;

export interface RecordedRequest {
  method: string;
  /** The path with the collection name replaced, e.g. "PUT /collections/{name}/points". */
  route: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** HTTP status answered; undefined while the request is in progress or when its connection was cut. */
  status?: number;
}

export interface StoredPoint {
  id: PointId;
  /** As Qdrant keeps it: normalised for Cosine collections. */
  vector: number[];
  payload: Record<string, unknown>;
}

export interface CollectionSnapshot {
  name: string;
  size: number;
  distance: Distance;
  hnsw: { m: number; efConstruct: number };
  onDiskPayload: boolean;
  /** Field name to the schema it was indexed with (a type name or a params object). */
  payloadIndexes: Record<string, unknown>;
  /** The body of the create-collection request, as sent. */
  createBody: unknown;
}

export interface QdrantDoubleOptions {
  /** Reported by GET /. */
  version?: string;
}

export interface QdrantDouble {
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  /** How many requests matched a route, e.g. count("PUT /collections/{name}/points"). */
  count(route: string): number;
  collection(name: string): CollectionSnapshot | undefined;
  points(collection: string): StoredPoint[];
  /** true: the port stops accepting connections and open ones are cut; false: it listens again on the same port. */
  setDown(down: boolean): Promise<void>;
  /**
   * The next `times` requests (of `route` only, when given, e.g. "GET /collections/{name}")
   * are answered with this HTTP status and Qdrant's error body, and change nothing.
   */
  failNext(status: number, options?: { times?: number; message?: string; route?: string }): void;
  /** Delay before every answer, milliseconds (0 to stop). */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

interface Collection {
  name: string;
  size: number;
  distance: Distance;
  hnsw: { m: number; efConstruct: number; fullScanThreshold: number };
  onDiskPayload: boolean;
  payloadIndexes: Map<string, unknown>;
  points: Map<string, { id: PointId; vector: number[]; payload: Record<string, unknown>; version: number }>;
  createBody: unknown;
  operationId: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const badInput = (m: string) => new HttpError(400, `Wrong input: ${m}`);
const badJson = (m: string) => new HttpError(400, `Format error in JSON body: ${m}`);
const unsupported = (what: string) => new HttpError(400, `Wrong input: ${what} is not supported by the test double`);
const notFound = (name: string) => new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);

const DISTANCES: readonly Distance[] = ["Cosine", "Dot", "Euclid", "Manhattan"];
const INDEX_TYPES = ["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"];
const HEX32 = /^[0-9a-f]{32}$/i;
const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function startQdrantDouble(options: QdrantDoubleOptions = {}): Promise<QdrantDouble> {
  const version = options.version ?? "1.18.0";
  const collections = new Map<string, Collection>();
  const requests: RecordedRequest[] = [];
  const faults: Array<{ status: number; message: string; route: string | undefined }> = [];
  let latencyMs = 0;

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    let recorded: RecordedRequest | undefined;
    const send = (status: number, body: unknown) => {
      if (res.destroyed || res.writableEnded) return;
      if (recorded) recorded.status = status;
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    const url = new URL(req.url ?? "/", "http://double");
    const method = req.method ?? "GET";
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      return;
    }
    const segments = url.pathname.split("/").filter((s) => s.length > 0).map(decodeURIComponent);
    const route =
      segments[0] === "collections" && segments.length >= 2
        ? `${method} /collections/{name}${segments.length > 2 ? `/${segments.slice(2).join("/")}` : ""}`
        : `${method} ${url.pathname}`;
    let body: unknown;
    let bodyError: string | undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch (err) {
        bodyError = (err as Error).message;
      }
    }
    recorded = {
      method,
      route,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
    };
    requests.push(recorded);
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    const faultAt = faults.findIndex((f) => f.route === undefined || f.route === route);
    if (faultAt >= 0) {
      const [fault] = faults.splice(faultAt, 1);
      return send(fault!.status, { status: { error: fault!.message }, time: elapsed() });
    }
    try {
      if (bodyError !== undefined) throw badJson(bodyError);
      if (method === "GET" && url.pathname === "/") {
        // The root answer is the one Qdrant response without the envelope.
        return send(200, { title: "qdrant - vector search engine", version, commit: "0000000000000000000000000000000000000000" });
      }
      const result = dispatch(method, segments, url.searchParams, body);
      send(200, { result, status: "ok", time: elapsed() });
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, { status: { error: err.message }, time: elapsed() });
      send(500, { status: { error: `Service internal error: ${(err as Error).message}` }, time: elapsed() });
    }
  }

  function dispatch(method: string, seg: string[], query: URLSearchParams, body: unknown): unknown {
    if (seg[0] !== "collections") throw new HttpError(404, `Not found: ${method} /${seg.join("/")}`);
    if (seg.length === 1 && method === "GET") {
      return { collections: [...collections.keys()].map((name) => ({ name })) };
    }
    const name = seg[1]!;
    const tail = seg.slice(2).join("/");
    const wait = query.get("wait") === "true";
    switch (`${method} ${tail}`) {
      case "GET ":
        return collectionInfo(get(name));
      case "GET exists":
        return { exists: collections.has(name) };
      case "PUT ":
        return createCollection(name, obj(body ?? {}, "body"));
      case "DELETE ":
        return collections.delete(name);
      case "PUT index":
        return createIndex(get(name), obj(body, "body"), wait);
      case "PUT points":
        return upsert(get(name), obj(body, "body"), wait);
      case "POST points/query":
        return { points: query_(get(name), obj(body, "body")) };
      case "POST points/search":
        return search(get(name), obj(body, "body"));
      case "POST points/delete":
        return deletePoints(get(name), obj(body, "body"), wait);
      case "POST points/count":
        return { count: countPoints(get(name), obj(body ?? {}, "body")) };
      default:
        throw new HttpError(404, `Not found: ${method} /${seg.join("/")}`);
    }
  }

  function get(name: string): Collection {
    const c = collections.get(name);
    if (!c) throw notFound(name);
    return c;
  }

  function createCollection(name: string, body: Record<string, unknown>): boolean {
    if (!/^[^/\\\0:*?"<>|]{1,255}$/.test(name)) throw badInput(`collection name \`${name}\` is not allowed`);
    const vectors = body.vectors;
    if (vectors === undefined || vectors === null) throw unsupported("a collection without an unnamed dense vector");
    const v = obj(vectors, "vectors");
    if (!("size" in v)) throw unsupported("named vectors");
    const size = v.size;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > 65536) {
      throw new HttpError(422, `Validation error in JSON body: [vectors.size: value ${String(size)} invalid, must be from 1 to 65536]`);
    }
    if (typeof v.distance !== "string" || !DISTANCES.includes(v.distance as Distance)) {
      throw badJson(`unknown variant \`${String(v.distance)}\`, expected one of \`Cosine\`, \`Euclid\`, \`Dot\`, \`Manhattan\``);
    }
    for (const k of ["sparse_vectors", "quantization_config", "init_from"]) {
      if (body[k] !== undefined && body[k] !== null) throw unsupported(k);
    }
    if (collections.has(name)) throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
    const hnsw = body.hnsw_config === undefined || body.hnsw_config === null ? {} : obj(body.hnsw_config, "hnsw_config");
    const m = hnsw.m ?? 16;
    const ef = hnsw.ef_construct ?? 100;
    if (typeof m !== "number" || !Number.isInteger(m) || m < 0) throw badJson(`invalid hnsw_config.m ${String(m)}`);
    if (typeof ef !== "number" || !Number.isInteger(ef) || ef < 4) {
      throw new HttpError(422, `Validation error in JSON body: [hnsw_config.ef_construct: value ${String(ef)} invalid, must be 4 or larger]`);
    }
    collections.set(name, {
      name,
      size,
      distance: v.distance as Distance,
      hnsw: { m, efConstruct: ef, fullScanThreshold: typeof hnsw.full_scan_threshold === "number" ? hnsw.full_scan_threshold : 10000 },
      onDiskPayload: typeof body.on_disk_payload === "boolean" ? body.on_disk_payload : true,
      payloadIndexes: new Map(),
      points: new Map(),
      createBody: structuredClone(body),
      operationId: 0,
    });
    return true;
  }

  function collectionInfo(c: Collection): unknown {
    const payloadSchema: Record<string, unknown> = {};
    for (const [field, schema] of c.payloadIndexes) {
      const type = typeof schema === "string" ? schema : (schema as { type: string }).type;
      const points = [...c.points.values()].filter((p) => valuesAt(p.payload, field).length > 0).length;
      payloadSchema[field] = typeof schema === "string" ? { data_type: type, points } : { data_type: type, params: schema, points };
    }
    return {
      status: "green",
      optimizer_status: "ok",
      indexed_vectors_count: 0,
      points_count: c.points.size,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: c.onDiskPayload,
        },
        hnsw_config: { m: c.hnsw.m, ef_construct: c.hnsw.efConstruct, full_scan_threshold: c.hnsw.fullScanThreshold, max_indexing_threads: 0, on_disk: false },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
        strict_mode_config: { enabled: false },
      },
      payload_schema: payloadSchema,
    };
  }

  function updateResult(c: Collection, wait: boolean): unknown {
    return { operation_id: c.operationId++, status: wait ? "completed" : "acknowledged" };
  }

  function createIndex(c: Collection, body: Record<string, unknown>, wait: boolean): unknown {
    const field = body.field_name;
    if (typeof field !== "string" || field.length === 0) throw badJson("missing field `field_name`");
    const schema = body.field_schema;
    if (schema === undefined || schema === null) {
      throw badInput(`Can't infer type of field \`${field}\`: no field_schema given and no existing value`);
    }
    const type = typeof schema === "string" ? schema : (obj(schema, "field_schema").type as unknown);
    if (typeof type !== "string" || !INDEX_TYPES.includes(type)) {
      throw badJson(`unknown variant \`${String(type)}\` in field_schema`);
    }
    if (typeof schema === "object" && (schema as { is_tenant?: unknown }).is_tenant === true && type !== "keyword" && type !== "uuid") {
      throw badJson(`unknown field \`is_tenant\` for a ${type} index`);
    }
    // Qdrant rebuilds an index asked for again, so a repeat or a racing node is harmless.
    c.payloadIndexes.set(field, structuredClone(schema));
    return updateResult(c, wait);
  }

  function upsert(c: Collection, body: Record<string, unknown>, wait: boolean): unknown {
    let incoming: Array<{ id: unknown; vector: unknown; payload: unknown }>;
    if (Array.isArray(body.points)) {
      incoming = body.points.map((p, i) => {
        const o = obj(p, `points[${i}]`);
        return { id: o.id, vector: o.vector, payload: o.payload };
      });
    } else if (body.batch !== undefined) {
      const b = obj(body.batch, "batch");
      if (!Array.isArray(b.ids) || !Array.isArray(b.vectors)) throw badJson("batch needs `ids` and `vectors` arrays");
      if (b.vectors.length !== b.ids.length) throw badInput(`number of ids (${b.ids.length}) and vectors (${b.vectors.length}) differ`);
      const payloads: unknown[] = Array.isArray(b.payloads) ? b.payloads : [];
      const vectors: unknown[] = b.vectors;
      incoming = b.ids.map((id, i) => ({ id, vector: vectors[i], payload: payloads[i] }));
    } else {
      throw badJson("data did not match any variant of untagged enum PointInsertOperations");
    }
    for (const k of ["shard_key", "update_filter"]) if (body[k] !== undefined && body[k] !== null) throw unsupported(k);
    // Validate all before writing any: Qdrant rejects the whole request.
    const parsed = incoming.map((p) => {
      const id = parsePointId(p.id);
      const vector = denseVector(c, p.vector);
      const payload = p.payload === undefined || p.payload === null ? {} : structuredClone(obj(p.payload, "payload"));
      return { id, vector, payload };
    });
    for (const p of parsed) {
      c.points.set(pointKey(p.id), { ...p, vector: stored(c, p.vector), version: c.operationId });
    }
    return updateResult(c, wait);
  }

  function denseVector(c: Collection, v: unknown): number[] {
    if (!Array.isArray(v)) {
      if (typeof v === "object" && v !== null) throw badInput(`Not existing vector name error: ${Object.keys(v).join(", ")}`);
      throw badJson("data did not match any variant of untagged enum VectorStruct");
    }
    if (!v.every((x): x is number => typeof x === "number" && Number.isFinite(x))) {
      throw badJson("data did not match any variant of untagged enum VectorStruct");
    }
    if (v.length !== c.size) throw badInput(`Vector dimension error: expected dim: ${c.size}, got ${v.length}`);
    return v;
  }

  function scoredPoints(c: Collection, req: {
    vector: number[];
    filter: unknown;
    limit: number;
    offset: number;
    withPayload: unknown;
    withVector: unknown;
    scoreThreshold: unknown;
  }): unknown[] {
    const q = stored(c, req.vector);
    const smallerIsBetter = c.distance === "Euclid" || c.distance === "Manhattan";
    const threshold = req.scoreThreshold;
    if (threshold !== undefined && threshold !== null && typeof threshold !== "number") throw badJson("score_threshold must be a number");
    const hits = [...c.points.values()]
      .filter((p) => matchesFilter(req.filter, p))
      .map((p) => ({ p, score: score(c.distance, q, p.vector) }))
      .filter(({ score }) => typeof threshold !== "number" || (smallerIsBetter ? score <= threshold : score >= threshold))
      .sort((a, b) => (smallerIsBetter ? a.score - b.score : b.score - a.score) || compareIds(a.p.id, b.p.id));
    return hits.slice(req.offset, req.offset + req.limit).map(({ p, score }) => {
      const out: Record<string, unknown> = { id: p.id, version: p.version, score };
      const payload = selectPayload(p.payload, req.withPayload);
      if (payload !== undefined) out.payload = payload;
      if (req.withVector === true) out.vector = p.vector;
      else if (req.withVector !== undefined && req.withVector !== null && req.withVector !== false) throw unsupported("named with_vector");
      return out;
    });
  }

  function query_(c: Collection, body: Record<string, unknown>): unknown[] {
    for (const k of ["prefetch", "lookup_from", "shard_key"]) if (body[k] !== undefined && body[k] !== null) throw unsupported(k);
    if (body.using !== undefined && body.using !== null) throw badInput(`Not existing vector name error: ${String(body.using)}`);
    let q = body.query;
    if (typeof q === "object" && q !== null && !Array.isArray(q)) {
      const o = q as Record<string, unknown>;
      if (!("nearest" in o)) throw unsupported(`query kind ${Object.keys(o).join(", ")}`);
      q = o.nearest;
    }
    if (q === undefined || q === null) throw unsupported("a query without a vector (scroll order)");
    if (!Array.isArray(q)) throw unsupported("query by point id");
    return scoredPointsFor(c, q, body);
  }

  function search(c: Collection, body: Record<string, unknown>): unknown[] {
    if (body.limit === undefined) throw badJson("missing field `limit`");
    return scoredPointsFor(c, body.vector, body);
  }

  /** /points/query and /points/search read the same fields beside the vector. */
  function scoredPointsFor(c: Collection, vector: unknown, body: Record<string, unknown>): unknown[] {
    return scoredPoints(c, {
      vector: denseVector(c, vector),
      filter: body.filter,
      limit: positiveLimit(body.limit, 10),
      offset: nonNegative(body.offset, "offset"),
      withPayload: body.with_payload ?? false,
      withVector: body.with_vector,
      scoreThreshold: body.score_threshold,
    });
  }

  function deletePoints(c: Collection, body: Record<string, unknown>, wait: boolean): unknown {
    if (Array.isArray(body.points)) {
      for (const id of body.points.map(parsePointId)) c.points.delete(pointKey(id));
    } else if (body.filter !== undefined && body.filter !== null) {
      const doomed = [...c.points.entries()].filter(([, p]) => matchesFilter(body.filter, p)).map(([k]) => k);
      for (const k of doomed) c.points.delete(k);
    } else {
      throw badJson("data did not match any variant of untagged enum PointsSelector");
    }
    return updateResult(c, wait);
  }

  function countPoints(c: Collection, body: Record<string, unknown>): number {
    return [...c.points.values()].filter((p) => matchesFilter(body.filter, p)).length;
  }

  const double: QdrantDouble = {
    url: "",
    requests,
    count: (r) => requests.filter((q) => q.route === r).length,
    collection(name) {
      const c = collections.get(name);
      if (!c) return undefined;
      return {
        name: c.name,
        size: c.size,
        distance: c.distance,
        hnsw: { m: c.hnsw.m, efConstruct: c.hnsw.efConstruct },
        onDiskPayload: c.onDiskPayload,
        payloadIndexes: Object.fromEntries([...c.payloadIndexes].map(([k, v]) => [k, structuredClone(v)])),
        createBody: structuredClone(c.createBody),
      };
    },
    points(name) {
      const c = collections.get(name);
      if (!c) return [];
      return [...c.points.values()].map((p) => ({ id: p.id, vector: [...p.vector], payload: structuredClone(p.payload) }));
    },
    async setDown(down) {
      if (down && server.listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      } else if (!down && !server.listening) {
        await listen(port);
      }
    },
    failNext(status, { times = 1, message, route } = {}) {
      for (let i = 0; i < times; i++) faults.push({ status, message: message ?? `Service unavailable (injected ${status})`, route });
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };

  function listen(p: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  (double as { url: string }).url = `http://127.0.0.1:${port}`;
  return double;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badJson(`${what}: expected a JSON object`);
  return v as Record<string, unknown>;
}

function positiveLimit(v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw badJson(`invalid value: ${String(v)}, expected usize (limit)`);
  if (v < 1) throw new HttpError(422, `Validation error in JSON body: [limit: value ${v} invalid, must be 1 or larger]`);
  return v;
}

function nonNegative(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw badJson(`invalid value: ${String(v)}, expected usize (${what})`);
  return v;
}

/** Qdrant takes an unsigned integer or a UUID in any of its spellings, and answers with the hyphenated lower-case form. */
function parsePointId(v: unknown): PointId {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string") {
    let s = v.toLowerCase();
    if (s.startsWith("urn:uuid:")) s = s.slice(9);
    if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
    if (HEX32.test(s)) s = `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
    if (HYPHENATED.test(s)) return s;
  }
  throw badJson(`value ${typeof v === "string" ? v : JSON.stringify(v)} is not a valid point ID, valid values are either an unsigned integer or a UUID`);
}

const pointKey = (id: PointId) => (typeof id === "number" ? `n:${id}` : `u:${id}`);

function compareIds(a: PointId, b: PointId): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Cosine collections keep unit vectors, as Qdrant does; a zero vector stays zero. */
function stored(c: Collection, v: number[]): number[] {
  const f = v.map((x) => Math.fround(x));
  if (c.distance !== "Cosine") return f;
  const norm = Math.sqrt(f.reduce((s, x) => s + x * x, 0));
  return norm < Number.EPSILON ? f : f.map((x) => Math.fround(x / norm));
}

function score(distance: Distance, a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (distance === "Euclid") s += (x - y) ** 2;
    else if (distance === "Manhattan") s += Math.abs(x - y);
    else s += x * y;
  }
  return distance === "Euclid" ? Math.sqrt(s) : s;
}

function selectPayload(payload: Record<string, unknown>, selector: unknown): Record<string, unknown> | undefined {
  if (selector === false) return undefined;
  if (selector === true) return structuredClone(payload);
  const pick = (keys: unknown[], keep: boolean) => {
    if (!keys.every((k): k is string => typeof k === "string")) throw badJson("with_payload keys must be strings");
    return Object.fromEntries(Object.entries(payload).filter(([k]) => keys.includes(k) === keep).map(([k, v]) => [k, structuredClone(v)]));
  };
  if (Array.isArray(selector)) return pick(selector, true);
  const o = obj(selector, "with_payload");
  if (Array.isArray(o.include)) return pick(o.include, true);
  if (Array.isArray(o.exclude)) return pick(o.exclude, false);
  throw badJson("data did not match any variant of untagged enum WithPayloadInterface");
}

/** Every value under a dotted key, arrays flattened, as Qdrant's filters see them. */
function valuesAt(payload: Record<string, unknown>, key: string): unknown[] {
  let current: unknown[] = [payload];
  for (const part of key.split(".")) {
    const next: unknown[] = [];
    for (const v of current) {
      if (typeof v === "object" && v !== null && !Array.isArray(v) && part in v) {
        const child = (v as Record<string, unknown>)[part];
        if (Array.isArray(child)) next.push(...child);
        else next.push(child);
      }
    }
    current = next;
  }
  return current;
}

function conditions(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function matchesFilter(filter: unknown, point: { id: PointId; payload: Record<string, unknown> }): boolean {
  if (filter === undefined || filter === null) return true;
  const f = obj(filter, "filter");
  for (const k of Object.keys(f)) {
    if (k === "min_should") throw unsupported("min_should");
    if (!["must", "should", "must_not"].includes(k)) throw badJson(`unknown field \`${k}\` in filter`);
  }
  const must = conditions(f.must);
  const should = conditions(f.should);
  const mustNot = conditions(f.must_not);
  return (
    must.every((c) => matchesCondition(c, point)) &&
    (should.length === 0 || should.some((c) => matchesCondition(c, point))) &&
    !mustNot.some((c) => matchesCondition(c, point))
  );
}

function matchesCondition(condition: unknown, point: { id: PointId; payload: Record<string, unknown> }): boolean {
  const c = obj(condition, "condition");
  if ("must" in c || "should" in c || "must_not" in c) return matchesFilter(c, point);
  if ("has_id" in c) {
    if (!Array.isArray(c.has_id)) throw badJson("has_id must be an array");
    const key = pointKey(point.id);
    return c.has_id.some((id) => pointKey(parsePointId(id)) === key);
  }
  if ("is_empty" in c) {
    const { key } = obj(c.is_empty, "is_empty");
    if (typeof key !== "string") throw badJson("is_empty needs a key");
    return valuesAt(point.payload, key).filter((v) => v !== null).length === 0;
  }
  if ("is_null" in c) {
    const { key } = obj(c.is_null, "is_null");
    if (typeof key !== "string") throw badJson("is_null needs a key");
    const direct = key.split(".").reduce<unknown>((v, part) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[part] : undefined), point.payload);
    return direct === null;
  }
  if ("nested" in c || "has_vector" in c) throw unsupported(Object.keys(c)[0]!);
  if (typeof c.key !== "string") throw badJson("data did not match any variant of untagged enum Condition");
  const extra = Object.keys(c).filter((k) => k !== "key" && k !== "match" && k !== "range" && c[k] !== null && c[k] !== undefined);
  if (extra.length > 0) throw unsupported(`field condition ${extra.join(", ")}`);
  const values = valuesAt(point.payload, c.key);
  let ok = true;
  if (c.match !== undefined && c.match !== null) {
    const m = obj(c.match, "match");
    if ("value" in m) {
      if (!isMatchValue(m.value)) throw badJson("match value must be a string, integer or bool");
      ok &&= values.some((v) => v === m.value);
    } else if ("any" in m) {
      if (!Array.isArray(m.any) || !m.any.every(isMatchValue)) throw badJson("match any must be an array of strings or integers");
      const any = m.any;
      ok &&= values.some((v) => any.some((a) => a === v));
    } else {
      throw unsupported(`match ${Object.keys(m).join(", ")}`);
    }
  }
  if (c.range !== undefined && c.range !== null) {
    const r = obj(c.range, "range");
    for (const k of Object.keys(r)) {
      if (!["gt", "gte", "lt", "lte"].includes(k)) throw badJson(`unknown field \`${k}\` in range`);
      if (r[k] !== null && typeof r[k] !== "number") throw unsupported("datetime range");
    }
    const inRange = (v: unknown) =>
      typeof v === "number" &&
      (typeof r.gt !== "number" || v > r.gt) &&
      (typeof r.gte !== "number" || v >= r.gte) &&
      (typeof r.lt !== "number" || v < r.lt) &&
      (typeof r.lte !== "number" || v <= r.lte);
    ok &&= values.some(inRange);
  }
  return ok;
}

function isMatchValue(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v));
}
