/**
 * Cancel requests over Redis pub/sub: the node that receives assistant:cancel
 * publishes the message id, and whichever node runs that turn hears it.
 * Delivery is at most once and only to nodes connected at the time; a cancel
 * published during an outage fails (the caller answers UNAVAILABLE) rather
 * than being delivered late.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { CancelBus } from "../chat/ports.js";
import { duplicateForSubscriber, waitUntilReady } from "./client.js";

export interface RedisCancelBusOptions {
  /** Command client, used to PUBLISH (not owned: the caller quits it). */
  client: Redis;
  /**
   * Connection for SUBSCRIBE. By default one is duplicated from `client` and
   * owned (closed by close()); a given one is left open.
   */
  subscriber?: Redis;
  /** Pub/sub channel (default "memchat:assistant-cancel"); keyPrefix does not apply to channels. */
  channel?: string;
  logger: Logger;
  /** How long subscribe() waits for the subscriber connection to be ready (default 5000 ms). */
  readyTimeoutMs?: number;
}

export class RedisCancelBus implements CancelBus {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly ownsSubscriber: boolean;
  private readonly channel: string;
  private readonly logger: Logger;
  private readonly readyTimeoutMs: number;
  private readonly handlers = new Set<(messageId: number) => void>();
  private subscribed: Promise<void> | undefined;
  private closed = false;
  private readonly onMessage = (channel: string, message: string) => this.deliver(channel, message);

  constructor(opts: RedisCancelBusOptions) {
    this.client = opts.client;
    this.logger = opts.logger;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
    this.channel = opts.channel ?? "memchat:assistant-cancel";
    this.ownsSubscriber = !opts.subscriber;
    this.subscriber = opts.subscriber ?? duplicateForSubscriber(opts.client, opts.logger, "cancel-bus-sub");
    this.subscriber.on("message", this.onMessage);
  }

  async publish(messageId: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(messageId)) throw new RangeError(`message id must be an integer, got ${messageId}`);
    await this.client.publish(this.channel, String(messageId));
  }

  /**
   * Resolves once Redis has confirmed the subscription, so every cancel
   * published afterwards reaches the handler. After a reconnect ioredis
   * subscribes again by itself (autoResubscribe).
   */
  async subscribe(handler: (messageId: number) => void): Promise<() => void> {
    this.assertOpen();
    this.handlers.add(handler);
    try {
      this.subscribed ??= this.subscribeChannel().catch((err: unknown) => {
        this.subscribed = undefined;
        throw err;
      });
      await this.subscribed;
    } catch (err) {
      this.handlers.delete(handler);
      throw err;
    }
    // The channel stays subscribed with no handlers: it is one channel per
    // node, and unsubscribing would race the next subscribe().
    return () => {
      this.handlers.delete(handler);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.subscriber.off("message", this.onMessage);
    if (this.ownsSubscriber) {
      // quit() waits for Redis; during an outage it could not, so disconnect.
      if (this.subscriber.status === "ready") await this.subscriber.quit().catch(() => this.subscriber.disconnect());
      else this.subscriber.disconnect();
    } else if (this.subscribed) {
      await this.subscriber.unsubscribe(this.channel).catch(() => undefined);
    }
  }

  private async subscribeChannel(): Promise<void> {
    // Never before "ready": see duplicateForSubscriber.
    await waitUntilReady(this.subscriber, this.readyTimeoutMs);
    await this.subscriber.subscribe(this.channel);
  }

  private deliver(channel: string, message: string): void {
    if (channel !== this.channel) return;
    const messageId = Number(message);
    if (!Number.isSafeInteger(messageId)) {
      this.logger.warn({ channel, message }, "ignoring malformed cancel message");
      return;
    }
    for (const handler of [...this.handlers]) {
      try {
        handler(messageId);
      } catch (err) {
        // One failing handler must not keep the cancel from the others.
        this.logger.error({ err, messageId }, "cancel handler threw");
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("cancel bus is closed");
  }
}
