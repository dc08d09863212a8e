/**
 * What a route tells the OpenAPI document about itself. It is passed to
 * `router.add` with the handler, so a route and its description are one
 * entry of the route table; the schemas are the same zod schemas the
 * handler parses with (src/protocol/schemas.ts) and the shapes it answers
 * with (src/protocol/output-schemas.ts).
 */
import type { AnyZodObject, ZodTypeAny } from "zod";
import type { ErrorCode } from "../protocol/errors.js";

export interface RouteResponseDoc {
  description: string;
  /** JSON body schema; omit for an empty body (204) or a body described by contentType alone. */
  body?: ZodTypeAny;
  /** Defaults to application/json. */
  contentType?: string;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Groups operations in the document (auth, sessions, memory, operations, ...). */
  tag: string;
  /** True when the route wants `Authorization: Bearer <token>`. */
  auth: boolean;
  /** Path parameters, one key per `:name` of the pattern. */
  params?: AnyZodObject;
  query?: AnyZodObject;
  /** Request body (JSON unless bodyContentType says otherwise). */
  body?: ZodTypeAny;
  /** Media type of the request body; defaults to application/json. */
  bodyContentType?: string;
  /** Successful responses by HTTP status. */
  responses: Record<number, RouteResponseDoc>;
  /** Error codes the route answers with besides INTERNAL, which any route may (body: ErrorEnvelope). */
  errors: ErrorCode[];
}
