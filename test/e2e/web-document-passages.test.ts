/**
 * Passages of shared files on assistant replies in the web client, in
 * headless Chromium against the real server process: a PDF attached by the
 * button is read; the reply to a question about it shows a chip naming the
 * file and page, live and, after a reload, in the reply's context.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { composer, createSessionInUi, ensureWebBuild, eventually, launchBrowser, screenshot, shownMessages, signUp } from "../support/browser.js";
import { uniqueName } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { OpenAiLlmDouble } from "../support/openai-llm-double.js";
import { fillerPages, writePdf } from "../support/pdf-writer.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let browser: Browser;
let llm: OpenAiLlmDouble;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  llm = new OpenAiLlmDouble();
  const [, database, b, started] = await Promise.all([ensureWebBuild(), createTestDatabase(4), launchBrowser(), llm.start()]);
  db = database;
  browser = b;
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-web-docs-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "web-docs-secret-0123456789-0123456789-0123",
    EMBEDDER: "hash",
    INDEXER_POLL_MS: "100",
    OPENAI_BASE_URL: started.url,
    OPENAI_API_KEY: "test-key",
    OPENAI_MODEL: "double-model",
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await server?.stop();
  await llm?.close();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  expect(pageErrors).toEqual([]);
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  return page;
}

it("shows the file and page a reply drew on, live and from history", async () => {
  const page = await newPage();
  await signUp(page, server.url, uniqueName("doc"));
  await createSessionInUi(page, "Boat manual");
  const pdf = writePdf(fillerPages(3, 20, (p) => (p === 1 ? "The spare propeller is stored under the aft bench." : undefined)));
  await page.getByTestId("attach-input").setInputFiles({ name: "boat manual.pdf", mimeType: "application/pdf", buffer: pdf });
  await page.locator('[data-testid="tray-item"][data-state="ready"]').waitFor();
  // The file is read and indexed in the background; wait for it so the answer does not depend on timing.
  await eventually(async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM attachment_passages p JOIN attachments a ON a.id = p.attachment_id WHERE a.name = 'boat manual.pdf' AND p.indexed_at IS NOT NULL",
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
  }, 60_000, 200);

  llm.enqueue({ tokens: ["Under", " the", " aft", " bench", "."] });
  await composer(page).fill("Where is the spare propeller?");
  await composer(page).press("Enter");
  const chip = page.locator(".passage-chip").first();
  await chip.waitFor();
  expect(await chip.textContent()).toContain("boat manual.pdf · p. 2");
  await eventually(async () => expect((await shownMessages(page)).filter((m) => m.role === "assistant").at(-1)?.status).toBe("complete"));
  await screenshot(page, "document-passages");

  // From history: the reply's context brings its passages back.
  await page.reload();
  await page.getByRole("heading", { name: "Boat manual", level: 2 }).waitFor();
  await page.getByRole("button", { name: /Show context/ }).last().click();
  const panel = page.locator(".context-panel");
  await panel.waitFor();
  expect(await panel.textContent()).toContain("boat manual.pdf, page 2");
  expect(await page.locator(".passage-chip").first().textContent()).toContain("boat manual.pdf · p. 2");
});
