/**
 * Files in sessions over REST: upload (with progress where the platform
 * reports it), download, thumbnail, discard. A browser uploads through
 * XMLHttpRequest, the one API that reports upload progress; elsewhere
 * (Node) through fetch.
 */
import { MemchatError } from "./errors.js";
import type { AttachmentPayload } from "./protocol.js";
import { rest } from "./rest.js";

export interface UploadOptions {
  /** Called as bytes go out: sent and total bytes of the request. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** The part of a browser's XMLHttpRequest used here (the library compiles without the DOM types). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  status: number;
  responseText: string;
  abort(): void;
  send(body: FormData): void;
}
const XhrClass = () => (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;

const base = (url: string) => url.replace(/\/+$/, "");

function errorOf(status: number, text: string): MemchatError {
  let body: { error?: { code: string; message: string; retryAfterMs?: number } } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return new MemchatError(body?.error?.code ?? `HTTP_${status}`, body?.error?.message ?? `The server answered ${status}.`, body?.error?.retryAfterMs);
}

/** Uploads `file` into the session; resolves with the pending attachment, whose id goes into send(..., { attachments }). */
export function uploadAttachment(url: string, token: string, sessionId: string, file: Blob, name: string, opts: UploadOptions = {}): Promise<AttachmentPayload> {
  const form = new FormData();
  form.append("file", file, name);
  const target = `${base(url)}/api/sessions/${encodeURIComponent(sessionId)}/attachments`;
  const XHR = XhrClass();
  if (XHR === undefined) {
    return fetch(target, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form, signal: opts.signal }).then(
      async (res) => {
        const text = await res.text();
        if (!res.ok) throw errorOf(res.status, text);
        opts.onProgress?.(file.size, file.size);
        return JSON.parse(text) as AttachmentPayload;
      },
      (err: unknown) => {
        if ((err as Error)?.name === "AbortError") throw new MemchatError("CLOSED", "The upload was cancelled.");
        throw new MemchatError("NETWORK", "Cannot reach the server. Check your connection and try again.");
      },
    );
  }
  return new Promise((resolve, reject) => {
    const xhr = new XHR();
    xhr.open("POST", target);
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => (xhr.status === 201 ? resolve(JSON.parse(xhr.responseText) as AttachmentPayload) : reject(errorOf(xhr.status, xhr.responseText)));
    xhr.onerror = () => reject(new MemchatError("NETWORK", "Cannot reach the server. Check your connection and try again."));
    xhr.onabort = () => reject(new MemchatError("CLOSED", "The upload was cancelled."));
    opts.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

/** The file's bytes (members of its session), or its thumbnail (images). */
export function downloadAttachment(url: string, token: string, id: string, variant: "content" | "thumbnail" = "content"): Promise<Blob> {
  return rest<Blob>(url, `/api/attachments/${encodeURIComponent(id)}/${variant}`, { token, raw: true });
}

export function getAttachment(url: string, token: string, id: string): Promise<AttachmentPayload> {
  return rest<AttachmentPayload>(url, `/api/attachments/${encodeURIComponent(id)}`, { token });
}

/** Discards the caller's own unsent upload. */
export function discardAttachment(url: string, token: string, id: string): Promise<void> {
  return rest<void>(url, `/api/attachments/${encodeURIComponent(id)}`, { method: "DELETE", token });
}
