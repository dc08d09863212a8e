/** The double must speak the API's wire format, or the provider tests prove nothing. */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_DOUBLE_TOKENS, OpenAiLlmDouble } from "../support/openai-llm-double.js";

describe("OpenAI LLM double", () => {
  const llm = new OpenAiLlmDouble();
  let url = "";
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ url, close } = await llm.start());
  });
  afterAll(async () => {
    await close();
  });
  beforeEach(() => {
    llm.reset();
    llm.setDefaultScript({});
  });

  const post = (body: unknown) =>
    fetch(`${url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  it("streams chat.completion.chunk events, then the usage chunk, then [DONE]", async () => {
    llm.enqueue({ tokens: ["Hi", " there"], usage: { promptTokens: 9, completionTokens: 2 } });
    const res = await post({ model: "m1", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hello" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split("\n\n").filter(Boolean);
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)));
    for (const c of chunks) {
      expect(c).toMatchObject({ object: "chat.completion.chunk", model: "m1" });
      expect(c.id).toBe(chunks[0].id);
      expect(typeof c.created).toBe("number");
    }
    expect(chunks.map((c) => c.choices[0]?.delta)).toEqual([{ role: "assistant", content: "", refusal: null }, { content: "Hi" }, { content: " there" }, {}, undefined]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, null, null, "stop", null]);
    expect(chunks.at(-1).choices).toEqual([]);
    expect(chunks.at(-1).usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it("holds a stream before a token until the test releases it", async () => {
    let release!: () => void;
    llm.enqueue({ tokens: ["a", "b", "c"], holds: [{ afterTokens: 2, until: new Promise<void>((r) => (release = r)) }] });
    const res = await post({ model: "m1", stream: true, messages: [{ role: "user", content: "hello" }] });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const contents = () => [...text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]);
    while (contents().length < 3) text += decoder.decode((await reader.read()).value, { stream: true });
    expect(contents()).toEqual(["", "a", "b"]);
    expect(text).not.toContain("[DONE]");
    release();
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
    expect(contents()).toEqual(["", "a", "b", "c"]);
    expect(text).toContain("data: [DONE]");
  });

  it("sends no usage chunk unless asked for", async () => {
    const res = await post({ model: "m1", stream: true, messages: [{ role: "user", content: "hello" }] });
    const events = (await res.text()).split("\n\n").filter(Boolean);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(chunks.every((c) => c.choices.length === 1 && !("usage" in c))).toBe(true);
  });

  it("answers non-streaming requests through the real client, honouring max_tokens", async () => {
    const client = new OpenAI({ baseURL: url, apiKey: "k", maxRetries: 0 });
    const full = await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "hi" }] });
    expect(full.object).toBe("chat.completion");
    expect(full.choices[0]?.message).toMatchObject({ role: "assistant", content: DEFAULT_DOUBLE_TOKENS.join("") });
    expect(full.choices[0]?.finish_reason).toBe("stop");
    expect(full.usage?.completion_tokens).toBe(DEFAULT_DOUBLE_TOKENS.length);
    expect(full.usage?.prompt_tokens).toBeGreaterThan(0);

    const cut = await client.chat.completions.create({ model: "m2", max_tokens: 2, messages: [{ role: "user", content: "hi" }] });
    expect(cut.choices[0]?.message.content).toBe(DEFAULT_DOUBLE_TOKENS.slice(0, 2).join(""));
    expect(cut.choices[0]?.finish_reason).toBe("length");
  });

  it("records every request body and counts requests", async () => {
    await (await post({ model: "m3", stream: false, temperature: 0.5, messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }] })).text();
    await (await post({ not: "a chat request" })).text();
    expect(llm.requestCount).toBe(2);
    expect(llm.requests[0]?.body).toMatchObject({ model: "m3", temperature: 0.5, messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }] });
    expect(llm.requests[1]?.body).toBeUndefined();
    expect(await llm.requests[0]?.finished).toBe("completed");
  });

  it("answers scripted errors with an OpenAI error body and retry-after", async () => {
    llm.enqueue({ failure: { type: "http-error", status: 429, retryAfter: "3", message: "slow down" } });
    const res = await post({ model: "m", stream: true, messages: [] });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    expect(await res.json()).toEqual({ error: { message: "slow down", type: "rate_limit_exceeded", param: null, code: null } });
  });

  it("takes scripts from a function of the request once the queue is empty", async () => {
    llm.setDefaultScript((req) => ({ tokens: [`echo:${req.body?.messages.at(-1)?.content}`] }));
    llm.enqueue({ tokens: ["queued"] });
    type Completion = { choices: { message: { content: string } }[] };
    const first = (await (await post({ model: "m", messages: [{ role: "user", content: "a" }] })).json()) as Completion;
    const second = (await (await post({ model: "m", messages: [{ role: "user", content: "b" }] })).json()) as Completion;
    expect(first.choices[0]?.message.content).toBe("queued");
    expect(second.choices[0]?.message.content).toBe("echo:b");
  });
});

describe("OpenAI LLM double lifecycle", () => {
  it("closes promptly with hanging requests and kept-alive sockets open", async () => {
    const llm = new OpenAiLlmDouble({ defaultScript: { failure: { type: "hang", when: "before-headers" } } });
    const { url, close } = await llm.start();
    const hanging = fetch(`${url}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true, messages: [] }) }).catch((e: unknown) => e);
    while (llm.requestCount === 0) await new Promise((r) => setTimeout(r, 5));
    expect(llm.connectionCount).toBe(1);
    expect(llm.openConnections).toBe(1);
    const started = performance.now();
    await close();
    expect(performance.now() - started).toBeLessThan(500);
    expect(await hanging).toBeInstanceOf(Error);
    expect(await llm.requests[0]?.finished).toBe("server-dropped");
    expect(llm.openConnections).toBe(0);
  });
});
