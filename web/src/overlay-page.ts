/**
 * A full-window page over the chat (usage, analytics): a title, a close
 * button, Escape closes it, focus returns where it was.
 */
import { h } from "./dom.js";

export interface OverlayPage {
  el: HTMLElement;
  body: HTMLElement;
  close(): void;
}

export function openOverlayPage(id: string, title: string, onClose?: () => void): OverlayPage {
  document.getElementById(id)?.remove();
  const returnFocus = document.activeElement as HTMLElement | null;
  const heading = h("h1", { class: "page-title", id: `${id}-title` }, title);
  const body = h("div", { class: "page-body" });
  const closeButton = h("button", { type: "button", class: "btn btn-ghost", onclick: () => close() }, "Close");
  const el = h(
    "section",
    { id, class: "overlay-page", role: "dialog", "aria-modal": "true", "aria-labelledby": `${id}-title`, tabindex: "-1" },
    h("header", { class: "page-header" }, heading, closeButton),
    body,
  );
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") close();
  };
  el.addEventListener("keydown", onKey);
  document.body.appendChild(el);
  el.focus();
  let closed = false;
  function close(): void {
    if (closed) return;
    closed = true;
    el.remove();
    onClose?.();
    returnFocus?.focus();
  }
  return { el, body, close };
}
