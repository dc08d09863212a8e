import type { CancelBus } from "./ports.js";

/** CancelBus for one process: the turn always runs where the cancel arrives. */
export class LocalCancelBus implements CancelBus {
  private readonly handlers = new Set<(messageId: number) => void>();

  async publish(messageId: number): Promise<void> {
    // One failing handler must not keep the cancel from the others (as on the Redis bus).
    for (const h of this.handlers) {
      try {
        h(messageId);
      } catch {
        // the handler's own problem; the remaining handlers still run
      }
    }
  }

  async subscribe(handler: (messageId: number) => void): Promise<() => void> {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
