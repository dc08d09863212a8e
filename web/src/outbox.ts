/**
 * Messages typed but not yet stored, kept by the client library's outbox
 * (@memchat/client): each keeps the clientMessageId it was given when typed,
 * so resending after a timeout, a reconnect or a reload can never store it
 * twice. They are kept in localStorage per user, so a reload does not lose
 * what was typed offline. This adapter keeps the shape the views draw.
 */
import { defaultStorage, MemchatError, type Message, type OutboxItem as LibraryItem, Outbox as LibraryOutbox } from "@memchat/client";
import type { Connection } from "./connection.js";

export interface OutboxItem {
  clientMessageId: string;
  sessionId: string;
  content: string;
  assistant: boolean;
  /** How many files go with it. */
  attachments?: number;
  /** sending: on the wire; waiting: will go out when possible; failed: the server refused it. */
  state: "sending" | "waiting" | "failed";
  error?: string;
}

const view = (i: LibraryItem): OutboxItem => ({
  clientMessageId: i.clientMessageId,
  sessionId: i.sessionId,
  content: i.content,
  assistant: i.assistant,
  ...(i.attachments?.length ? { attachments: i.attachments.length } : {}),
  state: i.state,
  // Offline is what the item's badge says already.
  error: i.error && i.error.code !== "OFFLINE" ? i.error.message : undefined,
});

export class Outbox {
  private readonly box: LibraryOutbox;

  constructor(
    conn: Connection,
    hooks: {
      changed(sessionId: string): void;
      stored(message: Message): void;
    },
  ) {
    this.box = new LibraryOutbox({
      send: (item) =>
        conn
          .call("message:send", {
            sessionId: item.sessionId,
            clientMessageId: item.clientMessageId,
            content: item.content,
            assistant: item.assistant,
            ...(item.attachments?.length ? { attachments: item.attachments } : {}),
          })
          .then((r) => r.message),
      online: () => conn.connected,
      storage: defaultStorage(),
      storageKey: `memchat.outbox.${conn.user?.id ?? "anonymous"}`,
    });
    this.box.on("change", ({ sessionId }) => hooks.changed(sessionId));
    this.box.on("stored", ({ message }) => hooks.stored(message));
  }

  forSession(sessionId: string): OutboxItem[] {
    return this.box.forSession(sessionId).map(view);
  }

  add(sessionId: string, content: string, assistant: boolean, attachments: string[] = []): OutboxItem {
    const { item, stored } = this.box.add({ sessionId, content, assistant, attachments });
    // A failure shows on the item itself (Try again / Discard).
    stored.catch(() => undefined);
    return view(item);
  }

  /** After a reconnect: everything not refused goes out again. */
  flush(): void {
    this.box.flush();
  }

  retry(clientMessageId: string): void {
    this.box.retry(clientMessageId).catch(() => undefined);
  }

  discard(clientMessageId: string): void {
    this.box.discard(clientMessageId);
  }

  /** The message showed up stored (another tab, or a rejoin backlog) before its ack did. */
  settle(message: Message): void {
    this.box.settle(message);
  }

  dropSession(sessionId: string): void {
    this.box.dropSession(sessionId, new MemchatError("NOT_FOUND", "The session is gone."));
  }
}
