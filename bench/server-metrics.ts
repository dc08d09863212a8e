/**
 * Reads a node's /metrics twice (when a measured window opens and when it
 * closes) and tells what happened in between: where a send's time went
 * (group-commit queue, pool wait, statement), event-loop delay, GC pauses.
 * Histograms are cumulative, so the difference of two scrapes is the
 * window's own histogram; percentiles come from its buckets (upper bounds).
 */
import { readdirSync, readFileSync } from "node:fs";

export type Scrape = Map<string, number>;

export async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Scrape = new Map();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.length === 0) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** `name{labels}` keys of `after` whose series starts with `prefix`, minus `before`. */
function delta(before: Scrape, after: Scrape, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) if (k.startsWith(prefix)) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

export interface HistogramWindow {
  count: number;
  meanMs: number;
  /** Bucket upper bound (ms) under which p% of the window's observations fell. */
  pMs(p: number): number;
}

/** The window's part of histogram `name`, restricted to series whose labels contain `labels` (e.g. `event="message:send"`). */
export function histogram(before: Scrape, after: Scrape, name: string, labels = ""): HistogramWindow {
  const d = delta(before, after, name);
  const pick = (suffix: string) => [...d].filter(([k]) => k.startsWith(`${name}${suffix}`) && k.includes(labels));
  const count = pick("_count").reduce((a, [, v]) => a + v, 0);
  const sum = pick("_sum").reduce((a, [, v]) => a + v, 0);
  const buckets = new Map<number, number>();
  for (const [k, v] of pick("_bucket")) {
    const le = /le="([^"]+)"/.exec(k)![1]!;
    const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + v);
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  return {
    count,
    meanMs: count > 0 ? (sum / count) * 1000 : Number.NaN,
    pMs(p: number) {
      const want = (p / 100) * count;
      for (const [bound, n] of sorted) if (n >= want) return bound * 1000;
      return Number.NaN;
    },
  };
}

export function gauge(s: Scrape, name: string): number {
  return s.get(name) ?? Number.NaN;
}

/** Rows for a table: one per phase, window percentiles from the server's own histograms. */
export function breakdown(node: string, before: Scrape, after: Scrape): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const add = (what: string, h: HistogramWindow) => {
    if (h.count > 0) rows.push([node, what, h.count, h.meanMs, h.pMs(50), h.pMs(99), h.pMs(99.9)]);
  };
  add("ack (server side)", histogram(before, after, "chat_ack_latency_seconds", 'event="message:send"'));
  add("  waiting for a send batch", histogram(before, after, "chat_send_queue_seconds"));
  add("  waiting for a pool connection", histogram(before, after, "chat_db_pool_wait_seconds", 'use="send"'));
  add("  send statement (per batch)", histogram(before, after, "chat_send_statement_seconds"));
  // Each indexer batch is two statements at load (a claim that marks the previous batch, the vector upsert): per send, they add up at low rates.
  add("indexer batches (claimed non-empty)", histogram(before, after, "chat_index_batch_seconds"));
  add("GC pauses", histogram(before, after, "memchat_nodejs_gc_duration_seconds"));
  const lag = (k: string) => gauge(after, `memchat_nodejs_eventloop_lag_${k}_seconds`) * 1000;
  rows.push([node, "event-loop delay (window, 10 ms resolution)", "-", lag("mean"), lag("p50"), lag("p99"), lag("max")]);
  return rows;
}

export const BREAKDOWN_HEADERS = ["node", "phase", "count", "mean ms", "p50 ms", "p99 ms", "p99.9 / max ms"];

/**
 * CPU seconds of a process from /proc/<pid>/stat (Linux), 0 once it is gone:
 * its own (utime + stime, fields 14 and 15), or with `reaped` those of its
 * children that exited and were waited for (cutime + cstime, 16 and 17).
 */
function statCpuSeconds(pid: number, reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields are counted after the command name, which may hold spaces: field 14 is f[11].
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const at = reaped ? 13 : 11;
    return (Number(f[at]) + Number(f[at + 1])) / CLOCK_TICKS;
  } catch {
    return 0; // gone meanwhile
  }
}

/** CPU seconds (user + system) of a process, from /proc (Linux). */
export const processCpuSeconds = (pid: number): number => statCpuSeconds(pid);
const CLOCK_TICKS = 100;

function procs(): { pid: number; ppid: number; comm: string }[] {
  const out: { pid: number; ppid: number; comm: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.push({ pid: Number(d), ppid, comm });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * CPU seconds so far of the PostgreSQL servers started by `parents` (the
 * bench itself, or a node on the embedded profile): each postmaster, its
 * live backends and helpers, and those that exited (autovacuum workers, a
 * closed connection's backend), which the postmaster has reaped. A
 * difference of two readings is the window's PostgreSQL CPU.
 */
export function postgresCpuSeconds(parents: number[]): number {
  const all = procs();
  const masters = all.filter((p) => p.comm === "postgres" && parents.includes(p.ppid)).map((p) => p.pid);
  const live = all.filter((p) => masters.includes(p.pid) || masters.includes(p.ppid)).reduce((a, p) => a + processCpuSeconds(p.pid), 0);
  return live + masters.reduce((a, pid) => a + statCpuSeconds(pid, true), 0);
}

/**
 * CPU ms of `pid` and of its living descendants (a benchmark's server and
 * the PostgreSQL it started, the LLM double), split into the process itself
 * and the rest; NaN where /proc cannot be read.
 */
export function treeCpuMs(pid: number): { self: number; children: number } {
  let all: ReturnType<typeof procs>;
  try {
    all = procs();
  } catch {
    return { self: Number.NaN, children: Number.NaN };
  }
  const inTree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) if (!inTree.has(p.pid) && inTree.has(p.ppid)) (inTree.add(p.pid), (grew = true));
  }
  let children = 0;
  for (const p of inTree) if (p !== pid) children += processCpuSeconds(p) * 1000;
  return { self: all.some((p) => p.pid === pid) ? processCpuSeconds(pid) * 1000 : Number.NaN, children };
}

/** The window's CPU seconds of a node process (prom-client's process_cpu_seconds_total). */
export function nodeCpuSeconds(before: Scrape, after: Scrape): number {
  return gauge(after, "memchat_process_cpu_seconds_total") - gauge(before, "memchat_process_cpu_seconds_total");
}
