/**
 * A small router over node:http: exact segments and `:params`, JSON bodies
 * with a size cap and an exact media type, CORS per CORS_ORIGIN, errors as
 * `{error: {code, message}}`.
 */
import type http from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { ZodTypeAny, z } from "zod";
import { describeZodError, toErrorBody } from "../error-body.js";
import { AppError, HTTP_STATUS } from "../protocol/errors.js";
import type { Metrics } from "./metrics.js";
import type { RouteDoc } from "./route-doc.js";

export interface RequestContext {
  req: http.IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  log: Logger;
  /** Parses the JSON body with the schema; BAD_REQUEST when it does not fit. */
  body<S extends ZodTypeAny>(schema: S): Promise<z.infer<S>>;
}

export interface Reply {
  status?: number;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** A body produced piece by piece (a large download, a file); sent instead of `body`. */
  stream?: AsyncIterable<string | Uint8Array>;
}

type RouteHandler = (ctx: RequestContext) => Promise<Reply> | Reply;

export interface RouterOptions {
  /** Origins a browser may call the API from (CORS_ORIGIN): "*" or a list. Unset: same origin only. */
  corsOrigin?: string | string[];
}

/** Runs before every request, preflights included; throws (RATE_LIMITED) to refuse it. */
export type RequestGuard = (req: http.IncomingMessage) => Promise<void>;

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: RouteHandler;
  doc?: RouteDoc;
}

type DocumentedBody<D extends RouteDoc> = z.infer<Extract<D["responses"][keyof D["responses"]], { body: ZodTypeAny }>["body"]>;
/**
 * What a handler may return under its doc: a JSON body must be one the doc's
 * response schemas describe (any body when the doc describes none).
 */
type DocumentedReply<D extends RouteDoc> = Omit<Reply, "body"> & {
  body?: [DocumentedBody<D>] extends [never] ? unknown : DocumentedBody<D>;
};

/** A route as the API documents see it. */
export interface RouteEntry {
  method: string;
  pattern: string;
  doc?: RouteDoc;
}

export class Router {
  private readonly routes: Route[] = [];
  private nextRequestId = 0;
  private guard: RequestGuard | undefined;

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly maxBodyBytes: number,
    private readonly opts: RouterOptions = {},
  ) {}

  guardEachRequest(guard: RequestGuard): this {
    this.guard = guard;
    return this;
  }

  /**
   * `doc` describes the route in /api/openapi.json; a test fails for any route
   * without one, and the type check fails when the handler returns a JSON
   * body that the doc does not describe.
   */
  add<D extends RouteDoc>(
    method: string,
    pattern: string,
    handler: (ctx: RequestContext) => Promise<DocumentedReply<D>> | DocumentedReply<D>,
    doc?: D,
  ): this {
    this.routes.push({ method, pattern, segments: pattern.split("/").filter(Boolean), handler, doc });
    return this;
  }

  /** Every route in the order added. */
  list(): RouteEntry[] {
    return this.routes.map(({ method, pattern, doc }) => ({ method, pattern, doc }));
  }

  /** Socket.IO answers its own path (/socket.io/) before this runs; everything else lands here. */
  handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const parts = url.pathname.split("/").filter(Boolean);
    let match: { route: Route; params: Record<string, string> } | undefined;
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method === req.method) {
        match = { route, params };
        break;
      }
    }
    const reqId = `r${(++this.nextRequestId).toString(36)}`;
    const log = this.log.child({ reqId, method: req.method, path: url.pathname });
    const cors = corsHeaders(req, this.opts.corsOrigin);
    let reply: Reply;
    try {
      await this.guard?.(req);
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
        // A preflight: allowed origins get the methods and headers the API uses; others get no CORS headers.
        reply = { status: 204, headers: cors["access-control-allow-origin"] ? { ...cors, ...PREFLIGHT_HEADERS } : cors };
      } else if (!match) {
        reply = pathMatched
          ? errorReply(new AppError("BAD_REQUEST", `method ${req.method} not allowed`), log, 405)
          : errorReply(new AppError("NOT_FOUND", "no such route"), log);
      } else {
        const ctx: RequestContext = {
          req,
          params: match.params,
          query: url.searchParams,
          log,
          body: (schema) => readJson(req, this.maxBodyBytes).then((raw) => parseWith(schema, raw)),
        };
        reply = await match.route.handler(ctx);
      }
    } catch (err) {
      reply = errorReply(err, log);
    }
    const status = reply.status ?? 200;
    this.metrics.httpRequests.inc({ route: match?.route.pattern ?? "unmatched", status: String(status) });
    if (status >= 500) log.warn({ status }, "request failed");
    else log.debug({ status }, "request");
    send(res, status, { ...reply, headers: { ...cors, ...reply.headers } });
  };
}

