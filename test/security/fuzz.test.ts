/**
 * Generated payloads (fast-check) thrown at every socket event and REST
 * route of the real server process by an outsider. Checked after each one:
 * the answer is a protocol envelope (an ack `{ok, data}` / `{ok:false,
 * error:{code, message}}`, or a JSON error body with a 4xx status), a refused
 * request changed no row anywhere, and nothing ever reached the victim's
 * session. At the end the process is still up and healthy.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/protocol/errors.js";
import { protocolSchemas } from "../../src/protocol/schemas.js";
import { addMember, api, call, connect, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let owner: TestUser;
let friend: TestUser;
let mallory: TestUser;
let m: Socket;
let sessionId: string;
let messageId: number;
const sockets: Socket[] = [];

/** Client-to-server events: every protocol schema whose name is an event (REST bodies are camelCase words). */
const EVENTS = Object.keys(protocolSchemas({ maxMessageChars: 100, historyPageMax: 10 })).filter((k) => k.includes(":") || k === "typing");

const ROUTES: [method: string, path: string][] = [
  ["POST", "/api/auth/register"],
  ["POST", "/api/auth/login"],
  ["GET", "/api/sessions"],
  ["PATCH", "/api/sessions/:id"],
  ["DELETE", "/api/sessions/:id"],
  ["GET", "/api/sessions/:id/messages"],
  ["POST", "/api/sessions/:id/members"],
  ["DELETE", "/api/sessions/:id/members/:id"],
  ["GET", "/api/invitations"],
  ["POST", "/api/invitations/:id/accept"],
  ["POST", "/api/invitations/:id/decline"],
  ["GET", "/api/memory/search"],
];

async function counts(): Promise<Record<string, number>> {
  const { rows } = await db.pool.query(`SELECT
      (SELECT count(*) FROM users)::int AS users,
      (SELECT count(*) FROM chat_sessions)::int AS sessions,
      (SELECT count(*) FROM chat_session_members)::int AS members,
      (SELECT count(*) FROM chat_session_invitations)::int AS invitations,
      (SELECT count(*) FROM chat_messages)::int AS messages,
      (SELECT count(*) FROM message_feedback)::int AS feedback,
      (SELECT count(*) FROM chat_messages WHERE session_id = $1)::int AS victim_messages,
      (SELECT count(*) FROM chat_session_members WHERE session_id = $1)::int AS victim_members,
      (SELECT count(*) FROM chat_session_invitations WHERE session_id = $1)::int AS victim_invitations,
      (SELECT title FROM chat_sessions WHERE id = $1) AS victim_title`, [sessionId]);
  return rows[0];
}

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-fuzz-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "fuzz-secret-0123456789-0123456789-012345",
    EMBEDDER: "hash",
    OFFLINE_TOKEN_DELAY_MS: "0",
    // The fuzzer must reach the handlers, not the limiter.
    RATE_LIMITS_ENABLED: "false",
  });
  [owner, friend, mallory] = await Promise.all([register(server.url), register(server.url), register(server.url)]);
  const o = await connect(server.url, owner.token);
  sockets.push(o);
  sessionId = (await ok(o, "session:create", { title: "victim" })).session.id;
  await addMember(server.url, o, sessionId, friend);
  messageId = (await ok(o, "message:send", { sessionId, clientMessageId: "v1", content: "the victim's secret", assistant: false })).message.id;
  m = await connect(server.url, mallory.token);
  sockets.push(m);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Values an attacker would try: the victim's ids in other spellings, lone surrogates, huge and odd numbers, nesting. */
const hostile = () =>
  fc.oneof(
    fc.constant(sessionId),
    fc.constant(sessionId.toUpperCase()),
    fc.constant(` ${sessionId}`),
    fc.constant(messageId),
    fc.constant(owner.user.id),
    fc.constant(friend.user.username),
    fc.uuid(),
    fc.string(),
    fc.string({ unit: "binary" }),
    // Longer than MAX_MESSAGE_CHARS but within the packet limit: a packet over MAX_PAYLOAD_BYTES is refused by
    // Socket.IO itself, which closes the connection (tested apart below).
    fc.constantFrom("\uD800", "a\uDC00b", "\u0000", "x".repeat(9_000), "__proto__", "constructor"),
    fc.integer(),
    fc.double(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -1, 0, 1e308),
    fc.boolean(),
    fc.constant(null),
    fc.anything({ maxDepth: 2 }),
  );

