/**
 * The daily analytics roll-up (sql/018, src/maintenance/analytics-job.ts)
 * against hand-computed figures for a fixed data set: messages written with
 * their timestamps, statuses, token counts and timings, feedback and
 * retrieved context. Run through the maintenance scheduler with a clock the
 * test sets; re-running gives the same rows; later runs recompute only the
 * days that can have changed; rows past retention are deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgAnalyticsStore } from "../../src/db/pg-analytics-store.js";
import { PgMaintenanceStore } from "../../src/db/pg-maintenance-store.js";
import { PgUsageStore } from "../../src/db/pg-usage-store.js";
import { AnalyticsService } from "../../src/analytics/analytics-service.js";
import { analyticsJob, rollUp } from "../../src/maintenance/analytics-job.js";
import { type Clock, MaintenanceScheduler } from "../../src/maintenance/scheduler.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";

let db: TestDatabase;
let store: PgAnalyticsStore;
let usage: PgUsageStore;
const ids: Record<string, number> = {};
let userId: string;
let cfg1: number;
let cfg2: number;

const D0 = "2026-11-09";
const D1 = "2026-11-10";
const D2 = "2026-11-11";

interface Row {
  name: string;
  session: "A" | "B";
  role: "user" | "assistant" | "system";
  at: string;
  status?: string;
  replyTo?: string;
  prompt?: number | null;
  completion?: number | null;
  ttft?: number | null;
  latency?: number | null;
  config?: number | null;
}

beforeAll(async () => {
  db = await createTestDatabase(6);
  store = new PgAnalyticsStore(db.pool);
  usage = new PgUsageStore(db.pool);
  const q = (sql: string, v: unknown[] = []) => db.pool.query(sql, v);
  userId = (await q("INSERT INTO users (username, password_hash) VALUES ('ana', 'x') RETURNING id")).rows[0].id;
  const sessions: Record<string, string> = {};
  for (const s of ["A", "B"]) {
    sessions[s] = (await q("INSERT INTO chat_sessions (owner_id, title) VALUES ($1, $2) RETURNING id", [userId, s])).rows[0].id;
    await q("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [sessions[s], userId]);
  }
  cfg1 = (await q("SELECT id FROM assistant_configurations WHERE is_default")).rows[0].id;
  cfg2 = (await q("INSERT INTO assistant_configurations (name, system_prompt) VALUES ('terse', 'terse') RETURNING id")).rows[0].id;
  await q("UPDATE chat_sessions SET configuration_id = $2 WHERE id = $1", [sessions.B, cfg2]);
  const T = (day: string, hms: string) => `${day}T${hms}Z`;
  const rows: Row[] = [
    { name: "u0", session: "A", role: "user", at: T(D0, "23:59:59.999") },
    { name: "u1", session: "A", role: "user", at: T(D1, "00:00:00") },
    { name: "a1", session: "A", role: "assistant", at: T(D1, "00:00:01"), status: "complete", replyTo: "u1", prompt: 100, completion: 20, ttft: 100, latency: 1000, config: cfg1 },
    { name: "u2", session: "A", role: "user", at: T(D1, "01:00:00") },
    { name: "a2", session: "A", role: "assistant", at: T(D1, "01:00:01"), status: "complete", replyTo: "u2", prompt: 200, completion: 40, ttft: 200, latency: 2000, config: cfg1 },
    { name: "u3", session: "A", role: "user", at: T(D1, "02:00:00") },
    { name: "a3", session: "A", role: "assistant", at: T(D1, "02:00:01"), status: "complete", replyTo: "u3", prompt: 300, completion: 60, ttft: 300, latency: 3000, config: cfg1 },
    { name: "u4", session: "A", role: "user", at: T(D1, "03:00:00") },
    { name: "a4", session: "A", role: "assistant", at: T(D1, "03:00:01"), status: "error", replyTo: "u4", prompt: 50, completion: null, ttft: null, latency: 500, config: cfg1 },
    { name: "u5", session: "A", role: "user", at: T(D1, "04:00:00") },
    { name: "a5", session: "A", role: "assistant", at: T(D1, "04:00:01"), status: "cancelled", replyTo: "u5", prompt: 10, completion: 5, ttft: 50, latency: 60, config: cfg1 },
    { name: "u6", session: "A", role: "user", at: T(D1, "05:00:00") },
    { name: "s1", session: "A", role: "system", at: T(D1, "06:00:00") },
    { name: "u7", session: "B", role: "user", at: T(D1, "07:00:00") },
    { name: "a7", session: "B", role: "assistant", at: T(D1, "07:00:01"), status: "interrupted", replyTo: "u7", prompt: 70, completion: 7, ttft: 70, latency: 700, config: cfg2 },
    { name: "u8", session: "B", role: "user", at: T(D1, "08:00:00") },
    { name: "a8", session: "B", role: "assistant", at: T(D1, "08:00:01"), status: "complete", replyTo: "u8", prompt: 80, completion: 8, ttft: 80, latency: 800, config: cfg2 },
    { name: "u9", session: "B", role: "user", at: T(D1, "23:59:59") },
    { name: "a9", session: "B", role: "assistant", at: T(D1, "23:59:59.5"), status: "streaming", replyTo: "u9" },
    { name: "u10", session: "A", role: "user", at: T(D2, "00:00:00") },
  ];
  const seqs: Record<string, number> = { A: 0, B: 0 };
  for (const r of rows) {
    const { rows: out } = await q(
      `INSERT INTO chat_messages (session_id, seq, user_id, role, content, status, reply_to_id, prompt_tokens, token_count,
                                  first_token_ms, latency_ms, config_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
      [sessions[r.session], ++seqs[r.session]!, userId, r.role, r.name, r.status ?? "complete", r.replyTo ? ids[r.replyTo] : null,
        r.prompt ?? null, r.completion ?? null, r.ttft ?? null, r.latency ?? null, r.config ?? null, r.at],
    );
    ids[r.name] = out[0].id;
  }
  for (const [m, rating] of [["a1", 1], ["a2", -1], ["a7", 1]] as const) {
    await q("INSERT INTO message_feedback (message_id, user_id, rating) VALUES ($1, $2, $3)", [ids[m], userId, rating]);
  }
  // a1 used two retrieved messages, a3 one.
  for (const [m, ctx, rank] of [["a1", "u0", 1], ["a1", "u2", 2], ["a3", "u1", 1]] as const) {
    await q("INSERT INTO message_context (message_id, context_message_id, score, rank, source) VALUES ($1, $2, 0.5, $3, 'hybrid')", [ids[m], ids[ctx], rank]);
  }
});
afterAll(async () => db?.drop());

const at = (iso: string): Clock & { set(iso: string): void } => {
  let t = new Date(iso);
  return { now: () => t, set: (s) => void (t = new Date(s)) };
};
const snapshot = async () => (await db.pool.query("SELECT * FROM analytics_daily ORDER BY day, config_id")).rows;
const never = new AbortController().signal;

const zeroTurns = { assistantTurns: 0, turnsFailed: 0, turnsCancelled: 0, turnsInterrupted: 0, promptTokens: 0, completionTokens: 0 };

describe("the analytics roll-up", () => {
  it("through the scheduler, gives the hand-computed rows for every configuration and day", async () => {
    const clock = at(`${D2}T12:00:00Z`);
    const scheduler = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "n1", leaseMs: 60_000, clock }, silentLogger);
    scheduler.register(analyticsJob(store, usage, { intervalMs: 600_000, retentionDays: 730 }));
    await scheduler.tick();
    const [status] = await scheduler.statuses();
    expect(status).toMatchObject({ name: "analytics", lastOutcome: "ok" });
    // The first run covers every day with messages: D0 .. D2 (today).
    const summary = await db.pool.query("SELECT last_summary FROM maintenance_jobs WHERE name = 'analytics'");
    expect(summary.rows[0].last_summary).toMatchObject({ days: 3, from: D0 });

    const rows = await store.rows(D0, D2);
    expect(rows.map((r) => [r.day, r.configId])).toEqual([[D0, 0], [D1, 0], [D1, cfg1], [D1, cfg2], [D2, 0]]);
    const byKey = (day: string, c: number) => rows.find((r) => r.day === day && r.configId === c)!;
    expect(byKey(D1, cfg1)).toEqual({
      day: D1, configId: cfg1, sessionsActive: 1, userMessages: 5, assistantMessages: 5, systemMessages: 0,
      assistantTurns: 5, turnsFailed: 1, turnsCancelled: 1, turnsInterrupted: 0,
      promptTokens: 660, completionTokens: 125,
      // percentile_cont over the complete replies 100, 200, 300 ms: p95 = 200 + 0.9 * 100
      ttftP50Ms: 200, ttftP95Ms: 290, latencyP50Ms: 2000, latencyP95Ms: 2900,
      feedbackPositive: 1, feedbackNegative: 1, feedbackNeutral: 0, satisfaction: 0.5,
      turnsWithMemory: 2, meanContextItems: 0.6,
    });
    expect(byKey(D1, cfg2)).toEqual({
      day: D1, configId: cfg2, sessionsActive: 1, userMessages: 2, assistantMessages: 2, systemMessages: 0,
      assistantTurns: 2, turnsFailed: 0, turnsCancelled: 0, turnsInterrupted: 1, promptTokens: 150, completionTokens: 15,
      ttftP50Ms: 80, ttftP95Ms: 80, latencyP50Ms: 800, latencyP95Ms: 800,
      feedbackPositive: 1, feedbackNegative: 0, feedbackNeutral: 0, satisfaction: 1, turnsWithMemory: 0, meanContextItems: 0,
    });
    // Unanswered messages, the system message and the reply still streaming: configuration 0, no turns.
    expect(byKey(D1, 0)).toEqual({
      day: D1, configId: 0, sessionsActive: 2, userMessages: 2, assistantMessages: 1, systemMessages: 1, ...zeroTurns,
      ttftP50Ms: null, ttftP95Ms: null, latencyP50Ms: null, latencyP95Ms: null,
      feedbackPositive: 0, feedbackNegative: 0, feedbackNeutral: 0, satisfaction: null, turnsWithMemory: 0, meanContextItems: null,
    });
    // A millisecond before midnight is the day before; midnight is the day after.
    expect(byKey(D0, 0)).toMatchObject({ userMessages: 1, sessionsActive: 1 });
    expect(byKey(D2, 0)).toMatchObject({ userMessages: 1, sessionsActive: 1 });

    // The route's totals compare the two configurations over the range.
    const report = await new AnalyticsService(store, clock).report({ from: D0, to: D2 });
    const totals = Object.fromEntries(report.configurations.map((c) => [c.configId, c]));
    expect(totals[cfg1]).toMatchObject({ name: "Default", days: 1, assistantTurns: 5, promptTokens: 660, satisfaction: 0.5, memoryShare: 0.4, meanDailyTtftP95Ms: 290 });
    expect(totals[cfg2]).toMatchObject({ name: "terse", days: 1, assistantTurns: 2, satisfaction: 1, memoryShare: 0 });
    expect(totals[0]).toMatchObject({ name: null, days: 3, userMessages: 4, assistantTurns: 0, memoryShare: null });
    expect((await new AnalyticsService(store, clock).report({ from: D1, to: D1, config: cfg2 })).days).toHaveLength(1);
    await expect(new AnalyticsService(store, clock).report({ from: D2, to: D0 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(new AnalyticsService(store, clock).report({ from: "2025-01-01", to: "2026-01-02" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("re-running gives the same rows", async () => {
    const before = await snapshot();
    await db.pool.query("DELETE FROM analytics_rollup_state");
    await rollUp(store, usage, 730, { now: new Date(`${D2}T13:00:00Z`), signal: never });
    await rollUp(store, usage, 730, { now: new Date(`${D2}T13:00:00Z`), signal: never });
    expect(await snapshot()).toEqual(before);
  });

  it("a later run recomputes the days since the last run and the days whose feedback changed, nothing else", async () => {
    const now = new Date("2026-11-20T10:00:00Z");
    const first = await rollUp(store, usage, 730, { now, signal: never });
    // From the day before the last run (D2 13:00) to today.
    expect(first).toMatchObject({ from: D1, days: 11 });
    // Feedback on D1's reply changes; a message slipped into D0 (no run would write there) is not picked up.
    await db.pool.query("UPDATE message_feedback SET rating = 1, updated_at = now() WHERE message_id = $1", [ids.a2]);
    await db.pool.query(
      "INSERT INTO chat_messages (session_id, seq, user_id, role, content, created_at) SELECT session_id, 99, user_id, 'user', 'late', $2 FROM chat_messages WHERE id = $1",
      [ids.u0, `${D0}T10:00:00Z`],
    );
    const second = await rollUp(store, usage, 730, { now: new Date("2026-11-21T10:00:00Z"), signal: never });
    // D1 for its feedback, and 11-19 (the day before the last run) to 11-21.
    expect(second).toMatchObject({ from: D1, days: 4 });
    const rows = await store.rows(D0, D1);
    expect(rows.find((r) => r.day === D1 && r.configId === cfg1)).toMatchObject({ feedbackPositive: 2, feedbackNegative: 0, satisfaction: 1 });
    expect(rows.find((r) => r.day === D0)).toMatchObject({ userMessages: 1 });
  });

  it("deletes rows and usage days older than the retention", async () => {
    await db.pool.query("INSERT INTO usage_daily (user_id, day, prompt_tokens) VALUES ($1, $2, 5), ($1, $3, 7)", [userId, D0, "2026-11-25"]);
    // Retention 15 days on 2026-11-25: days before 2026-11-10 go.
    const r = await rollUp(store, usage, 15, { now: new Date("2026-11-25T10:00:00Z"), signal: never });
    expect(r).toMatchObject({ deletedRows: 1, deletedUsageDays: 1 });
    expect((await store.rows("2000-01-01", "2026-11-25")).map((x) => x.day)[0]).toBe(D1);
    expect((await usage.days(userId, "2000-01-01", "2030-01-01")).map((d) => d.day)).toEqual(["2026-11-25"]);
  });
});
