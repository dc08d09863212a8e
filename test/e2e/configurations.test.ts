/**
 * Named assistant configurations and feedback end to end: the real server
 * process, real PostgreSQL, and the OpenAI-compatible double, which records
 * the settings each turn was sent with.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { OpenAiLlmDouble } from "../support/openai-llm-double.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let llm: OpenAiLlmDouble;
let admin: TestUser;
let member: TestUser;
const sockets: Socket[] = [];

async function client(u: TestUser) {
  const s = await connect(server.url, u.token);
  sockets.push(s);
  return s;
}

const adminApi = (p: string, init: { method?: string; body?: unknown } = {}) => api(server.url, p, { ...init, token: admin.token });

async function createConfiguration(body: Record<string, unknown>) {
  const r = await adminApi("/api/admin/configurations", { method: "POST", body });
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.configuration as { id: number; name: string };
}

/** One turn in `sessionId`; resolves with the request the LLM double received and the stored reply. */
async function turn(s: Socket, sessionId: string, content: string) {
  const before = llm.requests.length;
  const t = collectTurn(s, sessionId);
  await ok(s, "message:send", { sessionId, clientMessageId: `c-${Math.random()}`, content });
  const done = await t;
  const request = llm.requests[before]!.body!;
  const { rows } = await db.pool.query("SELECT config_id FROM chat_messages WHERE id = $1", [done.start.messageId]);
  return { request, replyId: done.start.messageId, configurationId: rows[0].config_id as number | null, end: done.end! };
}

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-configs-"));
  llm = new OpenAiLlmDouble();
  const llmUrl = (await llm.start()).url;
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "configs-secret-0123456789-0123456789-0123",
    EMBEDDER: "hash",
    OPENAI_BASE_URL: llmUrl,
    OPENAI_API_KEY: "test-key",
    OPENAI_MODEL: "double-model",
    ASSISTANT_COALESCE_MS: "20",
    RATE_SESSION_BURST: "1000",
  });
  // The first account is the admin.
  admin = await register(server.url);
  member = await register(server.url);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await llm?.close();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

beforeEach(() => llm.reset());

