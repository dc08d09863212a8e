/**
 * The chat domain: sessions, membership, messages, presence. Every method
 * takes the acting user and returns plain data or throws AppError.
 */
import { AppError } from "../protocol/errors.js";
import type { HistoryResult, InvitationPayload, MemberPayload, SessionJoinResult } from "../protocol/events.js";
import type { Input } from "../protocol/schemas.js";
import type { Message, Session, User } from "../protocol/types.js";
import type { MemoryService } from "../memory/memory-service.js";
import { type AssistantService, busyError } from "./assistant-service.js";
import type { MembershipStore, MessageStore, Presence } from "./ports.js";
import { QuotaExceededError, type Reservation } from "./quota-service.js";
import type { RateLimits } from "./rate-limits.js";
import type { MemberEvents, RoomEvents } from "./room-events.js";

export interface Actor {
  user: User;
  /** The socket (or request) acting; presence and echo suppression use it. */
  connectionId: string;
}

export interface ChatLimits {
  historyPageSize: number;
  /** Most messages session:join returns after afterSeq; the client pages for more. */
  joinBacklogMax: number;
}

/** Why a stored message got no reply (message:send's ack says so). */
export interface ReplyRefusal {
  code: "QUOTA_EXCEEDED";
  message: string;
  /** When the quota resets (next midnight UTC). */
  resetAt: string;
}

const notFound = () => new AppError("NOT_FOUND", "session not found");
export const archivedError = () => new AppError("ARCHIVED", "this session is archived: it takes no new messages (its owner can unarchive it)");

/** Most pending invitations listed at once (newest first); older ones wait until these are answered. */
export const INVITATIONS_LISTED = 100;

export interface ChatDeps {
  store: MessageStore;
  membership: MembershipStore;
  presence: Presence;
  rooms: RoomEvents;
  members: MemberEvents;
  limits: ChatLimits;
  assistant?: AssistantService;
  /** A message was stored: index it soon. */
  onMessageStored?: () => void;
  memory?: MemoryService;
  rateLimits?: RateLimits;
  /** A user message (and its reply row) was stored: the lifecycle checks the session's size. */
  onSent?: (message: Message, reply: Message | null) => void;
  /** A session was deleted (committed): its stored files can go. */
  onSessionDeleted?: (sessionId: string) => void;
}

export class ChatService {
  private readonly store: MessageStore;
  private readonly membership: MembershipStore;
  private readonly presence: Presence;
  private readonly rooms: RoomEvents;
  private readonly members: MemberEvents;
  private readonly limits: ChatLimits;
  private readonly assistant: AssistantService | undefined;
  private readonly onMessageStored: (() => void) | undefined;
  private readonly memory: MemoryService | undefined;
  private readonly rateLimits: RateLimits | undefined;
  private readonly onSent: ChatDeps["onSent"];
  private readonly onSessionDeleted: ChatDeps["onSessionDeleted"];

  constructor(d: ChatDeps) {
    this.store = d.store;
    this.membership = d.membership;
    this.presence = d.presence;
    this.rooms = d.rooms;
    this.members = d.members;
    this.limits = d.limits;
    this.assistant = d.assistant;
    this.onMessageStored = d.onMessageStored;
    this.memory = d.memory;
    this.rateLimits = d.rateLimits;
    this.onSent = d.onSent;
    this.onSessionDeleted = d.onSessionDeleted;
  }

  async createSession(actor: Actor, input: Input<"session:create">): Promise<{ session: Session }> {
    return { session: await this.store.createSession(actor.user.id, input.title ?? "", input.assistant ?? true) };
  }

  /**
   * `subscribe` puts the connection in the room. It runs before the backlog is
   * read, so a message stored meanwhile arrives twice (event and backlog, same
   * seq) rather than never. A removal that committed while the membership was
   * being read has already evicted this user's sockets from a room this one
   * was not yet in; when one happened, the membership is read again once the
   * connection is in the room, so a removed user never stays subscribed.
   */
  async joinSession(
    actor: Actor,
    input: Input<"session:join">,
    subscribe: () => void | Promise<void>,
    unsubscribe: () => void | Promise<void> = () => undefined,
  ): Promise<SessionJoinResult> {
    const evictions = this.members.evictions();
    let session = await this.store.getSession(input.sessionId, actor.user.id);
    if (!session) throw notFound();
    await subscribe();
    if (this.members.evictions() !== evictions) {
      session = await this.store.getSession(input.sessionId, actor.user.id);
      if (!session) {
        await unsubscribe();
        throw notFound();
      }
    }
    const { first } = await this.presence.join(session.id, actor.user.id, actor.connectionId);
    if (first) {
      this.rooms.emit(session.id, "presence:join", { sessionId: session.id, userId: actor.user.id, username: actor.user.username }, actor.connectionId);
    }
    // Independent reads: together, so a reconnect storm's joins wait for one round trip, not three.
    // The session is read again now that the connection is in the room: a rename or (un)archive
    // that committed after the first read told the room before this connection was in it.
    const [backlog, presence, activeStreams, current] = await Promise.all([
      input.afterSeq === undefined
        ? this.store.listMessagesBefore(session.id, actor.user.id, undefined, this.limits.historyPageSize)
        : this.store.listMessagesAfter(session.id, actor.user.id, input.afterSeq, this.limits.joinBacklogMax + 1),
      this.presence.list(session.id),
      this.assistant ? this.assistant.activeStreams(session.id, actor.user.id) : Promise.resolve([]),
      this.store.getSession(session.id, actor.user.id),
    ]);
    // Null: removed meanwhile, and told so by the eviction; the first read still describes what was joined.
    const joined = session;
    if (current) session = current;
    const truncated = input.afterSeq !== undefined && backlog.length > this.limits.joinBacklogMax;
    const messages = truncated ? backlog.slice(0, this.limits.joinBacklogMax) : backlog;
    // The reply's lastSeq promises that every seq after afterSeq up to it is in the backlog (or its
    // further pages). The backlog and `current` were read on two connections, each in its own
    // snapshot, so `current` may count a message committed after the backlog's snapshot. Seqs
    // commit in order within a session, so the backlog covers what the first read counted and every
    // seq up to its newest row; what came later reaches this connection live (it is in the room).
    const covered = Math.max(joined.lastSeq, backlog.at(-1)?.seq ?? 0);
    if (session.lastSeq > covered) session = { ...session, lastSeq: covered };
    const activeStream = activeStreams.at(-1);
    return { session, messages, presence, truncated, activeStreams, ...(activeStream ? { activeStream } : {}) };
  }

