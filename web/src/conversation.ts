/**
 * One open session: its messages (merged by id, ordered by seq, never shown
 * twice), older pages loaded on scroll-up, assistant replies streamed piece by
 * piece, presence, typing, and the composer.
 */
import { ReplyStream } from "@memchat/client";
import { RequestError } from "./api.js";
import type { Connection } from "./connection.js";
import { AttachmentTray, attachmentList } from "./attachments.js";
import { append, clear, h, icon, renderText } from "./dom.js";
import { clockTime, describe, fullTime, listJoin, roleName, snippet, statusLabel } from "./format.js";
import { ConfigPicker } from "./config-picker.js";
import { feedbackControls, type Rating } from "./feedback.js";
import { inviteControl } from "./invite.js";
import type { Outbox, OutboxItem } from "./outbox.js";
import type { ActiveStream, AttachmentRef, ContextEntry, Events, JoinResult, Message, MessageStatus, PassageUse, Session, User } from "./protocol.js";

export interface ConversationContext {
  conn: Connection;
  me: User;
  outbox: Outbox;
  /** userId -> username, learnt from presence and typing events; shared by all conversations. */
  names: Map<string, string>;
  /** Messages seen in any session in this tab, by id: a reply's context may point into another session. */
  seen: Map<number, { sessionId: string; role: Message["role"]; content: string }>;
  sessionTitle(sessionId: string): string | undefined;
  toast(message: string): void;
  /** The session changed (new message, title): the list moves it up. */
  touched(session: Session | string): void;
  /** The session is gone (deleted, or access revoked). */
  lost(sessionId: string, reason: string): void;
  /** The session is open in this tab's current view. */
  isOpen(sessionId: string): boolean;
  /** A join answered the session as it is now: the list follows its title and archived state. */
  synced(session: Session): void;
  /** The bearer token, for REST reads (the configuration picker's list). */
  token: string;
}

interface Entry {
  id: number;
  /** Unknown while a reply streams and the server has not told its row yet. */
  seq: number | null;
  role: Message["role"];
  content: string;
  status: MessageStatus;
  userId: string | null;
  replyToId: number | null;
  createdAt: string;
  attachments?: AttachmentRef[];
  /** What paintBody last drew (status + content), so an unchanged body is not redrawn and re-announced. */
  drawn?: string;
  /** While it streams: its deltas in seq order, each once, gaps held back (the client library's). */
  stream?: ReplyStream;
  context?: ContextEntry[];
  usage?: { promptTokens: number | null; completionTokens: number | null };
  rating?: Rating;
  comment?: string | null;
  commenting?: boolean;
  /** Passages of shared files the reply drew on: with assistant:end, or loaded with the context. */
  passages?: PassageUse[];
  error?: string;
  stopping?: boolean;
  showContext?: boolean;
  key: number;
  el: HTMLLIElement;
  body: HTMLDivElement;
}

/** What a join in flight may have read before: changes of the session, arrivals (true) and departures (false). */
interface ChangedDuringJoin {
  session: Partial<Pick<Session, "title" | "archived">>;
  presence: Map<string, boolean>;
}

const NEAR_BOTTOM_PX = 80;
const LOAD_OLDER_WITHIN_PX = 150;
const TYPING_REPEAT_MS = 2_500;
const TYPING_IDLE_MS = 4_000;
const TYPING_SHOWN_MS = 6_000;
/** How long a gap in a reply's deltas may last before the client asks for the stream again. */
const DELTA_GAP_MS = 1_500;

export class Conversation {
  readonly el: HTMLElement;
  private readonly entries = new Map<number, Entry>();
  /** Entries sorted by key; the DOM order of `list` follows it. */
  private readonly order: Entry[] = [];
  private readonly list: HTMLOListElement;
  private readonly announcer: HTMLDivElement;
  private readonly outboxList: HTMLOListElement;
  private readonly scroller: HTMLDivElement;
  private readonly top: HTMLDivElement;
  private readonly title: HTMLHeadingElement;
  private readonly presenceEl: HTMLParagraphElement;
  private readonly typingEl: HTMLDivElement;
  private readonly inviteArea: HTMLDivElement;
  private readonly jumpButton: HTMLButtonElement;
  private readonly input: HTMLTextAreaElement;
  private readonly assistantToggle: HTMLInputElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly tray: AttachmentTray;
  private readonly stopButton: HTMLButtonElement;
  private readonly archivedNote: HTMLParagraphElement;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly present = new Set<string>();
  private readonly typers = new Map<string, ReturnType<typeof setTimeout>>();
  /** beforeSeq of the next older page; null when the oldest message is loaded. */
  private cursor: number | null = null;
  private loadingOlder = false;
  private joined = false;
  /** One record per join in flight (a reload's first connect can start two): what changed meanwhile (see join). */
  private readonly joinsInFlight = new Set<ChangedDuringJoin>();
  private disposed = false;
  private typingSentAt = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private resyncing = false;
  private pendingHighlight: number | null = null;
  /** Refused replies (assistant:error) heard before the message they were for, by its id. */
  private readonly refusals = new Map<number, string>();
  /** The reader is at the bottom: new content and resizes keep them there. */
  private pinned = true;
  private readonly resizeObserver: ResizeObserver;
  private readonly picker: ConfigPicker;

