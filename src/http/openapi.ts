/**
 * The OpenAPI 3.1 document of the REST routes, generated from the router's
 * own table: each route's RouteDoc and the zod schemas in it. A route added
 * without a RouteDoc is left out and reported (test/unit/api-docs.test.ts
 * fails on it), so the document cannot silently drift from the routes.
 */
import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
  type RouteConfig,
} from "@asteasolutions/zod-to-openapi";
import { type ErrorCode, HTTP_STATUS } from "../protocol/errors.js";
import { errorEnvelope } from "../protocol/output-schemas.js";
import type { RouteDoc } from "./route-doc.js";
import type { RouteEntry } from "./router.js";

/** The protocol's version: fields are added, never renamed (src/protocol/types.ts). */
export const API_VERSION = "1";

const METHODS = ["get", "post", "put", "delete", "patch", "head", "options", "trace"] as const;
type Method = (typeof METHODS)[number];

export interface GeneratedDocument {
  document: Record<string, unknown>;
  /** `METHOD pattern` of each route that has no RouteDoc, so is missing from the document. */
  undocumented: string[];
}

/** `/api/sessions/:id` → `/api/sessions/{id}` */
export const openApiPath = (pattern: string): string => pattern.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

export function buildOpenApiDocument(routes: RouteEntry[]): GeneratedDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "The token from POST /api/auth/register or /api/auth/login.",
  });
  registry.register("ErrorEnvelope", errorEnvelope);
  const undocumented: string[] = [];
  for (const route of routes) {
    const method = route.method.toLowerCase() as Method;
    if (!route.doc || !METHODS.includes(method)) {
      undocumented.push(`${route.method} ${route.pattern}`);
      continue;
    }
    registry.registerPath(operation(method, route.pattern, route.doc));
  }
  const document = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: {
      title: "memchat REST API",
      version: API_VERSION,
      description:
        "Accounts, sessions, history and memory search over HTTP, plus health, readiness and metrics. " +
        "The real-time protocol (Socket.IO namespace /chat) is described by /api/asyncapi.json. " +
        "Every error is `{error: {code, message, retryAfterMs?}}` with the code's HTTP status.",
    },
    tags: [...new Set(routes.flatMap((r) => (r.doc ? [r.doc.tag] : [])))].map((name) => ({ name })),
  });
  dropNullFromParameters((document.paths ?? {}) as Record<string, object>);
  return { document: document as unknown as Record<string, unknown>, undocumented };
}

/**
 * A URL carries no null, but a coerced zod number accepts null (as 0), so the
 * generator calls such a query parameter nullable; say what the URL can hold.
 */
function dropNullFromParameters(paths: Record<string, object>): void {
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      for (const p of (op as { parameters?: { schema?: { type?: unknown } }[] }).parameters ?? []) {
        const t = p.schema?.type;
        if (Array.isArray(t) && t.includes("null")) {
          const rest = t.filter((x) => x !== "null");
          p.schema!.type = rest.length === 1 ? rest[0] : rest;
        }
      }
    }
  }
}

function operation(method: Method, pattern: string, doc: RouteDoc): RouteConfig {
  const responses: Record<string, ResponseConfig> = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    const type = r.contentType ?? "application/json";
    const content = r.body ? { [type]: { schema: r.body } } : r.contentType ? { [type]: { schema: { type: "string" as const } } } : undefined;
    responses[status] = content ? { description: r.description, content } : { description: r.description };
  }
  for (const [status, codes] of errorsByStatus([...doc.errors, "INTERNAL"])) {
    if (responses[status]) continue;
    responses[status] = {
      description: `error: ${codes.join(" or ")}`,
      content: { "application/json": { schema: errorEnvelope } },
      ...(codes.includes("RATE_LIMITED")
        ? { headers: { "Retry-After": { description: "seconds until a retry may pass", schema: { type: "integer" } } } }
        : {}),
    };
  }
  return {
    method,
    path: openApiPath(pattern),
    operationId: operationId(method, pattern),
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: [doc.tag],
    ...(doc.auth ? { security: [{ bearer: [] }] } : {}),
    request: {
      ...(doc.params ? { params: doc.params } : {}),
      ...(doc.query ? { query: doc.query } : {}),
      ...(doc.body ? { body: { required: true, content: { [doc.bodyContentType ?? "application/json"]: { schema: doc.body } } } } : {}),
    },
    responses,
  };
}

function errorsByStatus(codes: ErrorCode[]): Map<string, ErrorCode[]> {
  const byStatus = new Map<string, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = String(HTTP_STATUS[code]);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a.localeCompare(b)));
}

/** `get /api/sessions/:id/messages` → `getApiSessionsIdMessages` */
function operationId(method: Method, pattern: string): string {
  const words = pattern.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("") || method;
}
