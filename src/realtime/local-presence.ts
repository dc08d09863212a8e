import type { Presence } from "../chat/ports.js";
import type { PresenceEntry } from "../protocol/types.js";

/** Presence for one process (embedded profile): session -> user -> connection ids. */
export class LocalPresence implements Presence {
  private readonly sessions = new Map<string, Map<string, Set<string>>>();

  async join(sessionId: string, userId: string, connectionId: string): Promise<{ first: boolean }> {
    let users = this.sessions.get(sessionId);
    if (!users) this.sessions.set(sessionId, (users = new Map()));
    let conns = users.get(userId);
    const first = !conns || conns.size === 0;
    if (!conns) users.set(userId, (conns = new Set()));
    conns.add(connectionId);
    return { first };
  }

  async leave(sessionId: string, userId: string, connectionId: string): Promise<{ last: boolean }> {
    const users = this.sessions.get(sessionId);
    const conns = users?.get(userId);
    if (!users || !conns || !conns.delete(connectionId)) return { last: false };
    if (conns.size > 0) return { last: false };
    users.delete(userId);
    if (users.size === 0) this.sessions.delete(sessionId);
    return { last: true };
  }

  async list(sessionId: string): Promise<PresenceEntry[]> {
    return [...(this.sessions.get(sessionId)?.keys() ?? [])].map((userId) => ({ userId }));
  }
}
