/** Small helpers shared by the benchmark programs (they print figures; they are not tests). */

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface LoopResult {
  count: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * Runs `workers` closed loops of `op` for `durationMs` after `warmupMs`, and
 * reports completed operations per second and latency percentiles (ms).
 */
export async function closedLoop(
  workers: number,
  durationMs: number,
  warmupMs: number,
  op: (worker: number, i: number) => Promise<void>,
  /** Called when the measured window opens and closes (after the warm-up). */
  window: { onStart?: () => void; onEnd?: () => void } = {},
): Promise<LoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const t0 = performance.now();
      try {
        await op(w, i);
        if (measuring) latencies.push(performance.now() - t0);
      } catch {
        if (measuring) errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  window.onStart?.();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  window.onEnd?.();
  const elapsed = performance.now() - t0;
  stop = true;
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    perSecond: (latencies.length / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(" | ")} |`;
  return [line(cells[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.slice(1).map(line)].join("\n");
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Number.isInteger(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** Extra server environment from BENCH_SERVER_ENV="KEY=value,KEY=value" (for trying settings). */
export function benchServerEnv(): Record<string, string> {
  const raw = process.env.BENCH_SERVER_ENV;
  // Split at the first "=" only: a value may hold one.
  return raw ? Object.fromEntries(raw.split(",").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])) : {};
}

/** The topics of the synthetic histories that bench:scale and bench:assistant --history write. */
export const HISTORY_WORDS = ["invoice", "lisbon", "meeting", "budget", "camera", "deadline", "pizza", "server", "holiday", "contract", "report", "garden"];

/**
 * A SQL expression for a synthetic message's text: message `seq` of session
 * `sessionId` (two SQL expressions) about two of `words`, picked by hashing
 * both, at an ordinary message's length.
 */
export function historyTextSql(sessionId: string, seq: string, words: readonly string[] = HISTORY_WORDS): string {
  const list = `ARRAY[${words.map((w) => `'${w.replaceAll("'", "''")}'`).join(",")}]`;
  return `'message ' || ${seq} || ' about the ' || (${list})[1 + abs(hashtext(${sessionId}::text)::bigint + ${seq}) % ${words.length}] || ' and the ' ||
              (${list})[1 + abs(hashtext(${sessionId}::text || ${seq})::bigint) % ${words.length}] || ', with some more ordinary words to make it a realistic length'`;
}
