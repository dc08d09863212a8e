/**
 * The k6 stand-in (test/support/k6/) keeps k6 v0.48's k6/ws rules, checked
 * with a probe script (test/fixtures/k6/ws-semantics.js) against a local
 * WebSocket echo server: the order of callbacks, ws.connect returning only
 * after the close handler, timers owned by the socket, a re-entrant close
 * reported as the hang it is in k6, writes after close, timer delays k6
 * refuses, exceptions, a server's close code, a failed dial, and VUs that
 * each see only their own callbacks.
 */
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { type K6Run, runK6Script } from "../support/k6/runtime.js";

const PROBE = fileURLToPath(new URL("../fixtures/k6/ws-semantics.js", import.meta.url));
let wss: WebSocketServer;
let wsUrl: string;
let deadUrl: string;

beforeAll(async () => {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  wsUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
  wss.on("connection", (ws) =>
    ws.on("message", (data) => {
      const text = data.toString();
      const bye = /^bye:(\d+)$/.exec(text);
      if (bye) ws.close(Number(bye[1]));
      else ws.send(text);
    }),
  );
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
  deadUrl = `ws://127.0.0.1:${(probe.address() as AddressInfo).port}/`;
  await new Promise<void>((r) => probe.close(() => r()));
});

afterAll(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
});

function probe(CASE: string, vus = 1): Promise<K6Run> {
  return runK6Script(PROBE, { env: { CASE, VUS: String(vus), WS_URL: wsUrl, DEAD_URL: deadUrl }, timeoutMs: 30_000 });
}

function observed(r: K6Run): any[] {
  return r.logs.filter((l) => l.text.startsWith("OBS ")).map((l) => JSON.parse(l.text.slice(4)));
}

describe("the k6 stand-in's k6/ws", () => {
  it("runs the callback, fires open, then the socket's loop, and returns only after the close handler", async () => {
    const r = await probe("order");
    expect(r.problems, r.report()).toEqual([]);
    const [o] = observed(r);
    expect(o.log).toEqual(["callback", "open", "message:hello", "close:1001", "returned"]);
    expect(o).toMatchObject({ status: 101, error: "" });
    // The interval ran while the socket was open and never after it closed.
    expect(o.ticksAtReturn).toBeGreaterThan(0);
    expect(o.ticksLater).toBe(o.ticksAtReturn);
    expect(r.values("ws_session_duration")).toHaveLength(1);
  });

  it("reports socket.close() inside the close handler as a VU that never returns", async () => {
    const r = await probe("reentrant");
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/VU 1 hung in default\(\): re-entrant close/);
    expect(observed(r)).toEqual([]);
    expect(r.calls.default).toBeUndefined();
  });

  it("makes a second close a no-op and fails writes after the close frame through the error handler", async () => {
    const r = await probe("closedSocket");
    expect(r.problems, r.report()).toEqual([]);
    expect(observed(r)[0]).toEqual({ closes: 1, errors: ["websocket: close sent", "websocket: close sent"] });
  });

  it("throws on a timer delay k6 refuses, after closing the socket", async () => {
    const r = await probe("zeroTimeout");
    expect(observed(r)[0]).toEqual({ thrown: expect.stringContaining("setTimeout requires a >0 timeout parameter, received 0.00"), closed: true });
  });

  it("closes the socket and throws out of ws.connect when a handler throws", async () => {
    const r = await probe("handlerThrows");
    expect(observed(r)[0]).toEqual({ thrown: "Error: boom in a handler", closed: true });
  });

  it("fires error then close with the server's code when the server closes unexpectedly", async () => {
    const r = await probe("serverClose");
    expect(r.problems, r.report()).toEqual([]);
    expect(observed(r)[0].log).toEqual(["error:websocket: close 4000", "close:4000"]);
  });

  it("loses no event while timers keep coming due", async () => {
    const r = await probe("interleave");
    expect(r.problems, r.report()).toEqual([]);
    const [o] = observed(r);
    expect(o.got).toBe(300);
    expect(o.ticks).toBeGreaterThan(0);
  });

  it("returns an error response without running the callback when the dial fails", async () => {
    const r = await probe("dialFails");
    expect(r.problems, r.report()).toEqual([]);
    const [o] = observed(r);
    expect(o).toMatchObject({ ran: false, status: 0 });
    expect(o.error).not.toBe("");
  });

  it("gives each VU its own loop: concurrent VUs see only their own callbacks", async () => {
    const r = await probe("isolation", 3);
    expect(r.problems, r.report()).toEqual([]);
    const obs = observed(r);
    expect(obs.map((o) => o.me).sort()).toEqual([1, 2, 3]);
    for (const o of obs) expect(o.seen).toEqual([0, 1, 2, 3, 4].map((i) => `vu${o.me}-${i}`));
  });
});
