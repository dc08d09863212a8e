/**
 * Attachment passages end to end inside the database: a stored attachment
 * is queued for reading (sql/021's trigger), read from a real disk file
 * store, split and written; the indexer embeds the passages beside messages
 * in the same collection; retrieval finds them under the scoping rule of
 * messages; a reply's use of them is recorded; deleting the attachment or
 * its session deletes the passages and their vectors.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgIndexQueue, PgPassageIndexQueue } from "../../src/db/index-queue.js";
import { PgAssistantStore } from "../../src/db/pg-assistant-store.js";
import { PgMemoryQueries } from "../../src/db/memory-queries.js";
import { PgPassageQueries } from "../../src/db/passage-queries.js";
import { PgPassageStore } from "../../src/db/pg-passage-store.js";
import { TextExtractor } from "../../src/files/extract/text-extractor.js";
import { DiskFileStore } from "../../src/files/disk-file-store.js";
import { PassageRunner } from "../../src/files/passage-runner.js";
import { AttachmentReadiness } from "../../src/files/attachment-readiness.js";
import { HashEmbedder } from "../../src/memory/hash-embedder.js";
import { Indexer } from "../../src/memory/indexer.js";
import { PassageSearch } from "../../src/memory/passage-search.js";
import { PgVectorPurge } from "../../src/memory/vector-purge.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import { addMember, createTestDatabase, type TestDatabase } from "../support/db.js";
import { silentLogger } from "../support/logger.js";
import { fillerPages, writePdf } from "../support/pdf-writer.js";

let db: TestDatabase;
let dir: string;
let files: DiskFileStore;
let extractor: TextExtractor;
let passageStore: PgPassageStore;
let runner: PassageRunner;
let indexer: Indexer;
let store: PgVectorStore;
let search: PassageSearch;
const COLLECTION = "passages_test_hash_256";

beforeAll(async () => {
  db = await createTestDatabase(6);
  dir = await mkdtemp(path.join(tmpdir(), "memchat-passages-"));
  files = new DiskFileStore(dir);
  extractor = new TextExtractor({ workers: 1, timeoutMs: 60_000, maxHeapMb: 256, limits: { maxChars: 200_000, maxPages: 100, maxDepth: 16 } });
  passageStore = new PgPassageStore(db.pool);
  runner = new PassageRunner({
    store: passageStore,
    extractor,
    files,
    purge: new PgVectorPurge(db.pool),
    onPassages: () => undefined,
    opts: { pollMs: 1000, leaseMs: 60_000, maxBytes: 10 * 1024 * 1024, passages: { size: 400, overlap: 80 }, maxAttempts: 3 },
    log: silentLogger,
  });
  const embedder = new HashEmbedder({ dimensions: 256 });
  store = new PgVectorStore(db.pool, COLLECTION, 256);
  indexer = new Indexer(new PgIndexQueue(db.pool), embedder, store, { batchSize: 64, pollMs: 1000, leaseMs: 30_000, baseBackoffMs: 100, maxBackoffMs: 1000 }, silentLogger, undefined, new PgPassageIndexQueue(db.pool));
  search = new PassageSearch({ passages: new PgPassageQueries(db.pool), memory: new PgMemoryQueries(db.pool), vectors: () => ({ embedder, store }), defaultMinSimilarity: 0, log: silentLogger });
});
afterAll(async () => {
  await extractor?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function user(): Promise<{ id: string; username: string }> {
  const username = `pz_${Date.now()}_${n++}`;
  const { rows } = await db.pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [username]);
  return { id: rows[0]!.id, username };
}
async function session(owner: string): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>("INSERT INTO chat_sessions (owner_id) VALUES ($1) RETURNING id", [owner]);
  await db.pool.query("INSERT INTO chat_session_members (session_id, user_id, role) VALUES ($1, $2, 'owner')", [rows[0]!.id, owner]);
  return rows[0]!.id;
}
async function message(sessionId: string, userId: string, content: string, role: "user" | "assistant" = "user"): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>(
    `WITH s AS (UPDATE chat_sessions SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq)
     INSERT INTO chat_messages (session_id, seq, user_id, role, content) SELECT $1, s.last_seq, $2, $4, $3 FROM s RETURNING id`,
    [sessionId, userId, content, role],
  );
  await db.pool.query("INSERT INTO message_index_jobs (message_id) VALUES ($1)", [rows[0]!.id]);
  return rows[0]!.id;
}
/** Stores a file as an upload does (the row, then the object, then state pending); sent with a message when `sent`. */
async function upload(sessionId: string, uploaderId: string, name: string, contentType: string, bytes: Uint8Array, sent: boolean): Promise<string> {
  const id = randomUUID();
  const key = `t/${id}`;
  await db.pool.query("INSERT INTO attachments (id, session_id, uploader_id, name, storage_key) VALUES ($1, $2, $3, $4, $5)", [id, sessionId, uploaderId, name, key]);
  await files.put(key, Readable.from([Buffer.from(bytes)]));
  await db.pool.query("UPDATE attachments SET state = 'pending', content_type = $2, size_bytes = $3, sha256 = 'x' WHERE id = $1", [id, contentType, bytes.length]);
  if (sent) {
    const m = await message(sessionId, uploaderId, `sharing ${name}`);
    await db.pool.query("UPDATE attachments SET state = 'attached', message_id = $2, attached_at = now() WHERE id = $1", [id, m]);
  }
  return id;
}
async function drain(): Promise<void> {
  while ((await runner.runOnce()) > 0);
  while ((await indexer.drainOnce()) > 0);
}
const count = async (sql: string, params: unknown[]) => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;
const text = (hits: { content: string }[]) => hits.map((h) => h.content).join("\n");

