import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { AppError } from "../../src/protocol/errors.js";
import type { User } from "../../src/protocol/types.js";
import { addMember, createTestDatabase, type TestDatabase } from "../support/db.js";
import { testLifecycle } from "../support/lifecycle.js";

let db: TestDatabase;
let store: PgMessageStore;
let users: PgUserStore;
let alice: User;
let bob: User;
let carol: User;

const DAY = 24 * 3600 * 1000;
const mkUser = async (prefix: string) => (await users.create(`${prefix}_${randomUUID().slice(0, 8)}`, "x"))!;
const count = async (sql: string, ...values: unknown[]) => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, values)).rows[0]!.n;
const send = (sessionId: string, userId: string, clientMessageId: string = randomUUID(), content = "hello") =>
  store.insertUserMessage({ sessionId, userId, clientMessageId, content });
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (e instanceof AppError ? e.code : String(e)));

/** Rows straight into the table: `n` messages (seq 1..n) in one statement, for volume. */
async function fill(sessionId: string, userId: string, n: number): Promise<void> {
  await db.pool.query(
    `WITH s AS (UPDATE chat_sessions SET last_seq = last_seq + $3, message_count = message_count + $3 WHERE id = $1 RETURNING last_seq - $3 AS base)
     INSERT INTO chat_messages (session_id, seq, user_id, role, content) SELECT $1, s.base + g, $2, 'user', 'filler ' || g FROM s, generate_series(1, $3) g`,
    [sessionId, userId, n],
  );
}

beforeAll(async () => {
  db = await createTestDatabase(8);
  store = new PgMessageStore(db.pool);
  users = new PgUserStore(db.pool);
  [alice, bob, carol] = await Promise.all([mkUser("alice"), mkUser("bob"), mkUser("carol")]);
});
afterAll(() => db?.drop());

