/**
 * FileStore on any S3-compatible object store (AWS S3, MinIO) through the
 * AWS SDK. A put streams through lib-storage's Upload: one PutObject for a
 * small file, a multipart upload in PART_BYTES parts for a large one, which
 * is aborted (its parts deleted) when the stream fails, so a cut-off upload
 * leaves no object. Checksums are sent only where S3 requires them, which
 * every S3-compatible store accepts.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable, Transform } from "node:stream";
import { assertKey, type FileStore, type StoredObject } from "./file-store.js";

export interface S3Settings {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  prefix: string;
}

/** S3's smallest part; a file up to this size is one PutObject. */
const PART_BYTES = 5 * 1024 * 1024;

const missing = (err: unknown) =>
  err instanceof S3ServiceException && (err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata.httpStatusCode === 404);

export class S3FileStore implements FileStore {
  readonly name = "s3";
  private readonly client: S3Client;

  constructor(private readonly s: S3Settings) {
    this.client = new S3Client({
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.forcePathStyle,
      credentials: s.accessKeyId && s.secretAccessKey ? { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } : undefined,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 3,
    });
  }

  private keyOf(key: string): string {
    assertKey(key);
    return this.s.prefix + key;
  }

  async put(key: string, body: Readable, opts: { contentType?: string } = {}): Promise<StoredObject> {
    // A failure before the upload reads the stream is reported by the upload (its read fails), not as an unhandled event.
    body.on("error", () => undefined);
    const Key = this.keyOf(key);
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(null, chunk);
      },
    });
    counted.on("error", () => undefined);
    body.once("error", (err) => counted.destroy(err));
    body.pipe(counted);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.s.bucket, Key, Body: counted, ContentType: opts.contentType ?? "application/octet-stream" },
      partSize: PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      counted.destroy();
      throw err;
    }
    return { size };
  }

  async get(key: string): Promise<Readable | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
      return r.Body as Readable;
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
  }

  async stat(key: string): Promise<StoredObject | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
      return { size: r.ContentLength ?? 0 };
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  async check(): Promise<string> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.s.bucket }));
    return `s3 (bucket ${this.s.bucket})`;
  }

  destroy(): void {
    this.client.destroy();
  }
}
