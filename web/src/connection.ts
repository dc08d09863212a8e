/**
 * The socket to /chat: typed calls with ack envelopes, typed events, and a
 * connection state that heals itself after a server restart or a network drop.
 */
import { io, type Socket } from "socket.io-client";
import { RequestError } from "./api.js";
import type { Ack, CallName, Calls, EventName, Events } from "./protocol.js";

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "online" }
  | { kind: "reconnecting"; attempt: number }
  | { kind: "offline"; reason: string };

export interface ConnectionHooks {
  onState(state: ConnectionState): void;
  /** Every (re)connect: join the open session, send what waits. `first` is false after a drop. */
  onConnect(first: boolean): void;
  /** The server refused the token: the user has to sign in again. */
  onAuthRejected(): void;
}

const CALL_TIMEOUT_MS = 10_000;

export class Connection {
  private readonly socket: Socket;
  private everConnected = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  state: ConnectionState = { kind: "connecting" };

  constructor(
    token: string,
    private readonly hooks: ConnectionHooks,
  ) {
    this.socket = io("/chat", {
      auth: { token },
      reconnectionDelay: 500,
      reconnectionDelayMax: 4_000,
    });
    this.socket.on("connect", () => {
      this.setState({ kind: "online" });
      const first = !this.everConnected;
      this.everConnected = true;
      this.hooks.onConnect(first);
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
        this.close();
        this.hooks.onAuthRejected();
        return;
      }
      // Refused by the server's middleware (not a transport failure): the
      // manager will not retry on its own, so back off and try again.
      if (!this.socket.active) this.retrySoon(3_000);
      this.setState({ kind: "offline", reason: navigator.onLine ? "server unreachable" : "no network" });
    });
    window.addEventListener("online", this.onBrowserOnline);
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /**
   * Emits with an ack; resolves with `data`, rejects with a RequestError
   * carrying the code. While (re)connecting it waits for the connection first:
   * a click right after signing in should not fail because the socket is a
   * moment behind. Callers that keep their own queue check `connected` first.
   */
  async call<K extends CallName>(event: K, payload: Calls[K]["input"], timeoutMs = CALL_TIMEOUT_MS): Promise<Calls[K]["output"]> {
    await this.whenConnected(timeoutMs);
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err: Error | null, reply: Ack<Calls[K]["output"]>) => {
        if (err) reject(new RequestError("TIMEOUT", "The server did not answer in time."));
        else if (reply?.ok) resolve(reply.data);
        else if (reply && !reply.ok) reject(new RequestError(reply.error.code, reply.error.message, reply.error.retryAfterMs));
        else reject(new RequestError("INTERNAL", "The server sent an unreadable answer."));
      });
    });
  }

  private whenConnected(timeoutMs: number): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    if (this.closed) return Promise.reject(new RequestError("OFFLINE", "Not connected to the server."));
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.socket.off("connect", onConnect);
        reject(new RequestError("OFFLINE", "Not connected to the server. Try again when the connection is back."));
      }, timeoutMs);
      this.socket.once("connect", onConnect);
    });
  }

  /** Fire-and-forget, for typing: nobody waits on the answer. */
  notify<K extends CallName>(event: K, payload: Calls[K]["input"]): void {
    if (this.socket.connected) this.socket.emit(event, payload, () => undefined);
  }

  on<K extends EventName>(event: K, listener: (payload: Events[K]) => void): () => void {
    const l = listener as (...args: unknown[]) => void;
    this.socket.on(event as string, l);
    return () => this.socket.off(event as string, l);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.onBrowserOnline);
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners();
    this.socket.close();
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
    this.hooks.onState(s);
  }
}
