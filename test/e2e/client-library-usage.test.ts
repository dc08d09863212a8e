/**
 * The client library's role, usage and analytics functions against the
 * server process (client/src/usage.ts), and its QUOTA_EXCEEDED handling: a
 * message over the quota is stored, `replyRefused` is emitted and replyTo()
 * rejects with the code, also when asked after the refusal arrived.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { authenticate, type ChatClient, connect, fetchAnalytics, fetchMe, fetchUsage, MemchatError, setUserQuota, setUserRole } from "@memchat/client";
import { uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const clients: ChatClient[] = [];

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-client-usage-"));
  server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: "client-usage-secret-0123456789-012345", EMBEDDER: "hash", OFFLINE_TOKEN_DELAY_MS: "0" });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("fetches the role, usage and analytics; an admin sets quotas and roles; QUOTA_EXCEEDED reaches send's caller", async () => {
  const admin = await authenticate(server.url, { username: uniqueName("adm"), password: "correct horse battery", register: true });
  const user = await authenticate(server.url, { username: uniqueName("usr"), password: "correct horse battery", register: true });
  expect([admin.role, user.role]).toEqual(["admin", "member"]);
  expect(await fetchMe(server.url, user.token)).toEqual({ user: user.user, role: "member" });
  expect((await fetchUsage(server.url, user.token)).quota).toMatchObject({ dailyTokens: null, source: "none" });
  await expect(fetchAnalytics(server.url, user.token)).rejects.toMatchObject({ code: "FORBIDDEN" });
  await expect(setUserQuota(server.url, user.token, user.user.id, 5)).rejects.toMatchObject({ code: "FORBIDDEN" });
  const report = await fetchAnalytics(server.url, admin.token, { from: "2026-01-01", to: "2026-01-31", config: 1 });
  expect(report).toMatchObject({ from: "2026-01-01", to: "2026-01-31", configId: 1, days: [] });

  expect(await setUserQuota(server.url, admin.token, user.user.id, 0)).toMatchObject({ dailyTokens: 0, effectiveDailyTokens: 0 });
  const chat = await connect({ url: server.url, token: user.token });
  clients.push(chat);
  const refusals: unknown[] = [];
  chat.on("replyRefused", (e) => refusals.push(e));
  const session = await chat.createSession({ title: "capped" });
  const message = await session.send("is anyone there?", { clientMessageId: randomUUID() });
  expect(message.content).toBe("is anyone there?");
  await expect.poll(() => refusals.length).toBe(1);
  expect(refusals[0]).toMatchObject({ sessionId: session.id, messageId: message.id, code: "QUOTA_EXCEEDED" });
  const refused = await session.replyTo(message.id).then(() => undefined, (e: unknown) => e);
  expect(refused).toBeInstanceOf(MemchatError);
  expect(refused).toMatchObject({ code: "QUOTA_EXCEEDED" });
  expect((refused as MemchatError).retryAfterMs).toBeGreaterThan(0);

  expect(await setUserRole(server.url, admin.token, user.user.id, "admin")).toEqual({ user: user.user, role: "admin" });
  expect((await fetchMe(server.url, user.token)).role).toBe("admin");
});
