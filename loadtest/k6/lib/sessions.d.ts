// Types of sessions.js for the TypeScript tests that import it; k6 never reads this file.
import type { SioClient } from "./socketio.js";

export declare class SeqTracker {
  constructor(baseline: number);
  contiguous: number;
  max: number;
  readonly ahead: Set<number>;
  add(seq: number): boolean;
  has(seq: number): boolean;
}

export declare function checkBacklog(
  afterSeq: number,
  lastSeq: number,
  messages: { seq: number }[],
): { complete: boolean; missing: number[]; stale: number; expected: number };

export declare function fetchAfter(
  sio: Pick<SioClient, "emit">,
  sessionId: string,
  afterSeq: number,
  done: (error: string | null, result: { session: any; messages: any[]; pages: number } | null) => void,
  maxPages?: number,
): void;
