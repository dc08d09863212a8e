/**
 * Attachments: members upload files into a session (streamed through the
 * inspector into the file store), send them with a message, and read them
 * back; unsent uploads expire, and the stored objects of deleted
 * attachments are deleted after the deleting transaction committed (the
 * purge queue of sql/020_attachments.sql).
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import { Readable } from "node:stream";
import busboy from "busboy";
import type { Logger } from "pino";
import type { AttachmentRecord, PgAttachmentStore } from "../db/pg-attachment-store.js";
import { AppError } from "../protocol/errors.js";
import type { AttachmentPayload, User } from "../protocol/types.js";

export type { AttachmentPayload };
import type { FileStore } from "./file-store.js";
import { IMAGE_TYPES } from "./sniff.js";
import { cleanFileName } from "./sniff.js";
import { makeThumbnail } from "./thumbnails.js";
import { quotaError, UploadInspector } from "./upload-inspector.js";

export interface AttachmentOptions {
  maxUploadBytes: number;
  allowedTypes: readonly string[];
  quotaBytes: number | undefined;
  pendingTtlMs: number;
  /** An upload was stored whole and is pending (for work on its content, e.g. text extraction). */
  onStored?: (a: AttachmentRecord) => void;
}

export interface AttachmentMetrics {
  onUpload(outcome: string, bytes: number): void;
  onPurged(n: number): void;
}

/** Multipart framing around one file: boundaries and part headers (a Content-Length may exceed the file by this much). */
const MULTIPART_SLACK = 64 * 1024;
const PURGE_BATCH = 200;

export const toPayload = (a: AttachmentRecord): AttachmentPayload => ({
  id: a.id,
  sessionId: a.sessionId,
  uploaderId: a.uploaderId,
  name: a.name,
  contentType: a.contentType,
  size: a.sizeBytes,
  sha256: a.sha256 ?? "",
  thumbnail: a.thumbnailKey !== null,
  width: a.width,
  height: a.height,
  state: a.state === "attached" ? "attached" : "pending",
  messageId: a.messageId,
  createdAt: a.createdAt,
});

const notFound = () => new AppError("NOT_FOUND", "attachment not found");

export class AttachmentService {
  private readonly allowed: ReadonlySet<string>;

  constructor(
    private readonly store: PgAttachmentStore,
    readonly files: FileStore,
    private readonly opts: AttachmentOptions,
    private readonly log: Logger,
    private readonly metrics?: AttachmentMetrics,
  ) {
    this.allowed = new Set(opts.allowedTypes);
  }

