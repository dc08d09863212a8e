import type { StreamBuffer, StreamDelta } from "./ports.js";

/**
 * StreamBuffer for one process (embedded profile). Ended streams linger for
 * `graceMs`, then go; a stream nobody ends (a turn that crashed) goes
 * `liveTtlMs` after its last append.
 */
export class LocalStreamBuffer implements StreamBuffer {
  private readonly streams = new Map<number, { deltas: StreamDelta[]; expiry?: NodeJS.Timeout; ended?: boolean }>();

  constructor(private readonly opts: { graceMs: number; liveTtlMs?: number; maxDeltas?: number } = { graceMs: 60_000 }) {}

  async append(messageId: number, delta: StreamDelta): Promise<void> {
    let s = this.streams.get(messageId);
    if (!s) this.streams.set(messageId, (s = { deltas: [] }));
    // A live stream's expiry moves with each append: the same timer, restarted (not a new one per delta).
    if (!s.ended) {
      if (s.expiry) s.expiry.refresh();
      else this.expireIn(messageId, s, this.opts.liveTtlMs ?? 10 * 60_000);
    }
    s.deltas.push(delta);
    const cap = this.opts.maxDeltas ?? 100_000;
    if (s.deltas.length > cap) s.deltas.splice(0, s.deltas.length - cap);
  }

  async read(messageId: number, afterSeq: number): Promise<StreamDelta[]> {
    return (this.streams.get(messageId)?.deltas ?? []).filter((d) => d.seq > afterSeq);
  }

  async end(messageId: number): Promise<void> {
    const s = this.streams.get(messageId);
    if (!s || s.ended) return;
    s.ended = true;
    this.expireIn(messageId, s, this.opts.graceMs);
  }

  private expireIn(messageId: number, s: { expiry?: NodeJS.Timeout }, ms: number): void {
    if (s.expiry) clearTimeout(s.expiry);
    s.expiry = setTimeout(() => this.streams.delete(messageId), ms);
    s.expiry.unref();
  }

  async close(): Promise<void> {
    for (const s of this.streams.values()) if (s.expiry) clearTimeout(s.expiry);
    this.streams.clear();
  }
}
