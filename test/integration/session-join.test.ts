/**
 * session:join's reply against a real PostgreSQL: its lastSeq never promises
 * a message its backlog lacks, even when a message commits between the
 * backlog's read and the session's second read (two connections, two
 * snapshots). A resuming client trusts exactly that: every seq after
 * afterSeq up to lastSeq is in the backlog.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../src/chat/chat-service.js";
import type { MessageStore } from "../../src/chat/ports.js";
import { PgMembershipStore } from "../../src/db/pg-membership-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { LocalPresence } from "../../src/realtime/local-presence.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(4);
});
afterAll(() => db?.drop());

describe("session:join", () => {
  it("reports a lastSeq its backlog covers when a message commits between the two reads", async () => {
    const real = new PgMessageStore(db.pool);
    const user = (await new PgUserStore(db.pool).create(`join_${Date.now()}`, "x"))!;
    const session = await real.createSession(user.id, "join", false);
    let sent = 0;
    const send = async () => {
      const n = ++sent;
      const r = await real.insertUserMessage({ sessionId: session.id, userId: user.id, clientMessageId: `j${n}`, content: `message ${n}` });
      if (r.kind !== "inserted") throw new Error(r.kind);
    };
    for (let n = 1; n <= 3; n++) await send();

    // The backlog is read first; before the session's second read, another message commits.
    let backlogRead: () => void = () => undefined;
    let afterBacklog = Promise.resolve();
    let sessionReads = 0;
    const arm = () => {
      sessionReads = 0;
      afterBacklog = new Promise<void>((r) => (backlogRead = r));
    };
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === "listMessagesAfter" || prop === "listMessagesBefore") {
          return async (...args: unknown[]) => {
            const rows = await (Reflect.get(target, prop, receiver) as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            backlogRead();
            return rows;
          };
        }
        if (prop === "getSession") {
          return async (sessionId: string, userId: string) => {
            if (++sessionReads === 2) {
              await afterBacklog;
              await send();
            }
            return target.getSession(sessionId, userId);
          };
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    }) as MessageStore;
    const chat = new ChatService({
      store,
      membership: new PgMembershipStore(db.pool),
      presence: new LocalPresence(),
      rooms: { emit: () => undefined },
      members: { toUser: () => undefined, evict: () => undefined, evictions: () => 0 },
      limits: { historyPageSize: 50, joinBacklogMax: 100 },
    });
    const actor = { user: { id: user.id, username: user.username }, connectionId: "c1" } as Parameters<ChatService["joinSession"]>[0];

    arm();
    const resumed = await chat.joinSession(actor, { sessionId: session.id, afterSeq: 1 }, () => undefined);
    const seqs = new Set(resumed.messages.map((m) => m.seq));
    expect([...seqs].sort()).toEqual([2, 3]);
    // The message stored meanwhile (seq 4) reaches the connection live; the reply must not claim it.
    expect(resumed.session.lastSeq).toBe(3);
    for (let s = 2; s <= resumed.session.lastSeq; s++) expect(seqs.has(s), `seq ${s}`).toBe(true);
    expect((await real.getSession(session.id, user.id))!.lastSeq).toBe(4);

    // The first join (no afterSeq) alike: its page covers the lastSeq it reports.
    arm();
    const first = await chat.joinSession(actor, { sessionId: session.id }, () => undefined);
    expect(first.session.lastSeq).toBe(Math.max(...first.messages.map((m) => m.seq)));
    expect((await real.getSession(session.id, user.id))!.lastSeq).toBe(5);
  });
});