const PREFLIGHT_HEADERS = {
  "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": "600",
};

/** Like socket.io's cors option: "*" for any origin, or the request's origin echoed when listed. */
function corsHeaders(req: http.IncomingMessage, allowed: string | string[] | undefined): Record<string, string> {
  const origin = req.headers.origin;
  if (allowed === undefined || origin === undefined) return {};
  // retry-after: a cross-origin client reads when to try again after a 429.
  if (allowed === "*") return { "access-control-allow-origin": "*", "access-control-expose-headers": "retry-after" };
  const list = typeof allowed === "string" ? [allowed] : allowed;
  return list.includes(origin)
    ? { "access-control-allow-origin": origin, "access-control-expose-headers": "retry-after", vary: "Origin" }
    : { vary: "Origin" };
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    let part: string;
    try {
      part = decodeURIComponent(parts[i]!);
    } catch {
      return null;
    }
    if (p.startsWith(":")) params[p.slice(1)] = part;
    else if (p !== part) return null;
  }
  return params;
}

export function parseWith<S extends ZodTypeAny>(schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new AppError("BAD_REQUEST", describeZodError(r.error));
  return r.data;
}

function errorReply(err: unknown, log: Logger, statusOverride?: number): Reply {
  const error = toErrorBody(err, log);
  const headers: Record<string, string> = {};
  if (error.retryAfterMs !== undefined) headers["retry-after"] = String(Math.ceil(error.retryAfterMs / 1000));
  return { status: statusOverride ?? HTTP_STATUS[error.code], body: { error }, headers };
}

/**
 * True for `application/json`, optionally with `charset=utf-8`, and nothing
 * else: a text/plain or form body is what a web page can post to another
 * origin without a CORS preflight.
 */
export function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(";");
  if (type!.trim().toLowerCase() !== "application/json") return false;
  return params.every((p) => {
    if (p.trim() === "") return true;
    const eq = p.indexOf("=");
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== "charset") return false;
    const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    return value.toLowerCase() === "utf-8";
  });
}

function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new AppError("PAYLOAD_TOO_LARGE", `body larger than ${limit} bytes`);
    if (!isJsonMediaType(req.headers["content-type"])) {
      req.resume();
      return reject(new AppError("UNSUPPORTED_MEDIA_TYPE", "expected Content-Type: application/json (charset utf-8 if any)"));
    }
    // The rest of an oversize body is read and dropped (the reply closes the connection):
    // destroying the request would drop the connection before the 413 is sent.
    if (Number(req.headers["content-length"]) > limit) {
      req.resume();
      return reject(tooLarge());
    }
    let size = 0;
    let over = false;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      if (over) return;
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new AppError("BAD_REQUEST", "body is not valid JSON"));
      }
    });
  });
}

function send(res: http.ServerResponse, status: number, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  if (reply.stream) {
    res.writeHead(status, { "content-type": reply.contentType ?? "application/json; charset=utf-8", "cache-control": "no-store", ...reply.headers });
    // With backpressure; a failure midway aborts the response, so a client never takes a cut-off body for a whole one.
    pipeline(Readable.from(reply.stream), res).catch(() => res.destroy());
    return;
  }
  const isJson = reply.contentType === undefined;
  const payload = reply.body === undefined ? "" : Buffer.isBuffer(reply.body) ? reply.body : isJson ? JSON.stringify(reply.body) : String(reply.body);
  res.writeHead(status, {
    "content-type": reply.contentType ?? "application/json; charset=utf-8",
    "cache-control": "no-store",
    // After a 413 the rest of the body may still be arriving: the connection cannot carry another request.
    ...(status === 413 ? { connection: "close" } : {}),
    ...reply.headers,
  });
  res.end(payload);
}
