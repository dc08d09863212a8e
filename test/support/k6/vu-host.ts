/**
 * The main-thread side of one VU: starts its worker, does its network I/O
 * (WebSocket dials and frames, HTTP requests) and wakes it when something
 * arrives. It runs none of the script's code, so nothing here can reorder a
 * VU's callbacks.
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import WebSocket from "ws";
import type { ExecInfo, HttpRequest, HttpResponse, MetricDecl, Sample, ToHost, ToVuBody, VuWorkerData } from "./protocol.js";

export interface CallResult {
  ok: boolean;
  /** JSON of the function's return value. */
  result?: string;
  error?: string;
  interrupted?: boolean;
  /** Where the VU blocked forever (k6 would never return from it). */
  hung?: string;
}

export interface VuSink {
  samples(vuId: number, s: Sample[]): void;
  log(vuId: number, level: string, text: string): void;
}

export interface Ready {
  options: unknown;
  exports: string[];
  metrics: MetricDecl[];
}

// Go's http.CanonicalHeaderKey: what k6 scripts index response headers by.
function canonical(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

async function fetchOne(r: HttpRequest): Promise<HttpResponse> {
  const started = Date.now();
  try {
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body, redirect: "follow", signal: AbortSignal.timeout(r.timeoutMs) });
    const body = await res.text();
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[canonical(k)] = v));
    return { url: res.url, status: res.status, body, headers, error: "", errorCode: 0, durationMs: Date.now() - started };
  } catch (e) {
    return { url: r.url, status: 0, body: "", headers: {}, error: String(e), errorCode: 1000, durationMs: Date.now() - started };
  }
}

export class VuHost {
  readonly id: number;
  readonly ready: Promise<Ready>;
  /** The socket the VU is inside ws.connect for, if any, and since when. */
  inConnect: { sid: number; url: string; since: number } | null = null;
  busy = false;
  hung: string | null = null;

  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  readonly #sockets = new Map<number, WebSocket>();
  readonly #sink: VuSink;
  #call: ((r: CallResult) => void) | null = null;
  #terminated = false;

