/**
 * k6's end-of-test metrics and thresholds (v0.48): aggregate each metric's
 * samples by type, select sub-metrics by tags (`name{tag:value}`), and
 * evaluate `aggregation operator number` expressions the way k6 does,
 * including its quirks: an empty Trend aggregates to 0, an empty Rate has no
 * `rate` (the threshold errors and k6 does not fail the run on it), a
 * threshold on an undeclared metric or with the wrong aggregation refuses to
 * start the test.
 */
import type { MetricDecl, MetricType, Sample } from "./protocol.js";

export const BUILTIN_METRICS: MetricDecl[] = [
  { name: "checks", type: "rate", isTime: false },
  { name: "iterations", type: "counter", isTime: false },
  { name: "iteration_duration", type: "trend", isTime: true },
  { name: "http_reqs", type: "counter", isTime: false },
  { name: "http_req_duration", type: "trend", isTime: true },
  { name: "http_req_failed", type: "rate", isTime: false },
  { name: "ws_sessions", type: "counter", isTime: false },
  { name: "ws_connecting", type: "trend", isTime: true },
  { name: "ws_session_duration", type: "trend", isTime: true },
  { name: "ws_msgs_sent", type: "counter", isTime: false },
  { name: "ws_msgs_received", type: "counter", isTime: false },
];

const AGGREGATIONS: Record<MetricType, RegExp> = {
  counter: /^(count|rate)$/,
  gauge: /^(value)$/,
  rate: /^(rate)$/,
  trend: /^(avg|min|max|med|p\(\d+(\.\d+)?\))$/,
};

export interface ParsedKey {
  metric: string;
  tags: Record<string, string>;
}

export function parseKey(key: string): ParsedKey {
  const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key.trim());
  if (!m) throw new Error(`invalid threshold key '${key}'`);
  const tags: Record<string, string> = {};
  if (m[2] !== undefined) {
    for (const part of m[2].split(",")) {
      const i = part.indexOf(":");
      if (i < 1) throw new Error(`invalid tag filter '${part}' in '${key}'`);
      tags[part.slice(0, i).trim()] = part.slice(i + 1).trim().replace(/^"(.*)"$/, "$1");
    }
  }
  return { metric: m[1]!.trim(), tags };
}

interface Expr {
  agg: string;
  op: string;
  value: number;
}

export function parseExpr(text: string): Expr {
  const m = /^\s*(count|rate|value|avg|min|max|med|p\(\s*\d+(?:\.\d+)?\s*\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!m) throw new Error(`invalid threshold expression '${text}'`);
  return { agg: m[1]!.replace(/\s+/g, ""), op: m[2]!, value: Number(m[3]) };
}

function percentile(sorted: number[], pct: number): number {
  if (sorted.length === 0) return 0;
  if (sorted.length === 1) return sorted[0]!;
  const i = pct * (sorted.length - 1);
  const lo = sorted[Math.floor(i)]!;
  const hi = sorted[Math.ceil(i)]!;
  return lo + (hi - lo) * (i - Math.floor(i));
}

/** The aggregate k6 would compare, or undefined where k6 has none (an empty Rate). */
export function aggregate(type: MetricType, values: number[], agg: string, durationS: number): number | undefined {
  switch (type) {
    case "counter": {
      const sum = values.reduce((a, b) => a + b, 0);
      return agg === "count" ? sum : sum / durationS;
    }
    case "gauge":
      return values.length ? values[values.length - 1] : 0;
    case "rate":
      return values.length ? values.filter((v) => v !== 0).length / values.length : undefined;
    case "trend": {
      const sorted = [...values].sort((a, b) => a - b);
      if (agg === "avg") return sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0;
      if (agg === "min") return sorted[0] ?? 0;
      if (agg === "max") return sorted[sorted.length - 1] ?? 0;
      if (agg === "med") return percentile(sorted, 0.5);
      return percentile(sorted, Number(/p\((.*)\)/.exec(agg)![1]) / 100);
    }
  }
}

function compare(lhs: number, op: string, rhs: number): boolean {
  switch (op) {
    case "<":
      return lhs < rhs;
    case "<=":
      return lhs <= rhs;
    case ">":
      return lhs > rhs;
    case ">=":
      return lhs >= rhs;
    case "!=":
      return lhs !== rhs;
    default:
      return lhs === rhs;
  }
}

export interface ThresholdResult {
  key: string;
  expr: string;
  /** The aggregate compared; undefined when k6 had none to compare. */
  actual: number | undefined;
  samples: number;
  ok: boolean;
}

/** Refuses what k6 refuses before a test starts. */
export function validateThresholds(thresholds: Record<string, string[]>, metrics: Map<string, MetricDecl>): void {
  for (const [key, exprs] of Object.entries(thresholds)) {
    const { metric } = parseKey(key);
    const decl = metrics.get(metric);
    if (!decl) throw new Error(`invalid threshold defined on ${key}; reason: no metric name "${metric}" found`);
    for (const e of exprs) {
      const { agg } = parseExpr(e);
      if (!AGGREGATIONS[decl.type].test(agg)) throw new Error(`invalid threshold '${e}' on ${key}: ${agg} is not an aggregation of a ${decl.type}`);
    }
  }
}

export function matches(s: Sample, key: ParsedKey): boolean {
  if (s.metric !== key.metric) return false;
  for (const [k, v] of Object.entries(key.tags)) if (s.tags[k] !== v) return false;
  return true;
}

export function evaluateThresholds(
  thresholds: Record<string, string[]>,
  metrics: Map<string, MetricDecl>,
  samples: Sample[],
  durationS: number,
): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const [key, exprs] of Object.entries(thresholds)) {
    const parsed = parseKey(key);
    const decl = metrics.get(parsed.metric)!;
    const values = samples.filter((s) => matches(s, parsed)).map((s) => s.value);
    for (const e of exprs) {
      const x = parseExpr(e);
      const actual = aggregate(decl.type, values, x.agg, durationS);
      // k6 logs "Threshold error" for an aggregate it lacks and does not fail the run on it.
      out.push({ key, expr: e, actual, samples: values.length, ok: actual === undefined ? true : compare(actual, x.op, x.value) });
    }
  }
  return out;
}