describe("reading an attachment", () => {
  it("queues every stored attachment, reads a PDF page by page, and indexes its passages beside messages", async () => {
    const alice = await user();
    const s = await session(alice.id);
    const pages = fillerPages(6, 12, (p) => (p === 3 ? "The harbour vault combination is 7781-QX." : undefined));
    const a = await upload(s, alice.id, "report.pdf", "application/pdf", writePdf(pages), true);
    expect(await count("attachment_extractions WHERE attachment_id = $1 AND status = 'queued'", [a])).toBe(1);
    await message(s, alice.id, "an ordinary message about lunch");
    await drain();

    const state = await passageStore.state(a, alice.id);
    expect(state).toMatchObject({ status: "done", pageCount: 6, truncated: false });
    expect(state!.passages).toBeGreaterThan(6);
    const { rows } = await db.pool.query<{ page: number; content: string; indexed_at: Date | null }>(
      "SELECT page, content, indexed_at FROM attachment_passages WHERE attachment_id = $1 ORDER BY ordinal",
      [a],
    );
    expect(rows.find((r) => r.content.includes("7781-QX"))!.page).toBe(4);
    expect(rows.every((r) => r.indexed_at !== null)).toBe(true);
    // One collection holds both kinds.
    expect(await count("message_vectors WHERE collection = $1 AND session_id = $2 AND role = 'passage'", [COLLECTION, s])).toBe(rows.length);
    expect(await count("message_vectors WHERE collection = $1 AND session_id = $2 AND role <> 'passage'", [COLLECTION, s])).toBe(2); // the sharing message and the other one

    const hits = await search.search({ userId: alice.id, query: "what is the vault combination?", homeSessionId: s, limit: 3 });
    expect(hits[0]).toMatchObject({ attachmentId: a, name: "report.pdf", page: 4, sessionId: s });
    expect(hits[0]!.content).toContain("7781-QX");
  });

  it("skips files that are not text-like and records why an unreadable one failed", async () => {
    const alice = await user();
    const s = await session(alice.id);
    const img = await upload(s, alice.id, "photo.png", "image/png", new Uint8Array([0x89, 0x50, 0x4e, 0x47]), true);
    const bad = await upload(s, alice.id, "broken.pdf", "application/pdf", new TextEncoder().encode("%PDF-1.4 not really"), true);
    await drain();
    expect(await passageStore.state(img, alice.id)).toMatchObject({ status: "skipped" });
    expect(await passageStore.state(bad, alice.id)).toMatchObject({ status: "failed", error: expect.stringMatching(/not a readable PDF/) });
  });

  it("a reply waits for its question's files until they are read (bounded, cancellable), never for an image; read passages are found before they are embedded", async () => {
    const alice = await user();
    const s = await session(alice.id);
    const notes = "# Shift notes\n\n" + "Nothing to report on the morning round.\n\n".repeat(20) + "The boathouse padlock code is 5519.\n\n" + "Quiet evening.\n\n".repeat(20);
    const doc = { id: await upload(s, alice.id, "shift.md", "text/markdown", new TextEncoder().encode(notes), true), contentType: "text/markdown" };
    const img = { id: await upload(s, alice.id, "boat.png", "image/png", new Uint8Array([0x89, 0x50, 0x4e, 0x47]), true), contentType: "image/png" };
    const readiness = new AttachmentReadiness(passageStore, 60_000);

    // Nothing read yet: a short bound runs out, a cancelled turn stops at once.
    expect(await new AttachmentReadiness(passageStore, 30).wait([doc])).toMatchObject({ ready: false });
    const cancelled = new AbortController();
    cancelled.abort();
    expect(await readiness.wait([doc], cancelled.signal)).toEqual({ ready: false, checks: 1 });
    // An image is not read for text: no wait, not even a check, though its extraction is still queued.
    expect(await readiness.wait([img])).toEqual({ ready: true, checks: 0 });
    expect(await count("attachment_extractions WHERE attachment_id = $1 AND status = 'queued'", [img.id])).toBe(1);

    const waiting = readiness.wait([doc, img]);
    while ((await runner.runOnce()) > 0);
    readiness.settled();
    expect(await waiting).toMatchObject({ ready: true });
    // Read, not embedded (no indexer ran): lexical search finds the passage already.
    expect(await count("attachment_passages WHERE attachment_id = $1 AND indexed_at IS NULL", [doc.id])).toBeGreaterThan(0);
    const lexicalOnly = new PassageSearch({ passages: new PgPassageQueries(db.pool), memory: new PgMemoryQueries(db.pool), vectors: () => undefined, defaultMinSimilarity: 0, log: silentLogger });
    const hits = await lexicalOnly.search({ userId: alice.id, query: "what is the boathouse padlock code?", homeSessionId: s, limit: 2 });
    expect(text(hits)).toContain("5519");
  });
});