  constructor(id: number, script: string, env: Record<string, string>, sink: VuSink) {
    this.id = id;
    this.#sink = sink;
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    this.#signal = new Int32Array(signal);
    this.#port = port2;
    const workerData: VuWorkerData & { port: MessagePort } = { script, env, signal, vuId: id, port: port1 };
    this.#worker = new Worker(new URL("./worker-entry.mjs", import.meta.url), { workerData, transferList: [port1], stdout: false, stderr: false });
    let readyResolve!: (r: Ready) => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<Ready>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.ready.catch(() => undefined);
    this.#worker.on("error", (e) => {
      readyReject(e);
      this.#finish({ ok: false, error: `the VU's worker failed: ${e.stack ?? e.message}` });
    });
    this.#worker.on("exit", () => {
      readyReject(new Error(`VU ${id} exited during init`));
      this.#finish({ ok: false, error: `VU ${id}'s worker exited` });
    });
    this.#port.on("message", (m: ToHost) => {
      if (m.op === "ready") readyResolve({ options: m.options, exports: m.exports, metrics: m.metrics });
      else if (m.op === "init-error") readyReject(new Error(`init of VU ${id} failed: ${m.error}`));
      else this.#handle(m);
    });
  }

  #send(body: ToVuBody): void {
    this.#port.postMessage({ ...body, at: Date.now() });
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }

  #finish(r: CallResult): void {
    const done = this.#call;
    this.#call = null;
    this.busy = false;
    done?.(r);
  }

  /** Runs one exported function in the VU; resolves when it returns, throws, or hangs. */
  call(fn: string, data: string | undefined, exec: ExecInfo): Promise<CallResult> {
    if (this.busy) throw new Error(`VU ${this.id} is already running something`);
    if (this.hung) return Promise.resolve({ ok: false, hung: this.hung });
    this.busy = true;
    return new Promise((resolve) => {
      this.#call = resolve;
      this.#send({ ev: "run", fn, data, exec });
    });
  }

  /** k6 cancelling the VU's context: an open socket is closed and the iteration ends. */
  interrupt(): void {
    this.#send({ ev: "interrupt" });
  }

  #handle(m: ToHost): void {
    switch (m.op) {
      case "samples":
        this.#sink.samples(this.id, m.samples);
        break;
      case "log":
        this.#sink.log(this.id, m.level, m.text);
        break;
      case "ws.open":
        this.inConnect = { sid: m.sid, url: m.url, since: Date.now() };
        this.#open(m.sid, m.url, m.headers);
        break;
      case "ws.send":
        this.#sockets.get(m.sid)?.send(m.data);
        break;
      case "ws.ping":
        this.#sockets.get(m.sid)?.ping();
        break;
      case "ws.close": {
        const ws = this.#sockets.get(m.sid);
        this.#sockets.delete(m.sid);
        if (ws && ws.readyState === WebSocket.OPEN) {
          ws.close(m.code >= 1000 && m.code < 5000 && m.code !== 1005 && m.code !== 1006 ? m.code : 1001);
          // k6 closes the TCP connection right after writing the close frame, without waiting for the reply.
          setImmediate(() => ws.terminate());
        } else ws?.terminate();
        break;
      }
      case "ws.returned":
        if (this.inConnect?.sid === m.sid) this.inConnect = null;
        break;
      case "http":
        void Promise.all(m.requests.map(fetchOne)).then((responses) => this.#send({ ev: "http", rid: m.rid, responses }));
        break;
      case "hung":
        this.hung = `${m.reason}\n${m.stack}`;
        this.#finish({ ok: false, hung: this.hung });
        break;
      case "done":
        this.#finish(m.ok ? { ok: true, result: m.result } : { ok: false, error: m.error, interrupted: m.interrupted });
        break;
      case "ready":
      case "init-error":
        break;
    }
  }

  #open(sid: number, url: string, headers: Record<string, string>): void {
    let opened = false;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: 60_000 });
    this.#sockets.set(sid, ws);
    const fail = (error: string, status = 0) => {
      if (opened) return;
      opened = true;
      this.#sockets.delete(sid);
      this.#send({ ev: "ws.open", sid, status, headers: {}, error });
    };
    let upgradeHeaders: Record<string, string> = {};
    ws.on("upgrade", (res) => {
      for (const [k, v] of Object.entries(res.headers)) upgradeHeaders[canonical(k)] = Array.isArray(v) ? v.join(", ") : String(v);
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      fail("websocket: bad handshake", res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("error", (e) => fail(`dial: ${e.message}`));
    ws.on("open", () => {
      opened = true;
      this.#send({ ev: "ws.open", sid, status: 101, headers: upgradeHeaders, error: "" });
      upgradeHeaders = {};
    });
    ws.on("message", (data, isBinary) => {
      if (!this.#sockets.has(sid)) return;
      this.#send({ ev: "ws.message", sid, data: Buffer.isBuffer(data) ? data.toString("utf8") : String(data), binary: isBinary });
    });
    ws.on("ping", () => this.#sockets.has(sid) && this.#send({ ev: "ws.ping", sid }));
    ws.on("pong", () => this.#sockets.has(sid) && this.#send({ ev: "ws.pong", sid }));
    ws.on("close", (code, reason) => {
      if (!opened) return fail(`dial: closed before the upgrade (${code})`);
      if (!this.#sockets.delete(sid)) return;
      // 1006 is ws's name for "no close frame": the connection just ended.
      this.#send({ ev: "ws.close", sid, code, reason: reason.toString("utf8"), frame: code !== 1006 });
    });
  }

  /** Ends the VU: closes its sockets and its worker, whatever it is doing. */
  async terminate(): Promise<void> {
    if (this.#terminated) return;
    this.#terminated = true;
    for (const ws of this.#sockets.values()) ws.terminate();
    this.#sockets.clear();
    if (!this.busy && !this.hung) this.#send({ ev: "stop" });
    await this.#worker.terminate();
    this.#port.close();
  }
}
