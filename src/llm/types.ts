export interface LlmMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface LlmRequest {
  messages: LlmMessage[];
  model?: string;
  temperature?: number;
  maxTokens?: number;
  signal: AbortSignal;
}

export type LlmChunk =
  | { type: "delta"; text: string }
  | { type: "usage"; promptTokens: number; completionTokens: number };

/** Failure of the provider, with a code the chat layer maps to `assistant:error`. */
export class LlmError extends Error {
  constructor(
    readonly code: "LLM_TIMEOUT" | "LLM_RATE_LIMITED" | "LLM_UNAVAILABLE" | "LLM_BAD_RESPONSE" | "LLM_ABORTED",
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "LlmError";
  }
}

export interface LlmProvider {
  readonly name: string;
  /** Streams the reply. Ends normally on completion; throws LlmError on failure or abort. */
  stream(request: LlmRequest): AsyncIterable<LlmChunk>;
}
