/**
 * One assistant reply as it streams: its pieces in seq order, each exactly
 * once, whatever the network did. Deltas that arrive twice (live and in a
 * rejoin's snapshot) are dropped; a delta ahead of a missing one waits for
 * the gap to fill (or for a snapshot, which the session asks for).
 */
import { MemchatError } from "./errors.js";
import type { Events, Message } from "./protocol.js";

export interface ReplyDelta {
  /**
   * The last server seq this piece covers; strictly increasing. A piece
   * recovered after a reconnect may cover several server deltas.
   */
  seq: number;
  text: string;
}

export type ReplyEnd = Pick<Events["assistant:end"], "usage" | "context">;

export class ReplyStream implements AsyncIterable<ReplyDelta> {
  /** The text so far (all of it once the reply ended). */
  text = "";
  /** Last seq applied. */
  seq = 0;
  status: Message["status"] = "streaming";
  /** The stored reply once it ended. */
  message: Message | undefined;
  /** Usage and context, when the end was seen live (not when it was learnt from a rejoin). */
  end: ReplyEnd | undefined;
  error: MemchatError | undefined;

  private readonly pieces: ReplyDelta[] = [];
  private readonly ahead = new Map<number, string>();
  private wakers: (() => void)[] = [];
  private readonly finished: Promise<Message>;
  private resolveFinished!: (m: Message) => void;
  private rejectFinished!: (e: MemchatError) => void;

  constructor(
    readonly messageId: number,
    public replyToId: number | null,
    /** Called when a delta arrived ahead of a missing one: the owner fetches a snapshot. */
    private readonly onGap: () => void = () => undefined,
  ) {
    this.finished = new Promise<Message>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    // Nobody has to wait on the result: an error reply must not be an unhandled rejection.
    this.finished.catch(() => undefined);
  }

  get ended(): boolean {
    return this.status !== "streaming";
  }

  /** True while deltas wait for a missing one. */
  get hasGap(): boolean {
    return this.ahead.size > 0;
  }

  /** Resolves with the stored reply when it ends; rejects with the assistant's error. */
  result(): Promise<Message> {
    return this.finished;
  }

  /** A live assistant:delta. */
  delta(seq: number, text: string): void {
    if (this.ended || seq <= this.seq) return;
    this.ahead.set(seq, text);
    this.drain();
    if (this.ahead.size > 0) this.onGap();
  }

  /** The text up to `seq` (session:join's activeStreams): fills any gap and drops repeats. */
  snapshot(seq: number, text: string): void {
    if (this.ended || seq <= this.seq) return;
    // The snapshot holds every delta from the first; ours is a prefix of it.
    if (text.startsWith(this.text)) this.push(seq, text.slice(this.text.length));
    for (const s of [...this.ahead.keys()]) if (s <= seq) this.ahead.delete(s);
    this.seq = seq;
    this.drain();
  }

  /** The reply's stored row: final unless still streaming (a checkpoint, usually behind the deltas). */
  finish(message: Message, end?: ReplyEnd): void {
    if (this.ended) return;
    if (message.status === "streaming") return;
    this.ahead.clear();
    // Deltas missed at the very end (the reply finished while disconnected) are the rest of the row.
    if (message.content.length > this.text.length && message.content.startsWith(this.text)) {
      this.push(this.seq + 1, message.content.slice(this.text.length));
    }
    this.message = message;
    this.end = end;
    this.status = message.status;
    this.replyToId = message.replyToId ?? this.replyToId;
    this.resolveFinished(message);
    this.wake();
  }

  /** assistant:error: the iterator throws this after the pieces received. */
  fail(error: MemchatError): void {
    if (this.ended) return;
    this.ahead.clear();
    this.status = "error";
    this.error = error;
    this.rejectFinished(error);
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ReplyDelta> {
    let i = 0;
    for (;;) {
      while (i < this.pieces.length) yield this.pieces[i++]!;
      if (this.ended) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => this.wakers.push(resolve));
    }
  }

  private drain(): void {
    for (let next = this.ahead.get(this.seq + 1); next !== undefined; next = this.ahead.get(this.seq + 1)) {
      this.ahead.delete(this.seq + 1);
      this.push(this.seq + 1, next);
    }
  }

  private push(seq: number, text: string): void {
    this.seq = seq;
    if (!text) return;
    this.text += text;
    this.pieces.push({ seq, text });
    this.wake();
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }
}
