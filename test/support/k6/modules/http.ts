/** k6/http: blocking requests; the host makes them, the VU waits for all of a batch. */
import type { HttpRequest, HttpResponse, ToVu } from "../protocol.js";
import { request as ask, sample, vu } from "../vu-channel.js";

let nextRid = 1;

interface Params {
  headers?: Record<string, unknown>;
  tags?: Record<string, unknown>;
  timeout?: string | number;
}

function timeoutMs(t: unknown): number {
  if (typeof t === "number") return t;
  if (typeof t === "string") {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(t);
    if (m) return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2] as "ms" | "s" | "m"];
  }
  return 60_000;
}

function toRequest(method: string, url: unknown, body: unknown, params: Params | undefined): HttpRequest {
  const headers: Record<string, string> = {};
  if (params?.headers) for (const [k, v] of Object.entries(params.headers)) headers[k] = String(v);
  let text: string | null = null;
  if (body !== null && body !== undefined) {
    if (typeof body !== "string") throw new Error("this stand-in sends string bodies only; stringify the body");
    text = body;
  }
  return { method: method.toUpperCase(), url: String(url), body: text, headers, timeoutMs: timeoutMs(params?.timeout) };
}

class Response {
  readonly url: string;
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly error: string;
  readonly error_code: number;
  readonly timings: { duration: number };

  constructor(r: HttpResponse) {
    this.url = r.url;
    this.status = r.status;
    this.body = r.body;
    this.headers = r.headers;
    this.error = r.error;
    this.error_code = r.errorCode;
    this.timings = { duration: r.durationMs };
  }

  json(selector?: string): unknown {
    if (selector !== undefined) throw new Error("json(selector) is not modelled by the stand-in");
    return JSON.parse(this.body);
  }
}

function send(reqs: { req: HttpRequest; tags: Record<string, unknown> | undefined }[]): Response[] {
  if (vu.phase === "init") throw new Error("making http requests in the init context is not supported");
  const rid = nextRid++;
  const reply = ask({ op: "http", rid, requests: reqs.map((r) => r.req) }, (m: ToVu): m is Extract<ToVu, { ev: "http" }> => m.ev === "http" && m.rid === rid);
  return reply.responses.map((r, i) => {
    const tags: Record<string, string> = { method: reqs[i]!.req.method, status: String(r.status) };
    const extra = reqs[i]!.tags;
    if (extra) for (const [k, v] of Object.entries(extra)) tags[k] = String(v);
    sample({ metric: "http_reqs", value: 1, tags });
    sample({ metric: "http_req_duration", value: r.durationMs, tags });
    // k6's default expected statuses are 200-399.
    sample({ metric: "http_req_failed", value: r.status >= 200 && r.status < 400 ? 0 : 1, tags });
    return new Response(r);
  });
}

type BatchItem = string | unknown[] | { method?: string; url: string; body?: unknown; params?: Params };

export function batch(items: BatchItem[]): Response[] {
  const reqs = items.map((it) => {
    if (typeof it === "string") return { req: toRequest("GET", it, null, undefined), tags: undefined };
    if (Array.isArray(it)) {
      const p = it[3] as Params | undefined;
      return { req: toRequest(String(it[0]), it[1], it[2], p), tags: p?.tags };
    }
    return { req: toRequest(it.method ?? "GET", it.url, it.body, it.params), tags: it.params?.tags };
  });
  return send(reqs);
}

export function request(method: string, url: string, body?: unknown, params?: Params): Response {
  return send([{ req: toRequest(method, url, body, params), tags: params?.tags }])[0]!;
}

export const get = (url: string, params?: Params) => request("GET", url, null, params);
export const post = (url: string, body?: unknown, params?: Params) => request("POST", url, body, params);
export const put = (url: string, body?: unknown, params?: Params) => request("PUT", url, body, params);
export const patch = (url: string, body?: unknown, params?: Params) => request("PATCH", url, body, params);
export const del = (url: string, body?: unknown, params?: Params) => request("DELETE", url, body, params);

export default { batch, request, get, post, put, patch, del };
