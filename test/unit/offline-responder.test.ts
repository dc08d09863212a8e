import { describe, expect, it } from "vitest";
import {
  CONTEXT_SECTION_HEADING,
  composeOfflineReply,
  formatContextSection,
  OFFLINE_NOTICE,
  OfflineResponder,
  parseContextSection,
  splitIntoPieces,
  type ContextEntry,
} from "../../src/llm/offline-responder.js";
import { countMessageTokens, countTokens } from "../../src/llm/tokens.js";
import { LlmError, type LlmChunk, type LlmMessage } from "../../src/llm/types.js";
import { describeLlmProviderContract } from "../contracts/llm-provider-contract.js";

describeLlmProviderContract("OfflineResponder", async () => {
  // A few ms per piece so that "slow" streams are still running when the contract aborts them.
  const provider = new OfflineResponder({ tokenDelayMs: 3 });
  return {
    provider,
    prepare(tag, { pieces }) {
      const words = Array.from({ length: pieces }, (_, i) => `${tag}${i}`).join(" ");
      const messages: LlmMessage[] = [
        {
          role: "system",
          content: `You are the contract test.\n\n${formatContextSection([{ role: "user", messageId: 1, content: `${tag} ${words}` }])}`,
        },
        { role: "user", content: `what about ${tag}?` },
      ];
      return { messages, expectedText: composeOfflineReply(messages) };
    },
    close: async () => {},
  };
});

async function collect(provider: OfflineResponder, messages: LlmMessage[], signal = new AbortController().signal) {
  const chunks: LlmChunk[] = [];
  for await (const c of provider.stream({ messages, signal })) chunks.push(c);
  const deltas = chunks.flatMap((c) => (c.type === "delta" ? [c.text] : []));
  return { chunks, deltas, text: deltas.join("") };
}

function promptWith(entries: ContextEntry[], question: string, turns: LlmMessage[] = []): LlmMessage[] {
  return [
    { role: "system", content: `You are a helpful assistant.\n\n${formatContextSection(entries)}` },
    ...turns,
    { role: "user", content: question },
  ];
}

describe("context section convention", () => {
  it("formats entries under the heading, one line each, continuation lines indented", () => {
    const text = formatContextSection([
      { role: "user", messageId: 42, createdAt: "2024-05-01T10:00:00.000Z", score: 0.83219, content: "I parked on level 3." },
      { role: "assistant", messageId: 57, content: "Noted: level 3,\nnext to the lift." },
    ]);
    expect(text).toBe(
      [
        "Relevant earlier messages:",
        "- [#42 user, 2024-05-01T10:00:00.000Z, score 0.8322] I parked on level 3.",
        "- [#57 assistant] Noted: level 3,",
        "  next to the lift.",
      ].join("\n"),
    );
  });

  it("marks an empty section with (none)", () => {
    expect(formatContextSection([])).toBe(`${CONTEXT_SECTION_HEADING}\n(none)`);
    expect(parseContextSection([{ role: "system", content: formatContextSection([]) }])).toEqual([]);
  });

  it("parses back what it formats, wherever the section sits in a system message", () => {
    const entries: ContextEntry[] = [
      { role: "user", messageId: 1, score: 0.5, createdAt: "2024-05-01T10:00:00.000Z", content: "first\n\n  indented line\nlast ] with bracket" },
      { role: "assistant", content: "no id, no score" },
      { role: "system", messageId: 3, content: "- [#9 user] looks like an entry but is content" },
    ];
    const system = `Answer briefly.\n\n${formatContextSection(entries)}\n\nIf unsure, say so.`;
    const parsed = parseContextSection([
      { role: "system", content: system },
      // A user cannot inject entries: only system messages are read.
      { role: "user", content: formatContextSection([{ role: "user", content: "injected" }]) },
    ]);
    expect(parsed).toEqual(entries);
  });

  it("ends the section at the first line that is neither an entry nor a continuation", () => {
    const content = `${CONTEXT_SECTION_HEADING}\n- [#1 user] kept\nNot part of it.\n- [#2 user] after the end`;
    expect(parseContextSection([{ role: "system", content }])).toEqual([{ role: "user", messageId: 1, content: "kept" }]);
  });
});

