/**
 * The signed-in screen: top bar with the connection state, the sessions
 * list and memory search (a drawer on narrow screens), and the open
 * conversation.
 */
import { api, type Auth, lastSession, RequestError, rememberSession } from "./api.js";
import { accountMenu } from "./account-menu.js";
import { Connection, type ConnectionState } from "./connection.js";
import { Conversation, type ConversationContext } from "./conversation.js";
import { append, clear, h, icon, type IconName } from "./dom.js";
import { describe, relativeTime, roleName, snippet } from "./format.js";
import { ArchiveControls } from "./archive.js";
import { InvitationsPanel } from "./invitations.js";
import { Outbox } from "./outbox.js";
import type { MemoryHit, Session } from "./protocol.js";

const NARROW = window.matchMedia("(max-width: 700px)");
const TOAST_MS = 8_000;

export class ChatApp {
  readonly el: HTMLElement;
  private readonly conn: Connection;
  private readonly outbox: Outbox;
  private readonly names = new Map<string, string>();
  private readonly seen: ConversationContext["seen"] = new Map();
  private sessions: Session[] = [];
  private conversation: Conversation | null = null;
  private readonly main: HTMLElement;
  private readonly sidebar: HTMLElement;
  private readonly backdrop: HTMLDivElement;
  private readonly drawerToggle: HTMLButtonElement;
  private readonly sessionList: HTMLUListElement;
  private readonly connEl: HTMLDivElement;
  private readonly toasts: HTMLDivElement;
  private readonly searchResults: HTMLDivElement;
  private readonly newTitle: HTMLInputElement;
  private listLoaded = false;
  /** Where the next page of the session list starts; null when everything is loaded. */
  private nextCursor: string | null = null;
  private pagedBeyondFirst = false;
  private loadingMore = false;
  private readonly moreObserver: IntersectionObserver;
  /** Sessions a refused join dropped, with the toast it showed: a session:removed right behind says why. */
  private readonly lostToasts = new Map<string, { title: string; toast: HTMLElement }>();
  private readonly archive = new ArchiveControls({
    conn: () => this.conn,
    sessions: () => this.sessions,
    setSessions: (list) => {
      this.sessions = list;
      this.renderSessions();
    },
    conversation: () => this.conversation,
    // The filter changed: start the list over.
    refresh: () => {
      this.sessions = [];
      this.pagedBeyondFirst = false;
      this.nextCursor = null;
      return this.refreshSessions();
    },
    toast: (m) => this.toast(m),
  });

