/**
 * Builds the prompt of an assistant turn: system prompt, the retrieved
 * earlier messages (this session, and the user's other sessions when the
 * configuration allows), the recent window, and the user's message, within
 * a token budget counted with a real tokenizer.
 */
import type { RagConfig } from "../db/pg-assistant-store.js";
import { formatContextSection } from "../llm/offline-responder.js";
import { countTokens } from "../llm/tokens.js";
import type { LlmMessage } from "../llm/types.js";
import type { MemoryHit, MemoryService } from "../memory/memory-service.js";
import type { Message } from "../protocol/types.js";

export interface BuiltContext {
  messages: LlmMessage[];
  /** Retrieved messages that made it into the prompt, best first. */
  used: { messageId: number; score: number; rank: number; source: MemoryHit["source"] }[];
  promptTokens: number;
}

export interface ContextInput {
  userId: string;
  sessionId: string;
  /** The user message being answered. */
  question: Message;
  /** Reads the messages before the question in this session, oldest first (run beside retrieval). */
  window: () => Promise<Message[]>;
  config: RagConfig;
}

export class ContextBuilder {
  constructor(private readonly memory: MemoryService) {}

  async build(input: ContextInput): Promise<BuiltContext> {
    const { config, question } = input;
    // The window and retrieval are independent reads: run them together.
    const [rawWindow, found] = await Promise.all([
      input.window(),
      config.topK > 0
        ? this.memory.search({
            userId: input.userId,
            query: question.content,
            sessionId: config.crossSession ? undefined : input.sessionId,
            // Ask for more than topK: hits that are also in the window are dropped below.
            limit: config.topK + config.historyWindow,
            minSimilarity: config.similarityThreshold,
            excludeIds: [question.id],
            // Everyone in this session will read the reply: never draw on a session one of them cannot read.
            audienceSessionId: input.sessionId,
          })
        : Promise.resolve({ hits: [] as MemoryHit[] }),
    ]);
    const window = rawWindow.filter((m) => m.content.length > 0 && m.status !== "streaming");
    // What is in the window is in the prompt already.
    const inWindow = new Set(window.map((m) => m.id));
    const hits = found.hits.filter((h) => !inWindow.has(h.messageId)).slice(0, config.topK);

    // Fit the budget: the question is always sent; then memories best first; then the window newest first.
    let budget = config.contextTokenBudget - countTokens(config.systemPrompt) - countTokens(question.content);
    const usedHits: MemoryHit[] = [];
    for (const h of hits) {
      const cost = countTokens(h.content) + 12; // the entry's framing line
      if (cost > budget) continue;
      usedHits.push(h);
      budget -= cost;
    }
    const keptWindow: Message[] = [];
    for (const m of [...window].reverse()) {
      const cost = countTokens(m.content) + 4;
      if (cost > budget) break;
      keptWindow.unshift(m);
      budget -= cost;
    }

    const system = [
      config.systemPrompt,
      formatContextSection(usedHits.map((h) => ({ role: h.role, content: h.content, messageId: h.messageId, score: h.score }))),
    ].join("\n\n");
    const messages: LlmMessage[] = [
      { role: "system", content: system },
      ...keptWindow.map((m) => ({ role: m.role, content: m.content })),
      { role: "user", content: question.content },
    ];
    return {
      messages,
      used: usedHits.map((h, i) => ({ messageId: h.messageId, score: h.score, rank: i + 1, source: h.source })),
      promptTokens: messages.reduce((n, m) => n + countTokens(m.content) + 4, 0),
    };
  }
}
