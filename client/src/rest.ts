/** One REST call against the server, with its error envelope turned into a MemchatError. */
import { MemchatError } from "./errors.js";

export interface RestInit {
  method?: string;
  token?: string;
  body?: unknown;
  /** Resolve with the body as a Blob (a download) instead of parsing JSON. */
  raw?: boolean;
}

/** `url` is the server's origin ("" for the page's own); 204 resolves undefined; a failure rejects with the server's code. */
export async function rest<T>(url: string, path: string, init: RestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/+$/, "")}${path}`, {
      method: init.method ?? "GET",
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    throw new MemchatError("NETWORK", "Cannot reach the server. Check your connection and try again.");
  }
  if (res.status === 204) return undefined as T;
  if (init.raw && res.ok) return (await res.blob()) as T;
  const json = (await res.json().catch(() => undefined)) as
    | { error?: { code: string; message: string; retryAfterMs?: number; issues?: { field: string; message: string }[] } }
    | undefined;
  if (!res.ok) {
    const e = json?.error;
    throw new MemchatError(e?.code ?? `HTTP_${res.status}`, e?.message ?? `The server answered ${res.status}.`, e?.retryAfterMs, e?.issues);
  }
  return json as T;
}
