/** Helpers for attachment tests: multipart uploads as a browser sends them, and sample files. */
import { request } from "node:http";
import sharp from "sharp";

export async function upload(
  baseUrl: string,
  token: string | undefined,
  sessionId: string,
  file: { name: string; type: string; data: Uint8Array },
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append("file", new Blob([file.data], { type: file.type }), file.name);
  const res = await fetch(`${baseUrl}/api/sessions/${sessionId}/attachments`, {
    method: "POST",
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: form,
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

export const png = (width = 640, height = 480) =>
  sharp({ create: { width, height, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toBuffer();

/**
 * Starts a multipart upload announcing `total` bytes of file and sends the
 * first `sent` of them; `cut()` then drops the connection mid-file.
 */
export function partialUpload(baseUrl: string, token: string, sessionId: string, total: number, sent: number): { written: Promise<void>; cut(): Promise<void> } {
  const boundary = "----memchatcut";
  const preamble = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`);
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(`/api/sessions/${sessionId}/attachments`, baseUrl);
  const req = request(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": `multipart/form-data; boundary=${boundary}`,
      "content-length": String(preamble.length + total + epilogue.length),
    },
  });
  const closed = new Promise<void>((resolve) => {
    req.on("error", () => resolve());
    req.on("close", () => resolve());
  });
  const written = new Promise<void>((resolve) => {
    req.write(preamble);
    let left = sent;
    const chunk = Buffer.alloc(64 * 1024, "a");
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(chunk.subarray(0, n))) return void req.once("drain", pump);
      }
      resolve();
    };
    pump();
  });
  return {
    written,
    cut: () => {
      req.destroy();
      return closed;
    },
  };
}
