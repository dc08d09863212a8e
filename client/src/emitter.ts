/** A small typed event emitter that runs in browsers and Node alike (node:events does not). */
export class Emitter<E> {
  private readonly listeners = new Map<keyof E, Set<(payload: never) => void>>();

  /** Returns the function that removes the listener. */
  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  off<K extends keyof E>(event: K, listener: (payload: E[K]) => void): void {
    this.listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      // One listener's bug must not stop the others, nor the library's own bookkeeping.
      try {
        (l as (payload: E[K]) => void)(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}
