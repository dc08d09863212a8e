/**
 * Archiving in the sidebar: the "Show archived" filter, the owner's
 * Archive / Unarchive button on a session, and the server's session:archived
 * and session:continued events. An open archived session stays readable;
 * its composer is disabled (Conversation.setArchived).
 */
import type { Connection } from "./connection.js";
import type { Conversation } from "./conversation.js";
import { describe } from "./format.js";
import { h, icon } from "./dom.js";
import type { Session } from "./protocol.js";

export interface ArchiveHooks {
  conn(): Connection;
  sessions(): Session[];
  setSessions(list: Session[]): void;
  conversation(): Conversation | null;
  refresh(): Promise<void>;
  toast(message: string): void;
}

export class ArchiveControls {
  readonly filter: HTMLElement;
  private readonly checkbox: HTMLInputElement;

  constructor(private readonly hooks: ArchiveHooks) {
    this.checkbox = h("input", { type: "checkbox", id: "show-archived", "data-testid": "show-archived", onchange: () => void this.hooks.refresh() });
    this.filter = h("label", { class: "toggle archive-filter", for: "show-archived" }, this.checkbox, "Show archived sessions only");
  }

  /** The list shows archived sessions (else live ones). */
  get showing(): boolean {
    return this.checkbox.checked;
  }

  /** The owner's button on a session of the list. */
  action(s: Session, title: string): HTMLButtonElement {
    const verb = s.archived ? "Unarchive" : "Archive";
    return h(
      "button",
      {
        type: "button",
        class: `btn btn-ghost icon-only session-${verb.toLowerCase()}`,
        "aria-label": `${verb} session ${title}`,
        title: `${verb} session`,
        onclick: () => void this.toggle(s),
      },
      icon("archive"),
    );
  }

  listen(): void {
    const conn = this.hooks.conn();
    conn.on("session:archived", (e) => this.apply(e.sessionId, e.archived));
    conn.on("session:continued", (e) => {
      const old = this.hooks.sessions().find((s) => s.id === e.sessionId);
      this.hooks.toast(`“${old?.title || "A session"}” is full: it continues in “${e.successor.title || "Untitled session"}”.`);
      if (!this.showing && !this.hooks.sessions().some((s) => s.id === e.successor.id)) this.hooks.setSessions([e.successor, ...this.hooks.sessions()]);
    });
  }

  private async toggle(s: Session): Promise<void> {
    try {
      const { session } = await this.hooks.conn().call("session:archive", { sessionId: s.id, archived: !s.archived });
      this.apply(session.id, session.archived);
    } catch (err) {
      this.hooks.toast(`Could not ${s.archived ? "unarchive" : "archive"} the session: ${describe(err)}`);
    }
  }

  /** A session changed state: the open conversation follows; the list keeps only what its filter shows. */
  apply(sessionId: string, archived: boolean): void {
    const conv = this.hooks.conversation();
    if (conv?.sessionId === sessionId) conv.setArchived(archived);
    const list = this.hooks.sessions();
    if (!list.some((s) => s.id === sessionId)) return;
    this.hooks.setSessions(
      archived === this.showing ? list.map((s) => (s.id === sessionId ? { ...s, archived } : s)) : list.filter((s) => s.id !== sessionId),
    );
  }
}
