/**
 * A small router over node:http: exact segments and `:params`, JSON bodies
 * with a size cap, errors as `{error: {code, message}}`.
 */
import type http from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { ZodTypeAny, z } from "zod";
import { describeZodError, toErrorBody } from "../error-body.js";
import { AppError, HTTP_STATUS } from "../protocol/errors.js";
import type { Metrics } from "./metrics.js";

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
  /** A body produced piece by piece (a large download); sent instead of `body`. */
  stream?: AsyncIterable<string>;
}

type RouteHandler = (ctx: RequestContext) => Promise<Reply> | Reply;

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: RouteHandler;
}

export class Router {
  private readonly routes: Route[] = [];
  private nextRequestId = 0;

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly maxBodyBytes: number,
  ) {}

  add(method: string, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method, pattern, segments: pattern.split("/").filter(Boolean), handler });
    return this;
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
    let reply: Reply;
    if (!match) {
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
      try {
        reply = await match.route.handler(ctx);
      } catch (err) {
        reply = errorReply(err, log);
      }
    }
    const status = reply.status ?? 200;
    this.metrics.httpRequests.inc({ route: match?.route.pattern ?? "unmatched", status: String(status) });
    if (status >= 500) log.warn({ status }, "request failed");
    else log.debug({ status }, "request");
    send(res, status, reply);
  };
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

function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const type = req.headers["content-type"] ?? "";
    if (!type.includes("application/json")) {
      req.resume();
      return reject(new AppError("BAD_REQUEST", "expected Content-Type: application/json"));
    }
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new AppError("BAD_REQUEST", `body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
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
    ...reply.headers,
  });
  res.end(payload);
}
