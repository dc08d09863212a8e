import OpenAI from "openai";

/**
 * An `openai` client for any OpenAI-compatible endpoint. Explicit nulls keep
 * the SDK from picking up OPENAI_* variables: configuration is read in one
 * place (src/config.ts). Local servers often need no key, but the SDK
 * refuses to run without one, hence the placeholder.
 */
export function createOpenAiClient(o: { baseURL: string; apiKey?: string; timeoutMs: number; maxRetries: number }): OpenAI {
  return new OpenAI({
    baseURL: o.baseURL,
    apiKey: o.apiKey || "no-api-key",
    organization: null,
    project: null,
    adminAPIKey: null,
    timeout: o.timeoutMs,
    maxRetries: o.maxRetries,
    logLevel: "off",
  });
}
