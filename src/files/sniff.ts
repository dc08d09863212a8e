/**
 * What an uploaded file is, judged by its bytes: magic numbers (file-type)
 * for binary formats, and for everything else a UTF-8 check, so a file
 * whose name or declared type lies is taken for what it contains. Text-like
 * files are valid UTF-8 without NUL throughout; the head is checked here
 * and the rest while it streams (TextCheck).
 */
import { fileTypeFromBuffer } from "file-type";

/** Bytes read before judging: enough for file-type's signatures. */
export const SNIFF_BYTES = 4100;

export const TEXT_TYPES = new Set(["text/plain", "text/markdown", "text/csv", "application/json", "text/html"]);
export const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif"]);

const BY_EXTENSION: Record<string, string> = {
  md: "text/markdown",
  markdown: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  html: "text/html",
  htm: "text/html",
};

export interface Sniffed {
  contentType: string;
  /** Text-like: the rest of the stream must stay valid UTF-8 without NUL. */
  text: boolean;
}

/**
 * The type of a file from its first bytes (`head`, the whole file when
 * shorter than SNIFF_BYTES, `complete` then true). The name only picks among
 * text types once the bytes are known to be text, and never makes bytes
 * anything else.
 */
export async function sniff(head: Uint8Array, complete: boolean, name: string): Promise<Sniffed> {
  const detected = await fileTypeFromBuffer(head).catch(() => undefined);
  if (detected) return { contentType: detected.mime, text: false };
  const check = new TextCheck();
  if (!check.push(head, complete)) return { contentType: "application/octet-stream", text: false };
  const start = new TextDecoder().decode(head.subarray(0, 512)).trimStart().toLowerCase();
  if (start.startsWith("<!doctype html") || start.startsWith("<html")) return { contentType: "text/html", text: true };
  const ext = /\.([A-Za-z0-9]{1,10})$/.exec(name)?.[1]?.toLowerCase();
  return { contentType: (ext && BY_EXTENSION[ext]) || "text/plain", text: true };
}

/** Checks a stream is UTF-8 without NUL, chunk by chunk (a character may straddle two chunks). */
export class TextCheck {
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private failed = false;

  /** False once the bytes so far are not text. `last`: no more bytes follow (a cut character then fails). */
  push(chunk: Uint8Array, last = false): boolean {
    if (this.failed) return false;
    if (chunk.includes(0)) {
      this.failed = true;
      return false;
    }
    try {
      this.decoder.decode(chunk, { stream: !last });
      return true;
    } catch {
      this.failed = true;
      return false;
    }
  }

  end(): boolean {
    return this.push(new Uint8Array(0), true);
  }
}

/** What to call a file: its base name without controls or path separators, at most 200 characters. */
export function cleanFileName(raw: string | undefined): string {
  const base = (raw ?? "").split(/[\\/]/).pop() ?? "";
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, "").replace(/\p{Cs}/gu, "").trim().slice(0, 200);
  return clean === "" || clean === "." || clean === ".." ? "file" : clean;
}
