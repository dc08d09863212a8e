/**
 * Passages of shared files on assistant replies in the web client, in
 * headless Chromium against the real server process: a PDF attached by the
 * button is read; the reply to a question about it shows a chip naming the
 * file and page, live and, after a reload, in the reply's context.
 */
import { afterAll, expect, it } from "vitest";
import { composer, createSessionInUi, eventually, screenshot, shownMessages, signUp } from "../support/browser.js";
import { uniqueName } from "../support/client.js";
import { fillerPages, writePdf } from "../support/pdf-writer.js";
import { useWebFixture } from "../support/web-fixture.js";

const web = useWebFixture({ name: "web-docs", llm: true, env: { INDEXER_POLL_MS: "100" }, timeoutMs: 20_000, checkPageErrors: false });

afterAll(() => {
  expect(web.pageErrors).toEqual([]);
});

it("shows the file and page a reply drew on, live and from history", async () => {
  const page = await web.newPage();
  await signUp(page, web.server.url, uniqueName("doc"));
  await createSessionInUi(page, "Boat manual");
  const pdf = writePdf(fillerPages(3, 20, (p) => (p === 1 ? "The spare propeller is stored under the aft bench." : undefined)));
  await page.getByTestId("attach-input").setInputFiles({ name: "boat manual.pdf", mimeType: "application/pdf", buffer: pdf });
  await page.locator('[data-testid="tray-item"][data-state="ready"]').waitFor();
  // The file is read and indexed in the background; wait for it so the answer does not depend on timing.
  await eventually(async () => {
    const { rows } = await web.db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM attachment_passages p JOIN attachments a ON a.id = p.attachment_id WHERE a.name = 'boat manual.pdf' AND p.indexed_at IS NOT NULL",
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
  }, 60_000, 200);

  web.llm.enqueue({ tokens: ["Under", " the", " aft", " bench", "."] });
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
