/**
 * Token counting for the context builder's budget and for usage estimates
 * when a provider reports none.
 *
 * Encoding: o200k_base (the gpt-4o / gpt-4.1 / gpt-5 family). Other
 * OpenAI-compatible models tokenize differently; for them these counts are an
 * estimate, close enough to keep a prompt within a budget with some headroom.
 */
import { countTokens as countWithGpt4o } from "gpt-tokenizer/model/gpt-4o";
import type { LlmMessage } from "./types.js";

export const TOKENIZER_ENCODING = "o200k_base";

// User text may contain strings such as "<|endoftext|>"; they must count as
// plain text, not throw (the library's default) or be read as control tokens.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** Tokens in a piece of text. */
export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  return countWithGpt4o(text, PLAIN_TEXT);
}

const recurring = new Map<string, number>();
/** Texts longer than this are counted each time: the memory a remembered count holds stays bounded (4,096 x 4 kB). */
const RECURRING_MAX_CHARS = 4096;

/**
 * Tokens in a text that recurs turn after turn (a configuration's system
 * prompt, the messages of a session's recent window, which every turn
 * counts again): counted once, then remembered. A few thousand distinct
 * texts are kept; past that the oldest is forgotten.
 */
export function countTokensOnce(text: string): number {
  if (text.length > RECURRING_MAX_CHARS) return countTokens(text);
  const known = recurring.get(text);
  if (known !== undefined) return known;
  const n = countTokens(text);
  if (recurring.size >= 4096) recurring.delete(recurring.keys().next().value!);
  recurring.set(text, n);
  return n;
}

/**
 * Tokens a chat prompt costs, including the per-message framing
 * (<|im_start|>role<|im_sep|>...<|im_end|>) and the priming of the
 * assistant's reply, as the chat endpoint bills them.
 */
export function countMessageTokens(messages: readonly LlmMessage[]): number {
  return countWithGpt4o(
    messages.map((m) => ({ role: m.role, content: m.content })),
    PLAIN_TEXT,
  );
}