  constructor(
    private readonly auth: Auth,
    private readonly signOut: (notice?: string) => void,
  ) {
    this.names.set(auth.user.id, auth.user.username);
    this.conn = new Connection(auth.token, {
      onState: (s) => this.renderConnection(s),
      onConnect: (first) => {
        void this.conversation?.resume();
        this.outbox.flush();
        if (!first) void this.refreshSessions();
      },
      onAuthRejected: () => this.signOut("Your sign-in has expired. Please log in again."),
    });
    this.outbox = new Outbox(this.conn, {
      changed: (sessionId) => {
        if (this.conversation?.sessionId === sessionId) this.conversation.outboxChanged();
      },
      stored: (message) => this.conversation?.stored(message),
    });

    this.drawerToggle = h(
      "button",
      {
        type: "button",
        class: "btn btn-ghost drawer-toggle icon-only",
        "aria-controls": "sidebar",
        "aria-expanded": "false",
        "aria-label": "Sessions",
        title: "Sessions",
        onclick: () => this.setDrawer(this.drawerToggle.getAttribute("aria-expanded") !== "true"),
      },
      icon("menu"),
    );
    this.connEl = h("div", { class: "conn", role: "status", "data-testid": "connection" });
    this.renderConnection(this.conn.state);
    const topbar = h(
      "header",
      { class: "topbar" },
      this.drawerToggle,
      h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }, "m"), h("h1", {}, "Memchat")),
      this.connEl,
      h(
        "div",
        { class: "user" },
        h("span", { class: "avatar", "aria-hidden": "true" }, auth.user.username.slice(0, 1).toUpperCase()),
        h("span", { class: "username", "data-testid": "username" }, auth.user.username),
        accountMenu(auth, { signOut: (notice) => this.signOut(notice), toast: (m) => this.toast(m) }),
        h(
          "button",
          { type: "button", class: "btn btn-ghost icon-only", "aria-label": "Log out", title: "Log out", onclick: () => this.signOut() },
          icon("logout"),
        ),
      ),
    );

    this.newTitle = h("input", { id: "new-session-title", maxlength: 200, placeholder: "Title (optional)", autocomplete: "off" });
    const newForm = h(
      "form",
      { class: "new-session", "aria-label": "Start a new session", onsubmit: (e: Event) => (e.preventDefault(), void this.createSession()) },
      h("label", { for: "new-session-title", class: "sr-only" }, "Title of the new session"),
      this.newTitle,
      h("button", { type: "submit", class: "btn btn-primary" }, icon("plus"), "New chat"),
    );
    this.sessionList = h("ul", { class: "session-list", "aria-labelledby": "sessions-heading" });

    const query = h("input", { id: "memory-query", type: "search", placeholder: "Search all your sessions", autocomplete: "off" });
    this.searchResults = h("div", { class: "search-results", "aria-live": "polite" });
    const searchForm = h(
      "form",
      { role: "search", class: "memory-search", "aria-label": "Memory search", onsubmit: (e: Event) => (e.preventDefault(), void this.search(query.value)) },
      h("label", { for: "memory-query", class: "sr-only" }, "Search memory across all sessions"),
      h("div", { class: "search-row" }, query, h("button", { type: "submit", class: "btn btn-ghost icon-only", "aria-label": "Search" }, icon("search"))),
    );

    const invitations = new InvitationsPanel(this.conn, {
      joined: (session) => {
        this.sessions = [session, ...this.sessions.filter((s) => s.id !== session.id)];
        this.open(session);
      },
      toast: (m) => this.toast(m),
    });
    this.sidebar = h(
      "aside",
      { id: "sidebar", class: "sidebar", "aria-label": "Sessions and memory search" },
      h(
        "nav",
        { class: "sessions", "aria-labelledby": "sessions-heading" },
        h("h2", { id: "sessions-heading", class: "section-title" }, "Sessions"),
        newForm,
        this.archive.filter,
        this.sessionList,
      ),
      invitations.el,
      h("section", { class: "memory", "aria-labelledby": "memory-heading" }, h("h2", { id: "memory-heading", class: "section-title" }, "Memory"), searchForm, this.searchResults),
    );
    this.backdrop = h("div", { class: "backdrop", hidden: true, onclick: () => this.setDrawer(false) });
    this.main = h("main", { id: "main", class: "main", tabindex: "-1" });
    this.toasts = h("div", { class: "toasts", role: "alert", "aria-live": "assertive" });

    this.el = h(
      "div",
      { class: "app" },
      h("a", { href: "#main", class: "skip-link" }, "Skip to conversation"),
      topbar,
      h("div", { class: "body" }, this.sidebar, this.backdrop, this.main),
      this.toasts,
    );
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.drawerOpen()) {
        this.setDrawer(false);
        this.drawerToggle.focus();
      }
    });
    NARROW.addEventListener("change", this.onWidthChange);
    window.addEventListener("focus", this.onWindowFocus);
    // Another tab or the owner renamed a session this tab shows.
    this.conn.on("session:updated", (e) => this.retitle(e.sessionId, e.title, e.updatedAt));
    // This user left, was removed, or the session was deleted (by this tab, another, or the owner).
    this.conn.on("session:removed", (e) => {
      const known = this.sessions.some((s) => s.id === e.sessionId);
      // A join refused a moment before this event already dropped the session: its toast now says why.
      const lost = known ? undefined : this.lostToasts.get(e.sessionId);
      this.lostToasts.delete(e.sessionId);
      if ((known || lost) && e.reason !== "left") {
        const title = lost?.title ?? (this.sessions.find((s) => s.id === e.sessionId)?.title || "Untitled session");
        const text = e.reason === "deleted" ? `“${title}” was deleted by its owner.` : `You were removed from “${title}”.`;
        if (lost?.toast.isConnected) lost.toast.querySelector("span")!.textContent = text;
        else this.toast(text);
      }
      if (known) this.removeSession(e.sessionId);
    });
    // The end of the session list scrolled into view: load the next page.
    this.moreObserver = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void this.loadMore(), {
      root: this.sidebar,
      rootMargin: "200px",
    });
    this.archive.listen();
    this.renderEmpty();
    this.renderSessions();
    void this.start();
  }

  dispose(): void {
    this.conversation?.dispose();
    this.moreObserver.disconnect();
    this.conn.close();
    NARROW.removeEventListener("change", this.onWidthChange);
    window.removeEventListener("focus", this.onWindowFocus);
  }

  private async start(): Promise<void> {
    await this.refreshSessions();
    const remembered = lastSession(this.auth.user.id);
    const initial = this.sessions.find((s) => s.id === remembered) ?? (NARROW.matches ? undefined : this.sessions[0]);
    // Opened for the user, not by them: the composer takes focus only if nothing has it yet (a menu opened
    // while the list was loading would close on losing it).
    if (initial) this.open(initial, document.activeElement === null || document.activeElement === document.body);
    else if (NARROW.matches) this.setDrawer(true);
  }

  // ---- sessions ----------------------------------------------------------------

  private async refreshSessions(): Promise<void> {
    const known = new Set(this.sessions.map((s) => s.id));
    try {
      const page = await api.listSessions(this.auth.token, null, this.archive.showing ? "true" : "false");
      // Pages loaded further down stay; the first page brings what changed at the top.
      const fresh = new Set(page.sessions.map((s) => s.id));
      // Sessions this tab created or joined while the page was on its way may be missing from it: they stay, on top.
      const addedMeanwhile = this.sessions.filter((s) => !known.has(s.id) && !fresh.has(s.id));
      this.sessions = [...addedMeanwhile, ...page.sessions, ...(this.pagedBeyondFirst ? this.sessions.filter((s) => !fresh.has(s.id) && known.has(s.id)) : [])];
      if (!this.pagedBeyondFirst) this.nextCursor = page.nextCursor;
      this.listLoaded = true;
      this.renderSessions();
    } catch (err) {
      if (err instanceof RequestError && err.code === "UNAUTHENTICATED") {
        this.signOut("Your sign-in has expired. Please log in again.");
        return;
      }
      this.toast(`Could not load your sessions: ${describe(err)}`);
    }
  }

  private async loadMore(): Promise<void> {
    if (!this.nextCursor || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const page = await api.listSessions(this.auth.token, this.nextCursor, this.archive.showing ? "true" : "false");
      const have = new Set(this.sessions.map((s) => s.id));
      this.sessions = [...this.sessions, ...page.sessions.filter((s) => !have.has(s.id))];
      this.nextCursor = page.nextCursor;
      this.pagedBeyondFirst = true;
    } catch (err) {
      this.toast(`Could not load more sessions: ${describe(err)}`);
      return;
    } finally {
      this.loadingMore = false;
    }
    this.renderSessions();
  }

  private async createSession(): Promise<void> {
    const title = this.newTitle.value.trim();
    try {
      const { session } = await this.conn.call("session:create", title ? { title } : {});
      this.newTitle.value = "";
      this.sessions = [session, ...this.sessions.filter((s) => s.id !== session.id)];
      this.renderSessions();
      this.open(session);
    } catch (err) {
      this.toast(`Could not create the session: ${describe(err)}`);
    }
  }

  private async deleteSession(s: Session): Promise<void> {
    if (!window.confirm(`Delete “${s.title || "Untitled session"}” and all its messages? This cannot be undone.`)) return;
    try {
      await api.deleteSession(this.auth.token, s.id);
    } catch (err) {
      if (!(err instanceof RequestError && err.code === "NOT_FOUND")) {
        this.toast(`Could not delete the session: ${describe(err)}`);
        return;
      }
    }
    this.removeSession(s.id);
  }

  private async leaveSession(s: Session): Promise<void> {
    if (!window.confirm(`Leave “${s.title || "Untitled session"}”? You will need a new invitation to come back.`)) return;
    try {
      await this.conn.call("member:leave", { sessionId: s.id });
    } catch (err) {
      if (!(err instanceof RequestError && err.code === "NOT_FOUND")) {
        this.toast(`Could not leave the session: ${describe(err)}`);
        return;
      }
    }
    this.removeSession(s.id);
  }

  private async renameSession(s: Session): Promise<void> {
    const title = window.prompt("New name for this session", s.title);
    if (title === null || title.trim() === s.title) return;
    try {
      const { session } = await this.conn.call("session:rename", { sessionId: s.id, title: title.trim() });
      this.retitle(session.id, session.title, session.updatedAt);
    } catch (err) {
      this.toast(`Could not rename the session: ${describe(err)}`);
    }
  }

  private retitle(sessionId: string, title: string, updatedAt: string): void {
    const current = this.sessions.find((x) => x.id === sessionId);
    if (!current) return;
    this.sessions = this.sessions.map((x) => (x.id === sessionId ? { ...x, title, updatedAt } : x));
    if (this.conversation?.sessionId === sessionId) this.conversation.retitle(title);
    this.renderSessions();
  }

  private removeSession(sessionId: string): void {
    this.sessions = this.sessions.filter((x) => x.id !== sessionId);
    this.outbox.dropSession(sessionId);
    if (this.conversation?.sessionId === sessionId) this.close();
    this.renderSessions();
  }

  private open(session: Session, takeFocus = true): void {
    if (this.conversation?.sessionId === session.id) {
      this.setDrawer(false);
      if (takeFocus) this.conversation.focusComposer();
      return;
    }
    this.conversation?.dispose();
    const conv = new Conversation(session, {
      conn: this.conn,
      token: this.auth.token,
      me: this.auth.user,
      outbox: this.outbox,
      names: this.names,
      seen: this.seen,
      sessionTitle: (id) => {
        const s = this.sessions.find((x) => x.id === id);
        return s ? s.title || "Untitled session" : undefined;
      },
      toast: (m) => this.toast(m),
      touched: (s) => this.touched(s),
      lost: (id, reason) => {
        const title = this.sessions.find((x) => x.id === id)?.title || "Untitled session";
        this.lostToasts.set(id, { title, toast: this.toast(reason) });
        setTimeout(() => this.lostToasts.delete(id), TOAST_MS);
        this.removeSession(id);
      },
      isOpen: (id) => this.conversation?.sessionId === id,
      synced: (s) => {
        const listed = this.sessions.find((x) => x.id === s.id);
        if (!listed) return;
        if (listed.title !== s.title) this.retitle(s.id, s.title, s.updatedAt);
        if (listed.archived !== s.archived) this.archive.apply(s.id, s.archived);
      },
    });
    this.conversation = conv;
    rememberSession(this.auth.user.id, session.id);
    clear(this.main);
    this.main.appendChild(conv.el);
    this.renderSessions();
    this.setDrawer(false);
    void conv.open();
    if (takeFocus && !NARROW.matches) conv.focusComposer();
  }

  private close(): void {
    this.conversation?.dispose();
    this.conversation = null;
    rememberSession(this.auth.user.id, null);
    this.renderEmpty();
  }

  /** Something happened in a session: it moves to the top, as the server orders by last activity. */
  private touched(s: Session | string): void {
    const id = typeof s === "string" ? s : s.id;
    const current = this.sessions.find((x) => x.id === id);
    if (!current) return;
    const updated = typeof s === "string" ? { ...current, updatedAt: new Date().toISOString() } : s;
    this.sessions = [updated, ...this.sessions.filter((x) => x.id !== id)];
    this.renderSessions();
  }

  // ---- memory search ----------------------------------------------------------

  private async search(q: string): Promise<void> {
    const query = q.trim();
    clear(this.searchResults);
    if (!query) return;
    append(this.searchResults, h("p", { class: "muted" }, "Searching…"));
    try {
      const { hits, degraded } = await this.conn.call("memory:search", { query, limit: 10 });
      for (const hit of hits) this.seen.set(hit.messageId, { sessionId: hit.sessionId, role: hit.role, content: hit.content });
      this.renderHits(query, hits);
      // Without the embedder the server searches words only; say so, since meaning-alike matches are missing.
      if (degraded) this.searchResults.prepend(h("p", { class: "hint" }, "Word matches only: semantic search is unavailable right now."));
    } catch (err) {
      clear(this.searchResults);
      append(this.searchResults, h("p", { class: "form-error" }, `Search failed: ${describe(err)}`));
    }
  }

  private renderHits(query: string, hits: MemoryHit[]): void {
    clear(this.searchResults);
    if (hits.length === 0) {
      append(this.searchResults, h("p", { class: "muted" }, `Nothing found for “${query}”.`));
      return;
    }
    const list = h("ul", { class: "hits", "aria-label": `Results for ${query}` });
    for (const hit of hits) {
      const session = this.sessions.find((s) => s.id === hit.sessionId);
      append(
        list,
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "hit",
              onclick: () => {
                if (session) {
                  this.open(session);
                  this.conversation?.highlight(hit.messageId);
                }
              },
              disabled: !session,
            },
            h(
              "span",
              { class: "hit-meta" },
              h("span", {}, session ? session.title || "Untitled session" : "A session not in your list"),
              h("span", { class: "score", title: "Relevance score" }, hit.score.toFixed(2)),
            ),
            h("span", { class: "hit-text" }, h("strong", {}, `${roleName(hit.role)}: `), snippet(hit.content, 200)),
          ),
        ),
      );
    }
    append(this.searchResults, list, h("button", { type: "button", class: "link", onclick: () => clear(this.searchResults) }, "Clear results"));
  }

  // ---- rendering ----------------------------------------------------------------

  private renderSessions(): void {
    clear(this.sessionList);
    if (this.sessions.length === 0) {
      append(this.sessionList, h("li", { class: "muted empty" }, this.listLoaded ? "No sessions yet." : "Loading…"));
      return;
    }
    for (const s of this.sessions) {
      const active = this.conversation?.sessionId === s.id;
      const title = s.title || "Untitled session";
      append(
        this.sessionList,
        h(
          "li",
          { class: `session${active ? " active" : ""}`, "data-testid": "session", "data-session-id": s.id },
          h(
            "button",
            { type: "button", class: "session-open", "aria-current": active ? "page" : false, onclick: () => this.open(s) },
            h("span", { class: "session-title" }, title),
            h("span", { class: "session-time" }, relativeTime(s.updatedAt), s.role === "member" ? " · shared with you" : "", s.archived ? " · archived" : ""),
          ),
          s.role === "owner" ? ownerAction("Rename", title, "pencil", () => void this.renameSession(s)) : null,
          s.role === "owner" ? this.archive.action(s, title) : null,
          s.role === "owner" ? ownerAction("Delete", title, "trash", () => void this.deleteSession(s)) : null,
          s.role === "member" ? ownerAction("Leave", title, "logout", () => void this.leaveSession(s)) : null,
        ),
      );
    }
    this.moreObserver.disconnect();
    if (this.nextCursor) {
      const more = h("li", { class: "muted more", "data-testid": "sessions-more" }, "Loading more…");
      append(this.sessionList, more);
      this.moreObserver.observe(more);
    }
  }

  private renderEmpty(): void {
    clear(this.main);
    append(
      this.main,
      h(
        "div",
        { class: "empty-state" },
        h("h2", {}, "No session open"),
        h("p", { class: "muted" }, "Pick a session from the list, or start a new one."),
        h("button", { type: "button", class: "btn btn-primary", onclick: () => void this.createSession() }, icon("plus"), "New chat"),
      ),
    );
  }

  private renderConnection(s: ConnectionState): void {
    this.connEl.dataset.state = s.kind;
    const text =
      s.kind === "online"
        ? "Connected"
        : s.kind === "connecting"
          ? "Connecting…"
          : s.kind === "reconnecting"
            ? s.attempt > 0
              ? `Reconnecting… (attempt ${s.attempt})`
              : "Reconnecting…"
            : `Offline: ${s.reason}, retrying`;
    clear(this.connEl);
    append(this.connEl, h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "conn-text" }, text));
  }

  toast(message: string): HTMLElement {
    const t = h(
      "div",
      { class: "toast" },
      h("span", {}, message),
      h("button", { type: "button", class: "btn btn-ghost icon-only", "aria-label": "Dismiss", onclick: () => t.remove() }, icon("close")),
    );
    this.toasts.appendChild(t);
    setTimeout(() => t.remove(), TOAST_MS);
    return t;
  }

  // ---- drawer -------------------------------------------------------------------

  private drawerOpen(): boolean {
    return NARROW.matches && this.drawerToggle.getAttribute("aria-expanded") === "true";
  }

  private setDrawer(open: boolean): void {
    const on = open && NARROW.matches;
    this.drawerToggle.setAttribute("aria-expanded", String(on));
    this.sidebar.classList.toggle("open", on);
    this.backdrop.hidden = !on;
    if (on) this.sidebar.querySelector<HTMLElement>("button, input")?.focus();
  }

  private readonly onWidthChange = () => this.setDrawer(false);

  /** Another tab may have joined or left sessions: coming back to this one is a good moment to look. */
  private readonly onWindowFocus = () => void this.refreshSessions();
}

/** A button on a session in the list: `Rename session <title>`, `Delete session <title>` (owner), `Leave session <title>` (member). */
function ownerAction(verb: "Rename" | "Delete" | "Leave", sessionTitle: string, iconName: IconName, onclick: () => void): HTMLButtonElement {
  return h(
    "button",
    { type: "button", class: `btn btn-ghost icon-only session-${verb.toLowerCase()}`, "aria-label": `${verb} session ${sessionTitle}`, title: `${verb} session`, onclick },
    icon(iconName),
  );
}
