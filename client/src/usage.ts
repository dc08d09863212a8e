/**
 * REST calls of roles, usage and analytics (issue 15): who you are, your
 * tokens against your daily quota, and for admins the daily analytics, users'
 * quotas and roles. Each takes the server's origin ("" for the page's own)
 * and a token; a failure rejects with the server's code (FORBIDDEN for a
 * member calling an admin function).
 */
import type { AnalyticsReport } from "../../src/analytics/analytics-service.js";
import type { UsageReport } from "../../src/chat/quota-service.js";
import type { User, UserRole } from "../../src/protocol/types.js";
import { rest } from "./rest.js";

export type { AnalyticsReport, UsageReport };
export type { AnalyticsRow } from "../../src/db/pg-analytics-store.js";
export type { ConfigurationTotals } from "../../src/analytics/analytics-service.js";

/** GET /api/me: the caller and their role. */
export function fetchMe(url: string, token: string): Promise<{ user: User; role: UserRole }> {
  return rest(url, "/api/me", { token });
}

/** GET /api/me/usage: today's tokens against the quota (resetAt: next midnight UTC) and the last 30 days. */
export function fetchUsage(url: string, token: string): Promise<UsageReport> {
  return rest(url, "/api/me/usage", { token });
}

/** GET /api/admin/analytics (admin): daily rows per configuration from `from` to `to` (UTC days, YYYY-MM-DD, at most 366) and per-configuration totals. */
export function fetchAnalytics(url: string, token: string, q: { from?: string; to?: string; config?: number } = {}): Promise<AnalyticsReport> {
  const params = new URLSearchParams();
  if (q.from) params.set("from", q.from);
  if (q.to) params.set("to", q.to);
  if (q.config !== undefined) params.set("config", String(q.config));
  const query = params.toString();
  return rest(url, `/api/admin/analytics${query ? `?${query}` : ""}`, { token });
}

/** PUT /api/admin/users/:id/quota (admin): a user's daily token cap; null removes the override. */
export function setUserQuota(url: string, token: string, userId: string, dailyTokens: number | null): Promise<{ userId: string; dailyTokens: number | null; effectiveDailyTokens: number | null }> {
  return rest(url, `/api/admin/users/${encodeURIComponent(userId)}/quota`, { method: "PUT", token, body: { dailyTokens } });
}

/** PUT /api/admin/users/:id/role (admin): make someone an admin or a member (the last admin stays). */
export function setUserRole(url: string, token: string, userId: string, role: UserRole): Promise<{ user: User; role: UserRole }> {
  return rest(url, `/api/admin/users/${encodeURIComponent(userId)}/role`, { method: "PUT", token, body: { role } });
}
