/**
 * The account domain: log out everywhere, delete the account with
 * everything it owns, export what it wrote. Every method takes the acting
 * user (from their token) and acts on that user only.
 *
 * Deletion keeps the user's messages in other people's sessions, with the
 * author cleared (chat_messages.user_id becomes NULL): the other members have
 * read them already, and deleting them would leave holes in their
 * conversation and in the assistant replies that answer them. Everything
 * else the user owns goes: their sessions (with every message, member,
 * feedback and vector in them), their memberships, their feedback.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { AuthService } from "../auth/auth-service.js";
import {
  deleteMessagesOf,
  deleteSessions,
  deleteUser,
  disownMessages,
  ownedSessionBatch,
  pendingDeletions,
  requestDeletion,
  streamingRepliesIn,
} from "../db/account-deletion.js";
import type { MemberEvents } from "../chat/room-events.js";
import type { VectorPurge } from "../memory/vector-purge.js";
import { AppError } from "../protocol/errors.js";
import type { User } from "../protocol/types.js";
import { exportDocument } from "./account-export.js";

/** Live connections of a user, on every node. */
export interface UserSockets {
  disconnectAll(userId: string): void;
  /** Disconnects the connections made with a token version other than `tokenVersion`. */
  disconnectOlderThan(userId: string, tokenVersion: number): void;
}

export interface AccountBatches {
  /** Owned sessions deleted per round (their vectors, then their rows). */
  sessions: number;
  /** Rows per DELETE or UPDATE of messages: bounds how long one statement holds row locks. */
  messages: number;
}

export interface AccountDeps {
  pool: pg.Pool;
  auth: AuthService;
  vectors: VectorPurge;
  sockets: UserSockets;
  /** Other members of the user's deleted sessions leave their rooms and are told (session:removed). */
  members?: Pick<MemberEvents, "evict">;
  /** Replies streaming in the user's sessions are cancelled before their rows go. */
  cancelReplies?: (messageIds: readonly number[]) => Promise<void>;
  log: Logger;
  /** AUTH_CACHE_MS: how long another node may still accept a revoked token. */
  authCacheMs: number;
  batches?: AccountBatches;
  /**
   * How long DELETE /api/me waits for the deletion to finish before it
   * answers "pending" and lets it finish in the background. Below common
   * proxy timeouts (nginx: 60 s); a large account takes longer (README).
   */
  waitMs?: number;
}

const DEFAULT_BATCHES: AccountBatches = { sessions: 20, messages: 5_000 };
const DEFAULT_WAIT_MS = 10_000;
const SWEEP_MS = 10 * 60_000;

export class AccountService {
  private readonly batches: AccountBatches;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Deletions this node is running, so a sweep does not start a second one of the same account. */
  private readonly running = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly d: AccountDeps) {
    this.batches = d.batches ?? DEFAULT_BATCHES;
  }

  /** Revokes every token of the user and disconnects their connections on every node. */
  async logoutAll(user: User): Promise<void> {
    const version = await this.d.auth.revokeAll(user.id);
    this.d.sockets.disconnectOlderThan(user.id, version);
    // Another node may admit an old token until its cache expires: look again after that.
    this.later(async () => {
      const state = await this.d.auth.currentState(user.id);
      if (!state || state.disabled) this.d.sockets.disconnectAll(user.id);
      else this.d.sockets.disconnectOlderThan(user.id, state.tokenVersion);
    });
  }

  /**
   * Locks the account at once (no login, no token, connections closed), then
   * deletes what it owns in small batches: "deleted" when that finished
   * within waitMs, "pending" when it goes on in the background. If it is
   * interrupted (the vector store is down, the node stops), the account stays
   * locked and marked, and the sweep of any node (start(): at start-up and
   * every 10 minutes) finishes it.
   */
  async deleteAccount(user: User): Promise<"deleted" | "pending"> {
    if (!(await requestDeletion(this.d.pool, user.id))) throw new AppError("UNAUTHENTICATED", "no such account");
    this.d.auth.forget(user.id);
    this.d.sockets.disconnectAll(user.id);
    this.later(async () => this.d.sockets.disconnectAll(user.id));
    let outcome: "deleted" | "failed" | undefined;
    // Never rejects: a failure is logged, and the next sweep resumes the deletion.
    const work = this.deleteOwned(user.id).then(
      () => void (outcome = "deleted"),
      (err: Error) => {
        outcome = "failed";
        this.d.log.warn({ err: err.message, userId: user.id }, "account deletion interrupted; the next sweep resumes it");
      },
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.d.waitMs ?? DEFAULT_WAIT_MS)))]);
    clearTimeout(timer);
    if (outcome === "failed") throw new AppError("UNAVAILABLE", "the account is locked and its deletion will finish later; a backing service is unavailable");
    return outcome ?? "pending";
  }

  /** Finishes interrupted deletions now and then every `everyMs` (the query is one partial-index read). */
  start(everyMs = SWEEP_MS): void {
    const sweep = () =>
      this.resumePendingDeletions().catch((err: Error) => this.d.log.warn({ err: err.message }, "resuming account deletions failed"));
    void sweep();
    this.sweeper = setInterval(sweep, everyMs);
    this.sweeper.unref();
  }

  /** Finishes deletions that were interrupted (a node stopped, the vector store was down). */
  async resumePendingDeletions(): Promise<number> {
    let done = 0;
    for (const userId of await pendingDeletions(this.d.pool, 100)) {
      try {
        await this.deleteOwned(userId);
        done++;
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message, userId }, "could not finish an account deletion; it is retried at the next sweep");
      }
    }
    return done;
  }

  /** The user's profile, sessions and messages as one JSON document, produced page by page. */
  exportData(user: User): Promise<AsyncIterable<string>> {
    return exportDocument(this.d.pool, user.id);
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private deleteOwned(userId: string): Promise<void> {
    let run = this.running.get(userId);
    if (!run) {
      run = this.finishDeletion(userId).finally(() => this.running.delete(userId));
      this.running.set(userId, run);
    }
    return run;
  }

  private async finishDeletion(userId: string): Promise<void> {
    const { pool, vectors } = this.d;
    const started = performance.now();
    let sessions = 0;
    for (;;) {
      const batch = await ownedSessionBatch(pool, userId, this.batches.sessions);
      if (batch.length === 0) break;
      // Vectors first: if the store is down, the rows stay and the deletion can be resumed.
      await vectors.deleteSessions(batch);
      await this.d.cancelReplies?.(await streamingRepliesIn(pool, batch));
      while ((await deleteMessagesOf(pool, batch, this.batches.messages)) > 0);
      const deleted = await deleteSessions(pool, userId, batch);
      for (const d of deleted) this.d.members?.evict(d.sessionId, d.memberIds, "deleted");
      sessions += deleted.length;
      // A message indexed between the first purge and the row delete left a point behind.
      await vectors.deleteSessions(batch).catch((err: Error) => this.d.log.warn({ err: err.message }, "second vector purge failed; the points are unreachable"));
    }
    let disowned = 0;
    for (let n; (n = await disownMessages(pool, userId, this.batches.messages)) > 0; ) disowned += n;
    await deleteUser(pool, userId);
    this.d.auth.forget(userId);
    this.d.log.info({ userId, sessions, disowned, ms: Math.round(performance.now() - started) }, "account deleted");
  }

  private later(fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn().catch((err: Error) => this.d.log.warn({ err: err.message }, "late disconnect failed"));
    }, this.d.authCacheMs + 250);
    t.unref();
    this.timers.add(t);
  }
}
