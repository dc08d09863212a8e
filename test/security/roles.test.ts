/**
 * Roles against the real server process (issue 15 item 1): the first account
 * and ADMIN_USERNAMES are admins, /api/me tells the role, every admin route
 * (each /api/admin path the OpenAPI document lists, so routes added later are
 * covered too) answers FORBIDDEN to a member and UNAUTHENTICATED without a
 * token, and a role change takes effect on the next request.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, register, type TestUser, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const listedName = uniqueName("Chief");
const lateName = uniqueName("late");
let first: TestUser;
let member: TestUser;
let listed: TestUser;

const env = () => ({
  DATABASE_URL: db.url,
  DATA_DIR: dataDir,
  JWT_SECRET: "roles-secret-0123456789-0123456789-0123",
  EMBEDDER: "hash",
  AUTH_CACHE_MS: "60000",
  RATE_ADMIN_BURST: "500",
  RATE_READ_BURST: "500",
});

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-roles-"));
  server = await startServer({ ...env(), ADMIN_USERNAMES: ` ${listedName.toLowerCase()} , someone_else ` });
  first = await register(server.url);
  member = await register(server.url);
  listed = await register(server.url, listedName);
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const roleOf = async (u: TestUser) => (await api(server.url, "/api/me", { token: u.token })).body.role as string;

describe("roles", () => {
  it("the first registered account is admin, the next a member, a name in ADMIN_USERNAMES (any case) admin", async () => {
    expect([first.role, member.role, listed.role]).toEqual(["admin", "member", "admin"]);
    const me = await api(server.url, "/api/me", { token: member.token });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ user: member.user, role: "member" });
    expect(await roleOf(first)).toBe("admin");
    expect(await roleOf(listed)).toBe("admin");
    expect((await api(server.url, "/api/me")).status).toBe(401);
    const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username: listedName, password: listed.password } });
    expect(login.body.role).toBe("admin");
  });

  it("every admin route answers FORBIDDEN to a member and UNAUTHENTICATED without a token, changing nothing", async () => {
    const doc = (await api(server.url, "/api/openapi.json")).body as { paths: Record<string, Record<string, unknown>> };
    const ops = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith("/api/admin/"))
      .flatMap(([p, item]) => Object.keys(item).map((m) => ({ method: m.toUpperCase(), path: p.replace(/\{\w+\}/g, member.user.id) })));
    expect(ops.length).toBeGreaterThan(0);
    for (const op of ops) {
      const body = op.method === "GET" || op.method === "DELETE" ? undefined : { role: "admin" };
      const asMember = await api(server.url, op.path, { method: op.method, token: member.token, body });
      expect(asMember.status, `${op.method} ${op.path}`).toBe(403);
      expect(asMember.body.error.code).toBe("FORBIDDEN");
      expect((await api(server.url, op.path, { method: op.method, body })).status, `${op.method} ${op.path} without a token`).toBe(401);
    }
    expect(await roleOf(member)).toBe("member");
  });

  it("an admin promotes and demotes; the change shows on the next request; the last admin stays", async () => {
    const promote = await api(server.url, `/api/admin/users/${member.user.id}/role`, { method: "PUT", token: first.token, body: { role: "admin" } });
    expect(promote.status).toBe(200);
    expect(promote.body).toEqual({ user: member.user, role: "admin" });
    expect(await roleOf(member)).toBe("admin");
    const demote = await api(server.url, `/api/admin/users/${member.user.id}/role`, { method: "PUT", token: first.token, body: { role: "member" } });
    expect(demote.body.role).toBe("member");
    expect(await roleOf(member)).toBe("member");
    // Bad input changes nothing.
    for (const body of [{ role: "root" }, { role: "admin", extra: 1 }, {}]) {
      expect((await api(server.url, `/api/admin/users/${member.user.id}/role`, { method: "PUT", token: first.token, body })).status).toBe(400);
    }
    expect((await api(server.url, `/api/admin/users/${member.user.id.toUpperCase()}/role`, { method: "PUT", token: first.token, body: { role: "member" } })).status).toBe(200);
    expect((await api(server.url, `/api/admin/users/${randomUUID()}/role`, { method: "PUT", token: first.token, body: { role: "admin" } })).status).toBe(404);
    expect(await roleOf(member)).toBe("member");
    // Demote the listed admin, then the first one is the last: refused.
    expect((await api(server.url, `/api/admin/users/${listed.user.id}/role`, { method: "PUT", token: first.token, body: { role: "member" } })).status).toBe(200);
    const last = await api(server.url, `/api/admin/users/${first.user.id}/role`, { method: "PUT", token: first.token, body: { role: "member" } });
    expect(last.status).toBe(409);
    expect(await roleOf(first)).toBe("admin");
  });

  it("ADMIN_USERNAMES promotes an existing account when a node starts", async () => {
    const late = await register(server.url, lateName);
    expect(late.role).toBe("member");
    const second = await startServer({ ...env(), ADMIN_USERNAMES: lateName.toUpperCase() });
    try {
      expect(second.logs.some((l) => l.msg === "ADMIN_USERNAMES: accounts promoted to admin" && l.promoted === 1)).toBe(true);
      expect((await api(second.url, "/api/me", { token: late.token })).body.role).toBe("admin");
    } finally {
      await second.stop();
    }
  });
});
