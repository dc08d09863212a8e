/**
 * Unsent uploads expire: the attachments job of the maintenance scheduler,
 * on a clock the test moves, removes pending uploads older than the TTL
 * (row and stored objects) and leaves sent ones and younger ones alone.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PgAttachmentStore } from "../../src/db/pg-attachment-store.js";
import { PgMaintenanceStore } from "../../src/db/pg-maintenance-store.js";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { AttachmentService } from "../../src/files/attachment-service.js";
import { DiskFileStore } from "../../src/files/disk-file-store.js";
import { attachmentsJob } from "../../src/maintenance/attachments-job.js";
import { type Clock, MaintenanceScheduler } from "../../src/maintenance/scheduler.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testLifecycle } from "../support/lifecycle.js";
import { silentLogger } from "../support/logger.js";

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase(6);
  dir = await mkdtemp(path.join(tmpdir(), "memchat-expiry-"));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

function manualClock(start: number): Clock & { advance(ms: number): void } {
  let t = start;
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}
const MIN = 60_000;

/** A finished upload, stored the way the service stores one. */
async function stored(store: PgAttachmentStore, files: DiskFileStore, sessionId: string, userId: string): Promise<string> {
  const id = randomUUID();
  const storageKey = `attachments/${id}`;
  await store.begin({ id, sessionId, uploaderId: userId, name: "n.txt", declaredType: "text/plain", storageKey });
  const { size } = await files.put(storageKey, Readable.from([Buffer.from(`file ${id}`)]));
  const r = await store.finish({ id, contentType: "text/plain", sizeBytes: size, sha256: "0".repeat(64) }, userId, undefined);
  expect(r).not.toBe("quota");
  return id;
}

it("removes uploads not sent within the TTL, with their stored files, on the scheduler's clock", async () => {
  const { rows } = await db.pool.query<{ id: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id", [`u_${randomUUID().slice(0, 8)}`]);
  const userId = rows[0]!.id;
  const messages = new PgMessageStore(db.pool);
  const session = await messages.createSession(userId, "expiry", false);
  const files = await new DiskFileStore(path.join(dir, "files")).init();
  const store = new PgAttachmentStore(db.pool);
  const service = new AttachmentService(store, files, { maxUploadBytes: 1 << 20, allowedTypes: ["text/plain"], quotaBytes: undefined, pendingTtlMs: 60 * MIN }, silentLogger);

  const unsent = await stored(store, files, session.id, userId);
  const sent = await stored(store, files, session.id, userId);
  const r = await messages.insertUserMessage({ sessionId: session.id, userId, clientMessageId: "m1", content: "with a file", attachmentIds: [sent] });
  expect(r.kind).toBe("inserted");

  const clock = manualClock(Date.now());
  const scheduler = new MaintenanceScheduler(new PgMaintenanceStore(db.pool), { nodeId: "n1", leaseMs: 5 * MIN, clock }, silentLogger).register(attachmentsJob(service, MIN));
  const objects = async () => (await readdir(path.join(dir, "files", "attachments"))).sort();
  const states = async () => (await db.pool.query("SELECT id, state FROM attachments ORDER BY id")).rows.map((x) => `${x.id}:${x.state}`).sort();

  await scheduler.tick();
  clock.advance(59 * MIN);
  await scheduler.tick();
  expect(await states()).toEqual([`${unsent}:pending`, `${sent}:attached`].sort());
  expect(await objects()).toEqual([sent, unsent].sort());

  clock.advance(2 * MIN);
  await scheduler.tick();
  expect(await states()).toEqual([`${sent}:attached`]);
  expect(await objects()).toEqual([sent]);
  expect((await db.pool.query("SELECT count(*)::int AS n FROM attachment_object_purge")).rows[0].n).toBe(0);
  const { rows: runs } = await db.pool.query("SELECT last_outcome, last_summary FROM maintenance_jobs WHERE name = 'attachments'");
  expect(runs[0]).toEqual({ last_outcome: "ok", last_summary: { expired: 1, purged: 1 } });

  // the server's own reads (extraction) see the sent file, not the expired one
  const read = await service.readStored(sent);
  expect(read?.attachment.state).toBe("attached");
  const chunks: Buffer[] = [];
  for await (const c of read!.stream) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).toString()).toBe(`file ${sent}`);
  expect(await service.readStored(unsent)).toBeNull();

  // the expired id cannot be sent any more
  const late = await messages.insertUserMessage({ sessionId: session.id, userId, clientMessageId: "m2", content: "late", attachmentIds: [unsent] });
  expect(late.kind).toBe("bad_attachments");
  await scheduler.stop();
});

it("retention deletes an archived session's attachments, and the purge deletes their files", async () => {
  const { rows } = await db.pool.query<{ id: string; username: string }>("INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id, username", [`r_${randomUUID().slice(0, 8)}`]);
  const user = rows[0]!;
  const messages = new PgMessageStore(db.pool);
  const session = await messages.createSession(user.id, "old", false);
  const files = await new DiskFileStore(path.join(dir, "retention")).init();
  const store = new PgAttachmentStore(db.pool);
  const service = new AttachmentService(store, files, { maxUploadBytes: 1 << 20, allowedTypes: ["text/plain"], quotaBytes: undefined, pendingTtlMs: 60 * MIN }, silentLogger);
  const sent = await stored(store, files, session.id, user.id);
  const unsent = await stored(store, files, session.id, user.id);
  expect((await messages.insertUserMessage({ sessionId: session.id, userId: user.id, clientMessageId: "r1", content: "file", attachmentIds: [sent] })).kind).toBe("inserted");

  const { lifecycle } = testLifecycle(db.pool, { retentionArchivedDays: 1, batchSize: 10 });
  await lifecycle.setArchived({ id: user.id, username: user.username }, session.id, true);
  await db.pool.query("UPDATE chat_sessions SET archived_at = now() - interval '3 days' WHERE id = $1", [session.id]);
  await lifecycle.purgeExpired(new Date(), new AbortController().signal);

  expect((await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE id = ANY($1)", [[sent, unsent]])).rows[0].n).toBe(0);
  expect(await files.stat(`attachments/${sent}`)).not.toBeNull();
  expect(await service.purge()).toBe(2);
  expect(await files.stat(`attachments/${sent}`)).toBeNull();
  expect(await files.stat(`attachments/${unsent}`)).toBeNull();
});
