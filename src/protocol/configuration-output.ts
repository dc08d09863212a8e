/** What the server sends about named assistant configurations (see output-schemas.ts for the rules). */
import { RETRIEVAL_MODES } from "./configuration-schemas.js";
import type { AssistantConfiguration, ConfigurationSummary } from "./types.js";
import { z } from "./zod-openapi.js";

const id = z.string().uuid();
const timestamp = z.string().datetime({ offset: true });
const int = z.number().int();

export const configurationSummary = z
  .object({
    id: int.positive(),
    name: z.string(),
    description: z.string(),
    model: z.string().nullable().describe("Null: the server's LLM_MODEL."),
    retrievalMode: z.enum(RETRIEVAL_MODES),
    crossSession: z.boolean().describe("Retrieval also searches the user's other sessions."),
    isDefault: z.boolean(),
  })
  .openapi("ConfigurationSummary");

export const configuration = configurationSummary
  .extend({
    systemPrompt: z.string(),
    temperature: z.number(),
    maxTokens: int,
    topK: int,
    similarityThreshold: z.number(),
    historyWindow: int,
    contextTokenBudget: int,
    active: z.boolean().describe("False once retired: no session may pick it, and sessions that used it follow the default."),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .openapi("AssistantConfiguration");

export const configurationList = z.object({ configurations: z.array(configuration) }).openapi("ConfigurationList");
export const configurationSummaryList = z.object({ configurations: z.array(configurationSummary) }).openapi("ConfigurationSummaryList");
export const retireResult = z
  .object({ configuration, sessionsReset: int.describe("Sessions that used it and now follow the default.") })
  .openapi("RetireResult");
export const sessionConfigured = z
  .object({
    sessionId: id,
    configurationId: int.positive().nullable().describe("Null: the session follows the default configuration."),
    configuration: configurationSummary.describe("The configuration the session's next turn uses."),
  })
  .openapi("SessionConfigured");

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const configurationTypesMatch: [Same<z.infer<typeof configuration>, AssistantConfiguration>, Same<z.infer<typeof configurationSummary>, ConfigurationSummary>] = [
  true,
  true,
];