describe("the admin's editor", () => {
  it("starts with the migrated default, creates, edits, moves the default, retires and activates", async () => {
    const list = await adminApi("/api/admin/configurations");
    expect(list.status).toBe(200);
    const [initial] = list.body.configurations;
    expect(initial).toMatchObject({ name: "Default", isDefault: true, active: true, temperature: 0.7, topK: 8, retrievalMode: "hybrid" });

    const created = await adminApi("/api/admin/configurations", {
      method: "POST",
      body: { name: "Terse", systemPrompt: "Answer in five words.", temperature: 0.1, topK: 3, maxTokens: 64, retrievalMode: "lexical", crossSession: false },
    });
    expect(created.status).toBe(201);
    expect(created.body.configuration).toMatchObject({
      name: "Terse", description: "", model: null, temperature: 0.1, topK: 3, maxTokens: 64, similarityThreshold: 0.3,
      historyWindow: 12, contextTokenBudget: 2000, retrievalMode: "lexical", crossSession: false, isDefault: false, active: true,
    });
    const id = created.body.configuration.id as number;

    const edited = await adminApi(`/api/admin/configurations/${id}`, { method: "PATCH", body: { description: "for quick answers", temperature: 0.25 } });
    expect(edited.status).toBe(200);
    expect(edited.body.configuration).toMatchObject({ description: "for quick answers", temperature: 0.25, topK: 3, name: "Terse" });

    // a name in use, whatever its case, is refused at the name field
    const dup = await adminApi("/api/admin/configurations", { method: "POST", body: { name: "terse", systemPrompt: "x" } });
    expect(dup.status).toBe(422);
    expect(dup.body.error).toMatchObject({ code: "VALIDATION", field: "name" });

    // the default cannot be retired; a retired one cannot become the default
    expect((await adminApi(`/api/admin/configurations/${initial.id}/retire`, { method: "POST" })).body.error.code).toBe("CONFLICT");
    const moved = await adminApi(`/api/admin/configurations/${id}/default`, { method: "POST" });
    expect(moved.body.configuration).toMatchObject({ id, isDefault: true });
    const after = (await adminApi("/api/admin/configurations")).body.configurations;
    expect(after.filter((c: { isDefault: boolean }) => c.isDefault).map((c: { id: number }) => c.id)).toEqual([id]);
    const back = await adminApi(`/api/admin/configurations/${initial.id}/default`, { method: "POST" });
    expect(back.body.configuration.isDefault).toBe(true);

    const retired = await adminApi(`/api/admin/configurations/${id}/retire`, { method: "POST" });
    expect(retired.status).toBe(200);
    expect(retired.body).toMatchObject({ configuration: { id, active: false }, sessionsReset: 0 });
    expect((await adminApi(`/api/admin/configurations/${id}/default`, { method: "POST" })).body.error.code).toBe("CONFLICT");
    expect((await adminApi("/api/admin/configurations")).body.configurations.map((c: { id: number }) => c.id)).not.toContain(id);
    expect((await adminApi("/api/admin/configurations?retired=true")).body.configurations.map((c: { id: number }) => c.id)).toContain(id);
    // every user sees the active ones, without prompts
    const forMembers = await api(server.url, "/api/configurations", { token: member.token });
    expect(forMembers.status).toBe(200);
    expect(forMembers.body.configurations.map((c: { id: number }) => c.id)).not.toContain(id);
    expect(forMembers.body.configurations[0]).not.toHaveProperty("systemPrompt");

    const activated = await adminApi(`/api/admin/configurations/${id}/activate`, { method: "POST" });
    expect(activated.body.configuration.active).toBe(true);
    expect((await api(server.url, "/api/configurations", { token: member.token })).body.configurations.map((c: { id: number }) => c.id)).toContain(id);
  });

  it("answers VALIDATION naming each setting out of bounds, and changes nothing", async () => {
    const count = async () => (await db.pool.query("SELECT count(*)::int AS n FROM assistant_configurations")).rows[0].n as number;
    const before = await count();
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: 2.5 }, "temperature"],
      [{ temperature: -0.1 }, "temperature"],
      [{ similarityThreshold: 1.01 }, "similarityThreshold"],
      [{ topK: 0 }, "topK"],
      [{ topK: 51 }, "topK"],
      [{ topK: 2.5 }, "topK"],
      [{ maxTokens: 15 }, "maxTokens"],
      [{ maxTokens: 40_000 }, "maxTokens"],
      [{ historyWindow: 101 }, "historyWindow"],
      [{ contextTokenBudget: 10 }, "contextTokenBudget"],
      [{ retrievalMode: "psychic" }, "retrievalMode"],
      [{ crossSession: "yes" }, "crossSession"],
      [{ name: "x".repeat(81) }, "name"],
      [{ name: "   " }, "name"],
      [{ systemPrompt: "  " }, "systemPrompt"],
      [{ model: "gpt 4; drop" }, "model"],
      [{ colour: "blue" }, "colour"],
    ];
    for (const [patch, field] of cases) {
      const r = await adminApi("/api/admin/configurations", { method: "POST", body: { name: `v-${field}`, systemPrompt: "ok", ...patch } });
      expect(r.status, JSON.stringify(patch)).toBe(422);
      expect(r.body.error.code).toBe("VALIDATION");
      expect(r.body.error.field).toBe(field);
      expect(r.body.error.message).toContain(field);
    }
    // several at once: each is listed
    const many = await adminApi("/api/admin/configurations", { method: "POST", body: { name: "many", systemPrompt: "ok", temperature: 3, topK: 99 } });
    expect(many.body.error.issues.map((i: { field: string }) => i.field)).toEqual(["temperature", "topK"]);
    expect(many.body.error.message).toMatch(/temperature must be between 0 and 2.*topK must be a whole number between 1 and 50/);
    // required fields, and an empty edit
    expect((await adminApi("/api/admin/configurations", { method: "POST", body: { name: "no prompt" } })).body.error.field).toBe("systemPrompt");
    const id = (await adminApi("/api/admin/configurations")).body.configurations[0].id;
    expect((await adminApi(`/api/admin/configurations/${id}`, { method: "PATCH", body: {} })).body.error.code).toBe("VALIDATION");
    expect((await adminApi(`/api/admin/configurations/${id}`, { method: "PATCH", body: { temperature: 9 } })).body.error.field).toBe("temperature");
    expect(await count()).toBe(before);
    // not JSON at all is still BAD_REQUEST
    expect((await adminApi("/api/admin/configurations", { method: "POST", body: "{nope" })).body.error.code).toBe("BAD_REQUEST");
  });

  it("refuses members (FORBIDDEN) and anonymous callers on every admin route, and unknown or non-canonical ids", async () => {
    const target = (await adminApi("/api/admin/configurations")).body.configurations[0];
    const routes: [string, string, unknown?][] = [
      ["GET", "/api/admin/configurations"],
      ["POST", "/api/admin/configurations", { name: "sneaky", systemPrompt: "obey" }],
      ["PATCH", `/api/admin/configurations/${target.id}`, { systemPrompt: "obey me" }],
      ["POST", `/api/admin/configurations/${target.id}/activate`],
      ["POST", `/api/admin/configurations/${target.id}/retire`],
      ["POST", `/api/admin/configurations/${target.id}/default`],
    ];
    for (const [method, p, body] of routes) {
      const asMember = await api(server.url, p, { method, token: member.token, ...(body ? { body } : {}) });
      expect(asMember.status, `${method} ${p}`).toBe(403);
      expect(asMember.body.error.code).toBe("FORBIDDEN");
      expect((await api(server.url, p, { method, ...(body ? { body } : {}) })).status).toBe(401);
    }
    expect((await adminApi("/api/admin/configurations")).body.configurations[0]).toMatchObject({ id: target.id, systemPrompt: target.systemPrompt });
    expect((await api(server.url, "/api/configurations")).status).toBe(401);
    const missing = 999_999;
    expect((await adminApi(`/api/admin/configurations/${missing}/retire`, { method: "POST" })).status).toBe(404);
    expect((await adminApi(`/api/admin/configurations/${missing}`, { method: "PATCH", body: { topK: 2 } })).status).toBe(404);
    for (const bad of ["not-a-number", "0", "-1", "1.5", "99999999999"]) {
      expect((await adminApi(`/api/admin/configurations/${bad}/activate`, { method: "POST" })).status, bad).toBe(400);
    }
  });
});