describe("who finds a passage (the scoping rule of messages, the uploader as author)", () => {
  it("members find sent files of their session; outsiders, unsent files of others and other people's files elsewhere stay out", async () => {
    const [owner, member, outsider] = [await user(), await user(), await user()];
    const shared = await session(owner.id);
    await addMember(db.pool, shared, owner.id, member);
    const memberOwn = await session(member.id);
    const outsiderOwn = await session(outsider.id);
    const enc = (t: string) => new TextEncoder().encode(t);
    await upload(shared, owner.id, "sent.md", "text/markdown", enc("The zeppelin hangar opens at dawn on Tuesdays."), true);
    await upload(shared, owner.id, "draft.txt", "text/plain", enc("Unsent draft: the zeppelin budget is secret."), false);
    await upload(memberOwn, member.id, "mine.csv", "text/csv", enc("item,price\nzeppelin ticket,120\n"), true);
    await upload(outsiderOwn, outsider.id, "theirs.html", "text/html", enc("<p>Outsider zeppelin notes</p>"), true);
    await drain();

    const q = (userId: string, over: Partial<Parameters<PassageSearch["search"]>[0]> = {}) => search.search({ userId, query: "zeppelin", limit: 10, ...over }).then(text);
    // The member, in the shared session: the sent file, never the owner's unsent draft.
    const inShared = await q(member.id, { homeSessionId: shared, audienceSessionId: shared });
    expect(inShared).toContain("hangar opens at dawn");
    expect(inShared).not.toContain("Unsent draft");
    // The member's own file is theirs everywhere, but not shown in the shared session (the owner cannot read it).
    expect(inShared).not.toContain("zeppelin ticket");
    expect(await q(member.id, { homeSessionId: memberOwn, audienceSessionId: memberOwn })).toContain("zeppelin ticket");
    // In their private session, the member does not draw on files others shared elsewhere.
    expect(await q(member.id, { homeSessionId: memberOwn, audienceSessionId: memberOwn })).not.toContain("hangar");
    // The owner sees their own draft in their session.
    expect(await q(owner.id, { homeSessionId: shared })).toContain("Unsent draft");
    // The outsider finds only their own, even naming the shared session.
    expect(await q(outsider.id, { homeSessionId: outsiderOwn })).toBe("Outsider zeppelin notes");
    expect(await q(outsider.id, { sessionId: shared })).toBe("");
    // Searching "from" the shared session changes nothing: outside their sessions, only their own file.
    expect(await q(outsider.id, { homeSessionId: shared })).toBe("Outsider zeppelin notes");
  });
});

