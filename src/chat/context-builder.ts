/**
 * Builds the prompt of an assistant turn: system prompt, the retrieved
 * earlier messages (this session, and the user's other sessions when the
 * configuration allows), the recent window, and the user's message, within
 * a token budget counted with a real tokenizer.
 *
 * Trust: only the answered user's own messages (and the assistant's replies)
 * enter the prompt as turns. Retrieved messages go into one quoted section
 * and other members' window messages are each quoted, attributed to their
 * authors, inside the markers the system prompt names (src/llm/quoting.ts).
 */
import type { SessionScope } from "../db/memory-queries.js";
import type { RagConfig, WindowMessage } from "../db/pg-assistant-store.js";
import { FORMER_MEMBER, formatContextSection } from "../llm/offline-responder.js";
import { countTokens, countTokensOnce } from "../llm/tokens.js";
import { QUOTE_CLOSE, quoteDocuments, quoteMessage, quoteOpen, quotingRule } from "../llm/quoting.js";
import type { LlmMessage } from "../llm/types.js";
import type { MemoryHit, MemoryService } from "../memory/memory-service.js";
import type { PassageHit, PassageSearch } from "../memory/passage-search.js";
import type { Message } from "../protocol/types.js";

export interface BuiltContext {
  messages: LlmMessage[];
  /** Retrieved messages that made it into the prompt, best first. */
  used: { messageId: number; score: number; rank: number; source: MemoryHit["source"] }[];
  /** Passages of shared files that made it into the prompt, best first. */
  usedPassages: UsedPassage[];
  /**
   * The prompt's tokens as this tokenizer counts them, counted when first
   * asked: a provider that reports usage makes the count unneeded, so a turn
   * asks only when none was reported (a cancel, an error, a silent endpoint).
   */
  promptTokens(): number;
}

export interface UsedPassage {
  passageId: number;
  attachmentId: string;
  name: string;
  page: number | null;
  score: number;
  rank: number;
  source: PassageHit["source"];
}

/** What the reads of a turn found (see `gather`); `assemble` makes the prompt from it. */
export interface GatheredContext {
  window: WindowMessage[];
  hits: MemoryHit[];
  /** Passages of files shared in the sessions searched (none when absent). */
  passages?: PassageHit[];
  /** The answered user's id and the usernames of everyone whose text may be quoted. */
  userId: string;
  names: ReadonlyMap<string, string>;
}

/** Tokens of a quoted window message's markers and attribution. */
const QUOTE_COST = 12;

export class ContextBuilder {
  constructor(
    private readonly memory: MemoryService,
    private readonly usernameOf: (userId: string) => Promise<string>,
    /** Retrieval over attachment passages, and how many passages a reply may use. */
    private readonly documents?: { search: PassageSearch; topK: number },
  ) {}

  /**
   * The reads of a turn: the recent window and retrieval, together. They need
   * only the question's text, so a send can start them while its row is
   * still being written; `assemble` then drops the question (and anything
   * after it) from what they found.
   */
  async gather(input: {
    userId: string;
    sessionId: string;
    query: string;
    config: RagConfig;
    window: () => Promise<WindowMessage[]>;
    excludeIds?: number[];
    /** The sessions in scope when the caller read them with the configuration (`scopes(userId, crossSession ? undefined : sessionId, sessionId)`). */
    scopes?: Promise<SessionScope[]>;
  }): Promise<GatheredContext> {
    const { config } = input;
    const passageTopK = this.documents && config.topK > 0 ? this.documents.topK : 0;
    // One embedding of the question serves both searches.
    const embedding = config.topK > 0 ? this.memory.embedQuery(input.query) : undefined;
    embedding?.catch(() => undefined);
    // One read of the sessions in scope serves both searches (same user, session and audience).
    const scopeSessionId = config.crossSession ? undefined : input.sessionId;
    const scopes = config.topK > 0 ? (input.scopes ?? this.memory.scopes(input.userId, scopeSessionId, input.sessionId)) : undefined;
    scopes?.catch(() => undefined);
    const [window, found, passages] = await Promise.all([
      input.window(),
      config.topK > 0 && config.retrievalMode !== "none"
        ? this.memory.search({
            ...(embedding ? { embedding } : {}),
            userId: input.userId,
            query: input.query,
            sessionId: scopeSessionId,
            ...(scopes ? { scopes } : {}),
            // Ask for more than topK: hits that are also in the window (or are the question) are dropped below.
            limit: config.topK + config.historyWindow + 1,
            minSimilarity: config.similarityThreshold,
            mode: config.retrievalMode,
            ...(input.excludeIds ? { excludeIds: input.excludeIds } : {}),
            // Everyone in this session will read the reply: never draw on a session one of them cannot read.
            audienceSessionId: input.sessionId,
            // Other members' text is memory only here, in the session they share with the user.
            homeSessionId: input.sessionId,
          })
        : Promise.resolve({ hits: [] as MemoryHit[] }),
      passageTopK > 0
        ? this.documents!.search.search({
            userId: input.userId,
            query: input.query,
            ...(scopeSessionId ? { sessionId: scopeSessionId } : {}),
            ...(scopes ? { scopes } : {}),
            homeSessionId: input.sessionId,
            audienceSessionId: input.sessionId,
            limit: passageTopK,
            minSimilarity: config.similarityThreshold,
            ...(embedding ? { embedding } : {}),
          })
        : Promise.resolve([] as PassageHit[]),
    ]);
    // Authors to name: cached after their first turn, so usually no read at all.
    const authors = new Set<string>([input.userId]);
    for (const m of window) if (m.userId) authors.add(m.userId);
    for (const h of found.hits) if (h.authorId) authors.add(h.authorId);
    const names = new Map(await Promise.all([...authors].map(async (id) => [id, (await this.usernameOf(id)) || FORMER_MEMBER] as const)));
    return { window, hits: found.hits, passages, userId: input.userId, names };
  }

