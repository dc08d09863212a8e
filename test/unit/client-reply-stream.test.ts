/** The client library's reply stream: pieces in seq order, each once, whatever order they arrive in. */
import { type Message, MemchatError, type ReplyDelta, ReplyStream } from "@memchat/client";
import { describe, expect, it } from "vitest";

const row = (content: string, status: Message["status"] = "complete"): Message => ({
  id: 5,
  sessionId: "s",
  seq: 2,
  role: "assistant",
  content,
  status,
  clientMessageId: null,
  userId: "u",
  replyToId: 4,
  createdAt: new Date(0).toISOString(),
});

async function drain(r: ReplyStream): Promise<ReplyDelta[]> {
  const out: ReplyDelta[] = [];
  for await (const d of r) out.push(d);
  return out;
}

describe("client reply stream", () => {
  it("orders deltas by seq, drops repeats, and asks for a snapshot on a gap", async () => {
    let gaps = 0;
    const r = new ReplyStream(5, 4, () => gaps++);
    const all = drain(r);
    r.delta(1, "a");
    r.delta(3, "c");
    expect(gaps).toBe(1);
    expect(r.text).toBe("a");
    r.delta(1, "a");
    r.delta(2, "b");
    r.delta(3, "c");
    r.finish(row("abc"));
    expect(await all).toEqual([
      { seq: 1, text: "a" },
      { seq: 2, text: "b" },
      { seq: 3, text: "c" },
    ]);
    expect(r.hasGap).toBe(false);
  });

  it("a snapshot fills a gap once, and later live deltas continue after it", async () => {
    const r = new ReplyStream(5, 4);
    const all = drain(r);
    r.delta(1, "He");
    r.delta(4, "!");
    r.snapshot(3, "Hello");
    r.delta(2, "ll"); // arrives late: already in the snapshot
    r.delta(5, "?");
    r.finish(row("Hello!?"));
    expect((await all).map((d) => d.text).join("")).toBe("Hello!?");
    expect(r.text).toBe("Hello!?");
  });

  it("completes from the stored row when the last deltas were missed, and ignores a streaming checkpoint", async () => {
    const r = new ReplyStream(5, 4);
    const all = drain(r);
    r.delta(1, "Hi");
    r.finish(row("H", "streaming"));
    expect(r.ended).toBe(false);
    r.finish(row("Hi there"));
    expect(await all).toEqual([
      { seq: 1, text: "Hi" },
      { seq: 2, text: " there" },
    ]);
    expect(await r.result()).toMatchObject({ content: "Hi there" });
  });

  it("every iterator sees the whole reply, including one started after the end", async () => {
    const r = new ReplyStream(5, 4);
    r.delta(1, "x");
    r.finish(row("xy"));
    expect((await drain(r)).map((d) => d.text)).toEqual(["x", "y"]);
    expect((await drain(r)).map((d) => d.text)).toEqual(["x", "y"]);
  });

  it("an error ends the iteration with the error, after the pieces that came", async () => {
    const r = new ReplyStream(5, 4);
    const got: string[] = [];
    const it = (async () => {
      for await (const d of r) got.push(d.text);
    })();
    r.delta(1, "par");
    r.fail(new MemchatError("LLM_UNAVAILABLE", "down"));
    await expect(it).rejects.toMatchObject({ code: "LLM_UNAVAILABLE" });
    expect(got).toEqual(["par"]);
    await expect(r.result()).rejects.toBeInstanceOf(MemchatError);
  });
});
