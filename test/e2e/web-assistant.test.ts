/**
 * Assistant replies in the web client, in headless Chromium against the real
 * server process, with the OpenAI-compatible double streaming on loopback:
 * token-by-token display, stop, resume after a reload, a restart mid-reply,
 * regenerate, feedback and the context a reply used.
 */
import type { Page } from "playwright-core";
import { beforeEach, describe, expect, it } from "vitest";
import { createSessionInUi, eventually, pageWidth, screenshot, sendInUi, shownMessages, signUp } from "../support/browser.js";
import { uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

const web = useWebFixture({
  name: "web-assistant",
  fixedPort: true,
  llm: true,
  env: { INDEXER_POLL_MS: "100", ASSISTANT_COALESCE_MS: "20", SHUTDOWN_TIMEOUT_MS: "2000", RATE_TURN_BURST: "100" },
});

const words = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${i === 0 ? "" : " "}${prefix}${i + 1}`);

async function reply(page: Page, index = -1) {
  const replies = (await shownMessages(page)).filter((m) => m.role === "assistant");
  const r = replies.at(index);
  if (!r) throw new Error("no reply shown yet");
  return r;
}

async function row(id: number) {
  const { rows } = await web.db.pool.query<{ content: string; status: string }>("SELECT content, status FROM chat_messages WHERE id = $1", [id]);
  return rows[0];
}

// The recorder below runs in the page; the test program has no DOM types.
declare const document: { querySelectorAll(selector: string): ArrayLike<ShownReply> };
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: unknown, options: { subtree: boolean; childList: boolean; characterData: boolean }): void;
}
interface ShownReply {
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): { textContent: string | null } | null;
}
type Recorded = { texts: [number, string][] };

/**
 * Records, in the page and from its first moment, every text the newest reply
 * shows as it changes: a poll from here, slowed by a busy machine, could miss pieces.
 */
function recordReplyTexts(): void {
  const recorded: Recorded = { texts: [] };
  (globalThis as unknown as { recordedReplies: Recorded }).recordedReplies = recorded;
  new MutationObserver(() => {
    const replies = document.querySelectorAll('[data-testid="message"].msg-assistant');
    const last = replies[replies.length - 1];
    if (!last) return;
    const entry: [number, string] = [Number(last.dataset.id), (last.querySelector(".msg-body")?.textContent ?? "").replace("Thinking…", "")];
    const before = recorded.texts.at(-1);
    if (!before || before[0] !== entry[0] || before[1] !== entry[1]) recorded.texts.push(entry);
  }).observe(document, { subtree: true, childList: true, characterData: true });
}

/** A page that records the replies it shows (after every load, a reload included). */
async function newPage(viewport?: { width: number; height: number }): Promise<Page> {
  const page = await web.newPage(viewport);
  await page.addInitScript(recordReplyTexts);
  return page;
}

/** Waits for the reply to be final; every text it showed on the way must extend the one before. */
async function watchReply(page: Page, timeoutMs = 15_000) {
  const final = await eventually(
    async () => {
      const r = await reply(page);
      expect(r.status).not.toBe("streaming");
      return r;
    },
    timeoutMs,
    40,
  );
  const recorded = await page.evaluate(() => (globalThis as unknown as { recordedReplies: Recorded }).recordedReplies.texts);
  const samples = recorded.filter(([id]) => id === final.id).map(([, text]) => text);
  for (let i = 1; i < samples.length; i++) expect(samples[i]!.startsWith(samples[i - 1]!), `"${samples[i]}" does not extend "${samples[i - 1]}"`).toBe(true);
  return { final, samples };
}

beforeEach(() => web.llm.reset());

describe("assistant replies in the web client", () => {
  it("streams a reply piece by piece into the live region, takes a thumbs-up, and shows the context it used", async () => {
    const page = await newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Pets");
    await page.getByLabel("Assistant replies").uncheck();
    await sendInUi(page, "My dog is called Biscuit and she loves the beach.");
    const memory = await eventually(async () => {
      const [m] = await shownMessages(page);
      expect(m?.status).toBe("complete");
      return m!;
    });
    // The reply in the other session should find this message: wait until it is indexed.
    await eventually(async () => {
      const { rowCount } = await web.db.pool.query("SELECT 1 FROM message_index_jobs WHERE message_id = $1", [memory.id]);
      expect(rowCount).toBe(0);
    });

    await createSessionInUi(page, "Questions");
    web.llm.enqueue({ tokens: ["Your", " dog", " is", " called", " Biscuit", "."], tokenDelayMs: 150 });
    await sendInUi(page, "What is my dog called?");
    const { final, samples } = await watchReply(page);
    expect(final.text).toBe("Your dog is called Biscuit.");
    expect(final.status).toBe("complete");
    // Seen growing, not only whole: at least a few partial texts before the last.
    expect(samples.filter((s) => s && s !== final.text).length).toBeGreaterThanOrEqual(3);
    expect(await row(final.id)).toEqual({ content: "Your dog is called Biscuit.", status: "complete" });
    await page.locator('[aria-live="polite"]').filter({ hasText: "Your dog is called Biscuit." }).first().waitFor();
    expect(await page.locator('[aria-busy="true"]').count()).toBe(0);
    expect(await page.locator("form.composer").getByRole("button", { name: "Stop" }).isVisible()).toBe(false);

    const up = page.getByRole("button", { name: "Good reply" });
    await up.click();
    await eventually(async () => expect(await up.getAttribute("aria-pressed")).toBe("true"));
    await eventually(async () => {
      const { rows } = await web.db.pool.query("SELECT rating FROM message_feedback WHERE message_id = $1", [final.id]);
      expect(rows).toEqual([{ rating: 1 }]);
    });

    const { rows: used } = await web.db.pool.query<{ context_message_id: string }>(
      "SELECT context_message_id FROM message_context WHERE message_id = $1 ORDER BY rank",
      [final.id],
    );
    expect(used.map((u) => Number(u.context_message_id))).toContain(memory.id);
    await page.getByRole("button", { name: /Show context/ }).click();
    const panel = page.locator(".context-panel");
    await panel.waitFor();
    expect(await panel.locator("li").count()).toBe(used.length);
    expect(await panel.locator(".score").first().textContent()).toMatch(/^-?\d\.\d\d$/);
    expect(await page.getByRole("button", { name: "Hide context" }).getAttribute("aria-expanded")).toBe("true");
    await screenshot(page, "conversation");
  });

  it("stops a reply with the Stop button and keeps exactly the text that was shown", async () => {
    const page = await newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Stop me");
    web.llm.enqueue({ tokens: words(80, "w"), tokenDelayMs: 80 });
    await sendInUi(page, "Count slowly, please.");
    await eventually(async () => expect((await reply(page)).text).toContain("w3"));
    const stop = page.locator("form.composer").getByRole("button", { name: "Stop" });
    await stop.click();
    const final = await eventually(async () => {
      const r = await reply(page);
      expect(r.status).toBe("cancelled");
      return r;
    });
    expect(await web.llm.requests[0]!.finished).toBe("client-closed");
    const stored = await row(final.id);
    expect(stored).toEqual({ content: final.text, status: "cancelled" });
    expect(words(80, "w").join("").startsWith(final.text)).toBe(true);
    expect(final.text.length).toBeLessThan(words(80, "w").join("").length);
    await eventually(async () => expect(await stop.isVisible()).toBe(false));
    await page.locator(".badge-cancelled").filter({ hasText: "stopped" }).waitFor();
  });

  it("picks a reply up where it is after a reload, without repeating text", async () => {
    const page = await newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Reload me");
    const tokens = words(30, "r");
    web.llm.enqueue({ tokens, tokenDelayMs: 100 });
    await sendInUi(page, "Tell me thirty things.");
    await eventually(async () => expect((await reply(page)).text).toContain("r5"));
    await page.reload();
    await page.getByRole("heading", { name: "Reload me", level: 2 }).waitFor();
    const { final } = await watchReply(page);
    expect(final.text).toBe(tokens.join(""));
    expect(final.status).toBe("complete");
    expect(await row(final.id)).toEqual({ content: tokens.join(""), status: "complete" });
    expect((await shownMessages(page)).map((m) => m.role)).toEqual(["user", "assistant"]);
  });

  it("ends a reply cut by a server restart without duplicated text, and regenerates it", { timeout: 120_000 }, async () => {
    const page = await newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Restart me");
    const tokens = words(60, "x");
    web.llm.enqueue({ tokens, tokenDelayMs: 100 });
    await sendInUi(page, "Say sixty things.");
    await eventually(async () => expect((await reply(page)).text).toContain("x4"));

    expect(await web.server.stop("SIGTERM")).toBe(0);
    await web.start();
    const conn = page.getByTestId("connection");
    await eventually(async () => expect(await conn.getAttribute("data-state")).toBe("online"), 20_000);
    const cut = await eventually(async () => {
      const r = await reply(page);
      expect(["interrupted", "complete"]).toContain(r.status);
      expect(await row(r.id)).toEqual({ content: r.text, status: r.status });
      return r;
    });
    expect(tokens.join("").startsWith(cut.text)).toBe(true);
    expect(cut.text).toContain("x4");
    expect((await shownMessages(page)).map((m) => m.role)).toEqual(["user", "assistant"]);

    web.llm.enqueue({ tokens: ["Second", " try", "."], tokenDelayMs: 30 });
    await page.getByRole("button", { name: "Regenerate" }).click();
    await eventually(async () => {
      const shown = await shownMessages(page);
      expect(shown.map((m) => [m.role, m.status, m.text])).toEqual([
        ["user", "complete", "Say sixty things."],
        ["assistant", cut.status, cut.text],
        ["assistant", "complete", "Second try."],
      ]);
    });
  });

  it("looks right on a phone, reply and all", async () => {
    const page = await newPage({ width: 390, height: 844 });
    await signUp(page, web.server.url, uniqueName("phone"));
    await createSessionInUi(page, "Weekend in Porto");
    web.llm.enqueue({ tokens: ["Try", " the", " francesinha", " at", " Café", " Santiago", " and", " walk", " along", " the", " Ribeira", "."], tokenDelayMs: 10 });
    await sendInUi(page, "Where should we eat on Saturday?");
    const { final } = await watchReply(page);
    expect(final.status).toBe("complete");
    expect(await pageWidth(page)).toBeLessThanOrEqual(390);
    await screenshot(page, "phone-conversation");
  });
});
