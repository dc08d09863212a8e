import type { StreamBuffer, StreamDelta } from "./ports.js";

/** StreamBuffer for one process (embedded profile). Ended streams linger for `graceMs`, then go. */
export class LocalStreamBuffer implements StreamBuffer {
  private readonly streams = new Map<number, { deltas: StreamDelta[]; expiry?: NodeJS.Timeout }>();

  constructor(private readonly opts: { graceMs: number; maxDeltas?: number } = { graceMs: 60_000 }) {}

  async append(messageId: number, delta: StreamDelta): Promise<void> {
    let s = this.streams.get(messageId);
    if (!s) this.streams.set(messageId, (s = { deltas: [] }));
    s.deltas.push(delta);
    const cap = this.opts.maxDeltas ?? 100_000;
    if (s.deltas.length > cap) s.deltas.splice(0, s.deltas.length - cap);
  }

  async read(messageId: number, afterSeq: number): Promise<StreamDelta[]> {
    return (this.streams.get(messageId)?.deltas ?? []).filter((d) => d.seq > afterSeq);
  }

  async end(messageId: number): Promise<void> {
    const s = this.streams.get(messageId);
    if (!s || s.expiry) return;
    s.expiry = setTimeout(() => this.streams.delete(messageId), this.opts.graceMs);
    s.expiry.unref();
  }

  async close(): Promise<void> {
    for (const s of this.streams.values()) if (s.expiry) clearTimeout(s.expiry);
    this.streams.clear();
  }
}