describe("archiving", () => {
  it("refuses new messages on both send paths, answers retries of earlier ones, and lists archived sessions apart", async () => {
    const { lifecycle, recorded } = testLifecycle(db.pool, {});
    const s = await store.createSession(alice.id, "old plans", false);
    await addMember(db.pool, s.id, alice.id, bob);
    const first = await send(s.id, bob.id, "m1");
    expect(first.kind).toBe("inserted");

    expect(await code(lifecycle.setArchived(bob, s.id, true))).toBe("FORBIDDEN");
    expect(await code(lifecycle.setArchived(carol, s.id, true))).toBe("NOT_FOUND");
    const { session } = await lifecycle.setArchived(alice, s.id, true);
    expect(session).toMatchObject({ id: s.id, archived: true, successorId: null });
    expect(session.archivedAt).not.toBeNull();
    expect(recorded.room).toContainEqual({ sessionId: s.id, event: "session:archived", payload: expect.objectContaining({ archived: true }) });
    // archiving again changes nothing and says so without a second event
    expect((await lifecycle.setArchived(alice, s.id, true)).session.archived).toBe(true);
    expect(recorded.room.filter((r) => r.event === "session:archived")).toHaveLength(1);

    // the single-statement path
    expect((await send(s.id, bob.id, "m2")).kind).toBe("archived");
    expect((await send(s.id, carol.id, "m3")).kind).toBe("not_found");
    expect(await send(s.id, bob.id, "m1")).toMatchObject({ kind: "duplicate" });
    // the batch function
    const { rows } = await db.pool.query<{ idx: number; outcome: string }>(
      "SELECT idx, outcome FROM chat_insert_user_messages($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) ORDER BY idx",
      [[s.id, s.id, s.id], [bob.id, bob.id, carol.id], ["m1", "m4", "m5"], ["a", "b", "c"], [null, null, null]],
    );
    expect(rows.map((r) => r.outcome)).toEqual(["duplicate", "archived", "not_found"]);
    expect(await count("chat_messages WHERE session_id = $1", s.id)).toBe(1);

    // still readable by its members
    expect((await store.listMessagesBefore(s.id, bob.id, undefined, 10)).map((m) => m.clientMessageId)).toEqual(["m1"]);
    expect((await store.getSession(s.id, bob.id))!.archived).toBe(true);
    // out of the default list, in the archived one
    expect((await store.listSessions(bob.id, 100)).map((x) => x.id)).not.toContain(s.id);
    expect((await store.listSessions(bob.id, 100, "archived")).map((x) => x.id)).toEqual([s.id]);
    expect((await store.listSessions(bob.id, 100, "all")).map((x) => x.id)).toContain(s.id);

    const back = await lifecycle.setArchived(alice, s.id, false);
    expect(back.session).toMatchObject({ archived: false, archivedAt: null });
    expect((await send(s.id, bob.id, "m2")).kind).toBe("inserted");
  });

  it("under concurrent sends, stores exactly the sends it accepted and refuses every one after the archive", async () => {
    const batched = new PgMessageStore(db.pool, { maxBatch: 8, maxInFlight: 1 });
    const { lifecycle } = testLifecycle(db.pool, {});
    const s = await store.createSession(alice.id, "race", false);
    const sends = Array.from({ length: 60 }, (_, i) => batched.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: `r${i}`, content: `n ${i}` }));
    const archived = lifecycle.setArchived(alice, s.id, true);
    const results = await Promise.all(sends);
    await archived;
    expect(results.every((r) => r.kind === "inserted" || r.kind === "archived")).toBe(true);
    const inserted = results.filter((r) => r.kind === "inserted").length;
    expect(await count("chat_messages WHERE session_id = $1", s.id)).toBe(inserted);
    const { rows } = await db.pool.query<{ last_seq: number }>("SELECT last_seq FROM chat_sessions WHERE id = $1", [s.id]);
    expect(rows[0]!.last_seq).toBe(inserted);
    expect((await batched.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "late", content: "late" })).kind).toBe("archived");
  });

  it("archives sessions idle for ARCHIVE_IDLE_DAYS, by the clock it is given", async () => {
    const { lifecycle, recorded } = testLifecycle(db.pool, { archiveIdleDays: 30 });
    const busy = await store.createSession(carol.id, "busy", false);
    const quiet = await store.createSession(carol.id, "quiet", false);
    const never = await store.createSession(carol.id, "never used", false);
    await send(busy.id, carol.id);
    await send(quiet.id, carol.id);
    const now = Date.now();
    await db.pool.query("UPDATE chat_sessions SET last_message_at = $2 WHERE id = $1", [quiet.id, new Date(now - 31 * DAY)]);
    await db.pool.query("UPDATE chat_sessions SET created_at = $2 WHERE id = $1", [never.id, new Date(now - 40 * DAY)]);

    const r = await lifecycle.archiveDue(new Date(now));
    const archivedNow = new Set(recorded.room.filter((e) => e.event === "session:archived").map((e) => e.sessionId));
    expect(archivedNow.has(quiet.id) && archivedNow.has(never.id)).toBe(true);
    expect(archivedNow.has(busy.id)).toBe(false);
    expect(r.idle).toBeGreaterThanOrEqual(2);
    expect((await store.getSession(busy.id, carol.id))!.archived).toBe(false);
    expect((await store.getSession(quiet.id, carol.id))!.archived).toBe(true);

    // a month later the busy one is idle too
    await lifecycle.archiveDue(new Date(now + 31 * DAY));
    expect((await store.getSession(busy.id, carol.id))!.archived).toBe(true);
  });
});