describe("a session's configuration", () => {
  it("is picked by the owner and applies from the next turn; retiring it falls back to the default", async () => {
    const pirate = await createConfiguration({
      name: "Pirate", systemPrompt: "Talk like a pirate.", temperature: 1.3, maxTokens: 100, model: "pirate-model", retrievalMode: "none",
    });
    const owner = await register(server.url);
    const o = await client(owner);
    const m = await client(member);
    const { session } = await ok(o, "session:create", { title: "configs" });
    expect(session.configurationId).toBeNull();
    await addMember(server.url, o, session.id, member);
    await ok(o, "session:join", { sessionId: session.id });
    await ok(m, "session:join", { sessionId: session.id });
    const defaultId = (await adminApi("/api/admin/configurations")).body.configurations.find((c: { isDefault: boolean }) => c.isDefault).id;

    const first = await turn(o, session.id, "hello there");
    expect(first.request.temperature).toBe(0.7);
    expect(first.request.model).toBe("double-model");
    expect(first.request.messages[0]!.content).toContain("You are a helpful assistant");
    expect(first.configurationId).toBe(defaultId);

    const heard = nextEvent(m, "session:configured");
    const picked = await ok(o, "session:configure", { sessionId: session.id.toUpperCase(), configurationId: pirate.id });
    expect(picked).toMatchObject({ sessionId: session.id, configurationId: pirate.id, configuration: { id: pirate.id, name: "Pirate", isDefault: false } });
    expect(await heard).toEqual(picked);
    const second = await turn(o, session.id, "hello again");
    expect(second.request).toMatchObject({ temperature: 1.3, model: "pirate-model" });
    expect(second.request.max_tokens ?? second.request.max_completion_tokens).toBe(100);
    expect(second.request.messages[0]!.content).toContain("Talk like a pirate.");
    expect(second.configurationId).toBe(pirate.id);
    expect((await ok(o, "session:join", { sessionId: session.id })).session.configurationId).toBe(pirate.id);

    // an admin's edit applies from the next turn too
    await adminApi(`/api/admin/configurations/${pirate.id}`, { method: "PATCH", body: { temperature: 0.9 } });
    expect((await turn(o, session.id, "and now?")).request.temperature).toBe(0.9);

    // retiring moves the session back to the default
    const retired = await adminApi(`/api/admin/configurations/${pirate.id}/retire`, { method: "POST" });
    expect(retired.body.sessionsReset).toBe(1);
    expect((await ok(o, "session:join", { sessionId: session.id })).session.configurationId).toBeNull();
    const third = await turn(o, session.id, "still a pirate?");
    expect(third.request.temperature).toBe(0.7);
    expect(third.configurationId).toBe(defaultId);
    // and a retired configuration cannot be picked
    const refused = await call(o, "session:configure", { sessionId: session.id, configurationId: pirate.id });
    expect(refused).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });

    // REST: the owner picks, null follows the default again
    await adminApi(`/api/admin/configurations/${pirate.id}/activate`, { method: "POST" });
    const viaRest = await api(server.url, `/api/sessions/${session.id}/configuration`, { method: "PUT", token: owner.token, body: { configurationId: pirate.id } });
    expect(viaRest.status).toBe(200);
    expect(viaRest.body).toMatchObject({ configurationId: pirate.id });
    const reset = await api(server.url, `/api/sessions/${session.id}/configuration`, { method: "PUT", token: owner.token, body: { configurationId: null } });
    expect(reset.body).toMatchObject({ configurationId: null, configuration: { id: defaultId, isDefault: true } });
  });

  it("cannot be changed by a member who is not the owner, nor by an outsider", async () => {
    const target = await createConfiguration({ name: `Other ${Date.now()}`, systemPrompt: "Other." });
    const owner = await register(server.url);
    const outsider = await register(server.url);
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "mine" });
    await addMember(server.url, o, session.id, member);
    const m = await client(member);
    const x = await client(outsider);
    expect(await call(m, "session:configure", { sessionId: session.id, configurationId: target.id })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect(await call(x, "session:configure", { sessionId: session.id, configurationId: target.id })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    const put = (token: string) => api(server.url, `/api/sessions/${session.id}/configuration`, { method: "PUT", token, body: { configurationId: target.id } });
    expect((await put(member.token)).status).toBe(403);
    expect((await put(outsider.token)).status).toBe(404);
    // even an admin does not configure someone else's session: it is the owner's choice
    expect((await put(admin.token)).status).toBe(404);
    const { rows } = await db.pool.query("SELECT configuration_id FROM chat_sessions WHERE id = $1", [session.id]);
    expect(rows[0].configuration_id).toBeNull();
    expect(await call(o, "session:configure", { sessionId: session.id, configurationId: "1" })).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
    expect(await call(o, "session:configure", { sessionId: session.id, configurationId: 999_999 })).toMatchObject({
      ok: false,
      error: { code: "NOT_FOUND" },
    });
  });
});

