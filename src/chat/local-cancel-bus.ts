import type { CancelBus } from "./ports.js";

/** CancelBus for one process: the turn always runs where the cancel arrives. */
export class LocalCancelBus implements CancelBus {
  private readonly handlers = new Set<(messageId: number) => void>();

  async publish(messageId: number): Promise<void> {
    for (const h of this.handlers) h(messageId);
  }

  async subscribe(handler: (messageId: number) => void): Promise<() => void> {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
