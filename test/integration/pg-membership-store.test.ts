import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMembershipStore } from "../../src/db/pg-membership-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import type { User } from "../../src/protocol/types.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase;
let store: PgMessageStore;
let membership: PgMembershipStore;
let users: PgUserStore;
let alice: User;
let bob: User;
let carol: User;

const mkUser = async (prefix: string) => (await users.create(`${prefix}_${randomUUID().slice(0, 8)}`, "x"))!;

beforeAll(async () => {
  db = await createTestDatabase(5);
  store = new PgMessageStore(db.pool);
  membership = new PgMembershipStore(db.pool);
  users = new PgUserStore(db.pool);
  [alice, bob, carol] = await Promise.all([mkUser("alice"), mkUser("bob"), mkUser("carol")]);
});
afterAll(() => db?.drop());

const count = async (sql: string, ...values: unknown[]) => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, values)).rows[0]!.n;

describe("PgMembershipStore", () => {
  it("keeps an invitation pending until the invitee accepts: no access before, membership after", async () => {
    const s = await store.createSession(alice.id, "plans", true);
    const invited = await membership.invite(s.id, alice.id, bob.username.toUpperCase());
    expect(invited).toMatchObject({
      kind: "invited",
      invitation: { sessionId: s.id, sessionTitle: "plans", inviter: { userId: alice.id, username: alice.username }, invitee: { userId: bob.id, username: bob.username } },
    });
    // pending: bob reads and writes nothing yet
    expect(await store.getSession(s.id, bob.id)).toBeNull();
    expect((await store.insertUserMessage({ sessionId: s.id, userId: bob.id, clientMessageId: "x", content: "too early" })).kind).toBe("not_found");
    // inviting again keeps one invitation
    expect((await membership.invite(s.id, alice.id, bob.username)).kind).toBe("invited");
    expect(await count("chat_session_invitations WHERE session_id = $1", s.id)).toBe(1);
    expect((await membership.invitations(bob.id, 10)).map((i) => i.sessionId)).toContain(s.id);
    expect(await membership.invitations(carol.id, 10)).toEqual([]);

    expect(await membership.accept(s.id, bob.id)).toMatchObject({ kind: "accepted", session: { id: s.id, role: "member" }, member: { userId: bob.id } });
    expect((await store.getSession(s.id, bob.id))!.role).toBe("member");
    expect((await membership.invitations(bob.id, 10)).map((i) => i.sessionId)).not.toContain(s.id);
    // consumed: a second accept finds nothing
    expect((await membership.accept(s.id, bob.id)).kind).toBe("not_found");
    // already a member: nothing to invite
    expect(await membership.invite(s.id, alice.id, bob.username)).toEqual({ kind: "member", member: { userId: bob.id, username: bob.username } });
  });

  it("refuses invitations from non-owners and outsiders, to unknown users, and acceptance without an invitation", async () => {
    const s = await store.createSession(alice.id, "", true);
    expect((await membership.invite(s.id, carol.id, bob.username)).kind).toBe("not_found");
    expect((await membership.invite(s.id, alice.id, "nobody_here_x")).kind).toBe("no_user");
    expect((await membership.invite(randomUUID(), alice.id, bob.username)).kind).toBe("not_found");
    // nobody joins by accepting an invitation that was never made
    expect((await membership.accept(s.id, carol.id)).kind).toBe("not_found");
    expect(await store.getSession(s.id, carol.id)).toBeNull();
    await membership.invite(s.id, alice.id, bob.username);
    await membership.accept(s.id, bob.id);
    expect((await membership.invite(s.id, bob.id, carol.username)).kind).toBe("forbidden");
    expect(await count("chat_session_invitations WHERE session_id = $1", s.id)).toBe(0);
  });

  it("declines: the invitation is gone and cannot be accepted", async () => {
    const s = await store.createSession(alice.id, "", true);
    await membership.invite(s.id, alice.id, carol.username);
    expect(await membership.decline(s.id, carol.id)).toBe(true);
    expect(await membership.decline(s.id, carol.id)).toBe(false);
    expect((await membership.accept(s.id, carol.id)).kind).toBe("not_found");
    expect(await store.getSession(s.id, carol.id)).toBeNull();
  });

  it("lets any member but the owner leave, lets the owner remove anyone and withdraw invitations, and names the streaming replies to cancel", async () => {
    const s = await store.createSession(alice.id, "", true);
    for (const u of [bob, carol]) {
      await membership.invite(s.id, alice.id, u.username);
      await membership.accept(s.id, u.id);
    }
    // bob has a reply streaming in the session
    const sent = await store.insertUserMessage({ sessionId: s.id, userId: bob.id, clientMessageId: "q", content: "question", replyOwnerNode: "n1" });
    if (sent.kind !== "inserted" || !sent.reply) throw new Error("setup");

    expect((await membership.removeMember(s.id, bob.id, carol.id)).kind).toBe("forbidden");
    expect((await membership.removeMember(s.id, alice.id, alice.id)).kind).toBe("owner");
    expect((await membership.removeMember(s.id, randomUUID(), bob.id)).kind).toBe("not_found");
    expect(await membership.removeMember(s.id, alice.id, bob.id)).toEqual({
      kind: "removed",
      member: { userId: bob.id, username: bob.username },
      streamingReplyIds: [sent.reply.id],
    });
    expect(await store.getSession(s.id, bob.id)).toBeNull();
    // carol leaves by herself
    expect(await membership.removeMember(s.id, carol.id, carol.id)).toEqual({
      kind: "removed",
      member: { userId: carol.id, username: carol.username },
      streamingReplyIds: [],
    });
    expect((await membership.removeMember(s.id, carol.id, carol.id)).kind).toBe("not_found");
    // a pending invitation is withdrawn by the owner
    await membership.invite(s.id, alice.id, carol.username);
    expect(await membership.removeMember(s.id, alice.id, carol.id)).toEqual({ kind: "revoked" });
    expect((await membership.accept(s.id, carol.id)).kind).toBe("not_found");
  });

  it("deletes a session with its invitations, returning its members and streaming replies", async () => {
    const s = await store.createSession(alice.id, "", true);
    await membership.invite(s.id, alice.id, bob.username);
    await membership.accept(s.id, bob.id);
    await membership.invite(s.id, alice.id, carol.username);
    const sent = await store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "q", content: "q", replyOwnerNode: "n1" });
    if (sent.kind !== "inserted" || !sent.reply) throw new Error("setup");
    expect((await membership.deleteSession(s.id, bob.id)).kind).toBe("forbidden");
    const r = await membership.deleteSession(s.id, alice.id);
    expect(r.kind).toBe("deleted");
    if (r.kind !== "deleted") return;
    expect(r.memberIds.sort()).toEqual([alice.id, bob.id].sort());
    expect(r.streamingReplyIds).toEqual([sent.reply.id]);
    expect(await count("chat_session_invitations WHERE session_id = $1", s.id)).toBe(0);
    expect(await count("chat_messages WHERE session_id = $1", s.id)).toBe(0);
  });
});