describe("full sessions", () => {
  it("archive at SESSION_MAX_MESSAGES with a system message, and continue in a successor with the same members and settings", async () => {
    const { lifecycle, recorded } = testLifecycle(db.pool, { sessionMaxMessages: 10 });
    const s = await store.createSession(alice.id, "long talk", true);
    await addMember(db.pool, s.id, alice.id, bob);
    const { rows: brief } = await db.pool.query<{ id: string }>("INSERT INTO assistant_configurations (name, system_prompt, top_k) VALUES ('brief', 'Be brief.', 3) RETURNING id");
    await db.pool.query("UPDATE chat_sessions SET configuration_id = $2 WHERE id = $1", [s.id, brief[0]!.id]);
    let last;
    for (let i = 0; i < 10; i++) {
      last = await send(s.id, i % 2 ? bob.id : alice.id);
      if (last.kind !== "inserted") throw new Error(last.kind);
      lifecycle.messageStored(last.message, last.reply);
    }
    // the send that reached the limit started the rollover; the job finds nothing left to do
    await expect.poll(async () => (await store.getSession(s.id, alice.id))!.archived).toBe(true);
    expect(await lifecycle.archiveDue(new Date())).toEqual({ idle: 0, full: 0 });

    const old = (await store.getSession(s.id, bob.id))!;
    expect(old.successorId).not.toBeNull();
    const history = await store.listMessagesBefore(s.id, bob.id, undefined, 50);
    expect(history).toHaveLength(11);
    expect(history.at(-1)).toMatchObject({ role: "system", seq: 11 });
    expect(history.at(-1)!.content).toContain(old.successorId!);
    expect((await send(s.id, alice.id)).kind).toBe("archived");

    const next = (await store.getSession(old.successorId!, bob.id))!;
    expect(next).toMatchObject({ role: "member", archived: false, title: "long talk (continued)", ownerId: alice.id });
    expect((await store.getSession(old.successorId!, alice.id))!.role).toBe("owner");
    expect(await store.getSession(old.successorId!, carol.id)).toBeNull();
    expect(await store.assistantEnabled(next.id)).toBe(true);
    expect(next.configurationId).toBe(brief[0]!.id);
    expect((await send(next.id, bob.id)).kind).toBe("inserted");

    expect(recorded.room).toContainEqual({ sessionId: s.id, event: "message:new", payload: { message: history.at(-1) } });
    expect(recorded.room).toContainEqual({ sessionId: s.id, event: "session:archived", payload: expect.objectContaining({ successorId: next.id }) });
    const told = recorded.user.filter((u) => u.event === "session:continued");
    expect(told.map((u) => u.userId).sort()).toEqual([alice.id, bob.id].sort());
    expect(told.find((u) => u.userId === bob.id)!.payload).toMatchObject({ sessionId: s.id, successor: { id: next.id, role: "member" } });
  });

  it("are continued by the archival job when no send did it", async () => {
    const { lifecycle } = testLifecycle(db.pool, { sessionMaxMessages: 50 });
    const s = await store.createSession(carol.id, "bulk", false);
    await fill(s.id, carol.id, 60);
    const r = await lifecycle.archiveDue(new Date());
    expect(r.full).toBeGreaterThanOrEqual(1);
    const old = (await store.getSession(s.id, carol.id))!;
    expect(old.archived && old.successorId !== null).toBe(true);
    // exactly one successor, however often it is asked
    expect(await lifecycle.rollover(s.id)).toBe(false);
    expect(await count("chat_sessions WHERE owner_id = $1 AND title = 'bulk (continued)'", carol.id)).toBe(1);
  });
});

