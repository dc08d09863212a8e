/**
 * Messages written but not yet stored. Each keeps the clientMessageId it was
 * given when written, so sending again after a timeout, a reconnect or a
 * reload can never store it twice: the server answers a repeat with the row
 * it already has. Pending items are kept in a KeyValueStorage.
 */
import { Emitter } from "./emitter.js";
import { asMemchatError, MemchatError, TRANSIENT_CODES } from "./errors.js";
import type { Message } from "./protocol.js";
import type { KeyValueStorage } from "./storage.js";

export interface OutboxItem {
  clientMessageId: string;
  sessionId: string;
  content: string;
  assistant: boolean;
  /** Ids of uploads sent with it (uploadAttachment). */
  attachments?: string[];
  /** sending: on the wire; waiting: goes out when possible; failed: refused, or out of attempts. */
  state: "sending" | "waiting" | "failed";
  /** Why it is waiting or failed. */
  error?: MemchatError;
  /** Attempts that failed since it was written (or last retried by hand). */
  attempts: number;
}

export interface OutboxOptions {
  /** Sends one item: resolves with the stored message, rejects with a MemchatError. */
  send(item: Readonly<OutboxItem>): Promise<Message>;
  /** False while disconnected: items wait for flush() instead of failing. */
  online(): boolean;
  storage: KeyValueStorage;
  storageKey: string;
  /** Transient failures tolerated before an item is marked failed. */
  maxAttempts?: number;
  /** Wait before attempt n (from 1) after a transient failure without retryAfterMs. */
  backoffMs?: (attempt: number) => number;
  newId?: () => string;
}

export interface OutboxEvents {
  /** An item was added, changed state, or left. */
  change: { sessionId: string };
  /** The server acked an item with its stored row (not emitted for settle()). */
  stored: { clientMessageId: string; message: Message };
  failed: OutboxItem;
}

const MAX_ATTEMPTS = 8;
const backoff = (n: number) => Math.min(500 * 2 ** n, 8_000);

/**
 * A v4 UUID. crypto.randomUUID exists only in secure contexts; a server
 * reached over plain http on a LAN address is not one.
 */
export function newClientMessageId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

interface Waiter {
  resolve(m: Message): void;
  reject(e: MemchatError): void;
}

export class Outbox extends Emitter<OutboxEvents> {
  private readonly items = new Map<string, OutboxItem>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly maxAttempts: number;
  private readonly backoffMs: (n: number) => number;
  private stopped = false;

  constructor(private readonly opts: OutboxOptions) {
    super();
    this.maxAttempts = opts.maxAttempts ?? MAX_ATTEMPTS;
    this.backoffMs = opts.backoffMs ?? backoff;
    for (const item of this.load()) this.items.set(item.clientMessageId, item);
  }

  /** Every item, oldest first. */
  list(): OutboxItem[] {
    return [...this.items.values()];
  }

  forSession(sessionId: string): OutboxItem[] {
    return this.list().filter((i) => i.sessionId === sessionId);
  }

  /**
   * Queues a message and sends it as soon as possible. The promise resolves
   * with the stored message, or rejects once the item is marked failed (it
   * stays listed then, for retry() or discard()).
   */
  add(input: { sessionId: string; content: string; assistant?: boolean; clientMessageId?: string; attachments?: string[] }): { item: OutboxItem; stored: Promise<Message> } {
    const id = input.clientMessageId ?? (this.opts.newId ?? newClientMessageId)();
    const existing = this.items.get(id);
    const item: OutboxItem = existing ?? {
      clientMessageId: id,
      sessionId: input.sessionId,
      content: input.content,
      assistant: input.assistant ?? true,
      ...(input.attachments?.length ? { attachments: [...input.attachments] } : {}),
      state: "waiting",
      attempts: 0,
    };
    if (!existing) {
      this.items.set(id, item);
      this.save();
    }
    const stored = this.wait(id);
    if (!existing) this.send(item);
    return { item, stored };
  }

