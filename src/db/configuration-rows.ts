/** An assistant configuration's settings columns, as a turn and the admin routes read them. */
import type { AssistantConfiguration } from "../protocol/types.js";

export type TurnConfiguration = Pick<
  AssistantConfiguration,
  "id" | "systemPrompt" | "model" | "temperature" | "maxTokens" | "topK" | "similarityThreshold" | "historyWindow" | "contextTokenBudget" | "crossSession" | "retrievalMode"
>;

export interface SettingsRow {
  id: number;
  system_prompt: string;
  model: string | null;
  temperature: number;
  max_tokens: number;
  top_k: number;
  similarity_threshold: number;
  history_window: number;
  context_token_budget: number;
  cross_session: boolean;
  retrieval_mode: AssistantConfiguration["retrievalMode"];
}

/** real columns come back as float4: 0.7 reads 0.699999988. Rounded to what an admin typed (at most 4 decimals). */
const real = (x: number) => Math.round(x * 10_000) / 10_000;

export const toSettings = (r: SettingsRow): TurnConfiguration => ({
  id: r.id,
  systemPrompt: r.system_prompt,
  model: r.model,
  temperature: real(r.temperature),
  maxTokens: r.max_tokens,
  topK: r.top_k,
  similarityThreshold: real(r.similarity_threshold),
  historyWindow: r.history_window,
  contextTokenBudget: r.context_token_budget,
  crossSession: r.cross_session,
  retrievalMode: r.retrieval_mode,
});
