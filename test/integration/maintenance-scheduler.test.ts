import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { PgMaintenanceStore } from "../../src/db/pg-maintenance-store.js";
import { maintenanceMetrics } from "../../src/maintenance/maintenance-metrics.js";
import { type Clock, type MaintenanceJob, MaintenanceScheduler, type RunRecord } from "../../src/maintenance/scheduler.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(8);
});
afterAll(() => db?.drop());

/** A clock the test moves by hand. */
function manualClock(start = Date.parse("2030-01-01T00:00:00Z")): Clock & { advance(ms: number): void } {
  let t = start;
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

const MIN = 60_000;

/** A job that counts its runs, and can be held inside a run until released. */
function countingJob(name: string, runs: { node: string; at: Date }[], node: string, hold?: Promise<void>): MaintenanceJob {
  return {
    name,
    intervalMs: 10 * MIN,
    async run({ now }) {
      runs.push({ node, at: now });
      await hold;
      return { ran: runs.length };
    },
  };
}

describe("MaintenanceScheduler", () => {
  it("runs a job on exactly one of two nodes started at once, once per interval", async () => {
    const clock = manualClock();
    const runs: { node: string; at: Date }[] = [];
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const nodes = ["node-a", "node-b"].map((node) =>
      new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: node, leaseMs: 5 * MIN, clock }, silentLogger).register(countingJob("count", runs, node, hold)),
    );
    // both look at once; while one runs the job, a third node looks too
    const ticks = nodes.map((n) => n.tick());
    await expect.poll(() => runs.length).toBe(1);
    const third = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "node-c", leaseMs: 5 * MIN, clock }, silentLogger);
    await third.register(countingJob("count", runs, "node-c")).tick();
    expect(runs).toHaveLength(1);
    release();
    await Promise.all(ticks);
    expect(runs).toHaveLength(1);

    // not due again before the interval, on either node
    clock.advance(9 * MIN);
    await Promise.all(nodes.map((n) => n.tick()));
    expect(runs).toHaveLength(1);
    clock.advance(MIN);
    await Promise.all(nodes.map((n) => n.tick()));
    expect(runs).toHaveLength(2);
    expect(runs[1]!.at.getTime() - runs[0]!.at.getTime()).toBe(10 * MIN);

    const [status] = await nodes[1]!.statuses();
    expect(status).toMatchObject({ name: "count", lockedBy: null, lastOutcome: "ok", lastError: null, lastRunAt: runs[1]!.at });
    expect(status!.nextRunAt!.getTime()).toBe(runs[1]!.at.getTime() + 10 * MIN);
    expect(["node-a", "node-b"]).toContain(status!.lastNode);
  });

  it("lets another node run a job whose node died holding the lease, once the lease expires", async () => {
    const clock = manualClock();
    const store = new PgMaintenanceStore(db.pool);
    // a node claims and never releases (it crashed mid-run)
    expect(await store.claim("orphaned", "dead-node", clock.now(), 2 * MIN)).toBe(true);
    const runs: { node: string; at: Date }[] = [];
    const live = new MaintenanceScheduler(store, { nodeId: "live", leaseMs: 2 * MIN, clock }, silentLogger).register(countingJob("orphaned", runs, "live"));
    await live.tick();
    expect(runs).toHaveLength(0);
    clock.advance(2 * MIN);
    await live.tick();
    expect(runs.map((r) => r.node)).toEqual(["live"]);
  });

  it("records failures with their error, in the lease row and /metrics", async () => {
    const clock = manualClock();
    const records: RunRecord[] = [];
    const registry = new Registry();
    let scheduler: MaintenanceScheduler | undefined;
    const onRun = maintenanceMetrics(registry, () => scheduler);
    scheduler = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "n", leaseMs: MIN, clock, onRun: (r) => (records.push(r), onRun(r)) }, silentLogger)
      .register({ name: "broken", intervalMs: MIN, run: async () => Promise.reject(new Error("disk on fire")) })
      .register({ name: "fine", intervalMs: MIN, run: async () => ({ archived: 3 }) });
    await scheduler.tick();
    expect(records.map((r) => [r.job, r.outcome])).toEqual([
      ["broken", "error"],
      ["fine", "ok"],
    ]);
    const statuses = await scheduler.statuses();
    expect(statuses.find((s) => s.name === "broken")).toMatchObject({ lastOutcome: "error", lastError: "disk on fire", lockedBy: null });
    const text = await registry.metrics();
    expect(text).toMatch(/chat_maintenance_last_success\{job="broken"\} 0/);
    expect(text).toMatch(/chat_maintenance_last_success\{job="fine"\} 1/);
    expect(text).toMatch(new RegExp(`chat_maintenance_last_run_timestamp_seconds\\{job="fine"\\} ${clock.now().getTime() / 1000}`));
    expect(text).toMatch(/chat_maintenance_runs_total\{job="broken",outcome="error"\} 1/);
    expect(text).toMatch(/chat_maintenance_last_duration_seconds\{job="fine"\}/);
  });

  it("stop() waits for the run in progress and asks it to end", async () => {
    const clock = manualClock();
    let sawAbort = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const scheduler = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "s", leaseMs: MIN, clock }, silentLogger).register({
      name: "long",
      intervalMs: MIN,
      run: async ({ signal }) => {
        started();
        await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
        sawAbort = true;
      },
    });
    void scheduler.tick();
    await running;
    await scheduler.stop();
    expect(sawAbort).toBe(true);
    const [status] = (await scheduler.statuses()).filter((s) => s.name === "long");
    expect(status).toMatchObject({ lockedBy: null, lastOutcome: "ok" });
  });
  it("runs a job again at once when its run asks for it (a backlog in slices), and at its interval otherwise", async () => {
    const clock = manualClock(Date.parse("2031-01-01T00:00:00Z"));
    let slices = 3;
    const runs: number[] = [];
    const job: MaintenanceJob = {
      name: "slices",
      intervalMs: 10 * MIN,
      async run() {
        runs.push(clock.now().getTime());
        return { left: --slices };
      },
      intervalAfter: (s) => ((s as { left: number }).left > 0 ? 0 : 10 * MIN),
    };
    const node = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "slicer", leaseMs: 5 * MIN, clock }, silentLogger).register(job);
    // Three slices without moving the clock; then the job waits for its interval.
    for (let i = 0; i < 5; i++) await node.tick();
    expect(runs).toHaveLength(3);
    clock.advance(10 * MIN);
    await node.tick();
    expect(runs).toHaveLength(4);
  });
});
