/**
 * The usage panel and the admins' analytics page in headless Chromium
 * against the real server (issue 15 item 6): a member sees today's tokens
 * against the quota and a 30-day chart, and when the quota is spent the
 * message is kept and the refusal shown; the member has no analytics entry;
 * an admin's analytics page draws the daily charts (uPlot canvases) and
 * compares the configurations side by side. Screenshots go to
 * docs/screenshots with WEB_SCREENSHOTS_DIR.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { createSessionInUi, eventually, screenshot, sendInUi, shownMessages, signUp, storedToken } from "../support/browser.js";
import { api, uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

const CAP = 20_000;
const adminName = uniqueName("admin");
const memberName = uniqueName("member");
const web = useWebFixture({
  name: "web-analytics",
  env: { OFFLINE_TOKEN_DELAY_MS: "0", QUOTA_DAILY_TOKENS: String(CAP), MAINTENANCE_INTERVAL_MS: "1000" },
  viewport: { width: 1280, height: 900 },
});

const utcDay = (t: Date) => t.toISOString().slice(0, 10);
const daysAgo = (n: number) => utcDay(new Date(Date.now() - n * 86_400_000));

/**
 * Two weeks of earlier days for two configurations, as the roll-up would
 * have written them; none for yesterday, which the job recomputes (from no
 * messages) on each run.
 */
async function seedHistory(memberId: string): Promise<number> {
  const cfg2 = (await web.db.pool.query("INSERT INTO assistant_configurations (name, system_prompt, temperature) VALUES ('terse', 'terse', 0.2) RETURNING id")).rows[0].id as number;
  await web.db.pool.query("UPDATE chat_sessions SET configuration_id = $1 WHERE id = (SELECT id FROM chat_sessions LIMIT 1)", [cfg2]);
  for (let n = 15; n >= 2; n--) {
    for (const [cfg, scale] of [[1, 1], [cfg2, 0.6]] as const) {
      const turns = Math.round((20 + 10 * Math.sin(n / 2)) * scale);
      const pos = Math.round(turns * (cfg === 1 ? 0.3 : 0.4));
      const neg = Math.round(turns * (cfg === 1 ? 0.1 : 0.05));
      await web.db.pool.query(
        `INSERT INTO analytics_daily VALUES ($1, $2, $3, $4, $4, 0, $4, 1, 0, 0, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14, $15)`,
        [daysAgo(n), cfg, Math.ceil(turns / 4), turns, turns * 900, turns * 120, 300 * (2 - scale), 650 * (2 - scale) + n * 10, 2400, 5200, pos, neg, pos / (pos + neg), Math.round(turns * 0.7), 2.4],
      );
    }
  }
  for (let n = 29; n >= 1; n -= 2) {
    await web.db.pool.query("INSERT INTO usage_daily (user_id, day, prompt_tokens, completion_tokens, turns) VALUES ($1, $2, $3, $4, $5)", [memberId, daysAgo(n), 4000 + 300 * (n % 7), 900 + 50 * (n % 5), 5 + (n % 4)]);
  }
  return cfg2;
}

