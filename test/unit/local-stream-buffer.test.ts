import { afterEach, describe, expect, it, vi } from "vitest";
import { LocalStreamBuffer } from "../../src/chat/local-stream-buffer.js";
import { streamBufferContract } from "../contracts/stream-buffer-contract.js";

const GRACE = 200;

streamBufferContract("in-process", () => new LocalStreamBuffer({ graceMs: GRACE }), { endGraceMs: GRACE });

describe("LocalStreamBuffer's live expiry", () => {
  afterEach(() => vi.useRealTimers());

  it("moves with every append, and a stream nobody ends goes liveTtlMs after its last one", async () => {
    vi.useFakeTimers();
    const buffer = new LocalStreamBuffer({ graceMs: 100, liveTtlMs: 1000 });
    await buffer.append(1, { seq: 1, text: "a" });
    vi.advanceTimersByTime(800);
    await buffer.append(1, { seq: 2, text: "b" });
    vi.advanceTimersByTime(800);
    expect(await buffer.read(1, 0)).toEqual([{ seq: 1, text: "a" }, { seq: 2, text: "b" }]);
    vi.advanceTimersByTime(201);
    expect(await buffer.read(1, 0)).toEqual([]);
  });

  it("keeps an ended stream for the grace period, whatever its live expiry was", async () => {
    vi.useFakeTimers();
    const buffer = new LocalStreamBuffer({ graceMs: 100, liveTtlMs: 1000 });
    await buffer.append(2, { seq: 1, text: "a" });
    await buffer.end(2);
    vi.advanceTimersByTime(99);
    expect(await buffer.read(2, 0)).toHaveLength(1);
    vi.advanceTimersByTime(2);
    expect(await buffer.read(2, 0)).toEqual([]);
  });
});