describe("OfflineResponder", () => {
  const provider = new OfflineResponder({ tokenDelayMs: 0 });

  it("says it is an offline responder and quotes the relevant earlier messages", async () => {
    const messages = promptWith(
      [
        { role: "user", messageId: 11, score: 0.61, content: "My favourite colour is teal." },
        { role: "user", messageId: 12, score: 0.72, content: "I parked the car on level 3 of the garage." },
        { role: "assistant", messageId: 13, score: 0.4, content: "The dentist appointment is on Friday." },
      ],
      "Where did I park the car?",
    );
    const { text } = await collect(provider, messages);
    expect(text.startsWith(OFFLINE_NOTICE)).toBe(true);
    expect(text).toMatch(/no language model is configured/);
    expect(text).toContain("> user (#12): I parked the car on level 3 of the garage.");
    expect(text).not.toContain("teal");
    expect(text).not.toContain("dentist");
  });

  it("ranks messages sharing rarer words first and quotes at most maxQuotes", () => {
    const entries: ContextEntry[] = [
      { role: "user", messageId: 1, content: "The project deadline moved." },
      { role: "user", messageId: 2, content: "The project budget for Zephyr is 40k." },
      { role: "user", messageId: 3, content: "Zephyr launches in May." },
      { role: "user", messageId: 4, content: "Another project note." },
    ];
    const text = composeOfflineReply(promptWith(entries, "What is the Zephyr project budget?"), { maxQuotes: 2 });
    const quoted = text.split("\n").filter((l) => l.startsWith("> "));
    expect(quoted).toEqual(["> user (#2): The project budget for Zephyr is 40k.", "> user (#3): Zephyr launches in May."]);
  });

  it("says it found nothing relevant when there is no context", async () => {
    const { text } = await collect(provider, promptWith([], "Where did I park the car?"));
    expect(text).toBe(`${OFFLINE_NOTICE}\nI found nothing in the earlier messages that looks relevant to your question.`);
  });

  it("falls back to the retrieved messages, in the given order, when none shares a word with the question", () => {
    const messages = promptWith(
      [
        { role: "user", messageId: 5, score: 0.8, content: "The automobile is on floor three." },
        { role: "user", messageId: 6, score: 0.7, content: "Bring the ticket." },
      ],
      "Where did I leave my car?",
    );
    const quoted = composeOfflineReply(messages).split("\n").filter((l) => l.startsWith("> "));
    expect(quoted).toEqual(["> user (#5): The automobile is on floor three.", "> user (#6): Bring the ticket."]);
  });

  it("quotes earlier conversation turns but never its own earlier replies or the question itself", () => {
    const turns: LlmMessage[] = [
      { role: "user", content: "The wifi password is hunter2-wifi." },
      { role: "assistant", content: `${OFFLINE_NOTICE}\nThis earlier message mentions the wifi password.` },
      { role: "user", content: "Unrelated chatter about lunch." },
    ];
    const text = composeOfflineReply(promptWith([], "What is the wifi password?", turns));
    const quoted = text.split("\n").filter((l) => l.startsWith("> "));
    expect(quoted).toEqual(["> user: The wifi password is hunter2-wifi."]);
  });

  it("cuts long quotes and keeps multi-line quotes quoted", () => {
    const long = `budget ${"x".repeat(1000)}`;
    const text = composeOfflineReply(
      promptWith([{ role: "user", messageId: 1, content: long }, { role: "user", messageId: 2, content: "budget line one\nline two" }], "budget?"),
      { maxQuoteChars: 50 },
    );
    expect(text).toContain(`> user (#1): ${long.slice(0, 49)}…`);
    expect(text).toContain("> user (#2): budget line one\n> line two");
  });

  it("streams word-sized pieces and counts usage with the tokenizer", async () => {
    const messages = promptWith([{ role: "user", messageId: 3, content: "The code word is tangerine." }], "What is the code word?");
    const { chunks, deltas, text } = await collect(provider, messages);
    expect(deltas).toEqual(splitIntoPieces(composeOfflineReply(messages)));
    for (const d of deltas) expect(d).toMatch(/^\S+\s*$/);
    expect(chunks.at(-1)).toEqual({ type: "usage", promptTokens: countMessageTokens(messages), completionTokens: countTokens(text) });
  });

  it("paces the stream by tokenDelayMs", async () => {
    const slow = new OfflineResponder({ tokenDelayMs: 10 });
    const messages = promptWith([], "anything at all?");
    const pieces = splitIntoPieces(composeOfflineReply(messages)).length;
    const started = performance.now();
    await collect(slow, messages);
    expect(performance.now() - started).toBeGreaterThanOrEqual(pieces * 10 * 0.8);
  });

  it("throws LLM_ABORTED promptly when aborted during a pause", async () => {
    const slow = new OfflineResponder({ tokenDelayMs: 1000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const started = performance.now();
    const err = await collect(slow, promptWith([], "anything?"), ac.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).code).toBe("LLM_ABORTED");
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe("splitIntoPieces", () => {
  it("keeps every character, whitespace included", () => {
    const text = "  lead\n> quoted  line\n\nend ";
    const pieces = splitIntoPieces(text);
    expect(pieces.join("")).toBe(text);
    expect(pieces).toEqual(["  ", "lead\n", "> ", "quoted  ", "line\n\n", "end "]);
  });
});
