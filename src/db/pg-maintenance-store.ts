/**
 * The maintenance scheduler's lease table (sql/014_lifecycle.sql). Times come
 * from the caller's clock, not the database's, so tests can move time.
 */
import type pg from "pg";

export interface JobStatus {
  name: string;
  lockedBy: string | null;
  leaseUntil: Date | null;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastDurationMs: number | null;
  lastOutcome: "ok" | "error" | null;
  lastError: string | null;
  lastNode: string | null;
}

// Taken when the job is due and nobody holds a live lease. The row lock makes two nodes that
// try at once serialise: the second sees the first's lease and takes nothing.
const CLAIM = `
INSERT INTO maintenance_jobs AS j (name, locked_by, lease_until, next_run_at)
VALUES ($1, $2, $3::timestamptz + make_interval(secs => $4::double precision / 1000), $3)
ON CONFLICT (name) DO UPDATE SET locked_by = EXCLUDED.locked_by, lease_until = EXCLUDED.lease_until
 WHERE (j.lease_until IS NULL OR j.lease_until <= $3) AND (j.next_run_at IS NULL OR j.next_run_at <= $3)
RETURNING name`;

const RENEW = `
UPDATE maintenance_jobs SET lease_until = $3::timestamptz + make_interval(secs => $4::double precision / 1000)
 WHERE name = $1 AND locked_by = $2`;

const RELEASE = `
UPDATE maintenance_jobs
   SET locked_by = NULL, lease_until = NULL, last_run_at = $3, last_duration_ms = $4, last_outcome = $5,
       last_error = $6, last_node = $2, last_summary = $7, next_run_at = $3::timestamptz + make_interval(secs => $8::double precision / 1000)
 WHERE name = $1 AND locked_by = $2`;

export class PgMaintenanceStore {
  constructor(private readonly pool: pg.Pool) {}

  async claim(name: string, nodeId: string, now: Date, leaseMs: number): Promise<boolean> {
    const r = await this.pool.query(CLAIM, [name, nodeId, now, leaseMs]);
    return (r.rowCount ?? 0) > 0;
  }

  async renew(name: string, nodeId: string, now: Date, leaseMs: number): Promise<boolean> {
    const r = await this.pool.query(RENEW, [name, nodeId, now, leaseMs]);
    return (r.rowCount ?? 0) > 0;
  }

  async release(
    name: string,
    nodeId: string,
    run: { startedAt: Date; durationMs: number; outcome: "ok" | "error"; error: string | null; summary: unknown; intervalMs: number },
  ): Promise<void> {
    await this.pool.query(RELEASE, [
      name,
      nodeId,
      run.startedAt,
      Math.round(run.durationMs),
      run.outcome,
      run.error,
      run.summary === undefined ? null : JSON.stringify(run.summary),
      run.intervalMs,
    ]);
  }

  async statuses(): Promise<JobStatus[]> {
    const { rows } = await this.pool.query<{
      name: string;
      locked_by: string | null;
      lease_until: Date | null;
      next_run_at: Date | null;
      last_run_at: Date | null;
      last_duration_ms: number | null;
      last_outcome: "ok" | "error" | null;
      last_error: string | null;
      last_node: string | null;
    }>("SELECT name, locked_by, lease_until, next_run_at, last_run_at, last_duration_ms, last_outcome, last_error, last_node FROM maintenance_jobs ORDER BY name");
    return rows.map((r) => ({
      name: r.name,
      lockedBy: r.locked_by,
      leaseUntil: r.lease_until,
      nextRunAt: r.next_run_at,
      lastRunAt: r.last_run_at,
      lastDurationMs: r.last_duration_ms,
      lastOutcome: r.last_outcome,
      lastError: r.last_error,
      lastNode: r.last_node,
    }));
  }
}