  /** Resolves when the item is stored; rejects when it fails. Unknown ids reject with NOT_FOUND. */
  wait(clientMessageId: string): Promise<Message> {
    if (!this.items.has(clientMessageId)) return Promise.reject(new MemchatError("NOT_FOUND", "No such message in the outbox."));
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(clientMessageId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(clientMessageId, list);
    });
  }

  /** After a (re)connect: everything waiting goes out again, with its own id. */
  flush(): void {
    for (const item of this.items.values()) if (item.state === "waiting" && !this.timers.has(item.clientMessageId)) this.send(item);
  }

  /** Sends a failed (or waiting) item again, with a fresh count of attempts. */
  retry(clientMessageId: string): Promise<Message> {
    const item = this.items.get(clientMessageId);
    if (!item) return Promise.reject(new MemchatError("NOT_FOUND", "No such message in the outbox."));
    const stored = this.wait(clientMessageId);
    item.attempts = 0;
    this.send(item);
    return stored;
  }

  /** Gives up on an item; whoever waits on it gets CLOSED. */
  discard(clientMessageId: string): void {
    const item = this.items.get(clientMessageId);
    if (!item) return;
    this.forget(clientMessageId);
    this.settleWaiters(clientMessageId, undefined, new MemchatError("CLOSED", "The message was discarded before it was stored."));
    this.emit("change", { sessionId: item.sessionId });
  }

  /** The message showed up stored (another tab, or a rejoin backlog) before its ack did. */
  settle(message: Message): void {
    const id = message.clientMessageId;
    const item = id ? this.items.get(id) : undefined;
    if (!id || !item || item.sessionId !== message.sessionId) return;
    this.complete(item, message);
  }

  private complete(item: OutboxItem, message: Message, acked = false): void {
    this.forget(item.clientMessageId);
    this.settleWaiters(item.clientMessageId, message);
    // Only an ack is news: whoever passed a message to settle() has it already.
    if (acked) this.emit("stored", { clientMessageId: item.clientMessageId, message });
    this.emit("change", { sessionId: item.sessionId });
  }

  /** The session is gone: its items can never be stored. */
  dropSession(sessionId: string, reason: MemchatError): void {
    for (const item of this.forSession(sessionId)) {
      this.forget(item.clientMessageId);
      this.settleWaiters(item.clientMessageId, undefined, reason);
    }
    this.emit("change", { sessionId });
  }

  /** Stops the timers; pending items stay in storage for the next client. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const id of this.waiters.keys()) this.settleWaiters(id, undefined, new MemchatError("CLOSED", "The client was closed before the message was stored."));
  }

  private send(item: OutboxItem): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(item.clientMessageId));
    this.timers.delete(item.clientMessageId);
    if (!this.opts.online()) {
      this.update(item, "waiting");
      return;
    }
    this.update(item, "sending");
    this.opts.send(item).then(
      (message) => {
        if (this.items.get(item.clientMessageId) === item) this.complete(item, message, true);
      },
      (err: unknown) => {
        if (this.items.get(item.clientMessageId) !== item || this.stopped) return;
        const e = asMemchatError(err);
        item.attempts++;
        if (!TRANSIENT_CODES.has(e.code) || item.attempts >= this.maxAttempts) {
          this.update(item, "failed", e);
          this.emit("failed", item);
          this.settleWaiters(item.clientMessageId, undefined, e);
          return;
        }
        this.update(item, "waiting", e);
        // Offline items wait for the reconnect (flush); the rest back off, as long as the server asks for busy ones.
        if (e.code !== "OFFLINE" || this.opts.online()) {
          const delay = e.retryAfterMs ?? this.backoffMs(item.attempts);
          this.timers.set(
            item.clientMessageId,
            setTimeout(() => {
              this.timers.delete(item.clientMessageId);
              this.send(item);
            }, delay),
          );
        }
      },
    );
  }

  private settleWaiters(id: string, message: Message | undefined, error?: MemchatError): void {
    const list = this.waiters.get(id);
    this.waiters.delete(id);
    for (const w of list ?? []) {
      if (message) w.resolve(message);
      else w.reject(error!);
    }
  }

  private forget(id: string): void {
    this.items.delete(id);
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.save();
  }

  private update(item: OutboxItem, state: OutboxItem["state"], error?: MemchatError): void {
    item.state = state;
    item.error = error;
    this.emit("change", { sessionId: item.sessionId });
  }

  private load(): OutboxItem[] {
    try {
      const raw = this.opts.storage.getItem(this.opts.storageKey);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      if (!Array.isArray(parsed)) return [];
      return parsed
        .filter(
          (x): x is Pick<OutboxItem, "clientMessageId" | "sessionId" | "content" | "assistant"> =>
            typeof x?.clientMessageId === "string" && typeof x.sessionId === "string" && typeof x.content === "string" && typeof x.assistant === "boolean",
        )
        .map((x) => ({ clientMessageId: x.clientMessageId, sessionId: x.sessionId, content: x.content, assistant: x.assistant, state: "waiting", attempts: 0 }));
    } catch {
      return [];
    }
  }

  private save(): void {
    const rows = this.list().map(({ clientMessageId, sessionId, content, assistant }) => ({ clientMessageId, sessionId, content, assistant }));
    try {
      if (rows.length === 0) this.opts.storage.removeItem(this.opts.storageKey);
      else this.opts.storage.setItem(this.opts.storageKey, JSON.stringify(rows));
    } catch {
      // Storage full or refused: the items still live in memory for this run.
    }
  }
}
