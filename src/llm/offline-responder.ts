/**
 * The LlmProvider of a server with no language model configured (DESIGN.md
 * section 2). It does not pretend to be one: every reply starts with
 * OFFLINE_NOTICE, then quotes the earlier messages that best match the user's
 * question, or says it found none. It streams like a real model, so the rest
 * of the assistant turn (deltas, cancel, usage, storage) runs the same way.
 *
 * Context-section convention, shared with the prompt builder
 * --------------------------------------------------------------
 * The prompt builder puts retrieved earlier messages into a system message as
 * a section built by `formatContextSection`:
 *
 *     Relevant earlier messages:
 *     - [#42 user, 2024-05-01T10:00:00.000Z, score 0.83] I parked on level 3.
 *     - [#57 assistant, score 0.71] Noted: level 3,
 *       next to the lift.
 *
 * - The heading is the line CONTEXT_SECTION_HEADING, alone on its line,
 *   anywhere in any system message (other text may come before it).
 * - Each entry is one line "- [<meta>] <first line of content>"; further
 *   content lines follow indented by two spaces. <meta> is
 *   "[#<messageId> ]<role>" then optional ", from <username>" (who wrote
 *   it), ", <ISO timestamp>" and ", score <number>", and never contains "]".
 * - An empty section is the heading followed by the line "(none)".
 * - The section ends at the first line that is neither an entry nor a
 *   continuation (a blank line, for instance), or at the end of the message.
 *
 * `parseContextSection` reads it back; the two are tested as a round trip.
 */
import { parseDocuments, unquote } from "./quoting.js";
import { countMessageTokens, countTokens } from "./tokens.js";
import { LlmError, type LlmChunk, type LlmMessage, type LlmProvider, type LlmRequest } from "./types.js";

export const CONTEXT_SECTION_HEADING = "Relevant earlier messages:";
export const EMPTY_CONTEXT_LINE = "(none)";

/** First line of every offline reply; also how the responder recognises its own earlier replies. */
export const OFFLINE_NOTICE =
  "[Offline responder: no language model is configured, so this reply only quotes earlier messages.]";

/** The author named for a message whose author's account is gone (no username can take it: it has spaces). */
export const FORMER_MEMBER = "a former member";

export interface ContextEntry {
  role: "user" | "assistant" | "system";
  content: string;
  messageId?: number;
  /** ISO 8601. */
  createdAt?: string;
  /** Retrieval score (similarity or fused rank score). */
  score?: number;
  /** Username of who wrote it, when known. */
  author?: string;
}

/** The context section for a system message; see the convention in this file's header. */
export function formatContextSection(entries: readonly ContextEntry[]): string {
  const lines = [CONTEXT_SECTION_HEADING];
  if (entries.length === 0) lines.push(EMPTY_CONTEXT_LINE);
  for (const e of entries) {
    const meta: string[] = [e.messageId !== undefined ? `#${e.messageId} ${e.role}` : e.role];
    if (e.author !== undefined && (e.author === FORMER_MEMBER || /^[\w.-]+$/.test(e.author))) meta.push(`from ${e.author}`);
    if (e.createdAt !== undefined) meta.push(e.createdAt.replaceAll("]", ")"));
    if (e.score !== undefined && Number.isFinite(e.score)) meta.push(`score ${roundScore(e.score)}`);
    const [first = "", ...rest] = e.content.replace(/\r\n?/g, "\n").split("\n");
    lines.push(`- [${meta.join(", ")}] ${first}`);
    for (const line of rest) lines.push(`  ${line}`);
  }
  return lines.join("\n");
}

/** Entries of every context section in the system messages, in order. */
export function parseContextSection(messages: readonly LlmMessage[]): ContextEntry[] {
  const entries: ContextEntry[] = [];
  for (const m of messages) {
    if (m.role !== "system") continue;
    const lines = m.content.replace(/\r\n?/g, "\n").split("\n");
    let inSection = false;
    let current: ContextEntry | undefined;
    for (const line of lines) {
      if (line.trimEnd() === CONTEXT_SECTION_HEADING) {
        inSection = true;
        current = undefined;
        continue;
      }
      if (!inSection) continue;
      const entry = /^- \[([^\]]*)\] ?(.*)$/.exec(line);
      if (entry) {
        current = parseEntry(entry[1] ?? "", entry[2] ?? "");
        if (current) entries.push(current);
        else inSection = false;
        continue;
      }
      if (current && line.startsWith("  ")) {
        current.content += `\n${line.slice(2)}`;
        continue;
      }
      if (!current && line.trim() === EMPTY_CONTEXT_LINE) continue;
      inSection = false;
      current = undefined;
    }
  }
  return entries;
}

