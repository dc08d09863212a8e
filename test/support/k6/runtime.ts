/**
 * Runs a k6 script under the stand-in the way `k6 run` does: every VU is
 * initialised in a worker of its own (init code runs once per VU), setup()
 * runs once and its JSON goes to every VU, the scenarios' executors start and
 * stop iterations, teardown() runs, thresholds decide. Where k6 would never
 * finish (a VU that cannot leave ws.connect) the run ends anyway, by
 * timeoutMs, and says which VU hung where.
 */
import { pathToFileURL } from "node:url";
import type { ExecInfo, MetricDecl, Sample } from "./protocol.js";
import { BUILTIN_METRICS, evaluateThresholds, matches, parseKey, type ThresholdResult, validateThresholds } from "./thresholds.js";
import { type CallResult, VuHost } from "./vu-host.js";

export interface K6RunOptions {
  /** `-e NAME=value` settings. */
  env?: Record<string, string>;
  /** The whole run's bound; VUs still busy then are interrupted, and reported if even that does not end them. */
  timeoutMs: number;
}

export interface K6Run {
  options: Record<string, any>;
  samples: Sample[];
  thresholds: ThresholdResult[];
  /** Every way the run went wrong besides thresholds: hangs, stuck VUs, exceptions, interrupted iterations. */
  problems: string[];
  checks: Record<string, { passes: number; fails: number }>;
  logs: { vu: number; level: string; text: string }[];
  /** Completed calls of each exported function, by name. */
  calls: Record<string, number>;
  /** What setup() returned, parsed (k6 hands it to every VU as JSON). */
  setupData: unknown;
  durationMs: number;
  /** Samples of a metric, optionally of a sub-metric (`name{tag:value}`). */
  values(key: string): number[];
  /** Thresholds, checks and problems in one text, for an assertion's message. */
  report(): string;
}

const GRACE_AFTER_INTERRUPT_MS = 5000;

