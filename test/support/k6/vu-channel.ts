/**
 * The VU side of the channel to the host, and the VU's state. A k6 VU is one
 * goroutine running JavaScript that blocks: ws.connect, http.batch and sleep do
 * not return until they are done. Node cannot block on its own event loop, so a
 * VU runs in a worker that parks in Atomics.wait until the host posts
 * something, then reads it synchronously with receiveMessageOnPort. Nothing
 * else runs in the worker meanwhile, so the script sees exactly k6's order.
 */
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import type { ExecInfo, Sample, ToHost, ToVu } from "./protocol.js";

let port: MessagePort | null = null;
let signal: Int32Array | null = null;
const inbox: ToVu[] = [];

export type Phase = "init" | "setup" | "default" | "teardown";

/** What the stand-in modules need to know about the VU they run in. */
export const vu = {
  id: 0,
  phase: "init" as Phase,
  exec: null as ExecInfo | null,
  /** The host cancelled the VU's context (k6: a scenario's hard stop). */
  interrupted: false,
};

export function attach(p: MessagePort, s: SharedArrayBuffer): void {
  port = p;
  signal = new Int32Array(s);
}

export function post(msg: ToHost): void {
  port!.postMessage(msg);
}

function drain(): boolean {
  let got = false;
  for (;;) {
    const m = receiveMessageOnPort(port!);
    if (m === undefined) return got;
    const msg = m.message as ToVu;
    got = true;
    if (msg.ev === "interrupt") vu.interrupted = true;
    else inbox.push(msg);
  }
}

/** Blocks until the host posts something or timeoutMs passes (Infinity: no limit). */
export function pump(timeoutMs: number): void {
  const seen = Atomics.load(signal!, 0);
  if (drain()) return;
  Atomics.wait(signal!, 0, seen, Number.isFinite(timeoutMs) ? Math.max(0, timeoutMs) : undefined);
  drain();
}

/** The first inbox message that matches, left in place; never blocks. */
export function peek<T extends ToVu>(match: (m: ToVu) => m is T): T | undefined {
  drain();
  return inbox.find(match) as T | undefined;
}

/** Removes and returns the first inbox message that matches, without blocking. */
export function take<T extends ToVu>(match: (m: ToVu) => m is T): T | undefined {
  drain();
  const i = inbox.findIndex(match);
  if (i < 0) return undefined;
  return inbox.splice(i, 1)[0] as T;
}

/** Drops inbox messages nobody will read (events of a socket that is gone). */
export function discard(match: (m: ToVu) => boolean): void {
  for (let i = inbox.length - 1; i >= 0; i--) if (match(inbox[i]!)) inbox.splice(i, 1);
}

/** Posts a request and blocks until its reply. */
export function request<T extends ToVu>(msg: ToHost, match: (m: ToVu) => m is T): T {
  post(msg);
  for (;;) {
    const reply = take(match);
    if (reply) return reply;
    pump(Infinity);
  }
}

/** Thrown through the script when the host cancelled the VU; scripts cannot tell it from k6's interrupt. */
export class Interrupted extends Error {
  constructor() {
    super("context canceled: the scenario's time is up and k6 interrupted the iteration");
    this.name = "Interrupted";
  }
}

/**
 * Where k6 would block forever: report it to the host, then really never
 * return (the host ends the worker). Throwing instead would let a script's
 * try/catch turn a hang into a pass.
 */
export function hang(reason: string): never {
  post({ op: "hung", reason, stack: new Error(reason).stack ?? reason });
  const never = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(never, 0, 0);
}

export function sample(s: Sample): void {
  post({ op: "samples", samples: [s] });
}

/** Blocks the VU for ms, as k6's sleep does; an interrupt ends it early. */
export function block(ms: number): void {
  const until = Date.now() + ms;
  for (;;) {
    if (vu.interrupted) throw new Interrupted();
    const left = until - Date.now();
    if (left <= 0) return;
    pump(left);
  }
}
