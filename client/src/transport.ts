/**
 * The socket to /chat: typed calls with the ack envelope, typed events, and a
 * connection that heals itself after a server restart or a network drop.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { Emitter } from "./emitter.js";
import { MemchatError } from "./errors.js";
import type { Ack, CallName, Calls, EventName, Events } from "./protocol.js";

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "online" }
  | { kind: "reconnecting"; attempt: number }
  | { kind: "offline"; reason: string }
  | { kind: "closed"; reason: "closed" | "unauthenticated" };

export interface TransportOptions {
  /** Server origin, e.g. http://127.0.0.1:3000; "" means the page's own origin. */
  url: string;
  /** Read at every (re)connect, so a renewed token is used from the next connect on. */
  token: () => string;
  callTimeoutMs?: number;
  /** Passed to socket.io-client's io(), e.g. { transports: ["websocket"] }. */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

export interface TransportEvents {
  state: ConnectionState;
  /** Every connect; `first` is false after a drop. */
  connect: { first: boolean };
  /** The server refused the token: the transport is closed. */
  unauthenticated: MemchatError;
}

const CALL_TIMEOUT_MS = 10_000;

/** The page's window in a browser; nothing in Node. */
const win = globalThis as {
  addEventListener?: (type: "online", listener: () => void) => void;
  removeEventListener?: (type: "online", listener: () => void) => void;
};

export class Transport extends Emitter<TransportEvents> {
  readonly socket: Socket;
  private everConnected = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly callTimeoutMs: number;
  state: ConnectionState = { kind: "connecting" };

  constructor(opts: TransportOptions) {
    super();
    this.callTimeoutMs = opts.callTimeoutMs ?? CALL_TIMEOUT_MS;
    this.socket = io(`${opts.url.replace(/\/+$/, "")}/chat`, {
      auth: (cb) => cb({ token: opts.token() }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 4_000,
      ...opts.socket,
    });
    this.socket.on("connect", () => {
      this.setState({ kind: "online" });
      const first = !this.everConnected;
      this.everConnected = true;
      this.emit("connect", { first });
    });
    this.socket.on("disconnect", (reason) => {
      if (this.closed) return;
      // A graceful server shutdown disconnects every socket on purpose, and
      // socket.io-client does not come back by itself after that: do it here.
      if (reason === "io server disconnect") this.retrySoon(300);
      this.setState({ kind: "reconnecting", attempt: 0 });
    });
    this.socket.io.on("reconnect_attempt", (attempt) => this.setState({ kind: "reconnecting", attempt }));
    this.socket.on("connect_error", (err: Error & { data?: { code?: string } }) => {
      if (err.message === "UNAUTHENTICATED" || err.data?.code === "UNAUTHENTICATED") {
        this.shutDown("unauthenticated");
        this.emit("unauthenticated", new MemchatError("UNAUTHENTICATED", "The server refused the token: sign in again."));
        return;
      }
      // Refused by the server's middleware (not a transport failure): the
      // manager will not retry on its own, so back off and try again.
      if (!this.socket.active) this.retrySoon(3_000);
      const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
      this.setState({ kind: "offline", reason: nav?.onLine === false ? "no network" : "server unreachable" });
    });
    win.addEventListener?.("online", this.onBrowserOnline);
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /**
   * Emits with an ack; resolves with `data`, rejects with a MemchatError
   * carrying the code. While (re)connecting it waits for the connection first.
   */
  async call<K extends CallName>(event: K, payload: Calls[K]["input"], timeoutMs = this.callTimeoutMs): Promise<Calls[K]["output"]> {
    await this.whenConnected(timeoutMs);
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err: Error | null, reply: Ack<Calls[K]["output"]>) => {
        if (err) reject(new MemchatError("TIMEOUT", `The server did not answer ${event} in time.`));
        else if (reply?.ok) resolve(reply.data);
        else if (reply && !reply.ok) reject(new MemchatError(reply.error.code, reply.error.message, reply.error.retryAfterMs));
        else reject(new MemchatError("INTERNAL", `The server sent an unreadable answer to ${event}.`));
      });
    });
  }

  whenConnected(timeoutMs = this.callTimeoutMs): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    if (this.closed) return Promise.reject(new MemchatError("CLOSED", "The client is closed."));
    return new Promise((resolve, reject) => {
      const done = (err?: MemchatError) => {
        clearTimeout(timer);
        this.socket.off("connect", onConnect);
        offClosed();
        if (err) reject(err);
        else resolve();
      };
      const onConnect = () => done();
      const offClosed = this.on("state", (s) => {
        if (s.kind === "closed") done(new MemchatError(s.reason === "unauthenticated" ? "UNAUTHENTICATED" : "CLOSED", "The connection was closed."));
      });
      const timer = setTimeout(() => done(new MemchatError("OFFLINE", "Not connected to the server. Try again when the connection is back.")), timeoutMs);
      this.socket.on("connect", onConnect);
    });
  }

  /** Fire-and-forget (typing): sent only while connected, nobody waits on the answer. */
  notify<K extends CallName>(event: K, payload: Calls[K]["input"]): void {
    if (this.socket.connected) this.socket.emit(event, payload, () => undefined);
  }

  /** Listens to a server event; returns the function that stops listening. */
  listen<K extends EventName>(event: K, listener: (payload: Events[K]) => void): () => void {
    const l = listener as (...args: unknown[]) => void;
    this.socket.on(event as string, l);
    return () => this.socket.off(event as string, l);
  }

  close(): void {
    this.shutDown("closed");
  }

  private shutDown(reason: "closed" | "unauthenticated"): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    win.removeEventListener?.("online", this.onBrowserOnline);
    this.socket.close();
    this.setState({ kind: "closed", reason });
  }

  private retrySoon(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.closed && !this.socket.connected && !this.socket.active) this.socket.connect();
    }, ms);
  }

  /** The network came back: no reason to wait out the backoff. */
  private readonly onBrowserOnline = () => {
    if (this.closed || this.socket.connected) return;
    this.socket.disconnect().connect();
  };

  private setState(s: ConnectionState): void {
    this.state = s;
    this.emit("state", s);
  }
}