export function parseK6Duration(text: unknown, fallbackMs: number): number {
  if (text === undefined || text === null) return fallbackMs;
  if (typeof text === "number") return text;
  const s = String(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let used = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unit[m[2]!]!;
    used += m[0].length;
  }
  if (used !== s.length) throw new Error(`not a k6 duration: '${s}'`);
  return total;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

interface Scenario {
  name: string;
  executor: string;
  exec?: string;
  vus?: number;
  iterations?: number;
  maxDuration?: string;
  duration?: string;
  gracefulStop?: string;
  gracefulRampDown?: string;
  startVUs?: number;
  stages?: { duration: string; target: number }[];
}

/** Until when the ramp keeps VU number n (1-based) active, as [start, stop) in ms from the scenario start. */
function rampWindow(sc: Scenario, n: number): [number, number] | null {
  const points: [number, number][] = [[0, sc.startVUs ?? 0]];
  let t = 0;
  for (const st of sc.stages ?? []) {
    t += parseK6Duration(st.duration, 0);
    points.push([t, st.target]);
  }
  const target = (x: number) => {
    for (let i = 1; i < points.length; i++) {
      const [t0, v0] = points[i - 1]!;
      const [t1, v1] = points[i]!;
      if (x <= t1) return t1 === t0 ? v1 : v0 + ((v1 - v0) * (x - t0)) / (t1 - t0);
    }
    return points[points.length - 1]![1];
  };
  let start = -1;
  for (let x = 0; x <= t; x += 10) {
    const on = target(x) >= n;
    if (start < 0 && on) start = x;
    if (start >= 0 && !on) return [start, x];
  }
  return start < 0 ? null : [start, t];
}

export async function runK6Script(scriptPath: string, opts: K6RunOptions): Promise<K6Run> {
  const began = Date.now();
  const deadline = began + opts.timeoutMs;
  const script = pathToFileURL(scriptPath).href;
  const env = opts.env ?? {};
  const samples: Sample[] = [];
  const logs: K6Run["logs"] = [];
  const problems: string[] = [];
  const calls: Record<string, number> = {};
  const sink = {
    samples: (_vu: number, s: Sample[]) => samples.push(...s),
    log: (vu: number, level: string, text: string) => logs.push({ vu, level, text }),
  };
  const hosts: VuHost[] = [];
  const vuIterations = new Map<number, number>();

  /** One call, bounded: interrupted at hardStopAt, declared stuck if it still has not returned after a grace. */
  async function bounded(host: VuHost, fn: string, data: string | undefined, exec: ExecInfo, hardStopAt: number): Promise<CallResult> {
    const call = host.call(fn, data, exec);
    const first = await Promise.race([call, delay(Math.min(hardStopAt, deadline) - Date.now()).then(() => null)]);
    let r = first;
    if (r === null) {
      host.interrupt();
      r = await Promise.race([call, delay(GRACE_AFTER_INTERRUPT_MS).then(() => null)]);
    }
    if (r === null) {
      const where = host.inConnect
        ? `inside ws.connect(${host.inConnect.url}), entered ${Date.now() - host.inConnect.since} ms earlier`
        : "outside ws.connect";
      problems.push(`VU ${host.id} never returned from ${fn}(): stuck ${where}, and k6's interrupt did not end it`);
      return { ok: false, hung: "stuck" };
    }
    if (r.hung) problems.push(`VU ${host.id} hung in ${fn}(): ${r.hung}`);
    else if (r.interrupted) problems.push(`VU ${host.id}: ${fn}() was interrupted at its scenario's hard stop (it overran its time)`);
    else if (!r.ok) problems.push(`VU ${host.id}: ${fn}() threw: ${r.error}`);
    else calls[fn] = (calls[fn] ?? 0) + 1;
    return r;
  }

  try {
    const setupVu = new VuHost(0, script, env, sink);
    hosts.push(setupVu);
    const ready = await setupVu.ready;
    const options = (ready.options ?? {}) as Record<string, any>;
    const metrics = new Map<string, MetricDecl>();
    for (const m of [...BUILTIN_METRICS, ...ready.metrics]) metrics.set(m.name, m);
    const thresholds = (options.thresholds ?? {}) as Record<string, string[]>;
    validateThresholds(thresholds, metrics);

    const scenarios: Scenario[] = options.scenarios
      ? Object.entries(options.scenarios as Record<string, Omit<Scenario, "name">>).map(([name, sc]) => ({ name, ...sc }))
      : [{ name: "default", executor: "per-vu-iterations", vus: options.vus ?? 1, iterations: options.iterations ?? 1 }];
    // k6 initialises every VU before setup; each runs the init code on its own.
    let nextId = 1;
    const plan = scenarios.map((sc) => {
      const count = sc.executor === "ramping-vus" ? Math.max(sc.startVUs ?? 0, ...(sc.stages ?? []).map((s) => s.target)) : (sc.vus ?? 1);
      const vus: VuHost[] = [];
      for (let i = 0; i < count; i++) vus.push(new VuHost(nextId++, script, env, sink));
      hosts.push(...vus);
      return { sc, vus };
    });
    await Promise.all(hosts.map((h) => h.ready));

    const setupExec: ExecInfo = { scenario: null, vu: { idInTest: 0, idInInstance: 0, iterationInInstance: 0, iterationInScenario: 0 } };
    let data: string | undefined;
    if (ready.exports.includes("setup")) {
      const r = await bounded(setupVu, "setup", undefined, setupExec, parseK6Duration(options.setupTimeout, 60_000) + Date.now());
      if (!r.ok) throw new Error(problems[problems.length - 1] ?? "setup failed");
      data = r.result;
    }

    const t0 = Date.now();
    await Promise.all(
      plan.map(async ({ sc, vus }) => {
        const fn = sc.exec ?? "default";
        let iterationInTest = 0;
        const gracefulStop = parseK6Duration(sc.gracefulStop, 30_000);
        const iterate = (vu: VuHost, n: number, hardStopAt: number) => {
          const k = vuIterations.get(vu.id) ?? 0;
          vuIterations.set(vu.id, k + 1);
          const exec: ExecInfo = {
            scenario: { name: sc.name, executor: sc.executor, startTime: t0, iterationInTest: iterationInTest, iterationInInstance: iterationInTest, progress: 0 },
            vu: { idInTest: vu.id, idInInstance: vu.id, iterationInInstance: k, iterationInScenario: n },
          };
          iterationInTest++;
          const started = Date.now();
          return bounded(vu, fn, data, exec, hardStopAt).then((r) => {
            if (r.ok) {
              samples.push({ metric: "iterations", value: 1, tags: { scenario: sc.name } });
              samples.push({ metric: "iteration_duration", value: Date.now() - started, tags: { scenario: sc.name } });
            }
            return r;
          });
        };
        if (sc.executor === "per-vu-iterations" || sc.executor === "constant-vus") {
          const perVu = sc.executor === "per-vu-iterations" ? (sc.iterations ?? 1) : Infinity;
          const endAt = t0 + parseK6Duration(sc.executor === "per-vu-iterations" ? sc.maxDuration : sc.duration, 600_000);
          await Promise.all(
            vus.map(async (vu) => {
              for (let n = 0; n < perVu && Date.now() < endAt; n++) {
                const r = await iterate(vu, n, endAt + gracefulStop);
                if (r.hung) return;
              }
            }),
          );
        } else if (sc.executor === "ramping-vus") {
          const rampDown = parseK6Duration(sc.gracefulRampDown, 30_000);
          const total = (sc.stages ?? []).reduce((a, s) => a + parseK6Duration(s.duration, 0), 0);
          await Promise.all(
            vus.map(async (vu, i) => {
              const w = rampWindow(sc, i + 1);
              if (!w) return;
              await delay(t0 + w[0] - Date.now());
              const stopAt = t0 + w[1];
              const hardStop = Math.min(stopAt + rampDown, t0 + total + gracefulStop);
              for (let n = 0; Date.now() < stopAt; n++) {
                const r = await iterate(vu, n, hardStop);
                if (r.hung) return;
              }
            }),
          );
        } else throw new Error(`the stand-in does not model the ${sc.executor} executor`);
      }),
    );

    if (ready.exports.includes("teardown")) {
      await bounded(setupVu, "teardown", data, setupExec, parseK6Duration(options.teardownTimeout, 60_000) + Date.now());
    }
    const durationMs = Date.now() - t0;
    const results = evaluateThresholds(thresholds, metrics, samples, Math.max(durationMs, 1) / 1000);
    const run = makeRun(options, samples, results, problems, logs, calls, durationMs);
    run.setupData = data === undefined ? undefined : (JSON.parse(data) as unknown);
    return run;
  } finally {
    await Promise.all(hosts.map((h) => h.terminate()));
  }
}

function makeRun(
  options: Record<string, any>,
  samples: Sample[],
  thresholds: ThresholdResult[],
  problems: string[],
  logs: K6Run["logs"],
  calls: Record<string, number>,
  durationMs: number,
): K6Run {
  const checks: K6Run["checks"] = {};
  for (const s of samples) {
    if (s.metric !== "checks") continue;
    const c = (checks[s.tags.check ?? ""] ??= { passes: 0, fails: 0 });
    if (s.value) c.passes++;
    else c.fails++;
  }
  return {
    options,
    samples,
    thresholds,
    problems,
    checks,
    logs,
    calls,
    setupData: undefined,
    durationMs,
    values(key) {
      const k = parseKey(key);
      return samples.filter((s) => matches(s, k)).map((s) => s.value);
    },
    report() {
      const lines = [`problems (${problems.length}):`, ...problems.map((p) => `  ${p}`), "thresholds:"];
      for (const t of thresholds) lines.push(`  ${t.ok ? "ok  " : "FAIL"} ${t.key} ${t.expr} (actual ${t.actual ?? "none"}, ${t.samples} samples)`);
      lines.push("checks:");
      for (const [name, c] of Object.entries(checks)) lines.push(`  ${name}: ${c.passes} passed, ${c.fails} failed`);
      lines.push("last log lines:", ...logs.slice(-15).map((l) => `  [vu ${l.vu} ${l.level}] ${l.text}`));
      return lines.join("\n");
    },
  };
}
