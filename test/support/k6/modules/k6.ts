/** The `k6` module: check, sleep, group, fail. */
import { block, sample, vu } from "../vu-channel.js";

export function check(value: unknown, sets: Record<string, unknown>, tags?: Record<string, unknown>): boolean {
  if (vu.phase === "init") throw new Error("check() can't be called in the init context");
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    // A check that throws ends the iteration, as in k6.
    const ok = typeof fn === "function" ? Boolean(fn(value)) : Boolean(fn);
    const t: Record<string, string> = { check: name };
    if (tags) for (const [k, v] of Object.entries(tags)) t[k] = String(v);
    sample({ metric: "checks", value: ok ? 1 : 0, tags: t });
    if (!ok) all = false;
  }
  return all;
}

export function sleep(seconds: unknown): void {
  if (vu.phase === "init") throw new Error("sleep() can't be called in the init context");
  const s = Number(seconds);
  if (!(s > 0)) return;
  block(s * 1000);
}

export function group<T>(name: string, fn: () => T): T {
  if (vu.phase === "init") throw new Error("group() can't be called in the init context");
  void name;
  return fn();
}

export function fail(message?: string): never {
  throw new Error(message ?? "");
}

export default { check, sleep, group, fail };
