/**
 * A joined session: its stored messages (each reported once), presence,
 * typing, and its assistant replies as ReplyStreams that survive reconnects.
 * After a drop the client rejoins with `afterSeq`, so only what was missed
 * comes back, and streaming replies continue from the join's activeStreams.
 */
import { Emitter } from "./emitter.js";
import { MemchatError } from "./errors.js";
import type { Outbox } from "./outbox.js";
import type { Calls, Events, FeedbackRating, HistoryResult, MemberPayload, Message, Session, SessionConfiguredPayload, SessionJoinResult, User } from "./protocol.js";
import { ReplyStream } from "./reply-stream.js";
import type { Transport } from "./transport.js";

export interface SessionEvents {
  /** A stored message, new or just finished (a reply's final row); each (id, status) once. */
  message: Message;
  /** An assistant reply began (or was found streaming on a join). */
  reply: ReplyStream;
  presence: { userId: string; username?: string; present: boolean };
  typing: { userId: string; username: string; isTyping: boolean };
  updated: { title: string; updatedAt: string };
  /** The owner picked another assistant configuration; it applies from the next turn. */
  configured: SessionConfiguredPayload;
  /** Someone became a member (accepted an invitation), or stopped being one. */
  member: { member: MemberPayload; joined: boolean; reason?: "left" | "removed" };
  /** Every (re)join, with what the server answered. */
  joined: SessionJoinResult & { resumed: boolean };
  /** Too much was missed to resume: the session was joined afresh, older messages may be missing in between. */
  reset: SessionJoinResult;
  /** The session is gone, or you left it or were removed (code FORBIDDEN or NOT_FOUND); the handle is closed. */
  lost: MemchatError;
  /** The handle is closed: left, lost, or the client closed. */
  closed: { reason: "left" | "lost" | "client closed" };
}

const TYPING_REPEAT_MS = 2_500;
const TYPING_IDLE_MS = 4_000;
/** How long a gap in a reply's deltas may last before the session asks for the stream again. */
const DELTA_GAP_MS = 1_500;
const KEEP_ENDED_REPLIES = 50;

export interface SessionDeps {
  transport: Transport;
  outbox: Outbox;
  me: User | undefined;
  /** Called once the handle is closed (left, or lost). */
  released(sessionId: string): void;
}

export class ChatSession extends Emitter<SessionEvents> {
  info: Session;
  /** userIds present now (yourself included). */
  readonly present = new Set<string>();
  /** seq of every message seen, by id: a streaming reply resumes from the message it answers. */
  private readonly seqs = new Map<number, number>();
  private readonly reported = new Map<number, Message["status"]>();
  private readonly streams = new Map<number, ReplyStream>();
  private replyWaiters: { replyToId: number; resolve(r: ReplyStream): void; reject(e: MemchatError): void }[] = [];
  /** Replies refused before anyone asked (QUOTA_EXCEEDED can arrive before the send's ack): by the message they were for. */
  private readonly refused = new Map<number, MemchatError>();
  private lastSeq = 0;
  private joined = false;
  private closed = false;
  private readonly unlisten: (() => void)[] = [];
  private typingSentAt = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private joining: Promise<SessionJoinResult> | undefined;

  constructor(
    readonly id: string,
    private readonly d: SessionDeps,
  ) {
    super();
    this.info = { id, title: "", ownerId: "", role: "member", lastSeq: 0, createdAt: "", updatedAt: "", archived: false, archivedAt: null, successorId: null, configurationId: null };
    this.subscribe();
  }

  /** Joins the room (again after a drop: only what was missed). Called by the client on every connect. */
  join(): Promise<SessionJoinResult> {
    this.joining ??= this.doJoin().finally(() => (this.joining = undefined));
    return this.joining;
  }

  /** Older messages, newest page first when beforeSeq is omitted. */
  history(opts: { beforeSeq?: number; limit?: number } = {}): Promise<HistoryResult> {
    return this.d.transport.call("message:history", { sessionId: this.id, ...opts }).then((r) => {
      for (const m of r.messages) this.seqs.set(m.id, m.seq);
      return r;
    });
  }

  /**
   * Sends through the outbox: one clientMessageId for every attempt, retried
   * after reconnects and RATE_LIMITED (after retryAfterMs) until stored.
   * Resolves with the stored message.
   */
  send(content: string, opts: { assistant?: boolean; clientMessageId?: string; attachments?: string[] } = {}): Promise<Message> {
    if (this.closed) return Promise.reject(new MemchatError("CLOSED", "This session handle was left or lost."));
    return this.d.outbox.add({ sessionId: this.id, content, assistant: opts.assistant, clientMessageId: opts.clientMessageId, attachments: opts.attachments }).stored;
  }

