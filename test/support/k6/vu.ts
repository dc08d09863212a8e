/**
 * One k6 VU in a worker thread: runs the script's init code once (as k6 does
 * per VU), reports its options, then runs whatever function the host asks
 * for, one call at a time, blocking like k6.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import { format } from "node:util";
import { declared } from "./modules/metrics.js";
import type { ToVu, VuWorkerData } from "./protocol.js";
import { attach, discard, Interrupted, post, pump, take, vu } from "./vu-channel.js";

const data = workerData as VuWorkerData & { port: MessagePort };
attach(data.port, data.signal);
vu.id = data.vuId;
(globalThis as { __ENV?: Record<string, string> }).__ENV = { ...data.env };
// k6 prints console output through its logger; here it goes to the host, which keeps it for the test.
for (const level of ["log", "info", "warn", "error", "debug"] as const) {
  console[level] = (...args: unknown[]) => post({ op: "log", level, text: format(...args) });
}

let mod: Record<string, unknown>;
try {
  mod = (await import(data.script)) as Record<string, unknown>;
} catch (e) {
  post({ op: "init-error", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  throw e;
}
let options: unknown = null;
try {
  options = JSON.parse(JSON.stringify(mod.options ?? {}));
} catch {
  options = null;
}
const exportsList = Object.keys(mod).filter((k) => typeof mod[k] === "function");
post({ op: "ready", options, exports: exportsList, metrics: [...declared.values()] });

type Command = Extract<ToVu, { ev: "run" | "stop" }>;
const isCommand = (m: ToVu): m is Command => m.ev === "run" || m.ev === "stop";

for (;;) {
  const cmd = take(isCommand);
  if (!cmd) {
    // Between calls no socket is open: whatever arrives for an old one is late news nobody reads.
    discard((m) => !isCommand(m));
    pump(Infinity);
    continue;
  }
  if (cmd.ev === "stop") break;
  vu.phase = cmd.fn === "setup" ? "setup" : cmd.fn === "teardown" ? "teardown" : "default";
  vu.exec = cmd.exec;
  vu.interrupted = false;
  try {
    const fn = mod[cmd.fn];
    if (typeof fn !== "function") throw new Error(`the script exports no function '${cmd.fn}'`);
    // k6 hands every VU its own copy of setup's data, through JSON.
    const arg = cmd.data === undefined ? undefined : (JSON.parse(cmd.data) as unknown);
    const result = (fn as (d: unknown) => unknown)(arg);
    post({ op: "done", ok: true, result: result === undefined ? undefined : JSON.stringify(result) });
  } catch (e) {
    post({ op: "done", ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e), interrupted: e instanceof Interrupted });
  }
  vu.exec = null;
}
data.port.close();
