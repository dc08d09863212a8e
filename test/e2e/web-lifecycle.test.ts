/**
 * Archiving in the web client, in headless Chromium against the real server:
 * the owner archives from the session list, the session leaves the default
 * list and shows under the "Show archived" filter, an open archived session
 * is read-only (for a member watching it too), and unarchiving gives the
 * composer back.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { composer, createSessionInUi, ensureWebBuild, eventually, launchBrowser, sendInUi, shownMessages, signUp, storedToken } from "../support/browser.js";
import { api, uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  return page;
}

beforeAll(async () => {
  const [, database, b] = await Promise.all([ensureWebBuild(), createTestDatabase(4), launchBrowser()]);
  db = database;
  browser = b;
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-web-lifecycle-"));
  server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: "web-lifecycle-secret-0123456789-012345", EMBEDDER: "hash" });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

it("archives from the list, shows archived sessions under the filter read-only, and unarchives", async () => {
  const owner = await newPage();
  const ownerName = uniqueName("own");
  await signUp(owner, server.url, ownerName);
  await createSessionInUi(owner, "Old project");
  await owner.getByLabel("Assistant replies").uncheck();
  await sendInUi(owner, "the final numbers are in");
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("final numbers") && m.seq !== null));
  await createSessionInUi(owner, "Current work");

  // a member watches the session being archived
  const member = await newPage();
  const memberName = uniqueName("mem");
  await signUp(member, server.url, memberName);
  const token = await storedToken(owner);
  const sessions = (await api(server.url, "/api/sessions", { token })).body.sessions as { id: string; title: string }[];
  const old = sessions.find((s) => s.title === "Old project")!;
  expect((await api(server.url, `/api/sessions/${old.id}/members`, { method: "POST", token, body: { username: memberName } })).status).toBe(201);
  await member.getByRole("button", { name: "Join" }).first().click();
  await member.getByRole("heading", { name: "Old project", level: 2 }).waitFor();
  await expect.poll(() => composer(member).isEnabled()).toBe(true);

  await owner.getByRole("button", { name: "Archive session Old project" }).click();
  // gone from the default list, for both
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  await member.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  // the member's open conversation turned read-only, and says so
  await member.getByTestId("archived-note").waitFor();
  expect(await member.getByTestId("archived-note").textContent()).toContain("archived");
  expect(await composer(member).isDisabled()).toBe(true);

  // the filter shows it; opened, it is readable and read-only
  await owner.getByTestId("show-archived").check();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor();
  expect(await owner.locator('[data-testid="session"]').count()).toBe(1);
  await owner.getByRole("button", { name: /Old project/ }).first().click();
  await owner.getByRole("heading", { name: "Old project", level: 2 }).waitFor();
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("final numbers")));
  expect(await composer(owner).isDisabled()).toBe(true);
  expect(await owner.getByTestId("archived-note").textContent()).toContain("unless you unarchive it");

  // unarchive: it leaves the archived list, and both can write again
  await owner.getByRole("button", { name: "Unarchive session Old project" }).click();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  await expect.poll(() => composer(owner).isEnabled()).toBe(true);
  await expect.poll(() => composer(member).isEnabled()).toBe(true);
  await owner.getByTestId("show-archived").uncheck();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor();
  await sendInUi(member, "glad it is back");
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("glad it is back")));
});
