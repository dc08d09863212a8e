/**
 * Waits for attachments to be read before a reply gathers its context: a
 * question sent with a file it asks about must find the file's passages.
 * The wait is bounded (ATTACHMENT_READ_WAIT_MS), ends when the turn is
 * cancelled, and does not hammer the database: it checks again when this
 * node's passage runner settles an extraction (`settled`), and otherwise
 * with a backoff (the file may be read on another node). Files that are
 * not read for text (images) are never waited for: their extraction may be
 * queued behind a long document, and would find nothing anyway.
 */
import { extractionKind } from "./extract/types.js";

export interface UnreadCounter {
  /** How many of these attachments are still waiting to be read. */
  unread(attachmentIds: readonly string[]): Promise<number>;
}

export interface ReadWaitOutcome {
  /** False when time ran out (or the turn was cancelled) with files still unread. */
  ready: boolean;
  /** How many checks it took (1: nothing was waiting). */
  checks: number;
}

const FIRST_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 500;

export class AttachmentReadiness {
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly store: UnreadCounter,
    private readonly maxWaitMs: number,
  ) {}

  /** This node settled an extraction: every waiter checks again now. */
  settled(): void {
    for (const wake of [...this.waiters]) wake();
  }

  async wait(attachments: readonly { id: string; contentType: string }[], signal?: AbortSignal): Promise<ReadWaitOutcome> {
    const ids = [...new Set(attachments.filter((a) => extractionKind(a.contentType) !== null).map((a) => a.id))];
    if (ids.length === 0) return { ready: true, checks: 0 };
    const deadline = performance.now() + this.maxWaitMs;
    let backoff = FIRST_BACKOFF_MS;
    for (let checks = 1; ; checks++) {
      if ((await this.store.unread(ids)) === 0) return { ready: true, checks };
      const left = deadline - performance.now();
      if (left <= 0 || signal?.aborted) return { ready: false, checks };
      await this.pause(Math.min(backoff, left), signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
