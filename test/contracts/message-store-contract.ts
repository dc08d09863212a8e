/** The contract every MessageStore must keep; run by each implementation's test file. */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { MembershipStore, MessageStore, UserStore } from "../../src/chat/ports.js";
import type { User } from "../../src/protocol/types.js";

export interface MessageStoreFixture {
  store: MessageStore;
  /** Sessions get their members through it (invite, accept) and are deleted by it. */
  membership: MembershipStore;
  users: UserStore;
  /** Number of stored messages in a session, read beside the store (to prove nothing was written). */
  countMessages(sessionId: string): Promise<number>;
}

export function messageStoreContract(name: string, setup: () => Promise<MessageStoreFixture>) {
  describe(`MessageStore contract: ${name}`, () => {
    let f: MessageStoreFixture;
    let alice: User;
    let bob: User;
    const mkUser = async (prefix: string) => (await f.users.create(`${prefix}_${randomUUID().slice(0, 8)}`, "x"))!;
    const addMember = async (sessionId: string, owner: User, member: User) => {
      expect((await f.membership.invite(sessionId, owner.id, member.username)).kind).toBe("invited");
      expect((await f.membership.accept(sessionId, member.id)).kind).toBe("accepted");
    };

    beforeAll(async () => {
      f = await setup();
      alice = await mkUser("alice");
      bob = await mkUser("bob");
    });

    it("creates a session owned by its creator and lists it only for members", async () => {
      const s = await f.store.createSession(alice.id, "trip", true);
      expect(s).toMatchObject({ title: "trip", ownerId: alice.id, role: "owner", lastSeq: 0 });
      expect((await f.store.listSessions(alice.id, 100)).map((x) => x.id)).toContain(s.id);
      expect((await f.store.listSessions(bob.id, 100)).map((x) => x.id)).not.toContain(s.id);
      expect(await f.store.getSession(s.id, bob.id)).toBeNull();
      expect(await f.store.getSession(randomUUID(), alice.id)).toBeNull();
    });

    it("gives 50 concurrent senders seqs 1..50 with no gap or duplicate", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: `c${i}`, content: `m${i}` }),
        ),
      );
      const seqs = results.map((r) => (r.kind === "inserted" ? r.message.seq : -1)).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect((await f.store.getSession(s.id, alice.id))!.lastSeq).toBe(50);
    });

    it("stores one row for a clientMessageId sent twice, also concurrently, and keeps seqs gap-free", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      const msg = { sessionId: s.id, userId: alice.id, clientMessageId: "same", content: "hello" };
      const rs = await Promise.all(Array.from({ length: 10 }, () => f.store.insertUserMessage(msg)));
      expect(rs.filter((r) => r.kind === "inserted")).toHaveLength(1);
      expect(rs.filter((r) => r.kind === "duplicate")).toHaveLength(9);
      const ids = new Set(rs.map((r) => ("message" in r ? r.message.id : 0)));
      expect(ids.size).toBe(1);
      const again = await f.store.insertUserMessage({ ...msg, content: "changed" });
      expect(again.kind).toBe("duplicate");
      expect("message" in again && again.message.content).toBe("hello");
      const next = await f.store.insertUserMessage({ ...msg, clientMessageId: "other" });
      expect(next.kind === "inserted" && next.message.seq).toBe(2);
      expect(await f.countMessages(s.id)).toBe(2);
    });

    it("creates the streaming reply with the message, and refuses a second reply while one streams", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      const first = await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "q1", content: "question", replyOwnerNode: "node-a" });
      expect(first.kind).toBe("inserted");
      if (first.kind !== "inserted") return;
      expect(first.message.seq).toBe(1);
      expect(first.reply).toMatchObject({ seq: 2, role: "assistant", status: "streaming", replyToId: first.message.id, userId: alice.id });
      // while it streams: refused, nothing written, no seq consumed
      const second = await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "q2", content: "again", replyOwnerNode: "node-b" });
      expect(second).toEqual({ kind: "busy" });
      expect(await f.countMessages(s.id)).toBe(2);
      // without a reply it is stored
      const note = await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "q3", content: "note" });
      expect(note.kind === "inserted" && note.message.seq).toBe(3);
      expect(note.kind === "inserted" && note.reply).toBeNull();
      // a session without an assistant never gets a reply row
      const quiet = await f.store.createSession(alice.id, "", false);
      const r = await f.store.insertUserMessage({ sessionId: quiet.id, userId: alice.id, clientMessageId: "x", content: "hi", replyOwnerNode: "node-a" });
      expect(r.kind === "inserted" && r.reply).toBeNull();
      expect((await f.store.getSession(quiet.id, alice.id))!.lastSeq).toBe(1);
    });

    it("refuses writes and reads by a non-member without writing anything", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "a1", content: "secret" });
      const r = await f.store.insertUserMessage({ sessionId: s.id, userId: bob.id, clientMessageId: "b1", content: "intrude" });
      expect(r.kind).toBe("not_found");
      // bob reusing alice's clientMessageId must not get alice's row back
      const r2 = await f.store.insertUserMessage({ sessionId: s.id, userId: bob.id, clientMessageId: "a1", content: "x" });
      expect(r2.kind).toBe("not_found");
      expect(await f.store.listMessagesAfter(s.id, bob.id, 0, 100)).toEqual([]);
      expect(await f.store.listMessagesBefore(s.id, bob.id, undefined, 100)).toEqual([]);
      expect((await f.membership.deleteSession(s.id, bob.id)).kind).toBe("not_found");
      expect(await f.countMessages(s.id)).toBe(1);
      expect((await f.store.getSession(s.id, alice.id))!.lastSeq).toBe(1);
    });

    it("pages history by seq in both directions", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      for (let i = 1; i <= 7; i++) {
        await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: `p${i}`, content: `n${i}` });
      }
      expect((await f.store.listMessagesBefore(s.id, alice.id, undefined, 3)).map((m) => m.seq)).toEqual([5, 6, 7]);
      expect((await f.store.listMessagesBefore(s.id, alice.id, 5, 3)).map((m) => m.seq)).toEqual([2, 3, 4]);
      expect((await f.store.listMessagesBefore(s.id, alice.id, 2, 3)).map((m) => m.seq)).toEqual([1]);
      expect((await f.store.listMessagesAfter(s.id, alice.id, 4, 2)).map((m) => m.seq)).toEqual([5, 6]);
      expect(await f.store.listMessagesAfter(s.id, alice.id, 7, 10)).toEqual([]);
    });

    it("lets members read and write, only the owner delete", async () => {
      const s = await f.store.createSession(alice.id, "team", true);
      await addMember(s.id, alice, bob);
      expect((await f.store.getSession(s.id, bob.id))!.role).toBe("member");
      const r = await f.store.insertUserMessage({ sessionId: s.id, userId: bob.id, clientMessageId: "b", content: "hi" });
      expect(r.kind).toBe("inserted");
      expect((await f.store.listMessagesAfter(s.id, bob.id, 0, 10)).map((m) => m.content)).toEqual(["hi"]);
      expect((await f.membership.deleteSession(s.id, bob.id)).kind).toBe("forbidden");
      expect(await f.countMessages(s.id)).toBe(1);
    });

    it("lets only the owner rename a session", async () => {
      const s = await f.store.createSession(alice.id, "old", false);
      await addMember(s.id, alice, bob);
      expect(await f.store.renameSession(s.id, bob.id, "hijack")).toBe("forbidden");
      expect(await f.store.renameSession(randomUUID(), alice.id, "x")).toBe("not_found");
      const renamed = await f.store.renameSession(s.id, alice.id, "new title");
      expect(renamed).toMatchObject({ id: s.id, title: "new title", role: "owner" });
      expect((await f.store.getSession(s.id, bob.id))!.title).toBe("new title");
    });

    it("deletes a session with its messages", async () => {
      const s = await f.store.createSession(alice.id, "", true);
      await f.store.insertUserMessage({ sessionId: s.id, userId: alice.id, clientMessageId: "d", content: "bye" });
      expect(await f.membership.deleteSession(s.id, alice.id)).toEqual({ kind: "deleted", memberIds: [alice.id], streamingReplyIds: [] });
      expect(await f.store.getSession(s.id, alice.id)).toBeNull();
      expect(await f.countMessages(s.id)).toBe(0);
      expect((await f.membership.deleteSession(s.id, alice.id)).kind).toBe("not_found");
    });
  });
}
