/**
 * The extraction worker thread: reads one file at a time for text-extractor.ts.
 * Its own heap limit and the host's timeout bound what a file can cost; a
 * file that exceeds them kills this thread, not the server.
 */
import { parentPort } from "node:worker_threads";
import { extractText } from "./extract-text.js";
import type { ExtractedText, ExtractKind, ExtractLimits } from "./types.js";

export interface ExtractJob {
  id: number;
  kind: ExtractKind;
  bytes: Uint8Array;
  limits: ExtractLimits;
}

export type ExtractReply = { id: number; ok: true; result: ExtractedText } | { id: number; ok: false; message: string };

parentPort!.on("message", (job: ExtractJob) => {
  extractText(job.kind, job.bytes, job.limits).then(
    (result) => parentPort!.postMessage({ id: job.id, ok: true, result } satisfies ExtractReply),
    (err: unknown) => parentPort!.postMessage({ id: job.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies ExtractReply),
  );
});
