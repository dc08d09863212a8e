/** The owner's "Invite" control: a button that opens a one-field form. */
import { RequestError } from "./api.js";
import type { Connection } from "./connection.js";
import { append, clear, h, icon } from "./dom.js";
import { describe } from "./format.js";

export function inviteControl(conn: Connection, sessionId: string, invited: (member: { userId: string; username: string }) => void): HTMLElement {
  const root = h("div", { class: "invite" });

  function closed(done?: string): void {
    clear(root);
    append(
      root,
      h("button", { type: "button", class: "btn btn-ghost", "aria-expanded": "false", onclick: () => opened() }, icon("plus"), "Invite"),
      done ? h("span", { class: "hint", role: "status" }, done) : null,
    );
  }

  function opened(error?: string, value = ""): void {
    clear(root);
    const input = h("input", { id: "invite-username", autocomplete: "off", required: true, placeholder: "username", value });
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Invite");
    const form = h(
      "form",
      {
        class: "invite-form",
        "aria-label": "Invite someone to this session",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const username = input.value.trim();
          if (!username) return;
          submit.disabled = true;
          conn.call("session:invite", { sessionId, username }).then(
            ({ member, pending }) => {
              invited(member);
              closed(pending ? `Invited ${member.username}: they join when they accept.` : `${member.username} is already a member.`);
            },
            (err: unknown) =>
              opened(err instanceof RequestError && err.code === "NOT_FOUND" ? `There is no user “${username}”.` : describe(err), username),
          );
        },
        onkeydown: (e: KeyboardEvent) => {
          if (e.key !== "Escape") return;
          // Closes this form only, not the drawer around it.
          e.stopPropagation();
          closed();
        },
      },
      h("label", { for: "invite-username", class: "sr-only" }, "Username to invite"),
      input,
      submit,
      h("button", { type: "button", class: "btn btn-ghost icon-only", "aria-label": "Cancel inviting", onclick: () => closed() }, icon("close")),
    );
    append(root, form, error ? h("p", { class: "form-error", role: "alert" }, error) : null);
    input.focus();
  }

  closed();
  return root;
}
