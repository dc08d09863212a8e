/**
 * The usage panel every user has: today's tokens against the daily quota
 * (with when it resets) and the last 30 days as a chart.
 */
import { fetchUsage, type UsageReport } from "@memchat/client";
import type { Auth } from "./api.js";
import { dailyChart, formatTokens, PALETTE } from "./charts.js";
import { h } from "./dom.js";
import { describe } from "./format.js";
import { openOverlayPage } from "./overlay-page.js";

export function openUsagePanel(auth: Auth): void {
  const page = openOverlayPage("usage-page", "Your usage", () => chart?.destroy());
  let chart: ReturnType<typeof dailyChart> | undefined;
  page.body.append(h("p", { class: "page-note" }, "Loading…"));
  fetchUsage("", auth.token).then(
    (usage) => {
      page.body.replaceChildren(...renderUsage(usage));
      chart = dailyChart(
        "Tokens per day, last 30 days (UTC)",
        usage.days.map((d) => d.day),
        [{ label: "Tokens", values: usage.days.map((d) => d.totalTokens), color: PALETTE[0]!, kind: "bars" }],
        formatTokens,
      );
      page.body.append(chart.el);
    },
    (err) => page.body.replaceChildren(h("p", { class: "page-error", role: "alert" }, `Could not load your usage: ${describe(err)}`)),
  );
}

function renderUsage(u: UsageReport): HTMLElement[] {
  const used = u.today.totalTokens;
  const cap = u.quota.dailyTokens;
  const reset = new Date(u.quota.resetAt);
  const resetText = `${reset.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}`;
  const headline =
    cap === null
      ? h("p", { class: "usage-headline" }, h("strong", {}, formatTokens(used)), " tokens today · no daily limit")
      : h("p", { class: "usage-headline" }, h("strong", {}, formatTokens(used)), ` of ${formatTokens(cap)} tokens today`);
  const meter =
    cap === null
      ? null
      : h("meter", {
          class: "usage-meter",
          min: 0,
          max: Math.max(cap, 1),
          value: Math.min(used, cap),
          high: cap * 0.8,
          optimum: 0,
          "aria-label": "Share of today's quota used",
          "data-used": used,
          "data-cap": cap,
        });
  const spent = cap !== null && used >= cap;
  const details = h(
    "p",
    { class: "page-note" },
    `${u.today.turns} ${u.today.turns === 1 ? "reply" : "replies"} today (${formatTokens(u.today.promptTokens)} prompt, ${formatTokens(u.today.completionTokens)} completion). `,
    cap === null ? "" : spent ? `Your quota is spent: the assistant replies again after ${resetText}.` : `${formatTokens(u.quota.remainingTokens ?? 0)} left; the quota resets ${resetText}.`,
  );
  return [h("section", { class: "usage-today", "data-state": spent ? "spent" : "ok" }, headline, meter, details)];
}