  /**
   * The reply to user message `messageId` (sent with `assistant` on), as soon
   * as it starts. Rejects when the reply could not be created (the
   * assistant's error code, e.g. busy) or the handle closes.
   */
  replyTo(messageId: number): Promise<ReplyStream> {
    for (const r of this.streams.values()) if (r.replyToId === messageId) return Promise.resolve(r);
    const refused = this.refused.get(messageId);
    if (refused) return Promise.reject(refused);
    if (this.closed) return Promise.reject(new MemchatError("CLOSED", "This session handle was left or lost."));
    return new Promise((resolve, reject) => this.replyWaiters.push({ replyToId: messageId, resolve, reject }));
  }

  /** Every reply that starts from now on, in order, until the session is left. */
  async *replies(): AsyncGenerator<ReplyStream> {
    const queue: ReplyStream[] = [];
    let wake: (() => void) | undefined;
    const off = this.on("reply", (r) => {
      queue.push(r);
      wake?.();
    });
    const offClosed = this.on("closed", () => wake?.());
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (this.closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      off();
      offClosed();
    }
  }

  /** A reply this handle knows (streaming, or one of the last ones that ended). */
  reply(messageId: number): ReplyStream | undefined {
    return this.streams.get(messageId);
  }

  /**
   * typing(true) on every keystroke is fine: it is sent at most every 2.5 s,
   * and "stopped" follows by itself after 4 s without a call.
   */
  typing(isTyping: boolean): void {
    if (this.closed) return;
    clearTimeout(this.typingIdle);
    if (!isTyping) {
      if (this.typingSentAt === 0) return;
      this.typingSentAt = 0;
      this.d.transport.notify("typing", { sessionId: this.id, isTyping: false });
      return;
    }
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.typingSentAt = now;
      this.d.transport.notify("typing", { sessionId: this.id, isTyping: true });
    }
    this.typingIdle = setTimeout(() => this.typing(false), TYPING_IDLE_MS);
  }

  cancel(replyId: number): Promise<boolean> {
    return this.d.transport.call("assistant:cancel", { sessionId: this.id, messageId: replyId }).then((r) => r.cancelled);
  }

  /** Answers user message `messageId` again; resolves with the new reply's stream. */
  async regenerate(messageId: number): Promise<ReplyStream> {
    const { message } = await this.d.transport.call("assistant:regenerate", { sessionId: this.id, messageId });
    return this.streamOf(message.id, message.replyToId);
  }

  /** Rates a reply: 1 positive, 0 neutral, -1 negative, with an optional comment; rating again replaces your earlier rating. */
  feedback(messageId: number, rating: FeedbackRating, comment?: string): Promise<Calls["message:feedback"]["output"]["feedback"]> {
    return this.d.transport.call("message:feedback", comment === undefined ? { messageId, rating } : { messageId, rating, comment }).then((r) => r.feedback);
  }

  /** Owner only: the assistant configuration this session's turns use from the next one (null: the default). */
  configure(configurationId: number | null): Promise<SessionConfiguredPayload> {
    return this.d.transport.call("session:configure", { sessionId: this.id, configurationId }).then((r) => {
      this.info = { ...this.info, configurationId: r.configurationId };
      return r;
    });
  }

  rename(title: string): Promise<Session> {
    return this.d.transport.call("session:rename", { sessionId: this.id, title }).then((r) => (this.info = r.session));
  }

  /** Owner only: invites a user, who becomes a member on accepting (`pending` is false if they are one already). */
  invite(username: string): Promise<Calls["session:invite"]["output"]> {
    return this.d.transport.call("session:invite", { sessionId: this.id, username });
  }

  /** Owner only: takes a member out of the session (or withdraws their invitation). */
  removeMember(userId: string): Promise<boolean> {
    return this.d.transport.call("member:remove", { sessionId: this.id, userId }).then((r) => r.removed);
  }

  /** Stops being a member (the owner cannot); the handle closes with "lost" when the server confirms. */
  quit(): Promise<boolean> {
    return this.d.transport.call("member:leave", { sessionId: this.id }).then((r) => r.left);
  }

  /** Leaves the room; pending sends of this session stay in the outbox. */
  async leave(): Promise<void> {
    if (this.closed) return;
    this.release("left");
    if (this.joined && this.d.transport.connected) await this.d.transport.call("session:leave", { sessionId: this.id }).catch(() => undefined);
  }

  // ---- internals ---------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new MemchatError("CLOSED", "This session handle was left or lost.");
  }

  private async doJoin(): Promise<SessionJoinResult> {
    this.assertOpen();
    const resume = this.joined;
    const afterSeq = resume ? this.resumePoint() : undefined;
    let r: SessionJoinResult;
    try {
      r = await this.d.transport.call("session:join", afterSeq === undefined ? { sessionId: this.id } : { sessionId: this.id, afterSeq });
    } catch (err) {
      if (err instanceof MemchatError && (err.code === "NOT_FOUND" || err.code === "FORBIDDEN")) this.lose(err);
      throw err;
    }
    if (this.closed) return r;
    this.joined = true;
    this.info = r.session;
    this.present.clear();
    for (const p of r.presence) this.present.add(p.userId);
    for (const m of r.messages) this.onStored(m);
    for (const a of r.activeStreams) this.streamOf(a.messageId, null).snapshot(a.seq, a.text);
    if (resume) await this.refreshStale(new Set(r.activeStreams.map((a) => a.messageId)));
    this.emit("joined", { ...r, resumed: resume });
    if (resume && r.truncated) {
      // Too much was missed to page forward: start again from the latest page.
      this.joined = false;
      const fresh = await this.doJoin();
      this.emit("reset", fresh);
      return fresh;
    }
    return r;
  }

  /**
   * afterSeq for a rejoin: the last seq below which everything is final. A
   * reply still streaming when the connection dropped may have finished
   * since, so its row must come back in the backlog.
   */
  private resumePoint(): number {
    let point = this.lastSeq;
    for (const r of this.streams.values()) {
      if (r.ended) continue;
      const own = this.seqs.get(r.messageId);
      const bound = own !== undefined ? own - 1 : r.replyToId !== null ? (this.seqs.get(r.replyToId) ?? 0) : 0;
      point = Math.min(point, bound);
    }
    return Math.max(0, point);
  }

  /** Replies still streaming here that a rejoin neither listed nor returned ended: read their row. */
  private async refreshStale(active: Set<number>): Promise<void> {
    for (const r of [...this.streams.values()]) {
      const seq = this.seqs.get(r.messageId);
      if (r.ended || active.has(r.messageId) || seq === undefined) continue;
      const h = await this.d.transport.call("message:history", { sessionId: this.id, beforeSeq: seq + 1, limit: 1 }).catch(() => null);
      for (const m of h?.messages ?? []) this.onStored(m);
    }
  }

  private subscribe(): void {
    const t = this.d.transport;
    const mine = (e: { sessionId: string }) => e.sessionId === this.id && !this.closed;
    this.unlisten.push(
      t.listen("message:new", (e) => mine(e.message) && this.onStored(e.message)),
      t.listen("session:updated", (e) => {
        if (!mine(e)) return;
        this.info = { ...this.info, title: e.title, updatedAt: e.updatedAt };
        this.emit("updated", { title: e.title, updatedAt: e.updatedAt });
      }),
      t.listen("session:configured", (e) => {
        if (!mine(e)) return;
        this.info = { ...this.info, configurationId: e.configurationId };
        this.emit("configured", e);
      }),
      t.listen("session:removed", (e) => {
        if (!mine(e)) return;
        const why = { left: "You left this session.", removed: "You were removed from this session.", deleted: "This session was deleted." }[e.reason];
        this.lose(new MemchatError(e.reason === "deleted" ? "NOT_FOUND" : "FORBIDDEN", why));
      }),
      t.listen("member:joined", (e) => mine(e) && this.emit("member", { member: e.member, joined: true })),
      t.listen("member:left", (e) => mine(e) && this.emit("member", { member: e.member, joined: false, reason: e.reason })),
      t.listen("presence:join", (e) => {
        if (!mine(e)) return;
        this.present.add(e.userId);
        this.emit("presence", { userId: e.userId, username: e.username, present: true });
      }),
      t.listen("presence:leave", (e) => {
        if (!mine(e)) return;
        this.present.delete(e.userId);
        this.emit("presence", { userId: e.userId, username: e.username, present: false });
      }),
      t.listen("typing", (e) => {
        if (!mine(e) || e.userId === this.d.me?.id) return;
        this.emit("typing", { userId: e.userId, username: e.username, isTyping: e.isTyping });
      }),
      t.listen("assistant:start", (e) => mine(e) && this.streamOf(e.messageId, e.replyToId)),
      t.listen("assistant:delta", (e) => mine(e) && this.streamOf(e.messageId, null).delta(e.seq, e.text)),
      t.listen("assistant:end", (e) => mine(e) && this.onEnd(e)),
      t.listen("assistant:error", (e) => {
        if (!mine(e)) return;
        if (e.messageId === null) {
          // No reply row at all: whoever waits for the reply to that message hears why.
          const error = new MemchatError(e.code, e.message, e.resetAt ? Math.max(1, Date.parse(e.resetAt) - Date.now()) : undefined);
          const waiting = this.takeReplyWaiters(e.replyToId ?? null);
          for (const w of waiting) w.reject(error);
          if (waiting.length === 0 && e.replyToId !== undefined) {
            if (this.refused.size >= 100) this.refused.delete(this.refused.keys().next().value!);
            this.refused.set(e.replyToId, error);
          }
          return;
        }
        this.streamOf(e.messageId, e.replyToId ?? null).fail(new MemchatError(e.code, e.message));
        this.prune();
      }),
      this.d.outbox.on("stored", ({ message }) => {
        if (message.sessionId === this.id && !this.closed) this.onStored(message);
      }),
    );
  }

  private onEnd(e: Events["assistant:end"]): void {
    this.streamOf(e.message.id, e.message.replyToId).finish(e.message, { usage: e.usage, context: e.context });
    this.onStored(e.message);
  }

  /** Any stored row, from whichever path it came: reported once per status, and settles the outbox. */
  private onStored(m: Message): void {
    this.seqs.set(m.id, m.seq);
    if (m.status !== "streaming") this.lastSeq = Math.max(this.lastSeq, m.seq);
    if (m.role === "user" && m.clientMessageId) this.d.outbox.settle(m);
    // Old replies in a backlog or a page are not streams; a streaming one, or one somebody waits for, is.
    const tracked = this.streams.has(m.id) || m.status === "streaming" || this.replyWaiters.some((w) => w.replyToId === m.replyToId);
    if (m.role === "assistant" && tracked) {
      const r = this.streamOf(m.id, m.replyToId);
      if (m.status !== "streaming") {
        r.finish(m);
        this.prune();
      }
    }
    if (this.reported.get(m.id) === m.status) return;
    this.reported.set(m.id, m.status);
    this.emit("message", m);
  }

  /** The stream of reply `messageId`, created (and announced) at its first sign. */
  private streamOf(messageId: number, replyToId: number | null): ReplyStream {
    let r = this.streams.get(messageId);
    if (r) {
      if (replyToId !== null && r.replyToId === null) {
        r.replyToId = replyToId;
        this.wakeReplyWaiters(r);
      }
      return r;
    }
    r = new ReplyStream(messageId, replyToId, () => this.onGap());
    this.streams.set(messageId, r);
    this.emit("reply", r);
    this.wakeReplyWaiters(r);
    return r;
  }

  private wakeReplyWaiters(r: ReplyStream): void {
    for (const w of this.takeReplyWaiters(r.replyToId)) w.resolve(r);
  }

  private takeReplyWaiters(replyToId: number | null): ChatSession["replyWaiters"] {
    if (replyToId === null) return [];
    const hit = this.replyWaiters.filter((w) => w.replyToId === replyToId);
    this.replyWaiters = this.replyWaiters.filter((w) => w.replyToId !== replyToId);
    return hit;
  }

  /** A delta went missing: rejoining returns the stream so far (activeStreams). */
  private onGap(): void {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if ([...this.streams.values()].some((r) => r.hasGap) && this.d.transport.connected) this.join().catch(() => undefined);
    }, DELTA_GAP_MS);
  }

  /** Ended replies are kept for replyTo() and reply(), a bounded number of them. */
  private prune(): void {
    const ended = [...this.streams.values()].filter((r) => r.ended);
    for (const r of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED_REPLIES))) this.streams.delete(r.messageId);
  }

  private lose(err: MemchatError): void {
    if (this.closed) return;
    this.d.outbox.dropSession(this.id, err);
    this.emit("lost", err);
    this.release("lost");
  }

  /** The client closed: no leave call, the socket is going anyway. */
  close(): void {
    if (!this.closed) this.release("client closed");
  }

  private release(reason: SessionEvents["closed"]["reason"]): void {
    this.closed = true;
    for (const u of this.unlisten) u();
    clearTimeout(this.typingIdle);
    clearTimeout(this.gapTimer);
    const closed = new MemchatError("CLOSED", "The session was left before the reply ended.");
    for (const r of this.streams.values()) r.fail(closed);
    for (const w of this.replyWaiters.splice(0)) w.reject(closed);
    this.d.released(this.id);
    this.emit("closed", { reason });
  }
}
