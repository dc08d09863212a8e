/**
 * Deltas of the assistant replies in progress, in Redis Streams, so a client
 * that reconnects to any node can catch up. One stream per message, entries
 * {seq, text}; the key lives only while the reply is streaming and briefly
 * after it ends, since the finished text is in PostgreSQL by then.
 */
import type { Redis } from "ioredis";
import type { StreamBuffer, StreamDelta } from "../chat/ports.js";

export interface RedisStreamBufferOptions {
  /** Command client (not owned: the caller quits it). */
  client: Redis;
  /** Namespace after the client's keyPrefix (default "stream:"). */
  prefix?: string;
  /**
   * Lifetime of a stream, pushed forward by every append (default 10 min): a
   * node that dies mid-reply does not leave it behind for long.
   */
  liveTtlMs?: number;
  /** Lifetime after end(), for clients reconnecting just then (default 30 s). */
  endGraceMs?: number;
  /**
   * Entries kept per stream (default 10 000), trimmed approximately (`MAXLEN ~`,
   * which Redis does cheaply by whole nodes). A longer reply loses its oldest
   * deltas here; a reader then gets the tail only, and the chat layer must
   * fall back to the stored message for the start.
   */
  maxLen?: number;
}

export class RedisStreamBuffer implements StreamBuffer {
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly liveTtlMs: number;
  private readonly endGraceMs: number;
  private readonly maxLen: number;
  private closed = false;

  constructor(opts: RedisStreamBufferOptions) {
    this.client = opts.client;
    this.prefix = opts.prefix ?? "stream:";
    this.liveTtlMs = opts.liveTtlMs ?? 10 * 60_000;
    this.endGraceMs = opts.endGraceMs ?? 30_000;
    this.maxLen = opts.maxLen ?? 10_000;
    for (const [name, v] of Object.entries({ liveTtlMs: this.liveTtlMs, endGraceMs: this.endGraceMs, maxLen: this.maxLen })) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
  }

  async append(messageId: number, delta: StreamDelta): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(delta.seq) || delta.seq < 1) throw new RangeError(`delta seq must be an integer >= 1, got ${delta.seq}`);
    const key = this.key(messageId);
    // One transaction, so a stream never exists without its expiry.
    const results = await this.client
      .multi()
      .xadd(key, "MAXLEN", "~", this.maxLen, "*", "seq", String(delta.seq), "text", delta.text)
      .pexpire(key, this.liveTtlMs)
      .exec();
    throwFirstError(results);
  }

  async read(messageId: number, afterSeq: number): Promise<StreamDelta[]> {
    this.assertOpen();
    const entries = await this.client.xrange(this.key(messageId), "-", "+");
    const bySeq = new Map<number, string>();
    for (const [, fields] of entries) {
      let seq: number | undefined;
      let text: string | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === "seq") seq = Number(fields[i + 1]);
        else if (fields[i] === "text") text = fields[i + 1];
      }
      // The first entry of a seq wins: an append retried after an unknown
      // outcome may have been stored twice.
      if (seq !== undefined && text !== undefined && seq > afterSeq && !bySeq.has(seq)) bySeq.set(seq, text);
    }
    return [...bySeq].sort((a, b) => a[0] - b[0]).map(([seq, text]) => ({ seq, text }));
  }

  async end(messageId: number): Promise<void> {
    this.assertOpen();
    await this.client.pexpire(this.key(messageId), this.endGraceMs);
  }

  /** Nothing of its own to release: the client belongs to the caller. */
  async close(): Promise<void> {
    this.closed = true;
  }

  private key(messageId: number): string {
    if (!Number.isSafeInteger(messageId)) throw new RangeError(`message id must be an integer, got ${messageId}`);
    return `${this.prefix}${messageId}`;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("stream buffer is closed");
  }
}

function throwFirstError(results: [Error | null, unknown][] | null): void {
  // exec() answers null when the transaction was aborted (a WATCH failed, or
  // the connection dropped between queueing and EXEC).
  if (results === null) throw new Error("Redis transaction aborted");
  for (const [err] of results) if (err) throw err;
}
