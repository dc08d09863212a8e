/**
 * The k6 scripts' plain-JavaScript helpers besides the framing: resuming a
 * session (loadtest/k6/lib/sessions.js) and reading settings (env.js).
 */
import { afterEach, describe, expect, it } from "vitest";
import { baseUrl, bool, durationMs, int, k6Duration, parseDurationMs, runId, thresholds, wholeSeconds } from "../../loadtest/k6/lib/env.js";
import { checkBacklog, fetchAfter, SeqTracker } from "../../loadtest/k6/lib/sessions.js";

describe("SeqTracker", () => {
  it("advances contiguous only through seqs it holds, whatever their order", () => {
    const t = new SeqTracker(10);
    expect(t.add(12)).toBe(true);
    expect(t.add(14)).toBe(true);
    expect(t.contiguous).toBe(10);
    expect(t.add(11)).toBe(true);
    expect(t.contiguous).toBe(12);
    expect(t.add(13)).toBe(true);
    expect(t.contiguous).toBe(14);
    expect(t.max).toBe(14);
    expect(t.ahead.size).toBe(0);
  });

  it("reports duplicates, including anything at or below the baseline", () => {
    const t = new SeqTracker(5);
    expect(t.add(5)).toBe(false);
    expect(t.add(3)).toBe(false);
    expect(t.add(7)).toBe(true);
    expect(t.add(7)).toBe(false);
    expect(t.add(6)).toBe(true);
    expect(t.add(6)).toBe(false);
  });

  it("knows exactly which seqs it holds", () => {
    const t = new SeqTracker(2);
    t.add(4);
    expect([1, 2, 3, 4, 5].map((s) => t.has(s))).toEqual([true, true, false, true, false]);
  });
});

describe("checkBacklog", () => {
  const msgs = (...seqs: number[]) => seqs.map((seq) => ({ seq }));

  it("accepts a backlog covering (afterSeq, lastSeq], extra later seqs included", () => {
    expect(checkBacklog(3, 6, msgs(4, 5, 6))).toEqual({ complete: true, missing: [], stale: 0, expected: 3 });
    expect(checkBacklog(3, 6, msgs(4, 5, 6, 7, 8)).complete).toBe(true);
    expect(checkBacklog(6, 6, msgs())).toEqual({ complete: true, missing: [], stale: 0, expected: 0 });
  });

  it("names the seqs a backlog lacks", () => {
    expect(checkBacklog(3, 7, msgs(4, 6))).toEqual({ complete: false, missing: [5, 7], stale: 0, expected: 4 });
    expect(checkBacklog(0, 2, msgs()).missing).toEqual([1, 2]);
  });

  it("refuses a backlog that repeats what the client already had", () => {
    const r = checkBacklog(3, 5, msgs(3, 4, 5));
    expect(r.complete).toBe(false);
    expect(r.stale).toBe(1);
  });
});

