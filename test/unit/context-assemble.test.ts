import { describe, expect, it } from "vitest";
import { ContextBuilder } from "../../src/chat/context-builder.js";
import type { RagConfig } from "../../src/db/pg-assistant-store.js";
import type { MemoryHit, MemoryService } from "../../src/memory/memory-service.js";
import type { Message } from "../../src/protocol/types.js";

const config: RagConfig = {
  systemPrompt: "You are helpful.",
  model: null,
  temperature: 0.2,
  maxTokens: 100,
  topK: 3,
  similarityThreshold: 0,
  historyWindow: 2,
  contextTokenBudget: 2000,
  crossSession: true,
};
const msg = (id: number, seq: number, content: string, extra: Partial<Message> = {}): Message => ({
  id, sessionId: "s", seq, role: "user", content, status: "complete", clientMessageId: null, userId: "u", replyToId: null,
  createdAt: new Date(0).toISOString(), ...extra,
});
const hit = (messageId: number, content: string): MemoryHit => ({ messageId, sessionId: "s", score: 0.9, role: "user", content, source: "lexical" });

describe("ContextBuilder.assemble (reads gathered before the question's row existed)", () => {
  const builder = new ContextBuilder({} as MemoryService);

  it("keeps only messages before the question, at most historyWindow of them, and never the question or its reply", () => {
    const question = msg(10, 5, "what about the weather?");
    const window = [
      msg(6, 1, "one"),
      msg(7, 2, "two"),
      msg(8, 3, "three"),
      msg(9, 4, "four"),
      question, // read after the row was written
      msg(11, 6, "", { role: "assistant", status: "streaming" }), // its reply
      msg(12, 7, "someone else, later"),
    ];
    const built = builder.assemble({ window, hits: [hit(10, question.content), hit(6, "one"), hit(3, "long ago")] }, question, config);
    const roles = built.messages.map((m) => `${m.role}:${m.content}`);
    expect(roles.slice(1)).toEqual(["user:three", "user:four", "user:what about the weather?"]);
    // the question is not retrieved as its own memory; a hit also in the window is kept out of memories
    expect(built.used.map((u) => u.messageId)).toEqual([6, 3]);
    expect(built.messages.filter((m) => m.content.includes("what about the weather?"))).toHaveLength(1);
  });

  it("sends no window when historyWindow is 0", () => {
    const question = msg(10, 5, "q");
    const built = builder.assemble({ window: [msg(9, 4, "before")], hits: [] }, question, { ...config, historyWindow: 0 });
    expect(built.messages.map((m) => m.role)).toEqual(["system", "user"]);
    expect(built.messages.at(-1)!.content).toBe("q");
  });
});