describe("usage and analytics pages", () => {
  let admin: Page;
  let member: Page;
  let cfg2: number;

  it("a member sees today's tokens against the quota and 30 days; the quota spent, the message stays and the refusal shows", async () => {
    admin = await web.newPage();
    await signUp(admin, web.server.url, adminName); // the first account: admin
    member = await web.newPage();
    await signUp(member, web.server.url, memberName);
    const memberToken = await storedToken(member);
    const me = (await api(web.server.url, "/api/me", { token: memberToken })).body;
    expect(me.role).toBe("member");

    await createSessionInUi(member, "Budget talk");
    await sendInUi(member, "what did we decide about the budget?");
    await eventually(async () => {
      const shown = await shownMessages(member);
      expect(shown.some((m) => m.role === "assistant" && m.status === "complete")).toBe(true);
    }, 15_000);
    cfg2 = await seedHistory(me.user.id);
    const today = (await api(web.server.url, "/api/me/usage", { token: memberToken })).body.today.totalTokens as number;
    expect(today).toBeGreaterThan(0);

    await member.getByRole("button", { name: "Account" }).click();
    await expect.poll(() => member.getByRole("button", { name: "Usage" }).isVisible()).toBe(true);
    // Members have no analytics entry (the role is asked of the server when the menu is built).
    await member.locator('.account-menu[data-role="member"]').waitFor({ state: "attached" });
    expect(await member.getByRole("button", { name: "Analytics" }).count()).toBe(0);
    await member.getByRole("button", { name: "Usage" }).click();
    const panel = member.getByRole("dialog", { name: "Your usage" });
    await panel.locator(".usage-headline").waitFor();
    expect(await panel.locator(".usage-headline").textContent()).toContain(`of ${(CAP / 1000).toFixed(1)}k tokens today`);
    expect(Number(await panel.locator("meter").getAttribute("data-used"))).toBe(today);
    await panel.locator('[data-chart^="Tokens per day"] canvas').first().waitFor();
    await screenshot(member, "usage");
    await member.keyboard.press("Escape");
    await panel.waitFor({ state: "detached" });

    // The admin caps the member at what they have spent: the next message is kept, with no reply.
    const adminToken = await storedToken(admin);
    expect((await api(web.server.url, `/api/admin/users/${me.user.id}/quota`, { method: "PUT", token: adminToken, body: { dailyTokens: today } })).status).toBe(200);
    await sendInUi(member, "one more question");
    // The refusal shows on the message it refused (the server tells it before the message's ack).
    await member.locator('[data-testid="message"]', { hasText: "one more question" }).getByText(/The assistant could not reply: daily token quota of \d+ reached/).waitFor();
    const shown = await shownMessages(member);
    expect(shown.filter((m) => m.role === "user").map((m) => m.text)).toContain("one more question");
    expect(shown.filter((m) => m.role === "assistant")).toHaveLength(1);
    await member.getByRole("button", { name: "Account" }).click();
    await member.getByRole("button", { name: "Usage" }).click();
    await member.locator('.usage-today[data-state="spent"]').waitFor();
    expect(await member.locator(".usage-today").textContent()).toContain("Your quota is spent");
  });

  it("an admin's analytics page charts turns, tokens, TTFT p95 and satisfaction per day and compares the configurations", async () => {
    // Today's rows come from the roll-up job (every second here): the reply, and the refused message (configuration 0).
    await eventually(async () => {
      const r = await web.db.pool.query("SELECT config_id, assistant_turns, user_messages FROM analytics_daily WHERE day = $1 ORDER BY config_id", [utcDay(new Date())]);
      expect(r.rows).toEqual([
        { config_id: 0, assistant_turns: 0, user_messages: 1 },
        { config_id: 1, assistant_turns: 1, user_messages: 1 },
      ]);
    }, 15_000);
    await admin.reload();
    await admin.getByRole("button", { name: "Account" }).click();
    await admin.getByRole("button", { name: "Analytics" }).click();
    const page = admin.getByRole("dialog", { name: "Analytics" });
    await page.locator("#analytics-comparison").waitFor();
    for (const title of ["Assistant turns per day", "Tokens per day", "Time to first token, p95", "Satisfaction"]) {
      expect(await page.locator(`[data-chart^="${title}"] canvas`).count(), title).toBeGreaterThan(0);
    }
    const headers = await page.locator("#analytics-comparison thead th").allTextContents();
    // Configuration 0 holds today's refused message (no configuration answered it); the others go by their names.
    expect(headers).toEqual(["Metric", "No configuration", "Default", "terse"]);
    expect(await page.locator(`#analytics-comparison thead th[data-config="${cfg2}"]`).textContent()).toBe("terse");
    // The charts' legends name them too.
    await page.locator(".chart-grid", { hasText: "terse" }).first().waitFor();
    const turnsRow = await page.locator("#analytics-comparison tbody tr", { hasText: "Assistant turns" }).locator("td").allTextContents();
    const expected = await web.db.pool.query(
      "SELECT config_id, sum(assistant_turns)::int AS n FROM analytics_daily WHERE day BETWEEN $1 AND $2 GROUP BY config_id ORDER BY config_id",
      [daysAgo(29), utcDay(new Date())],
    );
    expect(turnsRow).toEqual(expected.rows.map((r) => String(r.n)));
    await screenshot(admin, "analytics");

    // A shorter range; a reversed one is refused with the server's message.
    await page.getByLabel("From").fill(daysAgo(6));
    await page.getByRole("button", { name: "Show" }).click();
    await page.locator("#analytics-comparison").waitFor();
    await page.getByLabel("From").fill(daysAgo(-0));
    await page.getByLabel("To").fill(daysAgo(3));
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByText("Could not load the analytics").waitFor();
  });
});