describe("fetchAfter", () => {
  /** A stand-in for the server's session:join: messages after afterSeq, `page` at a time, `truncated` when more remain. */
  function fakeSio(stored: number, page: number, opts: { failOnCall?: number } = {}) {
    const calls: unknown[] = [];
    return {
      calls,
      emit(event: string, payload: any, cb: (reply: any, ms: number) => void) {
        calls.push([event, payload]);
        if (opts.failOnCall === calls.length) {
          cb({ ok: false, error: { code: "UNAVAILABLE", message: "down" } }, 1);
          return undefined;
        }
        const after = payload.afterSeq as number;
        const all = [];
        for (let s = after + 1; s <= stored; s++) all.push({ seq: s });
        const messages = all.slice(0, page);
        cb({ ok: true, data: { session: { id: payload.sessionId, lastSeq: stored }, messages, presence: [], truncated: all.length > page } }, 1);
        return calls.length - 1;
      },
    };
  }

  it("pages with session:join from the last seq received until the server stops truncating", () => {
    const sio = fakeSio(12, 5);
    let result: any;
    fetchAfter(sio, "s-1", 0, (code, r) => (result = { code, r }));
    expect(result.code).toBeNull();
    expect(result.r.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(result.r.pages).toBe(3);
    expect(result.r.session.lastSeq).toBe(12);
    expect(sio.calls).toEqual([
      ["session:join", { sessionId: "s-1", afterSeq: 0 }],
      ["session:join", { sessionId: "s-1", afterSeq: 5 }],
      ["session:join", { sessionId: "s-1", afterSeq: 10 }],
    ]);
  });

  it("passes on the error code of a failed page", () => {
    const sio = fakeSio(12, 5, { failOnCall: 2 });
    let result: any;
    fetchAfter(sio, "s-1", 0, (code, r) => (result = { code, r }));
    expect(result).toEqual({ code: "UNAVAILABLE", r: null });
  });

  it("stops at the page limit and says the backlog was cut", () => {
    const sio = fakeSio(100, 5);
    let result: any;
    fetchAfter(sio, "s-1", 0, (code, r) => (result = { code, r }), 3);
    expect(result.code).toBe("TRUNCATED");
    expect(result.r.messages).toHaveLength(15);
  });
});

describe("env", () => {
  const g = globalThis as { __ENV?: Record<string, string> };
  afterEach(() => {
    delete g.__ENV;
  });

  it("parses k6-style durations and refuses unitless or malformed ones", () => {
    expect(parseDurationMs("500ms")).toBe(500);
    expect(parseDurationMs("30s")).toBe(30_000);
    expect(parseDurationMs("1m30s")).toBe(90_000);
    expect(parseDurationMs("1.5s")).toBe(1500);
    expect(parseDurationMs("2h")).toBe(7_200_000);
    expect(parseDurationMs("0")).toBe(0);
    for (const bad of ["30", "s", "1x", "1m 30s", "-1s", "1s2", ""]) expect(() => parseDurationMs(bad), bad).toThrow(/duration/);
  });

  it("reads settings with fallbacks and stops on bad values", () => {
    g.__ENV = { ROOMS: "12", BAD: "1.5", NEG: "-1", DURATION: "2m", FLAG: "yes", NOFLAG: "off", WEIRD: "maybe", EMPTY: "" };
    expect(int("ROOMS", 1)).toBe(12);
    expect(int("MISSING", 7)).toBe(7);
    expect(int("EMPTY", 3)).toBe(3);
    expect(() => int("BAD", 1)).toThrow(/BAD must be an integer/);
    expect(() => int("NEG", 1)).toThrow(/NEG/);
    expect(() => int("ROOMS", 1, 20)).toThrow(/>= 20/);
    expect(durationMs("DURATION", "1m")).toBe(120_000);
    expect(durationMs("MISSING", "5s")).toBe(5000);
    expect(bool("FLAG", false)).toBe(true);
    expect(bool("NOFLAG", true)).toBe(false);
    expect(() => bool("WEIRD", true)).toThrow(/WEIRD/);
  });

  it("rounds schedules to the whole seconds k6 is given", () => {
    expect(wholeSeconds(1500)).toBe(2000);
    expect(k6Duration(1500)).toBe("2s");
    expect(k6Duration(0)).toBe("0s");
  });

  it("normalises BASE_URL and refuses what is not http(s)", () => {
    g.__ENV = {};
    expect(baseUrl()).toBe("http://127.0.0.1:3000");
    g.__ENV = { BASE_URL: "http://localhost:8080/" };
    expect(baseUrl()).toBe("http://localhost:8080");
    g.__ENV = { BASE_URL: "localhost:8080" };
    expect(() => baseUrl()).toThrow(/BASE_URL/);
  });

  it("makes run ids that fit in a user name, or takes a valid RUN_ID", () => {
    g.__ENV = {};
    const ids = new Set(Array.from({ length: 50 }, () => runId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9]{10}$/);
    g.__ENV = { RUN_ID: "nightly-42" };
    expect(runId()).toBe("nightly-42");
    g.__ENV = { RUN_ID: "has space" };
    expect(() => runId()).toThrow(/RUN_ID/);
  });

  it("lets THRESHOLDS replace or drop a metric's thresholds", () => {
    const defaults = { a: ["p(95)<100"], b: ["rate<0.01"] };
    g.__ENV = {};
    expect(thresholds(defaults)).toEqual(defaults);
    g.__ENV = { THRESHOLDS: '{"a":["p(99)<500"],"b":[],"c":["count<1"]}' };
    expect(thresholds(defaults)).toEqual({ a: ["p(99)<500"], c: ["count<1"] });
    expect(defaults.b).toEqual(["rate<0.01"]);
    g.__ENV = { THRESHOLDS: "{a:1}" };
    expect(() => thresholds(defaults)).toThrow(/not JSON/);
    g.__ENV = { THRESHOLDS: '{"a":"p(95)<1"}' };
    expect(() => thresholds(defaults)).toThrow(/list/);
  });
});
