/**
 * The documents against the running server: every REST operation that
 * /api/openapi.json describes is called on the real server (child process,
 * private database), and each answer must have a documented status and a
 * body that validates against the documented schema with no undocumented
 * field; socket acks and room events are checked the same way against
 * /api/asyncapi.json.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, connect, nextEvent, register, type TestUser, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

type Json = Record<string, any>;

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let openapi: Json;
let asyncapi: Json;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const sockets: Socket[] = [];
/** `METHOD /path/{template}` of every operation called. */
const exercised = new Set<string>();
const DOCS_ADMIN = uniqueName("docsadmin");

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-apidocs-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "apidocs-secret-0123456789-0123456789",
    EMBEDDER: "hash",
    ADMIN_USERNAMES: DOCS_ADMIN,
  });
  openapi = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as Json;
  asyncapi = (await (await fetch(`${server.url}/api/asyncapi.json`)).json()) as Json;
  ajv.addSchema(openapi, "openapi");
  ajv.addSchema(asyncapi, "asyncapi");
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");

function resolve(doc: Json, schema: Json): Json {
  while (schema.$ref) schema = schema.$ref.slice(2).split("/").reduce((n: Json, p: string) => n[p.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  return schema;
}

/** Paths of fields in `value` that the schema does not describe (the generator leaves additionalProperties open). */
function undocumented(doc: Json, schema: Json, value: unknown, at = "body"): string[] {
  schema = resolve(doc, schema);
  if (!schema.type && !schema.properties && !schema.items && !schema.anyOf && !schema.oneOf) return []; // {}: anything
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) {
    const results = (branches as Json[]).map((b) => undocumented(doc, b, value, at));
    return results.find((r) => r.length === 0) ?? results[0]!;
  }
  if (Array.isArray(value)) return schema.items ? value.flatMap((v, i) => undocumented(doc, schema.items, v, `${at}[${i}]`)) : [];
  if (value === null || typeof value !== "object") return [];
  const props: Json = schema.properties ?? {};
  return Object.entries(value).flatMap(([k, v]) => {
    if (props[k]) return undocumented(doc, props[k], v, `${at}.${k}`);
    if (schema.additionalProperties && typeof schema.additionalProperties === "object") return undocumented(doc, schema.additionalProperties, v, `${at}.${k}`);
    return [`${at}.${k}`];
  });
}

function conforms(docName: "openapi" | "asyncapi", schemaPointer: string, value: unknown, label: string): void {
  const doc = docName === "openapi" ? openapi : asyncapi;
  const validate = ajv.getSchema(`${docName}#/${schemaPointer}`) ?? ajv.compile({ $ref: `${docName}#/${schemaPointer}` });
  expect(validate(value), `${label}: ${JSON.stringify(validate.errors)} for ${JSON.stringify(value)}`).toBe(true);
  const schema = schemaPointer.split("/").reduce((n: Json, p) => n[p.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  expect(undocumented(doc, schema, value), `${label}: fields missing from the document`).toEqual([]);
}

/** Calls a REST operation and checks the answer against the operation's documented responses. */
async function rest(method: string, template: string, params: Record<string, string> = {}, init: { token?: string; body?: unknown; query?: string; form?: FormData } = {}) {
  const op = openapi.paths[template]?.[method.toLowerCase()];
  expect(op, `${method} ${template} is not in /api/openapi.json`).toBeDefined();
  exercised.add(`${method} ${template}`);
  const url = template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k] ?? "")) + (init.query ? `?${init.query}` : "");
  const res = await fetch(server.url + url, {
    method,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.body !== undefined ? { "content-type": "application/json" } : {}) },
    body: init.form ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
  });
  const label = `${method} ${url} → ${res.status}`;
  const documented = op.responses[String(res.status)];
  expect(documented, `${label} is not a documented status (${Object.keys(op.responses).join(", ")})`).toBeDefined();
  const text = method === "HEAD" ? "" : await res.text();
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!;
  if (!documented.content) {
    expect(text, `${label}: documented without a body`).toBe("");
    return { status: res.status, body: undefined as any };
  }
  expect(Object.keys(documented.content), `${label}: content type`).toContain(documented.content[type] ? type : Object.keys(documented.content)[0]);
  if (type !== "application/json" || method === "HEAD") return { status: res.status, body: text as any };
  const body = JSON.parse(text);
  conforms("openapi", pointer("paths", template, method.toLowerCase(), "responses", String(res.status), "content", "application/json", "schema"), body, label);
  return { status: res.status, body };
}

