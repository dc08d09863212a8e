/**
 * The account menu in the top bar: export my data, log out everywhere,
 * delete my account. Each asks the server, then tells the app what happened
 * (the last two end the sign-in).
 */
import { fetchMe } from "@memchat/client";
import { openAnalyticsPage } from "./analytics-page.js";
import { openConfigurationsPage } from "./configurations-page.js";
import { api, type Auth } from "./api.js";
import { h } from "./dom.js";
import { describe } from "./format.js";
import { openUsagePanel } from "./usage-panel.js";

export interface AccountMenuHooks {
  /** The sign-in ended here (logged out everywhere, account deleted). */
  signOut(notice: string): void;
  toast(message: string): void;
}

let menus = 0;

export function accountMenu(auth: Auth, hooks: AccountMenuHooks): HTMLDivElement {
  const id = `account-menu-${++menus}`;
  const items = h(
    "div",
    { id, class: "account-menu-items", hidden: true },
    item("Usage", () => (close(), openUsagePanel(auth))),
    item("Export my data", () => exportData()),
    item("Log out everywhere", () => logoutAll()),
    item("Delete account", () => deleteAccount(), "danger"),
  );
  const toggle = h(
    "button",
    { type: "button", class: "btn btn-ghost", "aria-expanded": "false", "aria-controls": id, onclick: () => setOpen(items.hidden) },
    "Account",
  );
  const menu = h("div", { class: "account-menu" }, toggle, items);
  const setOpen = (open: boolean) => {
    items.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  };
  const close = () => setOpen(false);
  // Admins also get the analytics page; the role is the server's to tell (it can change after sign-in).
  fetchMe("", auth.token).then(
    ({ role }) => {
      // Says the role is known, so a test can tell "no admin entries" from "not answered yet".
      menu.dataset.role = role;
      if (role === "admin") items.insertBefore(item("Analytics", () => (close(), openAnalyticsPage(auth))), items.children[1] ?? null);
      if (role === "admin") items.insertBefore(item("Configurations", () => (close(), openConfigurationsPage(auth, hooks.toast))), items.children[2] ?? null);
    },
    () => undefined,
  );
  // Closes when focus moves elsewhere, or on Escape.
  menu.addEventListener("focusout", (e) => {
    if (!menu.contains(e.relatedTarget as Node | null)) close();
  });
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !items.hidden) {
      e.stopPropagation();
      close();
      toggle.focus();
    }
  });

  async function exportData(): Promise<void> {
    close();
    try {
      const blob = await api.exportData(auth.token);
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `memchat-export-${auth.user.username}.json`, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      hooks.toast(`Could not export your data: ${describe(err)}`);
    }
  }

  async function logoutAll(): Promise<void> {
    close();
    if (!window.confirm("Log out on every device and browser, this one included?")) return;
    try {
      await api.logoutAll(auth.token);
      hooks.signOut("You were logged out everywhere. Log in again to continue here.");
    } catch (err) {
      hooks.toast(`Could not log out everywhere: ${describe(err)}`);
    }
  }

  async function deleteAccount(): Promise<void> {
    close();
    const typed = window.prompt(
      `Delete your account and everything you own: your sessions and their messages. Your messages in other people's sessions stay, without your name. This cannot be undone.\n\nType your username (${auth.user.username}) to confirm.`,
    );
    if (typed === null) return;
    if (typed.trim() !== auth.user.username) {
      hooks.toast("The username did not match; your account was not deleted.");
      return;
    }
    try {
      const r = await api.deleteAccount(auth.token);
      hooks.signOut(r?.status === "deleting" ? "Your account is closed; its data is being deleted." : "Your account was deleted.");
    } catch (err) {
      hooks.toast(`Could not delete your account: ${describe(err)}`);
    }
  }

  return menu;
}

function item(label: string, onclick: () => void, kind?: "danger"): HTMLButtonElement {
  return h("button", { type: "button", class: `account-menu-item${kind ? ` ${kind}` : ""}`, onclick }, label);
}
