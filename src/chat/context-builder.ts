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

/** What the reads of a turn found (see `gather`); `assemble` makes the prompt from it. */
export interface GatheredContext {
  window: Message[];
  hits: MemoryHit[];
}

export class ContextBuilder {
  constructor(private readonly memory: MemoryService) {}

  /**
   * The reads of a turn: the recent window and retrieval, together. They need
   * only the question's text, so a send can start them while its row is
   * still being written; `assemble` then drops the question (and anything
   * after it) from what they found.
   */
  async gather(input: { userId: string; sessionId: string; query: string; config: RagConfig; window: () => Promise<Message[]>; excludeIds?: number[] }): Promise<GatheredContext> {
    const { config } = input;
    const [window, found] = await Promise.all([
      input.window(),
      config.topK > 0
        ? this.memory.search({
            userId: input.userId,
            query: input.query,
            sessionId: config.crossSession ? undefined : input.sessionId,
            // Ask for more than topK: hits that are also in the window (or are the question) are dropped below.
            limit: config.topK + config.historyWindow + 1,
            minSimilarity: config.similarityThreshold,
            ...(input.excludeIds ? { excludeIds: input.excludeIds } : {}),
            // Everyone in this session will read the reply: never draw on a session one of them cannot read.
            audienceSessionId: input.sessionId,
            // Other members' text is memory only here, in the session they share with the user.
            homeSessionId: input.sessionId,
          })
        : Promise.resolve({ hits: [] as MemoryHit[] }),
    ]);
    return { window, hits: found.hits };
  }

  assemble(gathered: GatheredContext, question: Message, config: RagConfig): BuiltContext {
    const window = gathered.window
      .filter((m) => m.seq < question.seq && m.content.length > 0 && m.status !== "streaming")
      .slice(config.historyWindow > 0 ? -config.historyWindow : gathered.window.length);
    // What is in the window is in the prompt already.
    const inWindow = new Set(window.map((m) => m.id));
    const hits = gathered.hits.filter((h) => h.messageId !== question.id && !inWindow.has(h.messageId)).slice(0, config.topK);

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