  /**
   * Receives the multipart body of `req` (one part named "file") into
   * session `sessionId` for `user`. The file streams to the store as it
   * arrives; when anything fails (a refusal, a cut connection, the store)
   * neither a row nor an object is left.
   */
  async upload(user: User, sessionId: string, req: http.IncomingMessage): Promise<AttachmentPayload> {
    const access = await this.store.sessionAccess(sessionId, user.id);
    if (access === "not_found") throw new AppError("NOT_FOUND", "session not found");
    if (access === "archived") throw new AppError("ARCHIVED", "this session is archived: it takes no new files");
    if (!/^multipart\/form-data\s*;/i.test(req.headers["content-type"] ?? "")) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", "expected Content-Type: multipart/form-data with one part named \"file\"");
    }
    if (Number(req.headers["content-length"]) > this.opts.maxUploadBytes + MULTIPART_SLACK) {
      throw new AppError("PAYLOAD_TOO_LARGE", `the file is larger than ${this.opts.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`);
    }
    let quotaLeft: number | undefined;
    if (this.opts.quotaBytes !== undefined) {
      quotaLeft = this.opts.quotaBytes - (await this.store.usedBytes(user.id));
      if (quotaLeft <= 0) throw quotaError();
    }
    try {
      const a = await this.receive(user, sessionId, req, quotaLeft);
      this.metrics?.onUpload("stored", a.size);
      return a;
    } catch (err) {
      this.metrics?.onUpload(err instanceof AppError ? err.code.toLowerCase() : "failed", 0);
      throw err;
    }
  }

  private receive(user: User, sessionId: string, req: http.IncomingMessage, quotaLeft: number | undefined): Promise<AttachmentPayload> {
    return new Promise<AttachmentPayload>((resolve, reject) => {
      let bb: busboy.Busboy;
      try {
        // One more byte than allowed reaches the inspector, which refuses it by name.
        bb = busboy({ headers: req.headers, limits: { files: 1, fields: 0, parts: 1, fileSize: this.opts.maxUploadBytes + 1 } });
      } catch (err) {
        return reject(new AppError("BAD_REQUEST", `not a multipart body: ${(err as Error).message}`));
      }
      let started = false;
      const fail = (err: unknown) => {
        req.unpipe(bb);
        // The rest of the body is read and dropped, so the error reply reaches the client.
        req.resume();
        reject(err);
      };
      bb.on("file", (field, file, info) => {
        if (field !== "file" || started) {
          file.resume();
          return;
        }
        started = true;
        // A connection cut mid-file ends the request without completing it: the file stream must fail, not end.
        req.once("close", () => {
          if (!req.complete) file.destroy(new AppError("BAD_REQUEST", "the upload was cut off"));
        });
        file.once("limit", () => file.destroy(new AppError("PAYLOAD_TOO_LARGE", `the file is larger than ${this.opts.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)));
        this.store_(user, sessionId, file, cleanFileName(info.filename), info.mimeType, quotaLeft).then(resolve, fail);
      });
      bb.on("error", (err) => {
        if (!started) fail(new AppError("BAD_REQUEST", `malformed multipart body: ${(err as Error).message}`));
      });
      bb.on("close", () => {
        if (!started) fail(new AppError("BAD_REQUEST", "no part named \"file\" in the body"));
      });
      req.pipe(bb);
    });
  }

  private async store_(user: User, sessionId: string, file: Readable, name: string, declaredType: string, quotaLeft: number | undefined): Promise<AttachmentPayload> {
    const id = randomUUID();
    const storageKey = `attachments/${id}`;
    await this.store.begin({ id, sessionId, uploaderId: user.id, name, declaredType: declaredType.slice(0, 200) || null, storageKey });
    const inspector = new UploadInspector({ name, allowedTypes: this.allowed, maxBytes: this.opts.maxUploadBytes, quotaLeft });
    // Refusals surface through the store's put, which may not be listening yet when the first bytes are judged.
    inspector.on("error", () => undefined);
    file.on("error", (err) => inspector.destroy(err));
    try {
      const sniffed = () => inspector.sniffed!.contentType;
      await this.files.put(storageKey, file.pipe(inspector), { contentType: "application/octet-stream" });
      let dims: { width?: number; height?: number } = {};
      if (IMAGE_TYPES.has(sniffed())) dims = await this.thumbnail(id, storageKey);
      const r = await this.store.finish({ id, contentType: sniffed(), sizeBytes: inspector.size, sha256: inspector.sha256, ...dims }, user.id, this.opts.quotaBytes);
      if (r === "quota") throw quotaError();
      if (r === "gone") throw new AppError("NOT_FOUND", "session not found");
      this.opts.onStored?.(r);
      return toPayload(r);
    } catch (err) {
      file.resume();
      await this.discard(id);
      throw err;
    }
  }

  /** Stores the thumbnail of an image upload; an image sharp cannot read simply has none. */
  private async thumbnail(id: string, storageKey: string): Promise<{ width?: number; height?: number }> {
    const key = `${storageKey}.thumb`;
    await this.store.setThumbnailKey(id, key);
    try {
      const src = await this.files.get(storageKey);
      if (!src) throw new Error("stored image vanished");
      const t = await makeThumbnail(src);
      await this.files.put(key, Readable.from([t.thumb.data]), { contentType: "image/webp" });
      return { width: t.width, height: t.height };
    } catch (err) {
      this.log.info({ attachmentId: id, err: (err as Error).message }, "no thumbnail for an image upload");
      await this.store.setThumbnailKey(id, null);
      await this.files.delete(key).catch(() => undefined);
      return {};
    }
  }

  /** Deletes a row and its objects now (an upload that failed), leaving nothing queued. */
  private async discard(id: string): Promise<void> {
    try {
      const keys = await this.store.remove(id);
      await Promise.all(keys.map((k) => this.files.delete(k)));
      await this.store.purged(keys);
    } catch (err) {
      // The purge queue still holds the keys: the attachments job deletes them later.
      this.log.warn({ attachmentId: id, err: (err as Error).message }, "could not clean up a failed upload at once");
    }
  }

  /** Metadata of an attachment the user may read (a member of its session; an unsent one only its uploader). */
  async get(user: User, id: string): Promise<AttachmentPayload> {
    const a = await this.store.getForMember(id, user.id);
    if (!a) throw notFound();
    return toPayload(a);
  }

  /** The bytes of an attachment (or its thumbnail) for a user who may read it. */
  async open(user: User, id: string, variant: "content" | "thumbnail"): Promise<{ attachment: AttachmentPayload; contentType: string; stream: Readable; size: number | undefined }> {
    const a = await this.store.getForMember(id, user.id);
    if (!a) throw notFound();
    const key = variant === "content" ? a.storageKey : a.thumbnailKey;
    if (!key) throw new AppError("NOT_FOUND", "this attachment has no thumbnail");
    const stream = await this.files.get(key);
    if (!stream) throw new AppError("NOT_FOUND", "the attachment's file is missing from the store");
    return { attachment: toPayload(a), contentType: variant === "content" ? a.contentType : "image/webp", stream, size: variant === "content" ? a.sizeBytes : undefined };
  }

  /**
   * The stored bytes of an attachment, for the server's own work on them
   * (extraction, indexing): no user check, so never call it with an id a
   * client chose without checking access first. Null when the row or the
   * object is gone.
   */
  async readStored(id: string): Promise<{ attachment: AttachmentRecord; stream: Readable } | null> {
    const a = await this.store.byId(id);
    if (!a || a.state === "uploading") return null;
    const stream = await this.files.get(a.storageKey);
    return stream ? { attachment: a, stream } : null;
  }

  /** The user's own unsent upload is removed (its objects right after). */
  async remove(user: User, id: string): Promise<void> {
    if (!(await this.store.discardPending(id, user.id))) throw notFound();
    await this.purge();
  }

  /** Uploads not sent within the pending TTL go; then the purge queue is worked off. */
  async sweep(now: Date, signal?: AbortSignal): Promise<{ expired: number; purged: number }> {
    const cutoff = new Date(now.getTime() - this.opts.pendingTtlMs);
    let expired = 0;
    for (;;) {
      if (signal?.aborted) break;
      const n = await this.store.expireUnsent(cutoff, PURGE_BATCH);
      expired += n;
      if (n < PURGE_BATCH) break;
    }
    return { expired, purged: await this.purge(signal) };
  }

  /** Deletes the stored objects of deleted attachments; keys that fail stay queued for the next run. */
  async purge(signal?: AbortSignal): Promise<number> {
    let purged = 0;
    for (;;) {
      if (signal?.aborted) break;
      const keys = await this.store.purgeBatch(PURGE_BATCH);
      if (keys.length === 0) break;
      const results = await Promise.allSettled(keys.map((k) => this.files.delete(k)));
      const done = keys.filter((_, i) => results[i]!.status === "fulfilled");
      const failed = keys.filter((_, i) => results[i]!.status === "rejected");
      await this.store.purged(done);
      await this.store.purgeFailed(failed);
      purged += done.length;
      if (failed.length > 0) {
        this.log.warn({ failed: failed.length }, "some stored attachment objects could not be deleted; retried on the next run");
        break;
      }
      if (keys.length < PURGE_BATCH) break;
    }
    if (purged > 0) this.metrics?.onPurged(purged);
    return purged;
  }

  /** For /metrics. */
  totals() {
    return this.store.totals();
  }
}
