/**
 * Pending invitations in the sidebar: who invited you to what, with Join and
 * Decline. Nothing is joined without a click here: membership is by consent.
 * The server sends the list right after connecting and each new invitation
 * as it is made, on whichever node this tab is connected to.
 */
import type { Connection } from "./connection.js";
import { append, clear, h, icon } from "./dom.js";
import { describe } from "./format.js";
import type { InvitationPayload, Session } from "./protocol.js";

export class InvitationsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private invitations: InvitationPayload[] = [];

  constructor(
    private readonly conn: Connection,
    private readonly hooks: { joined(session: Session): void; toast(message: string): void },
  ) {
    this.list = h("ul", { class: "invitation-list" });
    this.el = h(
      "section",
      { class: "invitations", "aria-labelledby": "invitations-heading", hidden: true, "data-testid": "invitations" },
      h("h2", { id: "invitations-heading", class: "section-title" }, "Invitations"),
      this.list,
    );
    conn.on("session:invitations", (e) => this.replace(e.invitations));
    conn.on("session:invitation", (e) => this.replace([e.invitation, ...this.invitations.filter((i) => i.sessionId !== e.invitation.sessionId)]));
  }

  private replace(invitations: InvitationPayload[]): void {
    this.invitations = invitations;
    this.render();
  }

  private forget(sessionId: string): void {
    this.replace(this.invitations.filter((i) => i.sessionId !== sessionId));
  }

  private async answer(inv: InvitationPayload, accept: boolean): Promise<void> {
    try {
      if (accept) {
        const { session } = await this.conn.call("invitation:accept", { sessionId: inv.sessionId });
        this.forget(inv.sessionId);
        this.hooks.joined(session);
      } else {
        await this.conn.call("invitation:decline", { sessionId: inv.sessionId });
        this.forget(inv.sessionId);
      }
    } catch (err) {
      this.hooks.toast(`Could not answer the invitation: ${describe(err)}`);
      // Withdrawn or answered in another tab: it is gone either way.
      void this.conn.call("invitation:list", {}).then((r) => this.replace(r.invitations), () => undefined);
    }
  }

  private render(): void {
    clear(this.list);
    this.el.hidden = this.invitations.length === 0;
    for (const inv of this.invitations) {
      const title = inv.sessionTitle || "Untitled session";
      append(
        this.list,
        h(
          "li",
          { class: "invitation", "data-session-id": inv.sessionId },
          h("p", { class: "invitation-text" }, h("strong", {}, inv.inviter.username), " invited you to ", h("strong", {}, title)),
          h(
            "div",
            { class: "invitation-actions" },
            h("button", { type: "button", class: "btn btn-primary", "aria-label": `Join ${title}`, onclick: () => void this.answer(inv, true) }, icon("plus"), "Join"),
            h("button", { type: "button", class: "btn btn-ghost", "aria-label": `Decline ${title}`, onclick: () => void this.answer(inv, false) }, "Decline"),
          ),
        ),
      );
    }
  }
}
