/**
 * The API descriptions: generated from the route table and the protocol
 * schemas, complete both ways (every route is described, every description
 * has a route), valid against the OpenAPI 3.1 and AsyncAPI 3.0 schemas, and
 * served by a real HTTP server over the real router.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimits } from "../../src/chat/rate-limits.js";
import { loadConfig } from "../../src/config.js";
import { registerApiDocs } from "../../src/http/api-docs.js";
import { Metrics } from "../../src/http/metrics.js";
import { buildOpenApiDocument, openApiPath } from "../../src/http/openapi.js";
import { Router } from "../../src/http/router.js";
import { registerRoutes, type RouteDeps } from "../../src/http/routes.js";
import { registerStaticFiles } from "../../src/http/static-files.js";
import { protocolSchemas } from "../../src/protocol/schemas.js";
import { buildAsyncApiDocument, CLIENT_EVENTS, SERVER_EVENTS } from "../../src/realtime/asyncapi.js";
import { LocalRateLimiter } from "../../src/realtime/local-rate-limiter.js";
import { KNOWN_EVENTS } from "../../src/realtime/socket-server.js";
import { silentLogger } from "../support/logger.js";

const config = loadConfig({});
const schemas = protocolSchemas(config.limits);

/** Registration only stores handlers; these services are never reached by the requests below (they stop at auth). */
function unreachable(name: string): never {
  return new Proxy({}, {
    get(_t, prop) {
      throw new Error(`${name}.${String(prop)} was used, but this test only sends requests that stop before ${name}`);
    },
  }) as never;
}

function buildRouter(): Router {
  const router = new Router(silentLogger, new Metrics(), config.limits.maxPayloadBytes);
  const deps: RouteDeps = {
    auth: unreachable("auth"),
    chat: unreachable("chat"),
    memory: unreachable("memory"),
    account: unreachable("account"),
    sessionList: unreachable("sessionList"),
    lifecycle: unreachable("lifecycle"),
    configurations: unreachable("configurations"),
    schemas,
    metrics: new Metrics(),
    readiness: [],
    rateLimits: new RateLimits(new LocalRateLimiter(), config.rateLimits, silentLogger),
    trustProxy: false,
    isDraining: () => false,
    analytics: unreachable("analytics"),
    quota: unreachable("quota"),
  };
  registerRoutes(router, deps);
  registerStaticFiles(router);
  registerApiDocs(router, schemas, silentLogger);
  return router;
}

type Operations = Record<string, Record<string, { security?: unknown[]; parameters?: { name: string; in: string }[] }>>;
const HTTP_METHODS = new Set(["get", "post", "put", "delete", "patch", "head", "options", "trace"]);