describe("retention", () => {
  it("deletes archived sessions past RETENTION_ARCHIVED_DAYS in batches, with their vectors in every collection, and nothing else", async () => {
    const { lifecycle, store: lstore, recorded } = testLifecycle(db.pool, { retentionArchivedDays: 30, batchSize: 500 });
    const expired = await store.createSession(alice.id, "expired", true);
    await addMember(db.pool, expired.id, alice.id, bob);
    const recent = await store.createSession(alice.id, "recently archived", false);
    const live = await store.createSession(alice.id, "live", false);
    for (const s of [expired, recent, live]) await fill(s.id, alice.id, 1200);
    await db.pool.query(
      "INSERT INTO embedding_versions (model, dimensions, collection, active) VALUES ('old-model', 4, 'ret_old_4', false), ('new-model', 4, 'ret_new_4', true)",
    );
    await db.pool.query(
      `INSERT INTO message_vectors (collection, point_id, message_id, session_id, user_id, role, content, ts, embedding)
       SELECT c, gen_random_uuid(), m.id, m.session_id, $2, 'user', m.content, now(), '\\x00000000'::bytea
         FROM chat_messages m, unnest(ARRAY['ret_old_4', 'ret_new_4']) c WHERE m.session_id = ANY($1::uuid[])`,
      [[expired.id, recent.id, live.id], alice.id],
    );
    const someMessage = (await db.pool.query<{ id: number }>("SELECT id FROM chat_messages WHERE session_id = $1 LIMIT 2", [expired.id])).rows;
    await db.pool.query("INSERT INTO message_feedback (message_id, user_id, rating) VALUES ($1, $2, 1)", [someMessage[0]!.id, bob.id]);
    await db.pool.query("INSERT INTO message_context (message_id, context_message_id, score, rank, source) VALUES ($1, $2, 0.5, 1, 'vector')", [
      someMessage[0]!.id,
      someMessage[1]!.id,
    ]);
    await lifecycle.setArchived(alice, expired.id, true);
    await lifecycle.setArchived(alice, recent.id, true);
    const now = Date.now();
    await db.pool.query("UPDATE chat_sessions SET archived_at = $2 WHERE id = $1", [expired.id, new Date(now - 31 * DAY)]);

    const summary = await lifecycle.purgeExpired(new Date(now));
    expect(summary).toEqual({ sessions: 1, messages: 1200 });
    expect(await count("chat_sessions WHERE id = $1", expired.id)).toBe(0);
    expect(await count("chat_messages WHERE session_id = $1", expired.id)).toBe(0);
    expect(await count("message_vectors WHERE session_id = $1", expired.id)).toBe(0);
    expect(await count("message_feedback WHERE message_id = $1", someMessage[0]!.id)).toBe(0);
    expect(await count("chat_session_members WHERE session_id = $1", expired.id)).toBe(0);
    expect(recorded.evicted).toContainEqual({ sessionId: expired.id, userIds: expect.arrayContaining([alice.id, bob.id]), reason: "deleted" });
    for (const s of [recent, live]) {
      expect(await count("chat_messages WHERE session_id = $1", s.id)).toBe(1200);
      expect(await count("message_vectors WHERE session_id = $1", s.id)).toBe(2400);
    }
    // nothing left to do
    expect(await lifecycle.purgeExpired(new Date(now))).toEqual({ sessions: 0, messages: 0 });
    // its day comes for the recently archived one too, never for the live one
    // (other tests' archived sessions in this database go with it)
    expect((await lifecycle.purgeExpired(new Date(now + 31 * DAY))).sessions).toBeGreaterThanOrEqual(1);
    expect(await count("chat_sessions WHERE id = $1", recent.id)).toBe(0);
    expect(await count("message_vectors WHERE session_id = $1", recent.id)).toBe(0);
    expect(await count("chat_messages WHERE session_id = $1", live.id)).toBe(1200);
    expect(await lstore.expiredSessions(new Date(now + DAY), 10)).toEqual([]);
  });

  it("finishes a deletion a stopped run began, and an owner cannot unarchive a session being deleted", async () => {
    const { lifecycle, store: lstore } = testLifecycle(db.pool, { retentionArchivedDays: 1, batchSize: 100 });
    const s = await store.createSession(bob.id, "half deleted", false);
    await fill(s.id, bob.id, 250);
    await lifecycle.setArchived(bob, s.id, true);
    const later = new Date(Date.now() + 2 * DAY);
    const cutoff = new Date(later.getTime() - DAY);
    expect(await lstore.beginPurge(s.id, cutoff, later)).toEqual({ memberIds: [bob.id], streamingReplyIds: [] });
    expect(await lstore.purgeMessages(s.id, 100)).toBe(100);
    // the owner is no longer a member: the session is gone for them
    expect(await code(lifecycle.setArchived(bob, s.id, false))).toBe("NOT_FOUND");
    await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [s.id, bob.id]);
    // even a membership restored by hand cannot undo it: the row says it is being deleted
    expect(await code(lifecycle.setArchived(bob, s.id, false))).toBe("NOT_FOUND");
    await db.pool.query("DELETE FROM chat_session_members WHERE session_id = $1", [s.id]);

    // a run the next day finishes it, even with a clock at the cutoff again (purging_at marks it)
    const summary = await lifecycle.purgeExpired(later);
    expect(summary).toEqual({ sessions: 1, messages: 150 });
    expect(await count("chat_sessions WHERE id = $1", s.id)).toBe(0);
  });
});
