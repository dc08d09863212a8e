/**
 * Issue 13, finding 7 ("Small input holes"): lone UTF-16 surrogates are
 * refused in every text field (they used to become U+FFFD in storage, so two
 * different strings became one); an oversize REST body gets 413 with the
 * JSON error envelope instead of a dropped connection; the media type is
 * parsed and compared exactly; REST answers CORS per CORS_ORIGIN; /metrics
 * can require METRICS_TOKEN.
 */
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, call, connect, ok, register, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

const MAX_PAYLOAD_BYTES = 4096;
const ORIGIN = "https://app.example.test";
const METRICS_TOKEN = "metrics-token-0123456789abcdef";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let socket: Socket;

beforeAll(async () => {
  db = await createTestDatabase(2);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-sec-input-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "sec-input-secret-0123456789-0123456789-01",
    EMBEDDER: "hash",
    MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
    CORS_ORIGIN: ORIGIN,
    METRICS_TOKEN,
  });
  socket = await connect(server.url, (await register(server.url)).token);
});

afterAll(async () => {
  socket?.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function messageCount(sessionId: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [sessionId]);
  return rows[0]!.n;
}

function expectBadRequest(r: { ok: boolean; error?: { code: string; message: string } }) {
  expect(r.ok).toBe(false);
  expect(r.error?.code).toBe("BAD_REQUEST");
  expect(r.error?.message).toMatch(/surrogate/);
}

describe("lone surrogates", () => {
  it("are refused in clientMessageId: two ids that differ only there no longer collapse into one message", async () => {
    const { session } = await ok(socket, "session:create", { assistant: false });
    expectBadRequest(await call(socket, "message:send", { sessionId: session.id, clientMessageId: "id-\uD800", content: "first" }));
    expectBadRequest(await call(socket, "message:send", { sessionId: session.id, clientMessageId: "id-\uDC00", content: "second" }));
    expect(await messageCount(session.id)).toBe(0);
  });

  it("are refused in content, titles, comments and queries; a proper pair (an emoji) is kept as sent", async () => {
    const { session } = await ok(socket, "session:create", { assistant: false });
    expectBadRequest(await call(socket, "message:send", { sessionId: session.id, clientMessageId: "c1", content: "half \uD83D emoji" }));
    expectBadRequest(await call(socket, "session:create", { title: "t\uDFFF" }));
    expectBadRequest(await call(socket, "session:rename", { sessionId: session.id, title: "t\uD800" }));
    expectBadRequest(await call(socket, "memory:search", { query: "q\uDC00" }));
    expectBadRequest(await call(socket, "message:feedback", { messageId: 1, rating: 1, comment: "\uD800" }));
    expect(await messageCount(session.id)).toBe(0);

    const sent = await ok(socket, "message:send", { sessionId: session.id, clientMessageId: "c2", content: "whole \uD83D\uDE00 emoji" });
    expect(sent.message.content).toBe("whole \uD83D\uDE00 emoji");
    const { rows } = await db.pool.query<{ content: string }>("SELECT content FROM chat_messages WHERE id = $1", [sent.message.id]);
    expect(rows[0]!.content).toBe("whole 😀 emoji");
  });

  it("are refused in passwords: a password with \\uD800 is not registered, and never logs in with \\uDC00", async () => {
    const username = uniqueName();
    const reg = await api(server.url, "/api/auth/register", { method: "POST", body: { username, password: "password-\uD800" } });
    expect(reg.status).toBe(400);
    expect(reg.body.error.code).toBe("BAD_REQUEST");
    expect(reg.body.error.message).toMatch(/surrogate/);
    const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username, password: "password-\uDC00" } });
    expect(login.status).toBe(400);
    expect(login.body.error.code).toBe("BAD_REQUEST");
    const { rows } = await db.pool.query("SELECT 1 FROM users WHERE username = $1", [username]);
    expect(rows).toHaveLength(0);
  });
});

/** A raw POST, so the test controls the framing (Content-Length or chunked). */
function rawPost(pathname: string, chunks: string[], headers: Record<string, string>): Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${pathname}`, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(text), headers: res.headers }));
    });
    // The server may answer and close before the whole body is written.
    req.on("error", (err) => (req.writableFinished ? undefined : reject(err)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe("REST bodies", () => {
  const big = JSON.stringify({ username: "someone", password: "x".repeat(MAX_PAYLOAD_BYTES * 2) });

  it("over MAX_PAYLOAD_BYTES with a Content-Length: 413 with the JSON error envelope", async () => {
    const r = await api(server.url, "/api/auth/login", { method: "POST", body: big });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(r.body.error.message).toContain(String(MAX_PAYLOAD_BYTES));
  });

  it("over MAX_PAYLOAD_BYTES in chunks without a length: 413 too", async () => {
    const chunk = big.slice(0, 1500);
    const r = await rawPost("/api/auth/login", [chunk, chunk, chunk, chunk, chunk], { "content-type": "application/json", "transfer-encoding": "chunked" });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("accepts only application/json, with at most charset=utf-8", async () => {
    const body = JSON.stringify({ username: uniqueName(), password: "correct horse battery" });
    const post = (type: string) => rawPost("/api/auth/register", [body], { "content-type": type, "content-length": String(Buffer.byteLength(body)) });
    for (const type of ["text/plain; x=application/json", "text/plain", "application/jsonx", "application/json; charset=latin1", "application/json; boundary=x", "multipart/form-data; type=application/json"]) {
      const r = await post(type);
      expect(r.status, type).toBe(415);
      expect(r.body.error.code, type).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
    expect((await post('Application/JSON; Charset="UTF-8"')).status).toBe(201);
  });
});

describe("CORS on REST follows CORS_ORIGIN", () => {
  const preflight = (origin: string) =>
    fetch(`${server.url}/api/auth/login`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });

  it("answers a preflight from an allowed origin with the methods and headers the API uses", async () => {
    const r = await preflight(ORIGIN);
    expect(r.status).toBe(204);
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(r.headers.get("access-control-allow-methods")).toContain("POST");
    expect(r.headers.get("access-control-allow-headers")).toContain("content-type");
    expect(r.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("gives another origin no CORS headers, so its browser keeps the response from it", async () => {
    const r = await preflight("https://evil.example.test");
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
    const get = await fetch(`${server.url}/healthz`, { headers: { origin: "https://evil.example.test" } });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("marks ordinary responses to the allowed origin", async () => {
    const r = await fetch(`${server.url}/healthz`, { headers: { origin: ORIGIN } });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(r.headers.get("vary")).toContain("Origin");
  });
});

describe("/metrics with METRICS_TOKEN", () => {
  it("needs the bearer token", async () => {
    const none = await api(server.url, "/metrics");
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("UNAUTHENTICATED");
    expect((await api(server.url, "/metrics", { token: `${METRICS_TOKEN}x` })).status).toBe(401);
    const r = await api(server.url, "/metrics", { token: METRICS_TOKEN });
    expect(r.status).toBe(200);
    expect(r.body).toContain("# TYPE chat_sockets_connected gauge");
  });
});
