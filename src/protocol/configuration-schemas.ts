/**
 * Named assistant configurations: what an admin may write, what a session
 * owner sends to pick one. The bounds are the CHECK constraints of
 * sql/019_named_configurations.sql; the messages name the field and its
 * range, since an admin reads them next to the input they typed.
 */
import { z } from "zod";
import { configurationId, NO_NUL, notBlank, WELL_FORMED } from "./schemas.js";

export const RETRIEVAL_MODES = ["hybrid", "vector", "lexical", "none"] as const;
export type ConfigurationRetrievalMode = (typeof RETRIEVAL_MODES)[number];

/** Bounds of each numeric setting, shared with the web editor's inputs. */
export const CONFIGURATION_BOUNDS = {
  temperature: { min: 0, max: 2 },
  maxTokens: { min: 16, max: 32_768 },
  topK: { min: 1, max: 50 },
  similarityThreshold: { min: 0, max: 1 },
  historyWindow: { min: 0, max: 100 },
  contextTokenBudget: { min: 200, max: 200_000 },
} as const;

const between = (field: keyof typeof CONFIGURATION_BOUNDS, integer: boolean) => {
  const { min, max } = CONFIGURATION_BOUNDS[field];
  const message = `${field} must be ${integer ? "a whole number " : ""}between ${min} and ${max}`;
  const n = z.number({ invalid_type_error: `${field} must be a number`, required_error: `${field} is required` }).finite(message);
  return (integer ? n.int(message) : n).min(min, message).max(max, message);
};

const text = (field: string, max: number) =>
  z
    .string({ invalid_type_error: `${field} must be a string`, required_error: `${field} is required` })
    .max(max, `${field} is longer than ${max} characters`)
    .regex(...NO_NUL)
    .regex(...WELL_FORMED);

const fields = {
  name: text("name", 80).trim().min(1, "name is empty").regex(/^[^\p{Cc}]*$/u, "name may not contain control characters"),
  description: text("description", 1000),
  systemPrompt: text("systemPrompt", 8000).regex(...notBlank("systemPrompt")),
  /** Null: the server's LLM_MODEL. */
  model: text("model", 200).regex(/^[\w.:/@+-]+$/, "model may contain letters, digits and . : / @ + - _ only").nullable(),
  temperature: between("temperature", false),
  maxTokens: between("maxTokens", true),
  topK: between("topK", true),
  similarityThreshold: between("similarityThreshold", false),
  historyWindow: between("historyWindow", true),
  contextTokenBudget: between("contextTokenBudget", true),
  retrievalMode: z.enum(RETRIEVAL_MODES, { errorMap: () => ({ message: `retrievalMode must be one of ${RETRIEVAL_MODES.join(", ")}` }) }),
  crossSession: z.boolean({ invalid_type_error: "crossSession must be true or false" }),
};

/** POST /api/admin/configurations: name and system prompt; every other setting has a default. */
export const configurationCreate = z
  .object({
    name: fields.name,
    systemPrompt: fields.systemPrompt,
    description: fields.description.optional(),
    model: fields.model.optional(),
    temperature: fields.temperature.optional(),
    maxTokens: fields.maxTokens.optional(),
    topK: fields.topK.optional(),
    similarityThreshold: fields.similarityThreshold.optional(),
    historyWindow: fields.historyWindow.optional(),
    contextTokenBudget: fields.contextTokenBudget.optional(),
    retrievalMode: fields.retrievalMode.optional(),
    crossSession: fields.crossSession.optional(),
  })
  .strict();

/** PATCH /api/admin/configurations/:id: the settings to change, at least one. */
export const configurationUpdate = configurationCreate
  .partial()
  .strict()
  .refine((u) => Object.keys(u).length > 0, { message: "nothing to change: send at least one setting" });

export type ConfigurationCreate = z.infer<typeof configurationCreate>;
export type ConfigurationUpdate = z.infer<typeof configurationUpdate>;

/** The body of PUT /api/sessions/:id/configuration (configurationId null: the default); the socket's session:configure is in schemas.ts. */
export const sessionConfigurationBody = z.object({ configurationId: configurationId.nullable() }).strict();
/** :id of /api/admin/configurations/:id (a string in the URL). */
export const configurationIdParam = z.coerce.number().int().positive().max(2_147_483_647);
export const configurationParams = z.object({ id: configurationIdParam });
/** GET /api/admin/configurations?retired=true lists retired ones too. */
export const adminConfigurationQuery = z.object({ retired: z.enum(["true", "false"]).optional() }).strict();