function documentedOperations(doc: Record<string, unknown>): string[] {
  return Object.entries(doc.paths as Operations).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => HTTP_METHODS.has(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

let server: http.Server;
let base: string;
let router: Router;

beforeAll(async () => {
  router = buildRouter();
  server = http.createServer(router.handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe("OpenAPI document", () => {
  it("describes every route the router knows, and nothing else", () => {
    const { document, undocumented } = buildOpenApiDocument(router.list());
    expect(
      undocumented,
      "these routes have no description: pass a RouteDoc (src/http/route-doc.ts) as the 4th argument of router.add, " +
        "with the zod schemas the handler parses with (src/protocol/schemas.ts) and answers with (src/protocol/output-schemas.ts)",
    ).toEqual([]);
    const routes = router.list().map((r) => `${r.method} ${openApiPath(r.pattern)}`);
    expect(new Set(documentedOperations(document))).toEqual(new Set(routes));
    expect(documentedOperations(document)).toHaveLength(routes.length);
    for (const path of ["/api/auth/login", "/api/sessions/{id}/messages", "/api/openapi.json", "/api/asyncapi.json", "/healthz"]) {
      expect(Object.keys(document.paths as object)).toContain(path);
    }
  });

  it("reports a route added without a description", () => {
    const r = buildRouter();
    r.add("GET", "/api/undocumented/:id", () => ({ body: {} }));
    const { document, undocumented } = buildOpenApiDocument(r.list());
    expect(undocumented).toEqual(["GET /api/undocumented/:id"]);
    expect(Object.keys(document.paths as object)).not.toContain("/api/undocumented/{id}");
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const { document } = buildOpenApiDocument(router.list());
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    // The validator does refuse a broken document: a parameter in the body, as OpenAPI 2 had them.
    const broken = structuredClone(document) as { paths: Record<string, Record<string, { parameters?: { in: string }[] }>> };
    broken.paths["/api/sessions/{id}/messages"]!.get!.parameters![0]!.in = "body";
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("carries the schemas the handlers parse with, and the protected routes name the bearer scheme", () => {
    const { document } = buildOpenApiDocument(router.list());
    const paths = document.paths as Record<string, Record<string, Record<string, unknown>>>;
    const history = paths["/api/sessions/{id}/messages"]!.get!;
    const limit = (history.parameters as { name: string; schema: { maximum?: number } }[]).find((p) => p.name === "limit");
    expect(limit?.schema.maximum).toBe(config.limits.historyPageMax);
    expect(history.security).toEqual([{ bearer: [] }]);
    expect(paths["/api/auth/login"]!.post!.security).toBeUndefined();
    const login = paths["/api/auth/login"]!.post! as { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown>; additionalProperties?: boolean } }> } };
    const body = login.requestBody.content["application/json"]!.schema;
    expect(Object.keys(body.properties).sort()).toEqual(["password", "username"]);
    expect(body.additionalProperties).toBe(false);
    const responses = paths["/api/auth/register"]!.post!.responses as Record<string, { content?: Record<string, { schema: unknown }> }>;
    expect(Object.keys(responses).sort()).toEqual(["201", "400", "409", "429", "500", "503"]);
    expect(responses["409"]!.content!["application/json"]!.schema).toEqual({ $ref: "#/components/schemas/ErrorEnvelope" });
  });

  it("is served at /api/openapi.json without auth, and every described operation reaches a route", async () => {
    const res = await fetch(`${base}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const served = (await res.json()) as Record<string, unknown>;
    expect(served).toEqual(buildOpenApiDocument(router.list()).document);
    const uuid = "6f1f5c9e-54a8-4c55-9a39-5a4a0a7b8d11";
    for (const op of documentedOperations(served)) {
      const [method, path] = op.split(" ") as [string, string];
      const url = base + path.replace(/\{[^}]+\}/g, path.startsWith("/assets/") ? "absent.js" : uuid);
      const r = await fetch(url, { method });
      const text = method === "HEAD" ? "" : await r.text();
      // The router answers 404 "no such route" or 405 when no route matches; anything else reached the handler.
      expect(r.status, `${op} answered ${r.status} ${text}`).not.toBe(405);
      expect(text, op).not.toContain("no such route");
      const operation = (served.paths as Operations)[path]![method.toLowerCase()]!;
      if (operation.security) expect(r.status, `${op} must want a bearer token`).toBe(401);
    }
  });
});

describe("AsyncAPI document", () => {
  const doc = buildAsyncApiDocument(schemas) as {
    channels: { chat: { messages: Record<string, { name: string; payload: { $ref: string } }> } };
    operations: Record<string, { action: string; messages: { $ref: string }[]; reply?: { messages: { $ref: string }[] } }>;
    components: { schemas: Record<string, Record<string, unknown>> };
  };
  const messageOf = (r: { $ref: string }) => doc.channels.chat.messages[r.$ref.split("/").at(-1)!]!;
  const eventsOf = (action: string) =>
    Object.values(doc.operations)
      .filter((o) => o.action === action)
      .map((o) => messageOf(o.messages[0]!).name);

  it("describes every event the server handles and sends, and nothing else", () => {
    expect(new Set(CLIENT_EVENTS), "ackDataSchemas (src/protocol/output-schemas.ts) and KNOWN_EVENTS (socket-server.ts) disagree").toEqual(KNOWN_EVENTS);
    expect(new Set(eventsOf("receive"))).toEqual(KNOWN_EVENTS);
    expect(eventsOf("receive")).toHaveLength(KNOWN_EVENTS.size);
    expect(eventsOf("send").sort()).toEqual([...SERVER_EVENTS].sort());
    expect(SERVER_EVENTS).toEqual(expect.arrayContaining(["message:new", "assistant:delta", "assistant:end", "presence:join", "typing"]));
    for (const op of Object.values(doc.operations).filter((o) => o.action === "receive")) {
      expect(messageOf(op.reply!.messages[0]!).name).toBe(`${messageOf(op.messages[0]!).name} ack`);
    }
  });

  it("uses the payload schemas the handlers parse with", () => {
    const send = doc.components.schemas["message.send.request"] as { properties: Record<string, { maxLength?: number }>; required: string[]; additionalProperties: boolean };
    expect(send.properties.content!.maxLength).toBe(config.limits.maxMessageChars);
    expect([...send.required].sort()).toEqual(["clientMessageId", "content", "sessionId"]);
    expect(send.additionalProperties).toBe(false);
    const ack = JSON.stringify(doc.components.schemas["message.send.ack"]);
    expect(ack).toContain('"#/components/schemas/Message"');
    expect(ack).toContain('"#/components/schemas/Error"');
  });

  it("resolves every reference", () => {
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(40);
    for (const r of refs) {
      const path = JSON.parse(`{${r}}`).$ref.slice(2).split("/");
      let node: unknown = doc;
      for (const p of path) node = (node as Record<string, unknown> | undefined)?.[p];
      expect(node, r).toBeDefined();
    }
  });

  it("is a valid AsyncAPI 3.0 document", () => {
    const require = createRequire(import.meta.url);
    const spec = (require("@asyncapi/specs") as { schemasWithoutId: Record<string, object> }).schemasWithoutId["3.0.0"]!;
    const ajv = new Ajv({ strict: false, allErrors: true });
    (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
    const validate = ajv.compile(spec);
    const ok = validate(doc);
    expect(validate.errors ?? [], JSON.stringify(validate.errors?.slice(0, 5), null, 1)).toEqual([]);
    expect(ok).toBe(true);
    // ...and refuses a broken one: an operation with an action AsyncAPI does not know.
    const broken = structuredClone(doc);
    Object.values(broken.operations)[0]!.action = "emit";
    expect(validate(broken)).toBe(false);
  });

  it("is served at /api/asyncapi.json without auth", async () => {
    const res = await fetch(`${base}/api/asyncapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});
