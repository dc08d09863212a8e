/**
 * Sessions over time: the owner archives and unarchives; idle sessions are
 * archived, full ones continue in a successor, and archived ones are deleted
 * once retention says so. The periodic parts run from the maintenance
 * scheduler (src/maintenance/); this is the domain side, with the room and
 * member events each change owes.
 */
import type { Logger } from "pino";
import { AppError } from "../protocol/errors.js";
import type { Message, Session, User } from "../protocol/types.js";
import type { VectorPurger } from "../memory/vector-purge.js";
import type { LifecycleStore } from "./ports.js";
import type { MemberEvents, RoomEvents } from "./room-events.js";

const DAY_MS = 24 * 3600 * 1000;

export interface LifecycleOptions {
  /** Archive sessions without a message for this many days; undefined: never. */
  archiveIdleDays: number | undefined;
  /** A session that reaches this many messages is archived and continued; undefined: never. */
  sessionMaxMessages: number | undefined;
  /** Delete archived sessions this many days after archiving; undefined: never. */
  retentionArchivedDays: number | undefined;
  /** Rows per deletion statement. */
  batchSize: number;
  /** Pause between deletion statements, so sends get the database in between. */
  batchPauseMs: number;
}

export interface LifecycleDeps {
  store: LifecycleStore;
  rooms: RoomEvents;
  members: MemberEvents;
  vectors: VectorPurger;
  /** Cancels replies still streaming in a deleted session, wherever they run. */
  cancelReplies?: (ids: readonly number[]) => Promise<void>;
  log: Logger;
  opts: LifecycleOptions;
}

export interface PurgeSummary {
  sessions: number;
  messages: number;
}

export class LifecycleService {
  private readonly rollingOver = new Set<string>();

  constructor(private readonly d: LifecycleDeps) {}

  /** Owner only. The room hears session:archived; an archived session refuses messages (ARCHIVED). */
  async setArchived(user: User, sessionId: string, archived: boolean): Promise<{ session: Session }> {
    const r = await this.d.store.setArchived(sessionId, user.id, archived);
    switch (r.kind) {
      case "not_found":
        throw new AppError("NOT_FOUND", "session not found");
      case "forbidden":
        throw new AppError("FORBIDDEN", `only the session owner can ${archived ? "archive" : "unarchive"} it`);
      case "unchanged":
        return { session: r.session };
      case "changed":
        this.announce(r.session.id, r.session.archived, r.session.archivedAt, r.session.successorId);
        return { session: r.session };
    }
  }

  /** After each stored send: a session that reached its limit continues in a successor. */
  messageStored(message: Message, reply: Message | null): void {
    const max = this.d.opts.sessionMaxMessages;
    if (max === undefined || (reply ?? message).seq < max) return;
    this.rollover(message.sessionId).catch((err) =>
      this.d.log.error({ err: (err as Error).message, sessionId: message.sessionId }, "could not continue a full session; the archival job retries"),
    );
  }

  /** True when this call archived the session and created its successor. */
  async rollover(sessionId: string): Promise<boolean> {
    const max = this.d.opts.sessionMaxMessages;
    if (max === undefined || this.rollingOver.has(sessionId)) return false;
    this.rollingOver.add(sessionId);
    try {
      const r = await this.d.store.rollover(
        sessionId,
        max,
        (successorId) => `This session reached its limit of ${max} messages and is archived. It continues in a new session with the same members (${successorId}).`,
      );
      if (!r) return false;
      this.d.rooms.emit(sessionId, "message:new", { message: r.notice });
      this.announce(sessionId, true, r.archivedAt, r.successor.id);
      for (const m of r.members) {
        this.d.members.toUser(m.userId, "session:continued", { sessionId, successor: { ...r.successor, role: m.role } });
      }
      this.d.log.info({ sessionId, successorId: r.successor.id, members: r.members.length }, "full session archived and continued");
      return true;
    } finally {
      this.rollingOver.delete(sessionId);
    }
  }

  /** The archival job: idle sessions, then full ones whose rollover did not happen at send time. */
  async archiveDue(now: Date, signal?: AbortSignal): Promise<{ idle: number; full: number }> {
    let idle = 0;
    let full = 0;
    const days = this.d.opts.archiveIdleDays;
    if (days !== undefined) {
      const since = new Date(now.getTime() - days * DAY_MS);
      for (;;) {
        const batch = await this.d.store.archiveIdle(since, now, this.d.opts.batchSize);
        for (const s of batch) this.announce(s.sessionId, true, s.archivedAt, null);
        idle += batch.length;
        if (batch.length < this.d.opts.batchSize || signal?.aborted) break;
        await this.pause();
      }
    }
    const max = this.d.opts.sessionMaxMessages;
    if (max !== undefined) {
      for (const id of await this.d.store.fullSessions(max, this.d.opts.batchSize)) {
        if (signal?.aborted) break;
        if (await this.rollover(id)) full++;
      }
    }
    return { idle, full };
  }

  /**
   * The retention job: each expired archived session loses its members
   * first (their sockets are evicted on every node), then its messages in
   * batches, its vectors in every collection, and last its row. A run that
   * stops half way leaves a session without members, which the next run finishes.
   */
  async purgeExpired(now: Date, signal?: AbortSignal): Promise<PurgeSummary> {
    const days = this.d.opts.retentionArchivedDays;
    const summary: PurgeSummary = { sessions: 0, messages: 0 };
    if (days === undefined) return summary;
    const before = new Date(now.getTime() - days * DAY_MS);
    const tried = new Set<string>();
    for (;;) {
      const ids = (await this.d.store.expiredSessions(before, 100)).filter((id) => !tried.has(id));
      if (ids.length === 0) return summary;
      for (const id of ids) {
        if (signal?.aborted) return summary;
        tried.add(id);
        const begun = await this.d.store.beginPurge(id, before, now);
        if (!begun) continue;
        if (begun.memberIds.length > 0) this.d.members.evict(id, begun.memberIds, "deleted");
        if (begun.streamingReplyIds.length > 0) await this.d.cancelReplies?.(begun.streamingReplyIds);
        for (;;) {
          const n = await this.d.store.purgeMessages(id, this.d.opts.batchSize);
          summary.messages += n;
          if (n < this.d.opts.batchSize) break;
          if (signal?.aborted) return summary;
          await this.pause();
        }
        await this.d.vectors.purgeSession(id);
        if (await this.d.store.finishPurge(id)) summary.sessions++;
      }
    }
  }

  private announce(sessionId: string, archived: boolean, archivedAt: string | null, successorId: string | null): void {
    this.d.rooms.emit(sessionId, "session:archived", { sessionId, archived, archivedAt, successorId });
  }

  private pause(): Promise<void> {
    return this.d.opts.batchPauseMs > 0 ? new Promise((r) => setTimeout(r, this.d.opts.batchPauseMs)) : Promise.resolve();
  }
}
