/** UTC calendar days as 'YYYY-MM-DD', the unit of quotas and analytics. */

export const utcDay = (t: Date): string => t.toISOString().slice(0, 10);

/** The day `n` days after `day` (n may be negative). */
export function addDays(day: string, n: number): string {
  const t = new Date(`${day}T00:00:00.000Z`);
  t.setUTCDate(t.getUTCDate() + n);
  return utcDay(t);
}

/** Midnight UTC after `t`: when a daily quota resets. */
export function nextUtcMidnight(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() + 1));
}

/** Whole days from `from` to `to` (0 when equal; negative when `to` is earlier). */
export const daysBetween = (from: string, to: string): number =>
  Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