  async leaveSession(actor: Actor, sessionId: string, unsubscribe: () => void | Promise<void>): Promise<{ left: boolean }> {
    await unsubscribe();
    const { last } = await this.presence.leave(sessionId, actor.user.id, actor.connectionId);
    if (last) this.rooms.emit(sessionId, "presence:leave", { sessionId, userId: actor.user.id, username: actor.user.username });
    return { left: true };
  }

  /** A connection went away: leave every session it had joined. */
  async disconnect(actor: Actor, sessionIds: Iterable<string>): Promise<void> {
    for (const sessionId of sessionIds) await this.leaveSession(actor, sessionId, () => undefined);
  }

  /** Owner only: a pending invitation, which the invitee's sockets hear about on every node. */
  async invite(actor: Actor, input: Input<"session:invite">): Promise<{ member: MemberPayload; pending: boolean; invitation?: InvitationPayload }> {
    const r = await this.membership.invite(input.sessionId, actor.user.id, input.username);
    switch (r.kind) {
      case "invited":
        this.members.toUser(r.invitation.invitee.userId, "session:invitation", { invitation: r.invitation });
        return { member: r.invitation.invitee, pending: true, invitation: r.invitation };
      case "member":
        return { member: r.member, pending: false };
      case "not_found":
        throw notFound();
      case "forbidden":
        throw new AppError("FORBIDDEN", "only the session owner can invite");
      case "no_user":
        throw new AppError("NOT_FOUND", "no such user");
    }
  }

  invitations(user: User): Promise<InvitationPayload[]> {
    return this.membership.invitations(user.id, INVITATIONS_LISTED);
  }

  async acceptInvitation(actor: Actor, sessionId: string): Promise<{ session: Session }> {
    const r = await this.membership.accept(sessionId, actor.user.id);
    if (r.kind === "not_found") throw new AppError("NOT_FOUND", "no such invitation");
    this.rooms.emit(sessionId, "member:joined", { sessionId, member: r.member });
    return { session: r.session };
  }

  async declineInvitation(user: User, sessionId: string): Promise<{ declined: boolean }> {
    if (!(await this.membership.decline(sessionId, user.id))) throw new AppError("NOT_FOUND", "no such invitation");
    return { declined: true };
  }

  /**
   * Ends a membership (the caller's own: leaving; another's: the owner
   * removing them) or withdraws a pending invitation. The removed user's
   * sockets leave the room on every node before this returns to the caller's
   * next event, and their reply still streaming there is cancelled.
   */
  async removeMember(user: User, sessionId: string, memberId: string): Promise<{ removed: boolean }> {
    const r = await this.membership.removeMember(sessionId, user.id, memberId);
    switch (r.kind) {
      case "removed": {
        const reason = memberId === user.id ? "left" : "removed";
        this.members.evict(sessionId, [memberId], reason);
        this.rooms.emit(sessionId, "member:left", { sessionId, member: r.member, reason });
        await this.assistant?.cancelReplies(r.streamingReplyIds);
        return { removed: true };
      }
      case "revoked":
        return { removed: true };
      case "owner":
        throw new AppError("FORBIDDEN", "the owner cannot leave their own session: delete it instead");
      case "forbidden":
        throw new AppError("FORBIDDEN", "only the session owner can remove members");
      case "not_found":
        throw new AppError("NOT_FOUND", "no such member");
    }
  }

  async renameSession(actor: Actor, input: Input<"session:rename">): Promise<{ session: Session }> {
    const r = await this.store.renameSession(input.sessionId, actor.user.id, input.title);
    if (r === "forbidden") throw new AppError("FORBIDDEN", "only the session owner can rename it");
    if (r === "not_found") throw notFound();
    this.rooms.emit(r.id, "session:updated", { sessionId: r.id, title: r.title, updatedAt: r.updatedAt }, actor.connectionId);
    return { session: r };
  }

