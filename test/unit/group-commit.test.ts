import { describe, expect, it } from "vitest";
import { GroupCommit, type Settled } from "../../src/db/group-commit.js";

/** A run function whose batches finish only when the test says so. */
function controlled() {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const run = (batch: number[]) =>
    new Promise<Settled<number>[]>((resolve) => {
      batches.push(batch);
      pending.push(() => resolve(batch.map((n) => (n < 0 ? { ok: false, error: new Error(`bad ${n}`) } : { ok: true, value: n * 10 }))));
    });
  const finishNext = async () => {
    pending.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { batches, run, finishNext };
}

describe("GroupCommit", () => {
  it("sends a lone item at once, and batches what queues behind running batches", async () => {
    const c = controlled();
    const g = new GroupCommit(c.run, { maxBatch: 3, maxInFlight: 1 });
    const first = g.submit(1);
    expect(c.batches).toEqual([[1]]);
    const rest = [2, 3, 4, 5].map((n) => g.submit(n));
    expect(g.waiting).toBe(4);
    await c.finishNext();
    expect(await first).toBe(10);
    expect(c.batches).toEqual([[1], [2, 3, 4]]);
    await c.finishNext();
    expect(c.batches).toEqual([[1], [2, 3, 4], [5]]);
    await c.finishNext();
    expect(await Promise.all(rest)).toEqual([20, 30, 40, 50]);
    expect(g.waiting).toBe(0);
  });

  it("tells how long each item waited for its batch to leave", async () => {
    const c = controlled();
    const waits: number[] = [];
    const g = new GroupCommit(c.run, { maxBatch: 10, maxInFlight: 1, onQueued: (ms) => waits.push(ms) });
    const first = g.submit(1);
    expect(waits).toHaveLength(1); // left at once
    const rest = [g.submit(2), g.submit(3)];
    expect(waits).toHaveLength(1); // queued behind the running batch
    await c.finishNext();
    expect(waits).toHaveLength(3);
    await c.finishNext();
    await Promise.all([first, ...rest]);
    expect(waits.every((w) => w >= 0)).toBe(true);
  });

  it("runs up to maxInFlight batches at once", async () => {
    const c = controlled();
    const g = new GroupCommit(c.run, { maxBatch: 10, maxInFlight: 2 });
    const all = [1, 2, 3, 4].map((n) => g.submit(n));
    expect(c.batches).toEqual([[1], [2]]);
    await c.finishNext();
    expect(c.batches).toEqual([[1], [2], [3, 4]]);
    await c.finishNext();
    await c.finishNext();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40]);
  });

  it("settles each item on its own, and fails a whole batch only when the run itself fails", async () => {
    const c = controlled();
    const g = new GroupCommit(c.run, { maxBatch: 10, maxInFlight: 1 });
    const settled = Promise.allSettled([g.submit(1), g.submit(-2), g.submit(3)]);
    await c.finishNext();
    await c.finishNext();
    const [a, b, d] = await settled;
    expect(a).toEqual({ status: "fulfilled", value: 10 });
    expect(b.status === "rejected" && (b.reason as Error).message).toBe("bad -2");
    expect(d).toEqual({ status: "fulfilled", value: 30 });

    const failing = new GroupCommit<number, number>(() => Promise.reject(new Error("down")), { maxBatch: 10, maxInFlight: 1 });
    const xs = await Promise.allSettled([1, 2, 3].map((n) => failing.submit(n)));
    expect(xs.map((x) => x.status === "rejected" && (x.reason as Error).message)).toEqual(["down", "down", "down"]);
    // and it keeps serving afterwards
    await expect(failing.submit(4)).rejects.toThrow("down");
  });
});
