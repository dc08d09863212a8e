import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMembershipStore } from "../../src/db/pg-membership-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import type { Session } from "../../src/protocol/types.js";
import type { InsertResult } from "../../src/chat/ports.js";
import "../../src/db/pool.js"; // bigint parser
import { messageStoreContract } from "../contracts/message-store-contract.js";
import { addMember, createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase | undefined;
afterAll(() => db?.drop());

messageStoreContract("PostgreSQL", async () => {
  db = await createTestDatabase(20);
  const pool = db.pool;
  return {
    store: new PgMessageStore(pool),
    membership: new PgMembershipStore(pool),
    users: new PgUserStore(pool),
    async countMessages(sessionId) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [sessionId]);
      return rows[0]!.n;
    },
  };
});

describe("PgMessageStore send batching (group commit)", () => {
  let db2: TestDatabase;
  beforeAll(async () => {
    db2 = await createTestDatabase(20);
  });
  afterAll(() => db2?.drop());

  const mkUser = async (users: PgUserStore, prefix: string) => (await users.create(`${prefix}_${randomUUID().slice(0, 8)}`, "x"))!;

  it("keeps seqs gap-free, one row per clientMessageId and one streaming reply per user across two nodes' concurrent batches", async () => {
    const users = new PgUserStore(db2.pool);
    // two nodes, each batching
    // The second node times its sends as the server does (its own connection handling, see timedQuery).
    const timed = { queued: 0, poolWaits: 0, statements: 0 };
    const timing = { queued: () => void timed.queued++, poolWait: () => void timed.poolWaits++, statement: () => void timed.statements++ };
    const nodes = [new PgMessageStore(db2.pool, { maxBatch: 16, maxInFlight: 2 }), new PgMessageStore(db2.pool, { maxBatch: 16, maxInFlight: 2 }, timing)];
    const [owner, ...others] = await Promise.all(["owner", "m1", "m2"].map((p) => mkUser(users, p)));
    const outsider = await mkUser(users, "outsider");
    const sessions: Session[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await nodes[0]!.createSession(owner!.id, `s${i}`, true);
      for (const u of others) await addMember(db2.pool, s.id, owner!.id, u);
      sessions.push(s);
    }
    const members = [owner!, ...others];
    let rnd = 12345;
    const random = (n: number) => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31), rnd % n);
    const sends = Array.from({ length: 400 }, (_, i) => {
      const s = sessions[random(sessions.length)]!;
      const u = members[random(members.length)]!;
      // a small pool of ids per session: many sends are retries of another
      return { sessionId: s.id, userId: u.id, clientMessageId: `c${random(30)}`, content: `m${i}`, replyOwnerNode: random(3) === 0 ? `node${i % 2}` : undefined };
    });
    const intrusions = sessions.map((s) => ({ sessionId: s.id, userId: outsider.id, clientMessageId: "c1", content: "intrude" }));
    const results = await Promise.all([...sends, ...intrusions].map((m, i) => nodes[i % 2]!.insertUserMessage(m)));
    const toTimed = [...sends, ...intrusions].filter((_, i) => i % 2 === 1).length;
    expect(timed.queued).toBe(toTimed);
    expect(timed.statements).toBe(timed.poolWaits);
    expect(timed.statements).toBeGreaterThan(0);

    expect(results.slice(sends.length).every((r) => r.kind === "not_found")).toBe(true);
    const byKey = new Map<string, number>();
    let written = 0;
    for (const [i, r] of results.slice(0, sends.length).entries()) {
      expect(r.kind).not.toBe("not_found");
      if (r.kind === "busy" || r.kind === "not_found" || r.kind === "archived" || r.kind === "bad_attachments") continue;
      const key = `${sends[i]!.sessionId}/${sends[i]!.clientMessageId}`;
      const id = r.message.id;
      // every answer for one clientMessageId is the same row
      if (byKey.has(key)) expect(byKey.get(key)).toBe(id);
      byKey.set(key, id);
      if (r.kind === "inserted") written += r.reply ? 2 : 1;
    }
    const { rows } = await db2.pool.query<{ session_id: string; seqs: number[]; ids: number; n: number; streaming: number; last_seq: number }>(
      `SELECT m.session_id, array_agg(m.seq ORDER BY m.seq) AS seqs, count(DISTINCT m.client_message_id)::int AS ids, count(*)::int AS n,
              count(*) FILTER (WHERE m.status = 'streaming')::int AS streaming, s.last_seq
         FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
        WHERE m.session_id = ANY($1::uuid[]) GROUP BY m.session_id, s.last_seq`,
      [sessions.map((s) => s.id)],
    );
    let total = 0;
    for (const r of rows) {
      expect(r.seqs).toEqual(Array.from({ length: r.n }, (_, k) => k + 1));
      expect(r.last_seq).toBe(r.n);
      // at most one streaming reply per member
      expect(r.streaming).toBeLessThanOrEqual(members.length);
      total += r.n;
    }
    expect(total).toBe(written);
    expect(byKey.size).toBe(rows.reduce((a, r) => a + r.ids, 0));
    // the batches really formed, and none fell back to one-by-one
    for (const n of nodes) {
      expect(n.sendStats.fallbacks).toBe(0);
      expect(n.sendStats.batches).toBeLessThan(n.sendStats.items / 2);
    }
  });

  it("retries a failed batch item by item, so one bad item fails alone", async () => {
    const users = new PgUserStore(db2.pool);
    const store = new PgMessageStore(db2.pool, { maxBatch: 16, maxInFlight: 1 });
    const u = await mkUser(users, "nul");
    const s = await store.createSession(u.id, "", false);
    const msg = (i: number, content = `m${i}`) => ({ sessionId: s.id, userId: u.id, clientMessageId: `n${i}`, content });
    const first = store.insertUserMessage(msg(0)); // runs alone; the rest queue into one batch behind it
    // PostgreSQL text cannot hold U+0000 (the protocol refuses it; the store must not let it spoil a batch)
    const batch = [
      store.insertUserMessage(msg(1)),
      store.insertUserMessage(msg(2, "bad \u0000")),
      store.insertUserMessage(msg(3)),
      store.insertUserMessage(msg(4)),
    ];
    expect((await first).kind).toBe("inserted");
    const settled = await Promise.allSettled(batch);
    expect(settled.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const seqs = settled.flatMap((r) => (r.status === "fulfilled" && r.value.kind === "inserted" ? [r.value.message.seq] : []));
    expect(seqs).toEqual([2, 3, 4]);
    expect((await store.getSession(s.id, u.id))!.lastSeq).toBe(4);
    expect(store.sendStats.fallbacks).toBe(1);
  });

  it("answers each item of one batch as it would alone: duplicates, busy turns, strangers", async () => {
    const users = new PgUserStore(db2.pool);
    const store = new PgMessageStore(db2.pool, { maxBatch: 64, maxInFlight: 1 });
    const [a, b, c] = await Promise.all(["ba", "bb", "bc"].map((p) => mkUser(users, p)));
    const s = await store.createSession(a!.id, "", true);
    await addMember(db2.pool, s.id, a!.id, b!);
    const other = await store.createSession(c!.id, "", true);
    const earlier = await store.insertUserMessage({ sessionId: s.id, userId: a!.id, clientMessageId: "old", content: "stored before" });
    if (earlier.kind !== "inserted") throw new Error("setup");
    const first = store.insertUserMessage({ sessionId: other.id, userId: c!.id, clientMessageId: "x", content: "runs alone" });
    const send = (userId: string, clientMessageId: string, reply: boolean, sessionId = s.id) =>
      store.insertUserMessage({ sessionId, userId, clientMessageId, content: `${clientMessageId} text`, replyOwnerNode: reply ? "n1" : undefined });
    // all of these queue behind `first` and go as one batch
    const batch = [
      send(a!.id, "k1", true), // 0: inserted with a reply
      send(a!.id, "k1", true), // 1: same key: a duplicate of 0
      send(a!.id, "k2", true), // 2: a's reply (from 0) streams: busy
      send(a!.id, "k3", false), // 3: no reply wanted: inserted
      send(b!.id, "k4", true), // 4: b's first: inserted with a reply
      send(c!.id, "k5", false), // 5: not a member: not_found
      send(a!.id, "old", false), // 6: stored before: a duplicate of it
      send(c!.id, "old", false), // 7: a stranger reusing the key: not_found, not a's row
      send(a!.id, "k6", false, "00000000-0000-4000-8000-000000000000"), // 8: no such session
      send(c!.id, "y", false, other.id), // 9: another session, same batch
    ];
    await first;
    const r = await Promise.all(batch);
    expect(store.sendStats.fallbacks).toBe(0);
    expect(r.map((x) => x.kind)).toEqual(["inserted", "duplicate", "busy", "inserted", "inserted", "not_found", "duplicate", "not_found", "not_found", "inserted"]);
    const seqOf = (x: InsertResult) => (x.kind === "inserted" || x.kind === "duplicate" ? x.message.seq : null);
    const [r0, r1, , r3, r4, , r6, , , r9] = r as InsertResult[];
    expect(r0!.kind === "inserted" && r0!.reply?.seq).toBe(3);
    expect(seqOf(r0!)).toBe(2);
    expect(r1!.kind === "duplicate" && r1!.message.id).toBe(r0!.kind === "inserted" && r0!.message.id);
    expect(seqOf(r3!)).toBe(4);
    expect(seqOf(r4!)).toBe(5);
    expect(r4!.kind === "inserted" && r4!.reply?.seq).toBe(6);
    expect(r6!.kind === "duplicate" && r6!.message.id).toBe(earlier.message.id);
    expect(seqOf(r9!)).toBe(2);
    expect((await store.getSession(s.id, a!.id))!.lastSeq).toBe(6);
    const { rows } = await db2.pool.query("SELECT count(*)::int AS n FROM message_index_jobs j JOIN chat_messages m ON m.id = j.message_id WHERE m.session_id = $1", [s.id]);
    expect(rows[0].n).toBe(4); // the user messages; replies are queued when they end
  });

  /*
   * Sends that want no reply take statements without the reply part: the
   * batch function's own (sql/028) and the lone statement's. Same rules as the
   * full ones: checked here against a recount of what was stored.
   */
  it("stores sends that want no reply (alone and in batches, two nodes) with gap-free seqs, one row per key, an indexing job each and exact lexical statistics", async () => {
    const users = new PgUserStore(db2.pool);
    const nodes = [new PgMessageStore(db2.pool, { maxBatch: 16, maxInFlight: 2 }), new PgMessageStore(db2.pool, { maxBatch: 16, maxInFlight: 2 })];
    const [owner, other] = await Promise.all(["nr_owner", "nr_other"].map((p) => mkUser(users, p)));
    const outsider = await mkUser(users, "nr_out");
    const sessions: Session[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await nodes[0]!.createSession(owner!.id, `nr${i}`, i % 2 === 0);
      await addMember(db2.pool, s.id, owner!.id, other!);
      sessions.push(s);
    }
    const archived = await nodes[0]!.createSession(owner!.id, "nr archived", false);
    await db2.pool.query("UPDATE chat_sessions SET archived = true, archived_at = now() WHERE id = $1", [archived.id]);
    // A lone send first (nothing queued: the plain statement), then a crowd that batches.
    const lone = await nodes[0]!.insertUserMessage({ sessionId: sessions[0]!.id, userId: owner!.id, clientMessageId: "lone", content: "the lone one" });
    expect(lone.kind === "inserted" && lone.message.seq).toBe(1);
    expect(lone.kind === "inserted" && lone.reply).toBeNull();
    const again = await nodes[1]!.insertUserMessage({ sessionId: sessions[0]!.id, userId: owner!.id, clientMessageId: "lone", content: "the lone one" });
    expect(again.kind === "duplicate" && again.message.id).toBe(lone.kind === "inserted" && lone.message.id);
    let rnd = 777;
    const random = (n: number) => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31), rnd % n);
    const sends = Array.from({ length: 300 }, (_, i) => ({
      sessionId: sessions[random(sessions.length)]!.id,
      userId: random(2) === 0 ? owner!.id : other!.id,
      clientMessageId: `k${random(40)}`,
      content: `message ${i} about ${["budgets", "the launch", "a quarterly report"][random(3)]}`,
    }));
    const refused = [
      { sessionId: sessions[1]!.id, userId: outsider.id, clientMessageId: "k1", content: "intrude" },
      { sessionId: archived.id, userId: owner!.id, clientMessageId: "late", content: "too late" },
    ];
    const results = await Promise.all([...sends, ...refused].map((m, i) => nodes[i % 2]!.insertUserMessage(m)));
    expect(results.slice(sends.length).map((r) => r.kind)).toEqual(["not_found", "archived"]);
    const byKey = new Map<string, number>();
    let inserted = 0;
    for (const [i, r] of results.slice(0, sends.length).entries()) {
      if (r.kind !== "inserted" && r.kind !== "duplicate") throw new Error(`unexpected ${r.kind}`);
      if (r.kind === "inserted") {
        inserted++;
        expect(r.reply).toBeNull();
      }
      const key = `${sends[i]!.sessionId}/${sends[i]!.clientMessageId}`;
      if (byKey.has(key)) expect(byKey.get(key)).toBe(r.message.id);
      byKey.set(key, r.message.id);
    }
    expect(inserted).toBe(byKey.size - (byKey.has(`${sessions[0]!.id}/lone`) ? 1 : 0));
    for (const n of nodes) {
      expect(n.sendStats.fallbacks).toBe(0);
      expect(n.sendStats.batches).toBeLessThan(n.sendStats.items);
    }
    const ids = [...sessions.map((s) => s.id), archived.id];
    const { rows } = await db2.pool.query<{ seqs: number[]; n: number; last_seq: number; message_count: number; jobs: number }>(
      `SELECT array_agg(m.seq ORDER BY m.seq) AS seqs, count(*)::int AS n, s.last_seq, s.message_count,
              count(j.message_id)::int AS jobs
         FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
         LEFT JOIN message_index_jobs j ON j.message_id = m.id
        WHERE m.session_id = ANY($1::uuid[]) GROUP BY m.session_id, s.last_seq, s.message_count`,
      [ids],
    );
    expect(rows.reduce((a, r) => a + r.n, 0)).toBe(inserted + 1);
    for (const r of rows) {
      expect(r.seqs).toEqual(Array.from({ length: r.n }, (_, k) => k + 1));
      expect(r.last_seq).toBe(r.n);
      expect(r.message_count).toBe(r.n);
      expect(r.jobs).toBe(r.n);
    }
    // the statistics (lexical_doc_counts, sql/029) as a recount from the stored rows gives them
    const { rows: stats } = await db2.pool.query<{ mismatches: number }>(
      `WITH truth AS (
         SELECT session_id, user_id AS author_id, count(*)::bigint AS docs, coalesce(sum(length(content_tsv)), 0)::bigint AS len
           FROM chat_messages WHERE session_id = ANY($1::uuid[]) GROUP BY 1, 2
       )
       SELECT count(*)::int AS mismatches
         FROM truth t FULL JOIN (SELECT * FROM lexical_doc_counts WHERE session_id = ANY($1::uuid[])) st
           ON st.session_id = t.session_id AND st.author_id = t.author_id
        WHERE t.docs IS DISTINCT FROM st.docs::bigint OR t.len IS DISTINCT FROM st.len::bigint`,
      [ids],
    );
    expect(stats[0]!.mismatches).toBe(0);
  });
});