describe("a reply's passages, and deletion", () => {
  it("records the passages a reply used; members see them, outsiders do not", async () => {
    const [owner, outsider] = [await user(), await user()];
    const s = await session(owner.id);
    const a = await upload(s, owner.id, "notes.txt", "text/plain", new TextEncoder().encode("The lighthouse keeper is called Morwenna."), true);
    await drain();
    const [hit] = await search.search({ userId: owner.id, query: "lighthouse keeper", homeSessionId: s, limit: 1 });
    const q = await message(s, owner.id, "who keeps the lighthouse?");
    const { rows } = await db.pool.query<{ id: number }>(
      "WITH x AS (UPDATE chat_sessions SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq) INSERT INTO chat_messages (session_id, seq, user_id, role, content, status, reply_to_id) SELECT $1, x.last_seq, $2, 'assistant', '', 'streaming', $3 FROM x RETURNING id",
      [s, owner.id, q],
    );
    const assistantStore = new PgAssistantStore(db.pool);
    await assistantStore.complete(rows[0]!.id, { content: "Morwenna.", status: "complete", completionTokens: 2, promptTokens: 10, firstTokenMs: 1, latencyMs: 2 }, [], [
      { passageId: hit!.passageId, score: 0.9, rank: 1, source: "hybrid" },
    ]);
    const queries = new PgPassageQueries(db.pool);
    expect(await queries.contextOf(owner.id, rows[0]!.id)).toEqual([
      { passageId: hit!.passageId, score: 0.9, rank: 1, source: "hybrid", attachmentId: a, name: "notes.txt", page: null, content: "The lighthouse keeper is called Morwenna." },
    ]);
    expect(await queries.contextOf(outsider.id, rows[0]!.id)).toEqual([]);
  });

  it("deleting an attachment deletes its passages, jobs and vectors; deleting a session deletes the rest", async () => {
    const owner = await user();
    const s = await session(owner.id);
    const enc = (t: string) => new TextEncoder().encode(t);
    const a = await upload(s, owner.id, "one.txt", "text/plain", enc("first file about quasars"), true);
    const b = await upload(s, owner.id, "two.txt", "text/plain", enc("second file about pulsars"), true);
    await drain();
    expect(await count("message_vectors WHERE attachment_id = ANY($1::uuid[])", [[a, b]])).toBe(2);

    await db.pool.query("DELETE FROM attachments WHERE id = $1", [a]);
    expect(await count("attachment_passages WHERE attachment_id = $1", [a])).toBe(0);
    expect(await count("message_vectors WHERE attachment_id = $1", [a])).toBe(0);
    expect(await count("message_vectors WHERE attachment_id = $1", [b])).toBe(1);
    expect(await count("attachment_vector_purge WHERE attachment_id = $1", [a])).toBe(1);
    await runner.runOnce(); // drains the purge queue
    expect(await count("attachment_vector_purge WHERE attachment_id = $1", [a])).toBe(0);

    await db.pool.query("DELETE FROM chat_sessions WHERE id = $1", [s]);
    expect(await count("attachment_passages WHERE session_id = $1", [s])).toBe(0);
    // Passage vectors go with the rows (message vectors are the session deletion's own purge).
    expect(await count("message_vectors WHERE session_id = $1 AND role = 'passage'", [s])).toBe(0);
    expect(await store.searchPassages(new Float32Array(256).fill(1), { userId: owner.id, sessionIds: [s] }, 10)).toEqual([]);
  });

  it("deleting the uploader's account deletes their files' passages and vectors in other people's sessions", async () => {
    const [owner, member] = [await user(), await user()];
    const s = await session(owner.id);
    await addMember(db.pool, s, owner.id, member);
    const theirs = await upload(s, member.id, "member.txt", "text/plain", new TextEncoder().encode("the member wrote about nebulae"), true);
    const mine = await upload(s, owner.id, "owner.txt", "text/plain", new TextEncoder().encode("the owner wrote about comets"), true);
    await drain();
    expect(await count("message_vectors WHERE attachment_id = ANY($1::uuid[])", [[theirs, mine]])).toBe(2);
    await db.pool.query("DELETE FROM users WHERE id = $1", [member.id]);
    expect(await count("attachment_passages WHERE attachment_id = $1", [theirs])).toBe(0);
    expect(await count("message_vectors WHERE attachment_id = $1", [theirs])).toBe(0);
    expect(await count("message_vectors WHERE attachment_id = $1", [mine])).toBe(1);
  });
});
