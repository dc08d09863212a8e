/**
 * The client library's outbox on its own: a scripted send() stands in for the
 * socket, answering each attempt as the test says.
 */
import { type Message, MemchatError, memoryStorage, Outbox, type OutboxItem } from "@memchat/client";
import { describe, expect, it } from "vitest";

const SESSION = "6f1c2a4e-0000-4000-8000-000000000001";

function stored(item: Readonly<OutboxItem>, id = 1): Message {
  return {
    id,
    sessionId: item.sessionId,
    seq: id,
    role: "user",
    content: item.content,
    status: "complete",
    clientMessageId: item.clientMessageId,
    userId: "u",
    replyToId: null,
    createdAt: new Date(0).toISOString(),
  };
}

/** An outbox whose sends answer from `script`, in order; every attempt is recorded. */
function outbox(script: ((item: Readonly<OutboxItem>) => Promise<Message>)[], opts: { online?: () => boolean; storage?: ReturnType<typeof memoryStorage>; maxAttempts?: number } = {}) {
  const attempts: OutboxItem[] = [];
  const box = new Outbox({
    send: (item) => {
      attempts.push({ ...item });
      const next = script.shift();
      return next ? next(item) : Promise.resolve(stored(item));
    },
    online: opts.online ?? (() => true),
    storage: opts.storage ?? memoryStorage(),
    storageKey: "outbox",
    maxAttempts: opts.maxAttempts,
    backoffMs: () => 1,
  });
  return { box, attempts };
}

const fail = (code: string, retryAfterMs?: number) => () => Promise.reject(new MemchatError(code, code, retryAfterMs));

describe("client outbox", () => {
  it("retries transient failures with the same clientMessageId until stored", async () => {
    const { box, attempts } = outbox([fail("TIMEOUT"), fail("UNAVAILABLE"), fail("RATE_LIMITED", 1)]);
    const { item, stored: p } = box.add({ sessionId: SESSION, content: "hi" });
    const m = await p;
    expect(m.clientMessageId).toBe(item.clientMessageId);
    expect(attempts.map((a) => a.clientMessageId)).toEqual(Array(4).fill(item.clientMessageId));
    expect(box.list()).toEqual([]);
  });

  it("marks a refused message failed, keeps it, and sends it again on retry()", async () => {
    const storage = memoryStorage();
    const { box, attempts } = outbox([fail("BAD_REQUEST")], { storage });
    const failed: OutboxItem[] = [];
    box.on("failed", (i) => failed.push(i));
    const { item, stored: p } = box.add({ sessionId: SESSION, content: "x", assistant: false });
    await expect(p).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect(failed.map((i) => i.clientMessageId)).toEqual([item.clientMessageId]);
    expect(box.list().map((i) => i.state)).toEqual(["failed"]);
    expect(storage.getItem("outbox")).toContain(item.clientMessageId);
    const m = await box.retry(item.clientMessageId);
    expect(m.content).toBe("x");
    expect(attempts.map((a) => a.assistant)).toEqual([false, false]);
    expect(storage.getItem("outbox")).toBeNull();
  });

  it("gives up after maxAttempts transient failures", async () => {
    const { box, attempts } = outbox([fail("INTERNAL"), fail("INTERNAL"), fail("INTERNAL")], { maxAttempts: 3 });
    await expect(box.add({ sessionId: SESSION, content: "x" }).stored).rejects.toMatchObject({ code: "INTERNAL" });
    expect(attempts).toHaveLength(3);
    expect(box.list()[0]!.state).toBe("failed");
  });

  it("waits while offline and goes out on flush()", async () => {
    let online = false;
    const { box, attempts } = outbox([], { online: () => online });
    const { stored: p } = box.add({ sessionId: SESSION, content: "later" });
    expect(box.list().map((i) => i.state)).toEqual(["waiting"]);
    expect(attempts).toHaveLength(0);
    online = true;
    box.flush();
    expect((await p).content).toBe("later");
    expect(attempts).toHaveLength(1);
  });

  it("restores what a previous client left in storage, with the same ids", async () => {
    const storage = memoryStorage();
    let online = false;
    const first = outbox([], { storage, online: () => online }).box;
    const { item, stored: lost } = first.add({ sessionId: SESSION, content: "survives a reload", assistant: false });
    first.stop();
    await expect(lost).rejects.toMatchObject({ code: "CLOSED" });

    const { box: second, attempts } = outbox([], { storage, online: () => online });
    expect(second.list()).toMatchObject([{ clientMessageId: item.clientMessageId, content: "survives a reload", assistant: false, state: "waiting" }]);
    const p = second.wait(item.clientMessageId);
    online = true;
    second.flush();
    expect((await p).clientMessageId).toBe(item.clientMessageId);
    expect(attempts.map((a) => a.clientMessageId)).toEqual([item.clientMessageId]);
  });

  it("settles an item that shows up stored by another path before its ack", async () => {
    let release!: (m: Message) => void;
    const { box } = outbox([(item) => new Promise<Message>((r) => (release = () => r(stored(item, 9))))]);
    const { item, stored: p } = box.add({ sessionId: SESSION, content: "x" });
    box.settle(stored(item, 7));
    expect((await p).id).toBe(7);
    release(stored(item, 9)); // the late ack changes nothing
    expect(box.list()).toEqual([]);
  });

  it("ignores a stored message of another session with the same clientMessageId", async () => {
    const { box } = outbox([() => new Promise<Message>(() => undefined)]);
    const { item } = box.add({ sessionId: SESSION, content: "x" });
    box.settle({ ...stored(item), sessionId: "6f1c2a4e-0000-4000-8000-000000000002" });
    expect(box.list()).toHaveLength(1);
  });

  it("discard() and dropSession() reject whoever waits", async () => {
    const { box } = outbox([() => new Promise<Message>(() => undefined), () => new Promise<Message>(() => undefined)]);
    const a = box.add({ sessionId: SESSION, content: "a" });
    const b = box.add({ sessionId: SESSION, content: "b" });
    box.discard(a.item.clientMessageId);
    await expect(a.stored).rejects.toMatchObject({ code: "CLOSED" });
    box.dropSession(SESSION, new MemchatError("NOT_FOUND", "gone"));
    await expect(b.stored).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(box.list()).toEqual([]);
  });
});
