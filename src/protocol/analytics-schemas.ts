/**
 * Inputs and answers of the usage, quota and analytics routes (issue 15),
 * apart from the shared schema files so the routes' shapes stay together.
 */
import type { AnalyticsReport } from "../analytics/analytics-service.js";
import type { UsageReport } from "../chat/quota-service.js";
import { z } from "./zod-openapi.js";

/** A UTC calendar day, 'YYYY-MM-DD', that exists. */
export const isoDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date as YYYY-MM-DD")
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), "no such date");

export const analyticsQuery = z
  .object({
    from: isoDay.optional().describe("First UTC day (default: 29 days before `to`)."),
    to: isoDay.optional().describe("Last UTC day, inclusive (default: today)."),
    config: z.coerce.number().int().min(0).max(2_147_483_647).optional().describe("One configuration's rows only (assistant_configurations id; 0: messages no configuration answered)."),
  })
  .strict();

export const quotaBody = z
  .object({
    dailyTokens: z.number().int().min(0).max(1_000_000_000_000).nullable().describe("The user's daily cap in tokens; null removes the override (QUOTA_DAILY_TOKENS applies)."),
  })
  .strict();

const int = z.number().int();
const num = z.number();
const day = z.string().describe("UTC day, YYYY-MM-DD");

export const analyticsRow = z
  .object({
    day,
    configId: int.describe("assistant_configurations id; 0 for messages no configuration answered."),
    sessionsActive: int,
    userMessages: int,
    assistantMessages: int,
    systemMessages: int,
    assistantTurns: int.describe("Replies that ended, whatever their status."),
    turnsFailed: int,
    turnsCancelled: int,
    turnsInterrupted: int,
    promptTokens: int,
    completionTokens: int,
    ttftP50Ms: num.nullable().describe("Over the day's complete replies."),
    ttftP95Ms: num.nullable(),
    latencyP50Ms: num.nullable(),
    latencyP95Ms: num.nullable(),
    feedbackPositive: int,
    feedbackNegative: int,
    feedbackNeutral: int,
    satisfaction: num.nullable().describe("positive / (positive + negative)."),
    turnsWithMemory: int.describe("Ended replies whose prompt carried retrieved messages."),
    meanContextItems: num.nullable(),
  })
  .openapi("AnalyticsDay");

export const configurationTotals = z
  .object({
    configId: int,
    name: z.string().nullable().describe("The configuration's name; null for configId 0 (no configuration answered) and for a deleted configuration."),
    days: int,
    userMessages: int,
    assistantTurns: int,
    turnsFailed: int,
    turnsCancelled: int,
    turnsInterrupted: int,
    promptTokens: int,
    completionTokens: int,
    feedbackPositive: int,
    feedbackNegative: int,
    feedbackNeutral: int,
    satisfaction: num.nullable(),
    memoryShare: num.nullable(),
    meanContextItems: num.nullable(),
    meanDailyTtftP50Ms: num.nullable().describe("Daily percentiles do not merge: their mean weighted by each day's turns."),
    meanDailyTtftP95Ms: num.nullable(),
    meanDailyLatencyP95Ms: num.nullable(),
  })
  .openapi("ConfigurationTotals");

export const analyticsReport = z
  .object({ from: day, to: day, configId: int.nullable(), days: z.array(analyticsRow), configurations: z.array(configurationTotals) })
  .openapi("AnalyticsReport");

const usageDay = z.object({ day, promptTokens: int, completionTokens: int, totalTokens: int, turns: int });
export const usageReport = z
  .object({
    today: usageDay.extend({ reservedTokens: int.describe("Estimates held by replies still running.") }),
    quota: z.object({
      dailyTokens: int.nullable().describe("The cap; null: none."),
      source: z.enum(["default", "override", "none"]),
      remainingTokens: int.nullable(),
      resetAt: z.string().datetime({ offset: true }).describe("Next midnight UTC."),
    }),
    days: z.array(usageDay).describe("The last 30 UTC days, today last."),
  })
  .openapi("UsageReport");

export const quotaResult = z
  .object({ userId: z.string().uuid(), dailyTokens: int.nullable(), effectiveDailyTokens: int.nullable() })
  .openapi("QuotaOverride");

// Compile-time: the answers are what the services return.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const analyticsTypesMatch: [Same<z.infer<typeof analyticsReport>, AnalyticsReport>, Same<z.infer<typeof usageReport>, UsageReport>] = [true, true];
