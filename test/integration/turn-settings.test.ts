/**
 * A turn's first read (PgAssistantStore.turnSettings): its configuration,
 * the sessions its searches cover, whether the user's quota is overridden,
 * and the session's recent window, in one statement.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgAssistantStore } from "../../src/db/pg-assistant-store.js";
import "../../src/db/pool.js"; // bigint parser
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase;
let store: PgAssistantStore;
beforeAll(async () => {
  db = await createTestDatabase(4);
  store = new PgAssistantStore(db.pool);
});
afterAll(async () => {
  await db?.drop();
});

let n = 0;
async function user(): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [`ts_${Date.now()}_${n++}`]);
  return rows[0]!.id;
}
async function session(owner: string, configurationId: number | null = null): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>("INSERT INTO chat_sessions (owner_id, title, configuration_id) VALUES ($1, 't', $2) RETURNING id", [owner, configurationId]);
  await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [rows[0]!.id, owner]);
  return rows[0]!.id;
}
async function configuration(o: { historyWindow: number; crossSession: boolean }): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>(
    "INSERT INTO assistant_configurations (name, system_prompt, history_window, cross_session) VALUES ($1, 'Be brief.', $2, $3) RETURNING id",
    [`c${n++}`, o.historyWindow, o.crossSession],
  );
  return rows[0]!.id;
}
/** Messages with seqs 1..count, alternating the user's questions and replies (the last one still streaming). */
async function messages(sessionId: string, userId: string, count: number): Promise<void> {
  for (let seq = 1; seq <= count; seq++) {
    const role = seq % 2 === 1 ? "user" : "assistant";
    await db.pool.query("INSERT INTO chat_messages (session_id, seq, user_id, role, content, status) VALUES ($1, $2, $3, $4, $5, $6)", [
      sessionId, seq, userId, role, `m${seq}`, seq === count && role === "assistant" ? "streaming" : "complete",
    ]);
  }
  await db.pool.query("UPDATE chat_sessions SET last_seq = $2 WHERE id = $1", [sessionId, count]);
}

describe("PgAssistantStore.turnSettings", () => {
  it("reads the session's configuration, its newest history_window + extra messages oldest first, and the sessions in scope", async () => {
    const alice = await user();
    const cfg = await configuration({ historyWindow: 2, crossSession: true });
    const s = await session(alice, cfg);
    const other = await session(alice);
    await messages(s, alice, 6);

    const t = await store.turnSettings(s, alice, { extra: 2 });
    expect(t.config).toMatchObject({ id: cfg, historyWindow: 2, crossSession: true, systemPrompt: "Be brief." });
    expect(t.quotaOverride).toBe(false);
    expect(t.window.map((m) => m.seq)).toEqual([3, 4, 5, 6]);
    expect(t.window[0]).toEqual({ id: expect.any(Number), seq: 3, userId: alice, role: "user", content: "m3", status: "complete" });
    expect(t.window.at(-1)).toMatchObject({ role: "assistant", status: "streaming" });
    expect(t.scopes!.map((x) => x.sessionId).sort()).toEqual([s, other].sort());
    expect(t.scopes!.every((x) => x.ownerId === alice && !x.archived && !x.hasPassages)).toBe(true);

    // With the question's seq known, only what came before it, and no extra rows.
    const before = await store.turnSettings(s, alice, { beforeSeq: 5 });
    expect(before.window.map((m) => m.seq)).toEqual([3, 4]);
  });

  it("reads no window with history_window 0, and only the session itself when the configuration is not cross-session", async () => {
    const alice = await user();
    const cfg = await configuration({ historyWindow: 0, crossSession: false });
    const s = await session(alice, cfg);
    await session(alice);
    await messages(s, alice, 3);
    const t = await store.turnSettings(s, alice, { extra: 2 });
    expect(t.window).toEqual([]);
    expect(t.scopes!.map((x) => x.sessionId)).toEqual([s]);
  });

  it("gives someone who is not a member neither the window nor any session, and says when an admin capped the user", async () => {
    const [alice, mallory] = [await user(), await user()];
    const s = await session(alice);
    await messages(s, alice, 4);
    await db.pool.query("INSERT INTO user_quotas (user_id, daily_tokens) VALUES ($1, 1000)", [mallory]);
    const t = await store.turnSettings(s, mallory, { extra: 2 });
    expect(t.window).toEqual([]);
    expect(t.scopes).toEqual([]);
    expect(t.quotaOverride).toBe(true);
    expect((await store.turnSettings(s, alice)).window.map((m) => m.content)).toEqual(["m1", "m2", "m3", "m4"]);
  });
});
