/**
 * CPU time (user + system, ms) of a process and all its descendants, read
 * from /proc (Linux): a benchmark's server and the PostgreSQL it started,
 * the LLM double, the clients. Elsewhere it reads NaN.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10; // USER_HZ is 100 on Linux

function stat(pid: number): { ppid: number; ms: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces: fields start after its closing parenthesis.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return undefined;
  }
}

/** CPU ms of `pid` and of its living descendants, split into the process itself and the rest. */
export function treeCpuMs(pid: number): { self: number; children: number } {
  let pids: number[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return { self: Number.NaN, children: Number.NaN };
  }
  const all = new Map<number, { ppid: number; ms: number }>();
  for (const p of pids) {
    const s = stat(p);
    if (s) all.set(p, s);
  }
  const inTree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, s] of all) if (!inTree.has(p) && inTree.has(s.ppid)) (inTree.add(p), (grew = true));
  }
  let children = 0;
  for (const p of inTree) if (p !== pid) children += all.get(p)!.ms;
  return { self: all.get(pid)?.ms ?? Number.NaN, children };
}