  /** Every member's sockets leave the room (and are told), and replies still streaming there are cancelled. */
  async deleteSession(user: User, sessionId: string): Promise<void> {
    const r = await this.membership.deleteSession(sessionId, user.id);
    if (r.kind === "forbidden") throw new AppError("FORBIDDEN", "only the session owner can delete it");
    if (r.kind === "not_found") throw notFound();
    this.members.evict(sessionId, r.memberIds, "deleted");
    this.onSessionDeleted?.(sessionId);
    await this.assistant?.cancelReplies(r.streamingReplyIds);
    await this.memory?.forgetSession(sessionId);
  }

  /**
   * Stores the message (idempotently), tells the room, and starts the
   * assistant's reply when asked (default) and the session has one: the
   * reply's row is created with the message, atomically. While the user's
   * previous reply still streams in the session, a send that wants a reply
   * is refused (CONFLICT) and nothing is written. A retry returns the stored
   * row and does nothing else.
   */
  async sendMessage(actor: Actor, input: Input<"message:send">): Promise<{ message: Message; duplicate: boolean; replyRefused?: ReplyRefusal }> {
    const acceptedAt = performance.now();
    // Only a session with an assistant spends the user's turn budget.
    let wantsReply = input.assistant !== false && this.assistant !== undefined && (await this.store.assistantEnabled(input.sessionId)) === true;
    // The message itself was counted by the socket handler (family "message").
    if (wantsReply) await this.rateLimits?.check("turn", actor.user.id);
    // The reply's reads need only the text: they run while the rows are written. Not with
    // files: the turn first waits for them to be read, then reads (AssistantService.awaitAttachments).
    const prefetched = wantsReply && !input.attachments?.length ? this.assistant!.prefetch(actor.user.id, input.sessionId, input.content) : undefined;
    // Over the daily token quota the message is still stored, without a reply.
    let reservation: Reservation | undefined;
    let refused: QuotaExceededError | undefined;
    if (wantsReply) {
      try {
        reservation = await this.assistant!.reserveTurn(actor.user.id, prefetched);
      } catch (err) {
        if (!(err instanceof QuotaExceededError)) throw err;
        refused = err;
        wantsReply = false;
      }
    }
    let started = false;
    try {
      const r = await this.store.insertUserMessage({
        sessionId: input.sessionId,
        userId: actor.user.id,
        clientMessageId: input.clientMessageId,
        content: input.content,
        replyOwnerNode: wantsReply ? this.assistant!.nodeId : undefined,
        ...(input.attachments?.length ? { attachmentIds: input.attachments } : {}),
      });
      if (r.kind === "not_found") throw notFound();
      if (r.kind === "busy") throw busyError();
      if (r.kind === "archived") throw archivedError();
      if (r.kind === "bad_attachments") throw new AppError("BAD_REQUEST", "an attachment is not your own unsent upload in this session");
      if (r.kind === "duplicate") return { message: r.message, duplicate: true };
      this.rooms.emit(input.sessionId, "message:new", { message: r.message }, actor.connectionId);
      this.onMessageStored?.();
      this.onSent?.(r.message, r.reply);
      if (r.reply) {
        this.assistant!.run(actor, r.message, r.reply, acceptedAt, prefetched, reservation);
        started = true;
      }
      if (!refused) return { message: r.message, duplicate: false };
      const replyRefused: ReplyRefusal = { code: "QUOTA_EXCEEDED", message: refused.message, resetAt: refused.resetAt.toISOString() };
      // The sender's other tabs hear it too; the room does not (a quota is the user's own business).
      this.members.toUser(actor.user.id, "assistant:error", { sessionId: input.sessionId, messageId: null, replyToId: r.message.id, ...replyRefused });
      return { message: r.message, duplicate: false, replyRefused };
    } finally {
      if (!started) this.assistant?.releaseTurn(reservation);
    }
  }

  async history(user: User, input: Input<"message:history">): Promise<HistoryResult> {
    const limit = input.limit ?? this.limits.historyPageSize;
    // One extra row tells whether an older page exists.
    const rows = await this.store.listMessagesBefore(input.sessionId, user.id, input.beforeSeq, limit + 1);
    if (rows.length === 0 && !(await this.store.getSession(input.sessionId, user.id))) throw notFound();
    const more = rows.length > limit;
    const messages = more ? rows.slice(1) : rows;
    return { messages, nextBeforeSeq: more ? messages[0]!.seq : null };
  }

  /** Typing is relayed only from connections that joined the room. */
  typing(actor: Actor, input: Input<"typing">, joined: boolean): { sent: boolean } {
    if (!joined) throw new AppError("FORBIDDEN", "join the session before sending typing");
    this.rooms.emit(
      input.sessionId,
      "typing",
      { sessionId: input.sessionId, userId: actor.user.id, username: actor.user.username, isTyping: input.isTyping },
      actor.connectionId,
    );
    return { sent: true };
  }
}
