/** Where the outbox keeps messages not yet stored, so they survive a reload or a restart. */

/** The synchronous subset of the Web Storage API: `localStorage` fits as is. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function memoryStorage(): KeyValueStorage {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

/** localStorage where there is one (a browser), otherwise memory. */
export function defaultStorage(): KeyValueStorage {
  try {
    const ls = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
    if (ls) {
      // Safari's private mode and some embedded views expose a localStorage that throws on write.
      ls.setItem("memchat.probe", "1");
      ls.removeItem("memchat.probe");
      return ls;
    }
  } catch {
    // fall through
  }
  return memoryStorage();
}