describe("feedback", () => {
  it("is positive, neutral or negative with an optional comment, and history shows the caller's own rating and the reply's tokens", async () => {
    const owner = await register(server.url);
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "feedback" });
    await addMember(server.url, o, session.id, member);
    const m = await client(member);
    await ok(o, "session:join", { sessionId: session.id });
    llm.enqueue({ tokens: ["A", " fine", " answer"], usage: { promptTokens: 42, completionTokens: 3 } });
    const t = await turn(o, session.id, "rate me");
    expect(t.end.usage).toEqual({ promptTokens: 42, completionTokens: 3 });
    const question = t.end.message.replyToId!;

    const neutral = await ok(o, "message:feedback", { messageId: t.replyId, rating: 0, comment: "  it was fine  " });
    expect(neutral.feedback).toMatchObject({ messageId: t.replyId, rating: 0, comment: "it was fine" });
    await ok(m, "message:feedback", { messageId: t.replyId, rating: -1 });
    const blank = await ok(m, "message:feedback", { messageId: t.replyId, rating: 1, comment: "   " });
    expect(blank.feedback).toMatchObject({ rating: 1, comment: null });

    for (const bad of [{ rating: 2 }, { rating: "positive" }, { rating: 1, comment: "x".repeat(2001) }]) {
      const r = await call(o, "message:feedback", { messageId: t.replyId, ...bad });
      expect(r).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
    }
    // a user message is not rated, nor a reply outside the caller's sessions
    expect(await call(o, "message:feedback", { messageId: question, rating: 1 })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    const outsider = await client(await register(server.url));
    expect(await call(outsider, "message:feedback", { messageId: t.replyId, rating: 1 })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });

    // each reader sees their own rating, over the socket and REST, and the reply's token counts
    const mine = (await ok(o, "message:history", { sessionId: session.id })).messages.find((x: { id: number }) => x.id === t.replyId);
    expect(mine).toMatchObject({ usage: { promptTokens: 42, completionTokens: 3 }, ownFeedback: { rating: 0, comment: "it was fine" } });
    const theirs = await api(server.url, `/api/sessions/${session.id}/messages`, { token: member.token });
    expect(theirs.body.messages.find((x: { id: number }) => x.id === t.replyId)).toMatchObject({ usage: { completionTokens: 3 }, ownFeedback: { rating: 1, comment: null } });
    const joined = (await ok(m, "session:join", { sessionId: session.id })).messages.find((x: { id: number }) => x.id === t.replyId);
    expect(joined.ownFeedback.rating).toBe(1);
    const userRow = (await ok(o, "message:history", { sessionId: session.id })).messages.find((x: { id: number }) => x.id === question);
    expect(userRow).not.toHaveProperty("usage");
    expect(userRow).not.toHaveProperty("ownFeedback");
    const { rows } = await db.pool.query("SELECT user_id, rating, comment FROM message_feedback WHERE message_id = $1 ORDER BY rating", [t.replyId]);
    expect(rows).toEqual([
      { user_id: owner.user.id, rating: 0, comment: "it was fine" },
      { user_id: member.user.id, rating: 1, comment: null },
    ]);
  });
});
