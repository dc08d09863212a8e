/**
 * The stream an upload passes through on its way to the file store: it
 * holds back the first bytes until it knows what the file is (sniff.ts),
 * refuses types not allowed, keeps text-like files honest to the end,
 * enforces the size and quota limits as bytes arrive, and hashes them. Any
 * refusal fails the stream, which fails the store's put: nothing is kept.
 */
import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { AppError } from "../protocol/errors.js";
import { SNIFF_BYTES, type Sniffed, sniff, TextCheck } from "./sniff.js";

export interface InspectorLimits {
  name: string;
  allowedTypes: ReadonlySet<string>;
  maxBytes: number;
  /** Bytes left under the uploader's quota; undefined: no quota. */
  quotaLeft?: number;
}

export class UploadInspector extends Transform {
  size = 0;
  sniffed: Sniffed | undefined;
  private readonly hash = createHash("sha256");
  private head: Buffer[] = [];
  private headBytes = 0;
  private text: TextCheck | undefined;

  constructor(private readonly limits: InspectorLimits) {
    super();
  }

  get sha256(): string {
    return this.hash.copy().digest("hex");
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    const over = this.overLimit();
    if (over) return cb(over);
    this.hash.update(chunk);
    if (!this.sniffed) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < SNIFF_BYTES) return cb();
      this.judge(false).then(() => cb(), cb);
      return;
    }
    if (this.text && !this.text.push(chunk)) return cb(notText(this.sniffed));
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.size === 0) return cb(new AppError("BAD_REQUEST", "the file is empty"));
    const done = this.sniffed ? Promise.resolve() : this.judge(true);
    done.then(() => {
      if (this.text && !this.text.end()) return cb(notText(this.sniffed!));
      cb();
    }, cb);
  }

  private overLimit(): AppError | undefined {
    if (this.size > this.limits.maxBytes) return new AppError("PAYLOAD_TOO_LARGE", `the file is larger than ${this.limits.maxBytes} bytes (MAX_UPLOAD_BYTES)`);
    if (this.limits.quotaLeft !== undefined && this.size > this.limits.quotaLeft) return quotaError();
    return undefined;
  }

  private async judge(complete: boolean): Promise<void> {
    const head = Buffer.concat(this.head);
    this.head = [];
    const s = await sniff(head, complete, this.limits.name);
    this.sniffed = s;
    if (!this.limits.allowedTypes.has(s.contentType)) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", `files of type ${s.contentType} (judged by their content) are not accepted`);
    }
    if (s.text) {
      this.text = new TextCheck();
      if (!this.text.push(head, complete)) throw notText(s);
    }
    this.push(head);
  }
}

export const quotaError = () => new AppError("STORAGE_QUOTA_EXCEEDED", "this upload would take your stored files over your storage quota (STORAGE_QUOTA_BYTES)");

const notText = (s: Sniffed) => new AppError("UNSUPPORTED_MEDIA_TYPE", `the file began as ${s.contentType} but is not UTF-8 text throughout`);