function parseEntry(meta: string, firstLine: string): ContextEntry | undefined {
  const [head = "", ...rest] = meta.split(", ");
  const h = /^(?:#(\d+) )?(user|assistant|system)$/.exec(head.trim());
  if (!h) return undefined;
  const entry: ContextEntry = { role: h[2] as ContextEntry["role"], content: firstLine };
  if (h[1] !== undefined) entry.messageId = Number(h[1]);
  for (const part of rest) {
    const s = /^score (-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(part.trim());
    const from = /^from ([\w.-]+|a former member)$/.exec(part.trim());
    if (s) entry.score = Number(s[1]);
    else if (from) entry.author = from[1];
    else if (!Number.isNaN(Date.parse(part))) entry.createdAt = part.trim();
  }
  return entry;
}

function roundScore(score: number): string {
  return String(Math.round(score * 10_000) / 10_000);
}

export interface OfflineResponderOptions {
  /** Pause between streamed pieces, so clients see a stream as with a model. Default 8 ms; 0 in tests. */
  tokenDelayMs?: number;
  /** Most earlier messages quoted in one reply. Default 3. */
  maxQuotes?: number;
  /** Longer quotes are cut to this many characters. Default 400. */
  maxQuoteChars?: number;
  /** Default "offline". */
  name?: string;
}

export class OfflineResponder implements LlmProvider {
  readonly name: string;
  private readonly tokenDelayMs: number;
  private readonly compose: ComposeOptions;

  constructor(options: OfflineResponderOptions = {}) {
    this.name = options.name ?? "offline";
    this.tokenDelayMs = Math.max(0, options.tokenDelayMs ?? 8);
    this.compose = {
      maxQuotes: Math.max(1, Math.floor(options.maxQuotes ?? 3)),
      maxQuoteChars: Math.max(20, Math.floor(options.maxQuoteChars ?? 400)),
    };
  }

  async *stream(request: LlmRequest): AsyncGenerator<LlmChunk> {
    const { signal } = request;
    if (signal.aborted) throw abortedError();
    const text = composeOfflineReply(request.messages, this.compose);
    for (const piece of splitIntoPieces(text)) {
      await pause(this.tokenDelayMs, signal);
      yield { type: "delta", text: piece };
    }
    if (signal.aborted) throw abortedError();
    yield { type: "usage", promptTokens: countMessageTokens(request.messages), completionTokens: countTokens(text) };
  }
}

interface ComposeOptions {
  maxQuotes: number;
  maxQuoteChars: number;
}

interface Candidate {
  role: ContextEntry["role"];
  content: string;
  messageId?: number;
  score?: number;
  /** From the retrieved context section, as opposed to the conversation turns. */
  retrieved: boolean;
  order: number;
  /** Where a passage of a shared file comes from ('from document "x.pdf", page 2'). */
  document?: string;
}

/**
 * The full reply the responder streams for these messages. Exported so tests
 * and logs can know the reply without streaming it.
 *
 * Which earlier messages it quotes: the question is the last user message;
 * candidates are the context-section entries and the earlier conversation
 * turns (not its own past replies, not the question itself). Candidates
 * sharing meaningful words with the question rank by those words' rarity
 * among the candidates, then by retrieval score. When none shares a word, the
 * retrieved entries are quoted in the order the prompt builder gave them: the
 * retriever already judged them relevant, perhaps by meaning rather than
 * wording. Conversation turns are quoted only on shared words.
 */
export function composeOfflineReply(messages: readonly LlmMessage[], options: Partial<ComposeOptions> = {}): string {
  const maxQuotes = options.maxQuotes ?? 3;
  const maxQuoteChars = options.maxQuoteChars ?? 400;
  const lastUser = findLastIndex(messages, (m) => m.role === "user");
  const question = lastUser >= 0 ? (messages[lastUser]?.content ?? "") : "";

  const seen = new Set<string>();
  const candidates: Candidate[] = [];
  const add = (c: Omit<Candidate, "order">) => {
    const key = normalise(c.content);
    if (key === "" || key === normalise(question) || seen.has(key)) return;
    seen.add(key);
    candidates.push({ ...c, order: candidates.length });
  };
  for (const e of parseContextSection(messages)) {
    add({ role: e.role, content: e.content, messageId: e.messageId, score: e.score, retrieved: true });
  }
  for (const d of parseDocuments(messages)) add({ role: "user", content: d.content, retrieved: true, document: d.source });
  messages.forEach((m, i) => {
    if (i === lastUser || m.role === "system") return;
    if (m.role === "assistant" && m.content.startsWith(OFFLINE_NOTICE)) return;
    add({ role: m.role, content: unquote(m.content), retrieved: false });
  });

  const picked = pickRelevant(question, candidates, maxQuotes);
  const lines = [OFFLINE_NOTICE];
  if (question.trim() === "") {
    lines.push("There is no question to answer.");
  } else if (picked.length === 0) {
    lines.push("I found nothing in the earlier messages that looks relevant to your question.");
  } else {
    lines.push(picked.length === 1 ? "This earlier message looks relevant to your question:" : "These earlier messages look relevant to your question:");
    for (const c of picked) lines.push(quote(c, maxQuoteChars));
  }
  return lines.join("\n");
}

function pickRelevant(question: string, candidates: readonly Candidate[], max: number): Candidate[] {
  const qTerms = new Set(terms(question));
  if (qTerms.size === 0 || candidates.length === 0) {
    return candidates.filter((c) => c.retrieved).slice(0, max);
  }
  const candTerms = candidates.map((c) => new Set(terms(c.content)));
  const df = new Map<string, number>();
  for (const set of candTerms) for (const t of set) if (qTerms.has(t)) df.set(t, (df.get(t) ?? 0) + 1);
  const n = candidates.length;
  const scored = candidates.map((c, i) => {
    let overlap = 0;
    for (const t of candTerms[i] ?? []) {
      const d = df.get(t);
      if (d !== undefined) overlap += Math.log(1 + n / d);
    }
    return { c, overlap };
  });
  const matching = scored
    .filter((s) => s.overlap > 0)
    .sort((a, b) => b.overlap - a.overlap || (b.c.score ?? -Infinity) - (a.c.score ?? -Infinity) || a.c.order - b.c.order)
    .map((s) => s.c);
  if (matching.length > 0) return matching.slice(0, max);
  return candidates.filter((c) => c.retrieved).slice(0, max);
}

function quote(c: Candidate, maxChars: number): string {
  const who = c.document ?? (c.messageId !== undefined ? `${c.role} (#${c.messageId})` : c.role);
  let content = c.content.trim();
  if (content.length > maxChars) content = `${content.slice(0, maxChars - 1).trimEnd()}…`;
  return `> ${who}: ${content.replace(/\r\n?/g, "\n").split("\n").join("\n> ")}`;
}

// Function words carry no topic; matching on them would make every message look relevant.
const STOPWORDS = new Set(
  (
    "a an the and or but if then so of to in on at by for with from about as into over after before " +
    "is are was were be been being am do does did done have has had having can could will would shall " +
    "should may might must i me my mine we us our you your yours he him his she her it its they them their " +
    "this that these those what which who whom whose where when why how there here not no yes " +
    "all any some just also very too than again up down out off only own same such both each few more most " +
    "other tell say said know remember please thanks thank hi hello hey ok okay"
  ).split(" "),
);

function terms(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    if (STOPWORDS.has(raw)) continue;
    if (raw.length < 2 && !/\p{N}/u.test(raw)) continue;
    out.push(stem(raw));
  }
  return out;
}

// Just enough folding that "cars" finds "car" and "parked" finds "parking".
function stem(word: string): string {
  if (/\p{N}/u.test(word) || word.length <= 3) return word;
  for (const suffix of ["ing", "ed", "es", "s"]) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) return word.slice(0, -suffix.length);
  }
  return word;
}

function normalise(text: string): string {
  return text.trim().replace(/\s+/g, " ").toLowerCase();
}

function findLastIndex<T>(items: readonly T[], pred: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (pred(items[i] as T)) return i;
  return -1;
}

/** Word-sized pieces that concatenate back to the text: each word with the whitespace after it. */
export function splitIntoPieces(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((p) => p.length > 0);
}

/**
 * Waits between pieces. With no delay it still yields to the event loop, so a
 * long reply cannot starve other work and an abort from a timer gets through.
 * Not unref()'d: this wait is the work itself, and a process whose only task
 * is this stream must not exit half-way through it.
 */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clear();
      reject(abortedError());
    };
    const done = () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    };
    let clear: () => void;
    if (ms > 0) {
      const t = setTimeout(done, ms);
      clear = () => clearTimeout(t);
    } else {
      const im = setImmediate(done);
      clear = () => clearImmediate(im);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function abortedError(): LlmError {
  return new LlmError("LLM_ABORTED", "the request was aborted");
}