function ackConforms(event: string, ack: unknown): void {
  conforms("asyncapi", pointer("components", "schemas", `${event.replace(/:/g, ".")}.ack`), ack, `${event} ack`);
}
function eventConforms(event: string, payload: unknown): void {
  conforms("asyncapi", pointer("components", "schemas", `${event.replace(/:/g, ".")}.event`), payload, `${event} event`);
}

describe("the running server answers as its documents say", () => {
  it("the checks refuse a body the document does not describe", () => {
    const at = pointer("paths", "/api/auth/register", "post", "responses", "201", "content", "application/json", "schema");
    const validate = ajv.compile({ $ref: `openapi#/${at}` });
    expect(validate({ token: 42, user: { id: "x" } })).toBe(false);
    const schema = at.split("/").reduce((n: Json, p) => n[p.replace(/~1/g, "/").replace(/~0/g, "~")], openapi);
    expect(undocumented(openapi, schema, { token: "t", user: { id: "i", username: "u", admin: true } })).toEqual(["body.user.admin"]);
  });

  let alice: TestUser;
  let bob: TestUser;
  let sessionId: string;

  it("auth", async () => {
    const name = uniqueName("docs");
    const reg = await rest("POST", "/api/auth/register", {}, { body: { username: name, password: "correct horse battery" } });
    expect(reg.status).toBe(201);
    expect((await rest("POST", "/api/auth/register", {}, { body: { username: name, password: "correct horse battery" } })).status).toBe(409);
    expect((await rest("POST", "/api/auth/register", {}, { body: { username: "x" } })).status).toBe(400);
    expect((await rest("POST", "/api/auth/login", {}, { body: { username: name, password: "correct horse battery" } })).status).toBe(200);
    expect((await rest("POST", "/api/auth/login", {}, { body: { username: name, password: "wrong password!" } })).status).toBe(401);
    alice = { ...reg.body, password: "correct horse battery" };
    bob = await register(server.url);
  });

  it("socket acks and room events", async () => {
    const a = await connect(server.url, alice.token);
    const b = await connect(server.url, bob.token);
    sockets.push(a, b);
    const created = await call(a, "session:create", { title: "documented", assistant: false });
    ackConforms("session:create", created);
    sessionId = (created as any).data.session.id;
    ackConforms("session:join", await call(a, "session:join", { sessionId }));
    const invited = nextEvent(b, "session:invitation");
    ackConforms("session:invite", await call(a, "session:invite", { sessionId, username: bob.user.username }));
    eventConforms("session:invitation", await invited);
    ackConforms("invitation:list", await call(b, "invitation:list", {}));
    const joinedEvent = nextEvent(a, "member:joined");
    ackConforms("invitation:accept", await call(b, "invitation:accept", { sessionId }));
    eventConforms("member:joined", await joinedEvent);
    ackConforms("invitation:decline", await call(b, "invitation:decline", { sessionId }));
    ackConforms("session:join", await call(b, "session:join", { sessionId }));
    const heard = nextEvent(b, "message:new");
    const typing = nextEvent(b, "typing");
    ackConforms("typing", await call(a, "typing", { sessionId, isTyping: true }));
    eventConforms("typing", await typing);
    const sent = await call(a, "message:send", { sessionId, clientMessageId: "c1", content: "hello documented world", assistant: false });
    ackConforms("message:send", sent);
    eventConforms("message:new", await heard);
    const renamed = nextEvent(b, "session:updated");
    ackConforms("session:rename", await call(a, "session:rename", { sessionId, title: "renamed" }));
    eventConforms("session:updated", await renamed);
    // Named configurations (issue 15): the owner picks, the room hears it; a member may not.
    const configured = nextEvent(b, "session:configured");
    ackConforms("session:configure", await call(a, "session:configure", { sessionId, configurationId: null }));
    eventConforms("session:configured", await configured);
    ackConforms("session:configure", await call(b, "session:configure", { sessionId, configurationId: null }));
    ackConforms("message:history", await call(a, "message:history", { sessionId }));
    const search = await call(a, "memory:search", { query: "hello", mode: "lexical" });
    ackConforms("memory:search", search);
    expect((search as any).data.hits.length, "a hit to check the hit schema on").toBeGreaterThan(0);
    const left = nextEvent(a, "presence:leave");
    ackConforms("session:leave", await call(b, "session:leave", { sessionId }));
    eventConforms("presence:leave", await left);
    // Errors take the same ack envelope.
    ackConforms("session:join", await call(a, "session:join", { sessionId: "not-a-uuid" }));
    // Membership ends: bob leaves a second session, and is removed from the first (and invited back for the REST test).
    const second = (await call(a, "session:create", { title: "second", assistant: false })) as any;
    await call(a, "session:invite", { sessionId: second.data.session.id, username: bob.user.username });
    await call(b, "invitation:accept", { sessionId: second.data.session.id });
    const removed = nextEvent(b, "session:removed");
    const memberLeft = nextEvent(a, "member:left");
    await call(a, "session:join", { sessionId: second.data.session.id });
    ackConforms("member:leave", await call(b, "member:leave", { sessionId: second.data.session.id }));
    eventConforms("session:removed", await removed);
    eventConforms("member:left", await memberLeft);
    ackConforms("member:remove", await call(a, "member:remove", { sessionId, userId: bob.user.id }));
    await call(a, "session:invite", { sessionId, username: bob.user.username });
    await call(b, "invitation:accept", { sessionId });
    // Pending invitations are listed to a socket right after it connects.
    const third = (await call(a, "session:create", { title: "third", assistant: false })) as any;
    await call(a, "session:invite", { sessionId: third.data.session.id, username: bob.user.username });
    const late = io(`${server.url}/chat`, { auth: { token: bob.token }, transports: ["websocket"], forceNew: true, reconnection: false });
    sockets.push(late);
    eventConforms("session:invitations", await new Promise((resolve) => late.once("session:invitations", resolve)));
  });

  it("every REST operation, successes and errors", async () => {
    const t = alice.token;
    const other = "6f1f5c9e-54a8-4c55-9a39-5a4a0a7b8d11";
    expect((await rest("GET", "/api/sessions", {}, { token: t })).status).toBe(200);
    expect((await rest("GET", "/api/sessions")).status).toBe(401);
    expect((await rest("PATCH", "/api/sessions/{id}", { id: sessionId }, { token: t, body: { title: "via rest" } })).status).toBe(200);
    expect((await rest("PATCH", "/api/sessions/{id}", { id: sessionId }, { token: bob.token, body: { title: "not mine" } })).status).toBe(403);
    expect((await rest("GET", "/api/sessions/{id}/messages", { id: sessionId }, { token: t, query: "limit=5" })).status).toBe(200);
    expect((await rest("GET", "/api/sessions/{id}/messages", { id: other }, { token: t })).status).toBe(404);
    expect((await rest("GET", "/api/sessions/{id}/messages", { id: "nope" }, { token: t })).status).toBe(400);
    expect((await rest("POST", "/api/sessions/{id}/members", { id: sessionId }, { token: t, body: { username: bob.user.username } })).status).toBe(201);
    expect((await rest("DELETE", "/api/sessions/{id}/members/{userId}", { id: sessionId, userId: bob.user.id }, { token: t })).status).toBe(204);
    expect((await rest("GET", "/api/invitations", {}, { token: bob.token })).status).toBe(200);
    expect((await rest("POST", "/api/invitations/{id}/accept", { id: sessionId }, { token: bob.token })).status).toBe(404);
    expect((await rest("POST", "/api/sessions/{id}/members", { id: sessionId }, { token: t, body: { username: bob.user.username } })).status).toBe(201);
    expect((await rest("POST", "/api/invitations/{id}/decline", { id: sessionId }, { token: bob.token })).status).toBe(200);
    expect((await rest("POST", "/api/sessions/{id}/members", { id: sessionId }, { token: t, body: { username: bob.user.username } })).status).toBe(201);
    expect((await rest("POST", "/api/invitations/{id}/accept", { id: sessionId }, { token: bob.token })).status).toBe(200);
    expect((await rest("GET", "/api/sessions", {}, { token: t, query: "limit=1" })).body.nextCursor).not.toBeNull();
    expect((await rest("GET", "/api/me/export", {}, { token: bob.token })).status).toBe(200);
    // Roles and the admin routes (issue 15).
    const boss = await register(server.url, DOCS_ADMIN);
    expect((await rest("GET", "/api/me", {}, { token: boss.token })).body.role).toBe("admin");
    expect((await rest("GET", "/api/me")).status).toBe(401);
    expect((await rest("PUT", "/api/admin/users/{id}/role", { id: bob.user.id }, { token: boss.token, body: { role: "member" } })).status).toBe(200);
    expect((await rest("PUT", "/api/admin/users/{id}/role", { id: bob.user.id }, { token: bob.token, body: { role: "admin" } })).status).toBe(403);
    expect((await rest("PUT", "/api/admin/users/{id}/quota", { id: bob.user.id }, { token: boss.token, body: { dailyTokens: 5000 } })).status).toBe(200);
    expect((await rest("PUT", "/api/admin/users/{id}/quota", { id: bob.user.id }, { token: boss.token, body: { dailyTokens: "many" } })).status).toBe(400);
    expect((await rest("GET", "/api/me/usage", {}, { token: bob.token })).body.quota.dailyTokens).toBe(5000);
    expect((await rest("GET", "/api/me/usage")).status).toBe(401);
    expect((await rest("GET", "/api/admin/analytics", {}, { token: boss.token, query: "from=2026-01-01&to=2026-01-31" })).status).toBe(200);
    expect((await rest("GET", "/api/admin/analytics", {}, { token: boss.token, query: "from=2026-02-30" })).status).toBe(400);
    expect((await rest("GET", "/api/admin/analytics", {}, { token: bob.token })).status).toBe(403);
    expect((await rest("POST", "/api/sessions/{id}/archive", { id: sessionId }, { token: t })).status).toBe(200);
    expect((await rest("POST", "/api/sessions/{id}/archive", { id: sessionId }, { token: bob.token })).status).toBe(403);
    expect((await rest("POST", "/api/sessions/{id}/unarchive", { id: sessionId }, { token: t })).status).toBe(200);
    // Named configurations (issue 15).
    const made = await rest("POST", "/api/admin/configurations", {}, { token: boss.token, body: { name: "Documented", systemPrompt: "Be documented." } });
    expect(made.status).toBe(201);
    const cid = made.body.configuration.id;
    expect((await rest("POST", "/api/admin/configurations", {}, { token: boss.token, body: { name: "Bad", systemPrompt: "x", temperature: 5 } })).status).toBe(422);
    expect((await rest("POST", "/api/admin/configurations", {}, { token: bob.token, body: { name: "Mine", systemPrompt: "x" } })).status).toBe(403);
    expect((await rest("GET", "/api/admin/configurations", {}, { token: boss.token, query: "retired=true" })).status).toBe(200);
    expect((await rest("GET", "/api/admin/configurations", {}, { token: bob.token })).status).toBe(403);
    expect((await rest("PATCH", "/api/admin/configurations/{id}", { id: String(cid) }, { token: boss.token, body: { topK: 3 } })).status).toBe(200);
    expect((await rest("PATCH", "/api/admin/configurations/{id}", { id: String(cid) }, { token: boss.token, body: { topK: 300 } })).status).toBe(422);
    expect((await rest("GET", "/api/configurations", {}, { token: t })).status).toBe(200);
    expect((await rest("PUT", "/api/sessions/{id}/configuration", { id: sessionId }, { token: t, body: { configurationId: cid } })).status).toBe(200);
    expect((await rest("PUT", "/api/sessions/{id}/configuration", { id: sessionId }, { token: bob.token, body: { configurationId: null } })).status).toBe(403);
    expect((await rest("POST", "/api/admin/configurations/{id}/default", { id: String(cid) }, { token: boss.token })).status).toBe(200);
    expect((await rest("POST", "/api/admin/configurations/{id}/retire", { id: String(cid) }, { token: boss.token })).status).toBe(409);
    const first = (await rest("GET", "/api/admin/configurations", {}, { token: boss.token })).body.configurations.find((c: { name: string }) => c.name === "Default");
    expect((await rest("POST", "/api/admin/configurations/{id}/default", { id: String(first.id) }, { token: boss.token })).status).toBe(200);
    expect((await rest("POST", "/api/admin/configurations/{id}/retire", { id: String(cid) }, { token: boss.token })).status).toBe(200);
    expect((await rest("POST", "/api/admin/configurations/{id}/activate", { id: String(cid) }, { token: boss.token })).status).toBe(200);
    expect((await rest("POST", "/api/admin/configurations/{id}/activate", { id: "999999" }, { token: boss.token })).status).toBe(404);
    const form = new FormData();
    form.append("file", new Blob(["notes for the documents"], { type: "text/plain" }), "notes.txt");
    const up = await rest("POST", "/api/sessions/{id}/attachments", { id: sessionId }, { token: t, form });
    expect(up.status).toBe(201);
    expect((await rest("POST", "/api/sessions/{id}/attachments", { id: other }, { token: t, form })).status).toBe(404);
    expect((await rest("GET", "/api/attachments/{id}", { id: up.body.id }, { token: t })).status).toBe(200);
    expect((await rest("GET", "/api/attachments/{id}", { id: up.body.id }, { token: bob.token })).status).toBe(404);
    expect((await rest("GET", "/api/attachments/{id}/content", { id: up.body.id }, { token: t })).body).toBe("notes for the documents");
    expect((await rest("GET", "/api/attachments/{id}/thumbnail", { id: up.body.id }, { token: t })).status).toBe(404);
    expect((await rest("DELETE", "/api/attachments/{id}", { id: up.body.id }, { token: t })).status).toBe(204);
    expect((await rest("DELETE", "/api/attachments/{id}", { id: up.body.id }, { token: t })).status).toBe(404);
    const search = await rest("GET", "/api/memory/search", {}, { token: t, query: "q=hello&mode=lexical" });
    expect(search.body.hits.length, "a hit to check the hit schema on").toBeGreaterThan(0);
    expect((await rest("DELETE", "/api/sessions/{id}", { id: sessionId }, { token: t })).status).toBe(204);
    expect((await rest("DELETE", "/api/sessions/{id}", { id: sessionId }, { token: t })).status).toBe(404);
    expect((await rest("GET", "/healthz")).status).toBe(200);
    expect((await rest("GET", "/readyz")).status).toBe(200);
    const carol = await register(server.url);
    expect((await rest("POST", "/api/auth/logout-all", {}, { token: carol.token })).status).toBe(204);
    expect((await rest("DELETE", "/api/me", {}, { token: carol.token })).status).toBe(401);
    const dave = await register(server.url);
    expect([202, 204]).toContain((await rest("DELETE", "/api/me", {}, { token: dave.token })).status);
    expect((await rest("GET", "/metrics")).body).toContain("# TYPE chat_sockets_connected gauge");
    expect((await rest("GET", "/api/openapi.json")).body.openapi).toBe("3.1.0");
    expect((await rest("GET", "/api/asyncapi.json")).body.asyncapi).toBe("3.0.0");
    for (const method of ["GET", "HEAD"]) {
      expect([200, 503]).toContain((await rest(method, "/")).status);
      expect((await rest(method, "/assets/{file}", { file: "absent-0000.js" })).status).toBe(404);
    }
    const all = Object.entries(openapi.paths as Json).flatMap(([p, item]) => Object.keys(item as Json).map((m) => `${m.toUpperCase()} ${p}`));
    expect(all.filter((op) => !exercised.has(op)), "operations this test does not call yet: add a call above").toEqual([]);
  });
});
