/**
 * The admins' analytics page: for a range of UTC days, charts per day
 * (assistant turns, tokens, time to first token p95, satisfaction), one line
 * per configuration, and the configurations side by side in one table.
 */
import { type AnalyticsReport, type ConfigurationTotals, fetchAnalytics } from "@memchat/client";
import type { Auth } from "./api.js";
import { type DailyChart, dailyChart, formatMs, formatShare, formatTokens, PALETTE } from "./charts.js";
import { h } from "./dom.js";
import { describe } from "./format.js";
import { openOverlayPage } from "./overlay-page.js";

const utcDay = (t: Date) => t.toISOString().slice(0, 10);
const addDays = (day: string, n: number) => utcDay(new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000));

/** A configuration as the page names it: its name, or its id when it has none any more (deleted). */
export const configLabel = (id: number, name: string | null = null): string =>
  id === 0 ? "No configuration" : name ?? `Configuration #${id}`;

export function openAnalyticsPage(auth: Auth): void {
  let charts: DailyChart[] = [];
  const dropCharts = () => {
    for (const c of charts) c.destroy();
    charts = [];
  };
  const page = openOverlayPage("analytics-page", "Analytics", dropCharts);
  const to = utcDay(new Date());
  const fromInput = h("input", { type: "date", id: "analytics-from", value: addDays(to, -29), max: to, required: true });
  const toInput = h("input", { type: "date", id: "analytics-to", value: to, max: to, required: true });
  const results = h("div", { class: "analytics-results", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "analytics-range", onsubmit: (e: Event) => (e.preventDefault(), void load()) },
    h("label", { for: "analytics-from" }, "From"),
    fromInput,
    h("label", { for: "analytics-to" }, "To"),
    toInput,
    h("button", { type: "submit", class: "btn btn-primary" }, "Show"),
    h("span", { class: "page-note" }, "UTC days; figures are rolled up by the maintenance job, so today's lag a little."),
  );
  page.body.append(form, results);
  /** Counts the loads: an answer to an earlier range that comes after a later one's is not shown. */
  let loads = 0;
  void load();

  async function load(): Promise<void> {
    const mine = ++loads;
    dropCharts();
    results.replaceChildren(h("p", { class: "page-note" }, "Loading…"));
    try {
      const report = await fetchAnalytics("", auth.token, { from: fromInput.value, to: toInput.value });
      if (mine === loads) render(report);
    } catch (err) {
      if (mine === loads) results.replaceChildren(h("p", { class: "page-error", role: "alert" }, `Could not load the analytics: ${describe(err)}`));
    }
  }

  function render(r: AnalyticsReport): void {
    const days: string[] = [];
    for (let d = r.from; d <= r.to; d = addDays(d, 1)) days.push(d);
    const configs = r.configurations.map((c) => c.configId);
    const names = new Map(r.configurations.map((c) => [c.configId, c.name]));
    if (r.days.length === 0) {
      results.replaceChildren(h("p", { class: "page-note analytics-empty" }, "No activity in these days yet."));
      return;
    }
    const cell = new Map(r.days.map((row) => [`${row.day} ${row.configId}`, row]));
    const per = (f: (row: AnalyticsReport["days"][number]) => number | null, zeroWhenIdle: boolean) =>
      configs.map((id, i) => ({
        label: configLabel(id, names.get(id) ?? null),
        color: PALETTE[i % PALETTE.length]!,
        values: days.map((d) => {
          const row = cell.get(`${d} ${id}`);
          return row ? f(row) : zeroWhenIdle ? 0 : null;
        }),
      }));
    charts = [
      dailyChart("Assistant turns per day", days, per((x) => x.assistantTurns, true), (v) => String(Math.round(v))),
      dailyChart("Tokens per day (prompt + completion)", days, per((x) => x.promptTokens + x.completionTokens, true), formatTokens),
      dailyChart("Time to first token, p95", days, per((x) => x.ttftP95Ms, false), formatMs),
      dailyChart("Satisfaction (positive share of rated replies)", days, per((x) => x.satisfaction, false), formatShare),
    ];
    results.replaceChildren(
      h("div", { class: "chart-grid" }, ...charts.map((c) => c.el)),
      h("h2", { class: "page-subtitle" }, `Configurations compared, ${r.from} to ${r.to}`),
      comparisonTable(r.configurations),
    );
  }
}

function comparisonTable(totals: ConfigurationTotals[]): HTMLElement {
  const opt = (v: number | null, f: (n: number) => string) => (v === null ? "–" : f(v));
  const rows: [string, (c: ConfigurationTotals) => string][] = [
    ["Days active", (c) => String(c.days)],
    ["User messages", (c) => String(c.userMessages)],
    ["Assistant turns", (c) => String(c.assistantTurns)],
    ["Failed / cancelled / interrupted", (c) => `${c.turnsFailed} / ${c.turnsCancelled} / ${c.turnsInterrupted}`],
    ["Prompt tokens", (c) => formatTokens(c.promptTokens)],
    ["Completion tokens", (c) => formatTokens(c.completionTokens)],
    ["TTFT p50 (daily, turn-weighted)", (c) => opt(c.meanDailyTtftP50Ms, formatMs)],
    ["TTFT p95 (daily, turn-weighted)", (c) => opt(c.meanDailyTtftP95Ms, formatMs)],
    ["Latency p95 (daily, turn-weighted)", (c) => opt(c.meanDailyLatencyP95Ms, formatMs)],
    ["Feedback + / − / neutral", (c) => `${c.feedbackPositive} / ${c.feedbackNegative} / ${c.feedbackNeutral}`],
    ["Satisfaction", (c) => opt(c.satisfaction, formatShare)],
    ["Turns using memory", (c) => opt(c.memoryShare, formatShare)],
    ["Mean context items", (c) => opt(c.meanContextItems, (n) => n.toFixed(2))],
  ];
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "comparison-table", id: "analytics-comparison" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Metric"), ...totals.map((c) => h("th", { scope: "col", "data-config": c.configId }, configLabel(c.configId, c.name))))),
      h("tbody", {}, ...rows.map(([label, f]) => h("tr", {}, h("th", { scope: "row" }, label), ...totals.map((c) => h("td", {}, f(c)))))),
    ),
  );
}
