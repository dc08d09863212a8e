/**
 * Named configurations and feedback in the web client, in headless Chromium
 * against the real server process and the OpenAI-compatible double: the
 * admins' editor (validation errors at their fields, retire, default), the
 * owner's picker (the next reply uses the pick), the three ratings with a
 * comment, and the reader's rating and the reply's tokens after a reload.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { createSessionInUi, eventually, screenshot, sendInUi, shownMessages, signUp } from "../support/browser.js";
import { uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

// Each test checks for exceptions in its pages itself.
const web = useWebFixture({ name: "web-configs", llm: true, env: { ASSISTANT_COALESCE_MS: "20" }, viewport: { width: 1280, height: 860 }, checkPageErrors: false });
const adminName = uniqueName("admin");

async function newPage(): Promise<Page> {
  const page = await web.newPage();
  // Retiring asks for confirmation.
  page.on("dialog", (d) => void d.accept());
  return page;
}

async function lastReply(page: Page) {
  return eventually(async () => {
    const r = (await shownMessages(page)).filter((m) => m.role === "assistant").at(-1);
    expect(r?.status).toBe("complete");
    return r!;
  });
}

describe("configurations and feedback in the browser", () => {
  it("lets the admin create a configuration (with errors at their fields), the owner pick it, and rate the reply", async () => {
    const page = await newPage();
    await signUp(page, web.server.url, adminName); // the first account: an admin
    await page.getByRole("button", { name: "Account" }).click();
    await page.getByRole("button", { name: "Configurations" }).click();
    const editor = page.getByTestId("configurations-page");
    await editor.waitFor();
    await editor.locator('[data-config="Default"]').waitFor();

    // out of bounds: each error shows at its field, nothing is created
    await page.getByLabel("Name", { exact: false }).first().fill("Pirate");
    await page.getByLabel(/^System prompt/).fill("Talk like a pirate.");
    await page.getByLabel(/^Temperature/).fill("3");
    await page.getByLabel(/^Top-k/).fill("0");
    await page.getByTestId("config-save").click();
    await expect.poll(() => editor.locator('[data-field="temperature"]').textContent()).toBe("temperature must be between 0 and 2");
    expect(await editor.locator('[data-field="topK"]').textContent()).toBe("topK must be a whole number between 1 and 50");
    expect(await page.getByLabel(/^Temperature/).getAttribute("aria-invalid")).toBe("true");
    await screenshot(page, "configurations-validation");
    expect((await web.db.pool.query("SELECT count(*)::int AS n FROM assistant_configurations")).rows[0].n).toBe(1);

    await page.getByLabel(/^Temperature/).fill("1.2");
    await page.getByLabel(/^Top-k/).fill("4");
    await page.getByLabel(/^Model/).fill("pirate-model");
    await page.getByLabel(/^Description/).fill("Arr.");
    await page.getByTestId("config-save").click();
    await editor.locator('[data-config="Pirate"]').waitFor();
    expect(await editor.locator('[data-field="temperature"]').textContent()).toBe("");
    const { rows: created } = await web.db.pool.query("SELECT id, temperature, top_k, model, active, is_default FROM assistant_configurations WHERE name = 'Pirate'");
    expect(created).toEqual([{ id: expect.any(Number), temperature: expect.closeTo(1.2, 5), top_k: 4, model: "pirate-model", active: true, is_default: false }]);

    // a third one, made the default and then back, and retired
    await page.getByRole("button", { name: "New configuration" }).click();
    await page.getByLabel("Name", { exact: false }).first().fill("Scratch");
    await page.getByLabel(/^System prompt/).fill("Scratch prompt.");
    await page.getByTestId("config-save").click();
    const scratch = editor.locator('[data-config="Scratch"]');
    await scratch.waitFor();
    await scratch.getByRole("button", { name: "Make default" }).click();
    await scratch.locator(".badge-default").waitFor();
    await editor.locator('[data-config="Default"]').getByRole("button", { name: "Make default" }).click();
    await editor.locator('[data-config="Default"] .badge-default').waitFor();
    await scratch.getByRole("button", { name: "Retire" }).click();
    await scratch.locator(".badge-retired").waitFor();
    await screenshot(page, "configurations-editor");
    expect((await web.db.pool.query("SELECT name FROM assistant_configurations WHERE is_default")).rows).toEqual([{ name: "Default" }]);
    expect((await web.db.pool.query("SELECT active FROM assistant_configurations WHERE name = 'Scratch'")).rows).toEqual([{ active: false }]);
    await editor.getByRole("button", { name: "Close", exact: true }).click();
    await editor.waitFor({ state: "detached" });

    // the owner's picker lists active configurations only; the pick applies to the next reply
    await createSessionInUi(page, "Treasure");
    const picker = page.getByTestId("config-picker");
    await expect.poll(() => picker.locator("option").allTextContents()).toEqual(["Default (Default)", "Pirate"]);
    await picker.selectOption({ label: "Pirate" });
    await eventually(async () => {
      const { rows } = await web.db.pool.query("SELECT c.name FROM chat_sessions s JOIN assistant_configurations c ON c.id = s.configuration_id WHERE s.title = 'Treasure'");
      expect(rows).toEqual([{ name: "Pirate" }]);
    });
    web.llm.enqueue({ tokens: ["Arr", ",", " the", " map", "."], usage: { promptTokens: 57, completionTokens: 5 } });
    await sendInUi(page, "Where is the treasure?");
    const reply = await lastReply(page);
    expect(reply.text).toBe("Arr, the map.");
    const sent = web.llm.requests.at(-1)!.body!;
    expect(sent).toMatchObject({ model: "pirate-model", temperature: 1.2 });
    expect(sent.messages[0]!.content).toContain("Talk like a pirate.");

    // neutral with a comment, then a reload shows the rating, the comment and the tokens again
    const message = page.locator(`[data-testid="message"][data-id="${reply.id}"]`);
    await message.getByRole("button", { name: "Comment" }).click();
    await message.getByLabel("Comment on this reply").fill("Fine, but where exactly?");
    await screenshot(page, "feedback-comment");
    await message.getByRole("button", { name: "Save" }).click();
    await eventually(async () => {
      const { rows } = await web.db.pool.query("SELECT rating, comment FROM message_feedback WHERE message_id = $1", [reply.id]);
      expect(rows).toEqual([{ rating: 0, comment: "Fine, but where exactly?" }]);
    });
    await message.getByRole("button", { name: "Bad reply" }).click();
    await eventually(async () => {
      const { rows } = await web.db.pool.query("SELECT rating, comment FROM message_feedback WHERE message_id = $1", [reply.id]);
      expect(rows).toEqual([{ rating: -1, comment: "Fine, but where exactly?" }]);
    });

    await page.reload();
    const again = page.locator(`[data-testid="message"][data-id="${reply.id}"]`);
    await again.waitFor();
    await expect.poll(() => again.getByRole("button", { name: "Bad reply" }).getAttribute("aria-pressed")).toBe("true");
    expect(await again.getByRole("button", { name: "Good reply" }).getAttribute("aria-pressed")).toBe("false");
    expect(await again.getByRole("button", { name: "Okay reply" }).getAttribute("aria-pressed")).toBe("false");
    expect(await again.getByRole("button", { name: "Edit comment" }).getAttribute("title")).toBe("Your comment: Fine, but where exactly?");
    expect(await again.getByTestId("usage").textContent()).toBe("57 + 5 tokens");
    await expect.poll(() => page.getByTestId("config-picker").inputValue()).toBe(String(created[0].id));
    await screenshot(page, "feedback-after-reload");
    expect(web.pageErrors).toEqual([]);
  });

  it("shows a member no editor, and a picker for the sessions they own", async () => {
    const page = await newPage();
    await signUp(page, web.server.url, uniqueName("member"));
    await createSessionInUi(page, "Mine");
    await expect.poll(() => page.getByTestId("config-picker").locator("option").allTextContents()).toEqual(["Default (Default)", "Pirate"]);
    // Once /api/me has answered (the menu says the role), the menu offers no editor
    await page.locator('.account-menu[data-role="member"]').waitFor({ state: "attached" });
    await page.getByRole("button", { name: "Account" }).click();
    await page.getByRole("button", { name: "Export my data" }).waitFor();
    expect(await page.getByRole("button", { name: "Configurations" }).count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  });
});
