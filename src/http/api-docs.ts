/**
 * GET /api/openapi.json and /api/asyncapi.json: the REST and socket protocol
 * descriptions, public like the protocol they describe. Each document is
 * generated once, at its first request (by then every route is registered),
 * and served from memory after.
 */
import type { Logger } from "pino";
import { z } from "zod";
import type { ProtocolSchemas } from "../protocol/schemas.js";
import { buildAsyncApiDocument } from "../realtime/asyncapi.js";
import { buildOpenApiDocument } from "./openapi.js";
import type { RouteDoc } from "./route-doc.js";
import type { Router } from "./router.js";

const documentDoc = (summary: string): RouteDoc => ({
  summary,
  tag: "api description",
  auth: false,
  responses: { 200: { description: "the document", body: z.record(z.unknown()) } },
  errors: [],
});

export function registerApiDocs(router: Router, schemas: ProtocolSchemas, log: Logger): void {
  let openApi: string | undefined;
  let asyncApi: string | undefined;
  router
    .add(
      "GET",
      "/api/openapi.json",
      () => {
        if (openApi === undefined) {
          const { document, undocumented } = buildOpenApiDocument(router.list());
          if (undocumented.length) log.warn({ undocumented }, "routes without a RouteDoc are missing from /api/openapi.json");
          openApi = JSON.stringify(document);
        }
        return { body: openApi, contentType: "application/json; charset=utf-8" };
      },
      documentDoc("This document: the OpenAPI 3.1 description of every REST route"),
    )
    .add(
      "GET",
      "/api/asyncapi.json",
      () => {
        asyncApi ??= JSON.stringify(buildAsyncApiDocument(schemas));
        return { body: asyncApi, contentType: "application/json; charset=utf-8" };
      },
      documentDoc("The AsyncAPI 3.0 description of the socket protocol (namespace /chat)"),
    );
}
