/**
 * Daily charts on uPlot (a small canvas chart library): one x value per UTC
 * day, one series per line or bar set. Sized to their box and redrawn when
 * it changes size.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom.js";

export interface DailySeries {
  label: string;
  /** One value per day; null leaves a gap. */
  values: (number | null)[];
  color: string;
  kind?: "line" | "bars";
}

export interface DailyChart {
  el: HTMLElement;
  destroy(): void;
}

// Distinct on light and dark backgrounds; configurations take them in order.
export const PALETTE = ["#4f46e5", "#16a34a", "#d97706", "#db2777", "#0891b2", "#7c3aed", "#65a30d", "#dc2626"];

const dayToSeconds = (day: string) => Date.parse(`${day}T00:00:00Z`) / 1000;

/** A chart of `series` over `days` (YYYY-MM-DD), titled, with the value format of the y axis. */
export function dailyChart(title: string, days: string[], series: DailySeries[], format: (v: number) => string = String): DailyChart {
  const box = h("div", { class: "chart-box", "data-chart": title });
  const el = h("figure", { class: "chart" }, h("figcaption", { class: "chart-title" }, title), box);
  const css = getComputedStyle(document.documentElement);
  const axisColor = css.getPropertyValue("--muted").trim() || "#5d6679";
  const gridColor = css.getPropertyValue("--border").trim() || "#e2e5ee";
  const opts: uPlot.Options = {
    width: 600,
    height: 220,
    scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1) * 1.1] } },
    axes: [
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } },
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, values: (_u, vals) => vals.map((v) => format(v)), size: 60 },
    ],
    series: [
      { value: (_u, v) => (v === null ? "" : new Date(v * 1000).toISOString().slice(0, 10)) },
      ...series.map((s) => {
        const base = { label: s.label, stroke: s.color, width: 2, value: (_u: uPlot, v: number | null) => (v === null ? "–" : format(v)) };
        if (s.kind !== "bars") return { ...base, points: { show: days.length <= 45 } };
        // Bars suit one series (several would overlap): lines compare.
        return { ...base, fill: `${s.color}cc`, points: { show: false }, paths: uPlot.paths.bars!({ size: [0.6, 40] }) };
      }),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const data: uPlot.AlignedData = [days.map(dayToSeconds), ...series.map((s) => s.values)];
  const plot = new uPlot(opts, data, box);
  const resize = new ResizeObserver(() => {
    const w = Math.max(240, Math.floor(box.clientWidth));
    if (Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height: 220 });
  });
  resize.observe(box);
  return {
    el,
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}

export const formatTokens = (v: number): string =>
  Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : String(Math.round(v));
export const formatMs = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
export const formatShare = (v: number): string => `${Math.round(v * 100)}%`;
