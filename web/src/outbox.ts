/**
 * Messages typed but not yet stored. Each keeps the clientMessageId it was
 * given when typed, so resending after a timeout or a reconnect can never
 * store it twice: the server answers a repeat with the row it already has.
 */
import { RequestError } from "./api.js";
import type { Connection } from "./connection.js";
import { newClientMessageId } from "./format.js";
import type { Message } from "./protocol.js";

export interface OutboxItem {
  clientMessageId: string;
  sessionId: string;
  content: string;
  assistant: boolean;
  /** sending: on the wire; waiting: will go out when possible; failed: the server refused it. */
  state: "sending" | "waiting" | "failed";
  error?: string;
}

/** Worth sending again unchanged: the message may or may not have arrived, or the server was busy. */
const TRANSIENT = new Set(["OFFLINE", "TIMEOUT", "UNAVAILABLE", "RATE_LIMITED", "INTERNAL"]);
const MAX_TRANSIENT_RETRIES = 8;

export class Outbox {
  private readonly items = new Map<string, OutboxItem>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly conn: Connection,
    private readonly hooks: {
      changed(sessionId: string): void;
      stored(message: Message): void;
    },
  ) {}

  forSession(sessionId: string): OutboxItem[] {
    return [...this.items.values()].filter((i) => i.sessionId === sessionId);
  }

  add(sessionId: string, content: string, assistant: boolean): OutboxItem {
    const item: OutboxItem = { clientMessageId: newClientMessageId(), sessionId, content, assistant, state: "waiting" };
    this.items.set(item.clientMessageId, item);
    this.send(item);
    return item;
  }

  /** After a reconnect: everything not refused goes out again. */
  flush(): void {
    for (const item of this.items.values()) if (item.state === "waiting") this.send(item);
  }

  retry(clientMessageId: string): void {
    const item = this.items.get(clientMessageId);
    if (!item) return;
    this.attempts.delete(clientMessageId);
    this.send(item);
  }

  discard(clientMessageId: string): void {
    const item = this.items.get(clientMessageId);
    if (!item) return;
    this.forget(clientMessageId);
    this.hooks.changed(item.sessionId);
  }

  /** The message showed up stored (another tab, or a rejoin backlog) before its ack did. */
  settle(clientMessageId: string): void {
    const item = this.items.get(clientMessageId);
    if (!item) return;
    this.forget(clientMessageId);
    this.hooks.changed(item.sessionId);
  }

  dropSession(sessionId: string): void {
    for (const item of this.forSession(sessionId)) this.forget(item.clientMessageId);
  }

  private forget(id: string): void {
    this.items.delete(id);
    this.attempts.delete(id);
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }

  private send(item: OutboxItem): void {
    clearTimeout(this.timers.get(item.clientMessageId));
    if (!this.conn.connected) {
      this.update(item, "waiting");
      return;
    }
    this.update(item, "sending");
    this.conn
      .call("message:send", {
        sessionId: item.sessionId,
        clientMessageId: item.clientMessageId,
        content: item.content,
        assistant: item.assistant,
      })
      .then(
        ({ message }) => {
          if (!this.items.has(item.clientMessageId)) return;
          this.forget(item.clientMessageId);
          this.hooks.stored(message);
          this.hooks.changed(item.sessionId);
        },
        (err: unknown) => {
          if (!this.items.has(item.clientMessageId)) return;
          const e = err instanceof RequestError ? err : new RequestError("INTERNAL", String(err));
          const n = (this.attempts.get(item.clientMessageId) ?? 0) + 1;
          this.attempts.set(item.clientMessageId, n);
          if (!TRANSIENT.has(e.code) || n > MAX_TRANSIENT_RETRIES) {
            this.update(item, "failed", e.message);
            return;
          }
          this.update(item, "waiting", e.code === "OFFLINE" ? undefined : e.message);
          // Offline items wait for the reconnect (flush); the rest back off.
          if (e.code !== "OFFLINE") {
            const delay = e.retryAfterMs ?? Math.min(500 * 2 ** n, 8_000);
            this.timers.set(item.clientMessageId, setTimeout(() => this.send(item), delay));
          }
        },
      );
  }

  private update(item: OutboxItem, state: OutboxItem["state"], error?: string): void {
    item.state = state;
    item.error = error;
    this.hooks.changed(item.sessionId);
  }
}