  constructor(
    private session: Session,
    private readonly ctx: ConversationContext,
  ) {
    this.title = h("h2", { id: "conversation-title", class: "conv-title" });
    this.presenceEl = h("p", { class: "presence", "data-testid": "presence" });
    this.top = h("div", { class: "history-top" });
    // Not a live region itself: repainting a message must not read it out again. Replies
    // announce themselves (their body is live), other people's messages go through `announcer`.
    this.list = h("ol", { class: "messages", "aria-label": "Messages" });
    this.announcer = h("div", { class: "sr-only", role: "status", "aria-live": "polite" });
    this.outboxList = h("ol", { class: "messages outbox", "aria-label": "Messages not sent yet" });
    this.scroller = h(
      "div",
      { class: "scroller", tabindex: "0", "aria-label": "Conversation, scroll up for older messages", onscroll: () => this.onScroll() },
      this.top,
      this.list,
      this.outboxList,
    );
    this.jumpButton = h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.scrollToBottom() }, "New messages", icon("chevronDown"));
    this.typingEl = h("div", { class: "typing", "data-testid": "typing" });
    this.inviteArea = h("div", { class: "invite-area" });
    this.picker = new ConfigPicker(session, { conn: ctx.conn, token: ctx.token, toast: (m) => ctx.toast(m) });

    this.input = h("textarea", {
      id: "composer-input",
      rows: 1,
      placeholder: "Write a message…",
      "aria-describedby": "composer-hint",
      autocomplete: "off",
      oninput: () => this.onInput(),
      onkeydown: (e: KeyboardEvent) => this.onKeyDown(e),
      onblur: () => this.stopTyping(),
    });
    this.assistantToggle = h("input", { type: "checkbox", id: "assistant-toggle", checked: true });
    this.sendButton = h("button", { type: "submit", class: "btn btn-primary send", "aria-label": "Send message" }, icon("send"));
    this.tray = new AttachmentTray(ctx.conn.token, () => this.session.id, (m) => ctx.toast(m));
    this.stopButton = h(
      "button",
      { type: "button", class: "btn btn-danger stop", hidden: true, onclick: () => this.stopLatest() },
      icon("stop"),
      "Stop",
    );
    const composer = h(
      "form",
      { class: "composer", "aria-label": "Send a message", onsubmit: (e: Event) => (e.preventDefault(), this.submit()) },
      h("label", { for: "composer-input", class: "sr-only" }, "Message"),
      this.tray.el,
      h("div", { class: "composer-row" }, this.tray.button, this.input, this.stopButton, this.sendButton),
      h(
        "div",
        { class: "composer-foot" },
        h("label", { class: "toggle", for: "assistant-toggle" }, this.assistantToggle, "Assistant replies"),
        h("span", { id: "composer-hint", class: "hint" }, "Enter to send · Shift+Enter for a new line"),
      ),
    );

    this.archivedNote = h("p", { class: "archived-note", "data-testid": "archived-note", role: "status", hidden: true });
    this.el = h(
      "section",
      { class: "conversation", "aria-labelledby": "conversation-title" },
      h("header", { class: "conv-header" }, h("div", { class: "conv-heading" }, this.title, this.presenceEl), this.picker.el, this.inviteArea),
      h("div", { class: "scroll-wrap" }, this.scroller, this.jumpButton),
      this.typingEl,
      this.archivedNote,
      composer,
      this.announcer,
    );
    this.tray.acceptDrops(this.el);
    this.renderHeader();
    this.renderTop();
    this.renderOutbox();
    this.subscribe();
    this.setArchived(session.archived);
    // A phone keyboard opening or a window resize must not lose the reader's place at the bottom.
    this.resizeObserver = new ResizeObserver(() => {
      if (this.pinned) this.scrollToBottom();
    });
    this.resizeObserver.observe(this.scroller);
  }

  get sessionId(): string {
    return this.session.id;
  }

  focusComposer(): void {
    this.input.focus();
  }

  /** Joins the room and shows the latest page. */
  async open(): Promise<void> {
    await this.join(false);
    this.scrollToBottom();
  }

  /** On every connect: into the room, and after a drop only what was missed. */
  async resume(): Promise<void> {
    if (this.disposed) return;
    await this.join(this.joined);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const u of this.unsubscribe) u();
    this.picker.dispose();
    this.resizeObserver.disconnect();
    for (const t of this.typers.values()) clearTimeout(t);
    clearTimeout(this.typingIdle);
    clearTimeout(this.gapTimer);
    if (this.joined && this.ctx.conn.connected) {
      this.ctx.conn.call("session:leave", { sessionId: this.session.id }).catch(() => undefined);
    }
  }

  /** Scrolls to a message (from memory search) once it is loaded. */
  highlight(messageId: number): void {
    const e = this.entries.get(messageId);
    if (!e) {
      this.pendingHighlight = messageId;
      return;
    }
    this.pendingHighlight = null;
    e.el.scrollIntoView({ block: "center" });
    e.el.classList.remove("flash");
    void e.el.offsetWidth; // restart the animation
    e.el.classList.add("flash");
  }

  outboxChanged(): void {
    this.withScroll(() => this.renderOutbox());
  }

  /** A message this client stored (the ack of message:send). */
  stored(message: Message): void {
    if (message.sessionId !== this.session.id) return;
    this.withScroll(() => this.upsert(message), true);
  }

  // ---- joining and history -------------------------------------------------

  private async join(resume: boolean): Promise<void> {
    const afterSeq = resume ? this.resumePoint() : undefined;
    // A rename or (un)archive that arrives while the join is in flight is at least as new as the
    // join's snapshot of the session, which may have been read before it.
    const changedMeanwhile: ChangedDuringJoin = { session: {}, presence: new Map() };
    this.joinsInFlight.add(changedMeanwhile);
    const pickerVersion = this.picker.version;
    let r: JoinResult;
    try {
      r = await this.ctx.conn.call("session:join", afterSeq === undefined ? { sessionId: this.session.id } : { sessionId: this.session.id, afterSeq });
    } catch (err) {
      this.joinsInFlight.delete(changedMeanwhile);
      if (this.disposed) return;
      if (err instanceof RequestError && (err.code === "NOT_FOUND" || err.code === "FORBIDDEN")) {
        this.ctx.lost(this.session.id, "This session no longer exists or you are no longer a member.");
        return;
      }
      // Offline: the reconnect will call resume().
      if (!(err instanceof RequestError && err.code === "OFFLINE")) this.ctx.toast(`Could not open the session: ${describe(err)}`);
      return;
    }
    this.joinsInFlight.delete(changedMeanwhile);
    if (this.disposed) {
      // Closed while the join was on its way: the server has put this connection in the room since
      // (unless the session is open again in a newer view, whose own join needs the room).
      if (this.ctx.conn.connected && !this.ctx.isOpen(this.session.id)) {
        this.ctx.conn.call("session:leave", { sessionId: this.session.id }).catch(() => undefined);
      }
      return;
    }
    if (resume && r.truncated) {
      // Too much was missed to page forward: start again from the latest page.
      this.reset();
      return this.join(false);
    }
    this.joined = true;
    this.session = { ...r.session, ...changedMeanwhile.session };
    // The join's copy may be newer than the list's this view opened with (archived meanwhile, say).
    this.setArchived(this.session.archived);
    this.ctx.synced(this.session);
    this.picker.update(r.session, pickerVersion);
    this.present.clear();
    for (const p of r.presence) this.present.add(p.userId);
    // The list may have been read before someone's arrival or departure that this view has heard of since.
    for (const [userId, here] of changedMeanwhile.presence) {
      if (here) this.present.add(userId);
      else this.present.delete(userId);
    }
    this.renderHeader();
    this.withScroll(() => {
      for (const m of r.messages) this.upsert(m);
      if (!resume) this.cursor = r.messages.length > 0 && r.messages[0]!.seq > 1 ? r.messages[0]!.seq : null;
      for (const a of r.activeStreams) this.applyActiveStream(a);
    }, !resume);
    this.renderTop();
    this.renderComposerState();
    if (resume) await this.refreshStaleStreams(new Set(r.activeStreams.map((a) => a.messageId)));
    if (!resume) this.fillViewport();
    if (this.pendingHighlight !== null) this.highlight(this.pendingHighlight);
  }

  /**
   * afterSeq for a rejoin: the last seq below which everything is final. A
   * reply still streaming when the connection dropped may have finished
   * since, so it must come back in the backlog.
   */
  private resumePoint(): number {
    let point = 0;
    for (const e of this.order) if (e.seq !== null) point = Math.max(point, e.seq);
    for (const e of this.order) {
      if (e.status !== "streaming") continue;
      const bound = e.seq !== null ? e.seq - 1 : (this.seqOf(e.replyToId) ?? 0);
      point = Math.min(point, bound);
    }
    return Math.max(0, point);
  }

  /** Replies still marked streaming after a rejoin that did not mention them: ask for their row. */
  private async refreshStaleStreams(active: Set<number>): Promise<void> {
    for (const e of [...this.order]) {
      if (e.status !== "streaming" || active.has(e.id) || e.seq === null) continue;
      try {
        const r = await this.ctx.conn.call("message:history", { sessionId: this.session.id, beforeSeq: e.seq + 1, limit: 1 });
        for (const m of r.messages) this.withScroll(() => this.upsert(m));
      } catch {
        // The next reconnect tries again.
      }
    }
  }

  private reset(): void {
    for (const e of this.order) e.el.remove();
    this.order.length = 0;
    this.entries.clear();
    this.cursor = null;
  }

  private async loadOlder(): Promise<void> {
    if (this.cursor === null || this.loadingOlder || this.disposed) return;
    this.loadingOlder = true;
    this.renderTop();
    try {
      const r = await this.ctx.conn.call("message:history", { sessionId: this.session.id, beforeSeq: this.cursor });
      if (this.disposed) return;
      const before = this.scroller.scrollHeight;
      const top = this.scroller.scrollTop;
      for (const m of r.messages) this.upsert(m);
      // Keep what the reader is looking at in place while the page grows above it.
      this.scroller.scrollTop = top + (this.scroller.scrollHeight - before);
      this.cursor = r.nextBeforeSeq;
    } catch (err) {
      if (!this.disposed) this.ctx.toast(`Could not load older messages: ${describe(err)}`);
    } finally {
      this.loadingOlder = false;
      this.renderTop();
    }
    this.fillViewport();
    if (this.pendingHighlight !== null) this.highlight(this.pendingHighlight);
  }

  /** A short page does not fill the screen, so no scroll would ever ask for more. */
  private fillViewport(): void {
    if (this.cursor !== null && this.scroller.scrollHeight <= this.scroller.clientHeight + LOAD_OLDER_WITHIN_PX) {
      void this.loadOlder();
    }
  }

  private onScroll(): void {
    this.pinned = this.nearBottom();
    if (this.scroller.scrollTop < LOAD_OLDER_WITHIN_PX) void this.loadOlder();
    if (this.pinned) this.jumpButton.hidden = true;
  }

  // ---- live events ----------------------------------------------------------

  private subscribe(): void {
    const c = this.ctx.conn;
    const mine = (e: { sessionId: string }) => e.sessionId === this.session.id && !this.disposed;
    this.unsubscribe.push(
      c.on("message:new", (e) => {
        if (!mine(e.message)) return;
        const fresh = !this.entries.has(e.message.id);
        const entry = this.withScroll(() => this.upsert(e.message));
        if (fresh && entry.role === "user" && entry.userId !== this.ctx.me.id) this.announcer.textContent = `${this.author(entry)}: ${entry.content}`;
        if (e.message.userId) this.typerStopped(e.message.userId);
        this.ctx.touched(this.session.id);
      }),
      c.on("presence:join", (e) => {
        if (!mine(e)) return;
        this.ctx.names.set(e.userId, e.username);
        this.present.add(e.userId);
        for (const changed of this.joinsInFlight) changed.presence.set(e.userId, true);
        this.renderHeader();
      }),
      c.on("presence:leave", (e) => {
        if (!mine(e)) return;
        this.ctx.names.set(e.userId, e.username);
        this.present.delete(e.userId);
        for (const changed of this.joinsInFlight) changed.presence.set(e.userId, false);
        this.typerStopped(e.userId);
        this.renderHeader();
      }),
      c.on("typing", (e) => {
        if (!mine(e) || e.userId === this.ctx.me.id) return;
        this.ctx.names.set(e.userId, e.username);
        if (e.isTyping) this.typerStarted(e.userId);
        else this.typerStopped(e.userId);
      }),
      c.on("assistant:start", (e) => {
        if (!mine(e)) return;
        this.withScroll(() => this.streamEntry(e.messageId, e.replyToId));
        this.renderComposerState();
      }),
      c.on("assistant:delta", (e) => {
        if (!mine(e)) return;
        this.applyDelta(e);
      }),
      c.on("assistant:end", (e) => this.onEnd(e)),
      c.on("assistant:error", (e) => {
        if (!mine(e)) return;
        if (e.messageId === null) {
          // The reply could not even start: the user message it was for carries the error.
          const asked = e.replyToId !== undefined ? this.entries.get(e.replyToId) : undefined;
          const text = `The assistant could not reply: ${e.message}`;
          if (asked) {
            asked.error = text;
            this.paint(asked);
          } else if (e.replyToId !== undefined && this.ctx.outbox.forSession(this.session.id).some((i) => i.state === "sending")) {
            // The server tells the sender before it acks the message: the error waits for it.
            this.refusals.set(e.replyToId, text);
          } else this.ctx.toast(text);
          return;
        }
        const entry = this.entries.get(e.messageId) ?? this.streamEntry(e.messageId, e.replyToId ?? null);
        entry.status = "error";
        entry.error = e.message;
        entry.stopping = false;
        entry.stream = undefined;
        this.paint(entry);
        this.renderComposerState();
      }),
    );
  }

  private onEnd(e: Events["assistant:end"]): void {
    if (e.sessionId !== this.session.id || this.disposed) return;
    this.withScroll(() => {
      const entry = this.upsert(e.message);
      entry.context = e.context;
      entry.passages = e.passages;
      entry.usage = e.usage;
      entry.stopping = false;
      this.paint(entry);
    });
    this.renderComposerState();
    this.ctx.touched(this.session.id);
  }

  /** The entry of a reply being streamed, created if this is the first sign of it. */
  private streamEntry(messageId: number, replyToId: number | null): Entry {
    const existing = this.entries.get(messageId);
    if (existing) {
      if (replyToId !== null && existing.replyToId === null) {
        existing.replyToId = replyToId;
        this.place(existing);
      }
      return existing;
    }
    return this.add({
      id: messageId,
      seq: null,
      role: "assistant",
      content: "",
      status: "streaming",
      userId: null,
      replyToId,
      createdAt: new Date().toISOString(),
    });
  }

  /** Appends a piece only when it is the next one; a repeat is dropped, a piece ahead waits for the gap to fill. */
  private applyDelta(d: Events["assistant:delta"]): void {
    const entry = this.entries.get(d.messageId) ?? this.streamEntry(d.messageId, null);
    if (entry.status !== "streaming") return;
    this.streamOf(entry).delta(d.seq, d.text);
    this.showStream(entry);
  }

  private applyActiveStream(a: ActiveStream): void {
    const entry = this.streamEntry(a.messageId, null);
    if (entry.status !== "streaming") return;
    this.streamOf(entry).snapshot(a.seq, a.text);
    this.showStream(entry);
    this.renderComposerState();
  }

  private streamOf(entry: Entry): ReplyStream {
    entry.stream ??= new ReplyStream(entry.id, entry.replyToId);
    return entry.stream;
  }

  private showStream(entry: Entry): void {
    const stream = entry.stream!;
    // A checkpoint read from the row may be ahead of the deltas seen so far: never show less.
    if (stream.text.length >= entry.content.length && stream.text !== entry.content) {
      entry.content = stream.text;
      this.withScroll(() => this.paintBody(entry));
    }
    clearTimeout(this.gapTimer);
    if (stream.hasGap) this.gapTimer = setTimeout(() => void this.resync(), DELTA_GAP_MS);
  }

  /** A delta went missing: rejoining returns the stream so far (activeStream). */
  private async resync(): Promise<void> {
    if (this.resyncing || this.disposed) return;
    this.resyncing = true;
    try {
      await this.join(true);
    } finally {
      this.resyncing = false;
    }
  }

  // ---- entries ----------------------------------------------------------------

  /** Adds or updates a stored message; the same id (or seq) never shows twice. */
  private upsert(m: Message): Entry {
    if (m.role === "user" && m.userId === this.ctx.me.id && m.clientMessageId) this.ctx.outbox.settle(m);
    if (m.status !== "streaming") this.ctx.seen.set(m.id, { sessionId: m.sessionId, role: m.role, content: m.content });
    const existing = this.entries.get(m.id);
    if (!existing) {
      const added = this.add(m);
      const refusal = this.refusals.get(m.id);
      if (refusal !== undefined) {
        this.refusals.delete(m.id);
        added.error = refusal;
      }
      if (fromHistory(added, m) || refusal !== undefined) this.paint(added);
      return added;
    }
    fromHistory(existing, m);
    const seqChanged = existing.seq !== m.seq;
    existing.seq = m.seq;
    existing.createdAt = m.createdAt;
    existing.userId = m.userId;
    existing.replyToId = m.replyToId ?? existing.replyToId;
    existing.attachments = m.attachments ?? existing.attachments;
    if (m.status !== "streaming") {
      existing.status = m.status;
      existing.content = m.content;
      existing.stream = undefined;
    } else if (existing.status === "streaming" && m.content.length > existing.content.length) {
      // A row still streaming holds a checkpoint, usually behind the deltas shown already;
      // and a reply shown as finished never goes back to streaming because of a late read.
      existing.content = m.content;
    }
    if (seqChanged) this.place(existing);
    this.paint(existing);
    return existing;
  }

  private add(m: Pick<Message, "id" | "role" | "content" | "status" | "userId" | "createdAt" | "attachments"> & { seq: number | null; replyToId: number | null }): Entry {
    const body = h("div", { class: "msg-body" });
    const el = h("li", { class: "msg" });
    const entry: Entry = {
      id: m.id,
      seq: m.seq,
      role: m.role,
      content: m.content,
      status: m.status,
      userId: m.userId,
      replyToId: m.replyToId,
      createdAt: m.createdAt,
      ...(m.attachments?.length ? { attachments: m.attachments } : {}),
      key: 0,
      el,
      body,
    };
    this.entries.set(m.id, entry);
    this.place(entry);
    this.paint(entry);
    return entry;
  }

  private seqOf(id: number | null): number | null {
    return id === null ? null : (this.entries.get(id)?.seq ?? null);
  }

  /** Sort key: the seq; a reply whose row is unknown yet sits just after the message it answers. */
  private keyOf(e: Entry): number {
    if (e.seq !== null) return e.seq;
    const to = this.seqOf(e.replyToId);
    return to !== null ? to + 0.5 : Number.MAX_SAFE_INTEGER - 1e6 + e.id / 1e9;
  }

  /** Inserts (or moves) the entry's element where its key says, by binary search. */
  private place(e: Entry): void {
    const at = this.order.indexOf(e);
    if (at >= 0) this.order.splice(at, 1);
    e.key = this.keyOf(e);
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order[mid]!.key < e.key) lo = mid + 1;
      else hi = mid;
    }
    this.order.splice(lo, 0, e);
    const next = this.order[lo + 1];
    this.list.insertBefore(e.el, next ? next.el : null);
    e.el.dataset.seq = e.seq === null ? "" : String(e.seq);
  }

  // ---- rendering -------------------------------------------------------------

  private author(e: Entry): string {
    if (e.role === "assistant") return "Assistant";
    if (e.role === "system") return "System";
    if (e.userId === this.ctx.me.id) return "You";
    return (e.userId && this.ctx.names.get(e.userId)) || "Member";
  }

  private paint(e: Entry): void {
    const focusedAction = e.el.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.action : undefined;
    const own = e.role === "user" && e.userId === this.ctx.me.id;
    e.el.className = `msg msg-${e.role}${own ? " msg-own" : ""}`;
    e.el.dataset.id = String(e.id);
    e.el.dataset.status = e.status;
    e.el.dataset.testid = "message";
    clear(e.el);
    const meta = h(
      "div",
      { class: "msg-meta" },
      h("span", { class: "author" }, this.author(e)),
      h("time", { datetime: e.createdAt, title: fullTime(e.createdAt) }, clockTime(e.createdAt)),
      e.status !== "complete" ? h("span", { class: `badge badge-${e.status}` }, statusLabel(e.status)) : null,
    );
    this.paintBody(e);
    append(e.el, meta, e.body);
    if (e.attachments?.length) append(e.el, attachmentList(this.ctx.conn.token, e.attachments, (m) => this.ctx.toast(m)));
    if (e.role === "assistant" && e.passages?.length) append(e.el, passageChips(e.passages));
    if (e.error) append(e.el, h("p", { class: "msg-error", role: "alert" }, e.error));
    if (e.role === "assistant") append(e.el, this.replyActions(e));
    else if (e.error && e.role === "user") {
      append(
        e.el,
        h(
          "div",
          { class: "msg-actions" },
          h("button", { type: "button", class: "chip", "data-action": "regenerate", onclick: () => this.regenerate(e.id, e) }, icon("retry"), "Ask again"),
        ),
      );
    }
    if (e.role === "assistant" && e.showContext && e.context) append(e.el, this.contextPanel(e));
    if (focusedAction) e.el.querySelector<HTMLElement>(`[data-action="${focusedAction}"]`)?.focus();
  }

  private paintBody(e: Entry): void {
    const drawn = `${e.status}\n${e.content}`;
    if (e.drawn === drawn) return;
    e.drawn = drawn;
    // A reply is read out once it is complete: aria-busy holds the announcement while it streams.
    if (e.role === "assistant") e.body.setAttribute("aria-live", "polite");
    renderText(e.body, e.content);
    if (e.status === "streaming") {
      e.body.setAttribute("aria-busy", "true");
      e.body.appendChild(h("span", { class: "caret", "aria-hidden": "true" }));
      if (!e.content) e.body.prepend(h("span", { class: "thinking" }, "Thinking…"));
    } else {
      e.body.removeAttribute("aria-busy");
    }
  }

  private replyActions(e: Entry): HTMLElement {
    const bar = h("div", { class: "msg-actions" });
    if (e.status === "streaming") {
      append(
        bar,
        h(
          "button",
          { type: "button", class: "chip", "data-action": "stop", disabled: e.stopping === true, onclick: () => this.stop(e) },
          icon("stop"),
          e.stopping ? "Stopping…" : "Stop",
        ),
      );
      return bar;
    }
    const [chips, commentForm] = feedbackControls(e, (rating, comment) => this.rate(e, rating, comment), () => {
      e.commenting = !e.commenting;
      this.paint(e);
    });
    append(bar, chips!);
    if (e.replyToId !== null) {
      append(
        bar,
        h(
          "button",
          { type: "button", class: "chip", "data-action": "regenerate", onclick: () => this.regenerate(e.replyToId!) },
          icon("retry"),
          "Regenerate",
        ),
      );
    }
    if (e.status !== "error" && (e.context?.length !== 0 || (e.passages?.length ?? 0) > 0)) {
      append(
        bar,
        h(
          "button",
          {
            type: "button",
            class: "chip",
            "data-action": "context",
            "aria-expanded": String(e.showContext === true),
            onclick: () => void this.toggleContext(e),
          },
          icon("context"),
          e.showContext ? "Hide context" : e.context ? `Show context (${e.context.length + (e.passages?.length ?? 0)})` : "Show context",
        ),
      );
    }
    if (e.usage) append(bar, h("span", { class: "usage", "data-testid": "usage" }, tokenText(e.usage)));
    if (commentForm) append(bar, commentForm);
    return bar;
  }

  private contextPanel(e: Entry): HTMLElement {
    const items = (e.context ?? []).map((c) => {
      const here = this.entries.get(c.messageId);
      const elsewhere = here ? undefined : this.ctx.seen.get(c.messageId);
      let what: HTMLElement;
      if (here) what = h("span", {}, h("strong", {}, `${this.author(here)}: `), snippet(here.content));
      else if (elsewhere) {
        const title = elsewhere.sessionId === this.session.id ? undefined : this.ctx.sessionTitle(elsewhere.sessionId);
        what = h("span", {}, h("strong", {}, title ? `In “${title}”: ` : `${roleName(elsewhere.role)}: `), snippet(elsewhere.content));
      } else what = h("span", { class: "muted" }, `Message #${c.messageId}, in another session or further back in this one`);
      return h("li", {}, h("span", { class: "score", title: "Relevance score" }, c.score.toFixed(2)), what);
    });
    const docs = (e.passages ?? []).map((p) =>
      h("li", {}, h("span", { class: "score", title: "Relevance score" }, p.score.toFixed(2)), h("span", {}, h("strong", {}, `${p.name}${p.page === null ? "" : `, page ${p.page}`}`))),
    );
    return h(
      "div",
      { class: "context-panel" },
      h("h3", {}, "Earlier messages this reply used"),
      items.length ? h("ol", {}, ...items) : h("p", { class: "muted" }, "None: this reply used no earlier messages."),
      docs.length ? h("h3", {}, "Passages of shared files") : null,
      docs.length ? h("ol", {}, ...docs) : null,
    );
  }

  private renderOutbox(): void {
    clear(this.outboxList);
    for (const item of this.ctx.outbox.forSession(this.session.id)) this.outboxList.appendChild(this.outboxEl(item));
  }

  private outboxEl(item: OutboxItem): HTMLLIElement {
    const state = item.state === "failed" ? "Not sent" : item.state === "sending" ? "Sending…" : "Waiting for connection…";
    const li = h(
      "li",
      { class: `msg msg-user msg-own pending pending-${item.state}`, "data-testid": "pending-message" },
      h("div", { class: "msg-meta" }, h("span", { class: "author" }, "You"), h("span", { class: `badge badge-${item.state}` }, state)),
      h("div", { class: "msg-body" }, item.content),
      item.attachments ? h("p", { class: "muted pending-files" }, `${item.attachments} file${item.attachments === 1 ? "" : "s"} attached`) : null,
    );
    if (item.error && item.state === "failed") append(li, h("p", { class: "msg-error", role: "alert" }, item.error));
    if (item.state === "failed") {
      append(
        li,
        h(
          "div",
          { class: "msg-actions" },
          h("button", { type: "button", class: "chip", onclick: () => this.ctx.outbox.retry(item.clientMessageId) }, icon("retry"), "Try again"),
          h("button", { type: "button", class: "chip", onclick: () => this.ctx.outbox.discard(item.clientMessageId) }, icon("close"), "Discard"),
        ),
      );
    }
    return li;
  }

  /** An archived session is read-only here: the server refuses its messages (ARCHIVED). */
  setArchived(archived: boolean): void {
    this.session = { ...this.session, archived };
    for (const changed of this.joinsInFlight) changed.session.archived = archived;
    this.input.disabled = archived;
    this.sendButton.disabled = archived;
    this.assistantToggle.disabled = archived;
    this.tray.setDisabled(archived);
    this.archivedNote.hidden = !archived;
    this.archivedNote.textContent = archived
      ? `This session is archived: you can read and search it, but not write in it${this.session.role === "owner" ? " unless you unarchive it" : ""}.`
      : "";
  }

  /** The session was renamed (here, in another tab, or by its owner). */
  retitle(title: string): void {
    this.session = { ...this.session, title };
    for (const changed of this.joinsInFlight) changed.session.title = title;
    this.renderHeader();
  }

  private renderHeader(): void {
    this.title.textContent = this.session.title || "Untitled session";
    document.title = `${this.title.textContent} · Memchat`;
    if (this.session.role === "owner" && !this.inviteArea.firstChild) {
      this.inviteArea.appendChild(inviteControl(this.ctx.conn, this.session.id, (m) => this.ctx.names.set(m.userId, m.username)));
    }
    const others = [...this.present].filter((id) => id !== this.ctx.me.id);
    const named = others.map((id) => this.ctx.names.get(id)).filter((n): n is string => !!n);
    const unnamed = others.length - named.length;
    const parts = ["you", ...named, ...(unnamed > 0 ? [`${unnamed} other${unnamed > 1 ? "s" : ""}`] : [])];
    this.presenceEl.textContent = others.length === 0 ? "Only you are here" : `Here now: ${listJoin(parts)}`;
    this.presenceEl.dataset.count = String(others.length + 1);
  }

  private renderTop(): void {
    clear(this.top);
    if (this.loadingOlder) append(this.top, h("p", { class: "muted", role: "status" }, "Loading older messages…"));
    else if (this.cursor !== null)
      append(this.top, h("button", { type: "button", class: "btn btn-ghost", onclick: () => void this.loadOlder() }, "Load older messages"));
    else if (this.joined)
      append(this.top, h("p", { class: "muted start" }, this.order.length ? "This is the beginning of the conversation." : "No messages yet. Say hello!"));
    else append(this.top, h("p", { class: "muted", role: "status" }, "Connecting…"));
  }

  private renderComposerState(): void {
    const streaming = this.order.some((e) => e.status === "streaming");
    this.stopButton.hidden = !streaming;
  }

  private renderTyping(): void {
    const names = [...this.typers.keys()].map((id) => this.ctx.names.get(id) ?? "Someone");
    this.typingEl.textContent = names.length === 0 ? "" : `${listJoin(names)} ${names.length > 1 ? "are" : "is"} typing…`;
  }

  // ---- scrolling ---------------------------------------------------------------

  private nearBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.pinned = true;
    this.jumpButton.hidden = true;
  }

  /** Follows the conversation down when the reader was at the bottom; otherwise offers a jump. */
  private withScroll<T>(change: () => T, forceBottom = false): T {
    const follow = forceBottom || this.nearBottom();
    const heightBefore = this.scroller.scrollHeight;
    const result = change();
    if (follow) this.scrollToBottom();
    else if (this.scroller.scrollHeight > heightBefore) this.jumpButton.hidden = false;
    this.renderTop();
    return result;
  }

  // ---- user actions ---------------------------------------------------------

  private onKeyDown(e: KeyboardEvent): void {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === "Escape" && !this.stopButton.hidden) {
      e.preventDefault();
      this.stopLatest();
    }
  }

  private onInput(): void {
    this.autosize();
    if (!this.input.value.trim()) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.typingSentAt = now;
      this.ctx.conn.notify("typing", { sessionId: this.session.id, isTyping: true });
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  private stopTyping(): void {
    clearTimeout(this.typingIdle);
    if (this.typingSentAt === 0) return;
    this.typingSentAt = 0;
    this.ctx.conn.notify("typing", { sessionId: this.session.id, isTyping: false });
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  private submit(): void {
    if (this.tray.uploading) {
      this.ctx.toast("Wait until your files have finished uploading.");
      return;
    }
    const files = this.tray.ready();
    // A message of files alone says which files.
    const content = this.input.value.trim() ? this.input.value : files.map((f) => f.name).join(", ");
    if (!content.trim()) return;
    this.input.value = "";
    this.autosize();
    this.stopTyping();
    this.tray.clear();
    this.ctx.outbox.add(this.session.id, content, this.assistantToggle.checked, files.map((f) => f.id));
    this.scrollToBottom();
    this.ctx.touched(this.session.id);
  }

  private stopLatest(): void {
    const streaming = this.order.filter((e) => e.status === "streaming");
    const last = streaming[streaming.length - 1];
    if (last) this.stop(last);
  }

  private stop(e: Entry): void {
    if (e.stopping) return;
    e.stopping = true;
    this.paint(e);
    this.ctx.conn.call("assistant:cancel", { sessionId: this.session.id, messageId: e.id }).then(
      ({ cancelled }) => {
        // Not cancelled: it had finished already; its end event shows the result.
        if (!cancelled) {
          e.stopping = false;
          this.paint(e);
        }
      },
      (err: unknown) => {
        e.stopping = false;
        this.paint(e);
        this.ctx.toast(`Could not stop the reply: ${describe(err)}`);
      },
    );
  }

  /** `comment` undefined keeps the comment given before (a rating chip), a string replaces it (the form). */
  private rate(e: Entry, rating: Rating, comment?: string): void {
    const previous = { rating: e.rating, comment: e.comment, commenting: e.commenting };
    const kept = comment ?? e.comment ?? undefined;
    e.rating = rating;
    e.comment = kept?.trim() ? kept.trim() : null;
    e.commenting = false;
    this.paint(e);
    this.ctx.conn.call("message:feedback", kept?.trim() ? { messageId: e.id, rating, comment: kept } : { messageId: e.id, rating }).catch((err: unknown) => {
      Object.assign(e, previous);
      this.paint(e);
      this.ctx.toast(`Could not save your feedback: ${describe(err)}`);
    });
  }

  /** Answers the user message `askedId` again; the earlier reply stays. */
  private regenerate(askedId: number, asked?: Entry): void {
    this.ctx.conn.call("assistant:regenerate", { sessionId: this.session.id, messageId: askedId }).then(
      ({ message }) => {
        if (asked?.error) {
          asked.error = undefined;
          this.paint(asked);
        }
        if (!this.disposed && message.sessionId === this.session.id) this.withScroll(() => this.upsert(message));
        this.renderComposerState();
      },
      (err: unknown) => this.ctx.toast(`Could not regenerate the reply: ${describe(err)}`),
    );
  }

  /** The context comes with assistant:end; a reply from history asks the server for it. */
  private async toggleContext(e: Entry): Promise<void> {
    if (e.showContext) {
      e.showContext = false;
      this.paint(e);
      return;
    }
    if (!e.context) {
      try {
        const found = await this.ctx.conn.call("message:context", { messageId: e.id });
        e.context = found.context;
        // Passages of files the caller may no longer read come without a name: not shown.
        e.passages = (found.passages ?? []).flatMap((p) =>
          p.attachmentId !== null && p.name !== null ? [{ passageId: p.passageId, attachmentId: p.attachmentId, name: p.name, page: p.page, score: p.score }] : [],
        );
      } catch (err) {
        this.ctx.toast(`Could not load the context of this reply: ${describe(err)}`);
        return;
      }
    }
    e.showContext = true;
    this.paint(e);
  }

  private typerStarted(userId: string): void {
    clearTimeout(this.typers.get(userId));
    // A lost "stopped" event must not leave the indicator on forever.
    this.typers.set(userId, setTimeout(() => this.typerStopped(userId), TYPING_SHOWN_MS));
    this.renderTyping();
  }

  private typerStopped(userId: string): void {
    if (!this.typers.has(userId)) return;
    clearTimeout(this.typers.get(userId));
    this.typers.delete(userId);
    this.renderTyping();
  }
}

/** What history tells about a reply beyond its text: its tokens and the reader's own rating. True when anything was taken. */
function fromHistory(e: Entry, m: Message): boolean {
  let changed = false;
  if (m.usage && !e.usage) {
    e.usage = m.usage;
    changed = true;
  }
  if (m.ownFeedback && e.rating === undefined) {
    e.rating = m.ownFeedback.rating;
    e.comment = m.ownFeedback.comment;
    changed = true;
  }
  return changed;
}

function tokenText(u: { promptTokens: number | null; completionTokens: number | null }): string {
  if (u.promptTokens === null && u.completionTokens === null) return "tokens not recorded";
  return `${u.promptTokens ?? "?"} + ${u.completionTokens ?? "?"} tokens`;
}

/** The files (and pages) a reply drew on, as chips under it; one chip per file and page. */
function passageChips(passages: readonly PassageUse[]): HTMLElement {
  const seen = new Set<string>();
  const chips: HTMLElement[] = [];
  for (const p of passages) {
    const label = p.page === null ? p.name : `${p.name} · p. ${p.page}`;
    if (seen.has(label)) continue;
    seen.add(label);
    chips.push(h("span", { class: "chip passage-chip", title: `This reply used a passage of ${p.name}${p.page === null ? "" : `, page ${p.page}`}` }, icon("context"), label));
  }
  return h("div", { class: "passage-chips", "aria-label": "Shared files this reply used" }, ...chips);
}