  assemble(gathered: GatheredContext, question: Message, config: RagConfig): BuiltContext {
    const window = gathered.window
      .filter((m) => m.seq < question.seq && m.content.length > 0 && m.status !== "streaming")
      .slice(config.historyWindow > 0 ? -config.historyWindow : gathered.window.length);
    // What is in the window is in the prompt already.
    const inWindow = new Set(window.map((m) => m.id));
    const hits = gathered.hits.filter((h) => h.messageId !== question.id && !inWindow.has(h.messageId)).slice(0, config.topK);

    // Fit the budget: the question is always sent; then memories and document passages, taking
    // turns best first (neither kind crowds the other out); then the window newest first.
    const systemPromptTokens = countTokensOnce(config.systemPrompt);
    let budget = config.contextTokenBudget - systemPromptTokens - countTokensOnce(question.content);
    const usedHits: MemoryHit[] = [];
    const usedPassages: PassageHit[] = [];
    const passages = gathered.passages ?? [];
    for (let i = 0; i < Math.max(hits.length, passages.length); i++) {
      const h = hits[i];
      if (h) {
        const cost = countTokensOnce(h.content) + 12; // the entry's framing line
        if (cost <= budget) {
          usedHits.push(h);
          budget -= cost;
        }
      }
      const p = passages[i];
      if (p) {
        const cost = countTokensOnce(p.content) + 16; // the attribution line and indentation
        if (cost <= budget) {
          usedPassages.push(p);
          budget -= cost;
        }
      }
    }
    const foreign = (m: WindowMessage) => m.role === "user" && m.userId !== gathered.userId;
    const keptWindow: WindowMessage[] = [];
    for (const m of [...window].reverse()) {
      const cost = countTokensOnce(m.content) + 4 + (foreign(m) ? QUOTE_COST : 0);
      if (cost > budget) break;
      keptWindow.unshift(m);
      budget -= cost;
    }

    const nameOf = (id: string | null | undefined) => (id ? gathered.names.get(id) : undefined);
    const section = formatContextSection(
      usedHits.map((h) => ({
        role: h.role,
        content: h.content,
        messageId: h.messageId,
        score: h.score,
        // Every quoted user message is attributed, whichever leg found it.
        ...(h.role === "user" ? { author: nameOf(h.authorId) || FORMER_MEMBER } : {}),
      })),
    );
    const system = [
      config.systemPrompt,
      quotingRule(nameOf(gathered.userId) || "the user"),
      `${quoteOpen({ source: "memory" })}\n${section}\n${QUOTE_CLOSE}`,
      ...(usedPassages.length > 0 ? [quoteDocuments(usedPassages)] : []),
    ].join("\n\n");
    const messages: LlmMessage[] = [
      { role: "system", content: system },
      ...keptWindow.map((m) => ({ role: m.role, content: foreign(m) ? quoteMessage(nameOf(m.userId) || FORMER_MEMBER, m.content) : m.content })),
      { role: "user", content: question.content },
    ];
    return {
      messages,
      used: usedHits.map((h, i) => ({ messageId: h.messageId, score: h.score, rank: i + 1, source: h.source })),
      usedPassages: usedPassages.map((p, i) => ({ passageId: p.passageId, attachmentId: p.attachmentId, name: p.name, page: p.page, score: p.score, rank: i + 1, source: p.source })),
      // The system message changes every turn; the window's messages (and the question, next turn) recur.
      promptTokens: once(() => messages.reduce((n, m, i) => n + (i === 0 ? countTokens(m.content) : countTokensOnce(m.content)) + 4, 0)),
    };
  }
}

function once(f: () => number): () => number {
  let v: number | undefined;
  return () => (v ??= f());
}
