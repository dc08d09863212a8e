/**
 * The socket to /chat, from the client library (@memchat/client): typed calls
 * with ack envelopes, typed events, and a connection that heals itself after a
 * server restart or a network drop. This adapter keeps the hooks the views use.
 */
import { type ConnectionState as LibraryState, Transport, type User, userOfToken } from "@memchat/client";
import type { CallName, Calls, EventName, Events } from "./protocol.js";

/** The states the views show; "closed" is never shown (the view goes away with it). */
export type ConnectionState = Exclude<LibraryState, { kind: "closed" }>;

export interface ConnectionHooks {
  onState(state: ConnectionState): void;
  /** Every (re)connect: join the open session, send what waits. `first` is false after a drop. */
  onConnect(first: boolean): void;
  /** The server refused the token: the user has to sign in again. */
  onAuthRejected(): void;
}

export class Connection {
  private readonly transport: Transport;
  /** Whose token this is (for per-user storage keys). */
  readonly user: User | undefined;

  constructor(
    /** The bearer token, for REST calls (uploads, downloads). */
    readonly token: string,
    hooks: ConnectionHooks,
  ) {
    this.user = userOfToken(token);
    this.transport = new Transport({ url: "", token: () => token });
    this.transport.on("state", (s) => {
      if (s.kind !== "closed") hooks.onState(s);
    });
    this.transport.on("connect", ({ first }) => hooks.onConnect(first));
    this.transport.on("unauthenticated", () => hooks.onAuthRejected());
  }

  get state(): ConnectionState {
    const s = this.transport.state;
    return s.kind === "closed" ? { kind: "offline", reason: "closed" } : s;
  }

  get connected(): boolean {
    return this.transport.connected;
  }

  /**
   * Emits with an ack; resolves with `data`, rejects with a RequestError
   * carrying the code. While (re)connecting it waits for the connection first:
   * a click right after signing in should not fail because the socket is a
   * moment behind. Callers that keep their own queue check `connected` first.
   */
  call<K extends CallName>(event: K, payload: Calls[K]["input"], timeoutMs?: number): Promise<Calls[K]["output"]> {
    return this.transport.call(event, payload, timeoutMs);
  }

  /** Fire-and-forget, for typing: nobody waits on the answer. */
  notify<K extends CallName>(event: K, payload: Calls[K]["input"]): void {
    this.transport.notify(event, payload);
  }

  on<K extends EventName>(event: K, listener: (payload: Events[K]) => void): () => void {
    return this.transport.listen(event, listener);
  }

  close(): void {
    this.transport.close();
  }
}