const FIELDS = ["sessionId", "messageId", "userId", "username", "content", "clientMessageId", "title", "query", "limit", "afterSeq", "beforeSeq", "rating", "comment", "isTyping", "assistant", "mode", "password"];

const payload = () =>
  fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), hostile(), { maxKeys: 5 }) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
  );

const isEnvelope = (r: unknown): boolean => {
  if (typeof r !== "object" || r === null) return false;
  const x = r as { ok?: unknown; data?: unknown; error?: { code?: unknown; message?: unknown } };
  if (x.ok === true) return "data" in x;
  return x.ok === false && ERROR_CODES.includes(x.error?.code as never) && typeof x.error?.message === "string";
};

it("answers every generated socket payload with an envelope, and a refused one changes nothing", async () => {
  const victim = await counts();
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...EVENTS), payload(), async (event, body) => {
      const before = await counts();
      const r = await call(m, event, body);
      expect(isEnvelope(r), `${event} ${String(JSON.stringify(body)).slice(0, 200)} -> ${String(JSON.stringify(r)).slice(0, 200)}`).toBe(true);
      const after = await counts();
      if (!r.ok) expect(after, `${event} refused with ${r.error.code} but changed rows`).toEqual(before);
      expect([after.victim_messages, after.victim_members, after.victim_invitations, after.victim_title]).toEqual([
        victim.victim_messages,
        victim.victim_members,
        victim.victim_invitations,
        victim.victim_title,
      ]);
    }),
    { numRuns: 400, seed: 1302 },
  );
  expect(m.connected).toBe(true);
}, 180_000);

it("answers every generated REST request with a JSON error body or success, never a 5xx, and a refused one changes nothing", async () => {
  const victim = await counts();
  // A lone surrogate cannot be percent-encoded: such a path segment goes as the raw escape.
  const segment = (v: unknown) => {
    try {
      return encodeURIComponent(String(v)).slice(0, 200);
    } catch {
      return "%ED%A0%80";
    }
  };
  const pathArb = (p: string) => fc.array(hostile().map(segment), { minLength: 2, maxLength: 2 }).map(([a, b]) => p.replace(":id", a!).replace(":id", b!));
  const bodyArb = fc.oneof(payload().map((b) => JSON.stringify(b) ?? "null"), fc.string(), fc.constant("{"), fc.constant("x".repeat(70_000)));
  const typeArb = fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain; x=application/json", "text/plain", "");
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ROUTES), fc.boolean(), bodyArb, typeArb, fc.boolean(), async ([method, route], idsValid, body, type, authed) => {
      const url = idsValid ? route.replaceAll(":id", sessionId) : await fc.sample(pathArb(route), 1)[0]!;
      const before = await counts();
      const res = await fetch(`${server.url}${url}${method === "GET" ? "?q=a&limit=x" : ""}`, {
        method,
        headers: { ...(authed ? { authorization: `Bearer ${mallory.token}` } : {}), ...(type ? { "content-type": type } : {}) },
        ...(method === "GET" ? {} : { body }),
      }).catch((err: Error) => ({ status: 0, err }) as const);
      expect("err" in res ? String(res.err) : "", `${method} ${url}`).toBe("");
      if ("err" in res) return;
      expect(res.status, `${method} ${url}`).toBeLessThan(500);
      const text = await res.text();
      if (res.status >= 400) {
        const json = JSON.parse(text) as { error?: { code?: string; message?: string } };
        expect(ERROR_CODES, `${method} ${url} ${text.slice(0, 200)}`).toContain(json.error?.code);
        expect(await counts(), `${method} ${url} refused but changed rows`).toEqual(before);
      }
      const after = await counts();
      expect([after.victim_messages, after.victim_members, after.victim_invitations, after.victim_title]).toEqual([
        victim.victim_messages,
        victim.victim_members,
        victim.victim_invitations,
        victim.victim_title,
      ]);
    }),
    { numRuns: 300, seed: 1303 },
  );
  expect((await api(server.url, "/healthz")).status).toBe(200);
  expect(server.child.exitCode).toBeNull();
}, 180_000);

it("closes the connection that sends a packet over MAX_PAYLOAD_BYTES, and only that one", async () => {
  const big = await connect(server.url, mallory.token);
  sockets.push(big);
  const closed = new Promise((r) => big.once("disconnect", r));
  big.emit("message:send", { sessionId, clientMessageId: "big", content: "x".repeat(70_000) }, () => undefined);
  await closed;
  expect((await ok(m, "invitation:list", {})).invitations).toEqual([]);
  expect((await counts()).victim_messages).toBe(1);
});
