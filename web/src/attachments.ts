/**
 * Files in the web client: the composer's tray (attach by button or by
 * dropping files on the conversation, one progress bar per upload, remove
 * before sending) and the chips on messages (download; images inline as
 * their thumbnail). Files are fetched with the bearer token and shown
 * through object URLs: no token ever goes into a URL.
 */
import { downloadAttachment, discardAttachment, MemchatError, uploadAttachment } from "@memchat/client";
import { append, clear, h, icon } from "./dom.js";
import type { AttachmentRef } from "./protocol.js";

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

interface TrayItem {
  key: number;
  name: string;
  size: number;
  sent: number;
  state: "uploading" | "ready" | "failed";
  id?: string;
  error?: string;
  abort: AbortController;
}

/** The files waiting in the composer for the next message. */
export class AttachmentTray {
  readonly el: HTMLUListElement;
  readonly button: HTMLButtonElement;
  private readonly input: HTMLInputElement;
  private items: TrayItem[] = [];
  private nextKey = 0;

  constructor(
    private readonly token: string,
    private readonly sessionId: () => string,
    private readonly toast: (message: string) => void,
  ) {
    this.el = h("ul", { class: "tray", "aria-label": "Files to send", "data-testid": "attachment-tray", hidden: true });
    this.input = h("input", { type: "file", multiple: true, class: "sr-only", tabindex: "-1", "data-testid": "attach-input", onchange: () => this.pick() });
    this.button = h(
      "button",
      { type: "button", class: "btn btn-ghost attach", "aria-label": "Attach files", title: "Attach files", onclick: () => this.input.click() },
      icon("paperclip"),
    );
    this.button.appendChild(this.input);
  }

  /** Lets files be dropped on `target` (the whole conversation). */
  acceptDrops(target: HTMLElement): void {
    let depth = 0;
    const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes("Files");
    target.addEventListener("dragenter", (e) => {
      if (!hasFiles(e) || this.button.disabled) return;
      e.preventDefault();
      depth++;
      target.classList.add("dropping");
    });
    target.addEventListener("dragover", (e) => {
      if (hasFiles(e) && !this.button.disabled) e.preventDefault();
    });
    target.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) target.classList.remove("dropping");
    });
    target.addEventListener("drop", (e) => {
      if (!hasFiles(e) || this.button.disabled) return;
      e.preventDefault();
      depth = 0;
      target.classList.remove("dropping");
      this.add([...(e.dataTransfer?.files ?? [])]);
    });
  }

  private pick(): void {
    this.add([...(this.input.files ?? [])]);
    this.input.value = "";
  }

  add(files: File[]): void {
    for (const file of files) {
      const item: TrayItem = { key: this.nextKey++, name: file.name, size: file.size, sent: 0, state: "uploading", abort: new AbortController() };
      this.items.push(item);
      uploadAttachment("", this.token, this.sessionId(), file, file.name, {
        signal: item.abort.signal,
        onProgress: (sent, total) => {
          item.sent = Math.min(sent, total);
          item.size = total;
          this.render();
        },
      }).then(
        (a) => {
          item.state = "ready";
          item.id = a.id;
          this.render();
        },
        (err: unknown) => {
          if (!this.items.includes(item)) return;
          item.state = "failed";
          item.error = err instanceof MemchatError ? err.message : "The upload failed.";
          this.render();
        },
      );
    }
    this.render();
  }

  /** True while a file is still going up: the message waits for it. */
  get uploading(): boolean {
    return this.items.some((i) => i.state === "uploading");
  }

  /** Files uploaded and ready to go with the next message. */
  ready(): { id: string; name: string }[] {
    return this.items.flatMap((i) => (i.state === "ready" && i.id ? [{ id: i.id, name: i.name }] : []));
  }

  /** After a send: the tray empties (the files went with the message). */
  clear(): void {
    this.items = [];
    this.render();
  }

  setDisabled(disabled: boolean): void {
    this.button.disabled = disabled;
  }

  private remove(item: TrayItem): void {
    this.items = this.items.filter((i) => i !== item);
    item.abort.abort();
    if (item.id) discardAttachment("", this.token, item.id).catch(() => undefined);
    this.render();
  }

  private render(): void {
    clear(this.el);
    this.el.hidden = this.items.length === 0;
    for (const item of this.items) {
      const pct = item.size > 0 ? Math.round((item.sent / item.size) * 100) : 0;
      const li = h(
        "li",
        { class: `tray-item tray-${item.state}`, "data-testid": "tray-item", "data-state": item.state },
        icon("file"),
        h("span", { class: "tray-name", title: item.name }, item.name),
        item.state === "uploading"
          ? h("progress", { max: 100, value: pct, "aria-label": `Uploading ${item.name}`, "data-testid": "upload-progress" })
          : h("span", { class: "tray-size" }, item.state === "failed" ? (item.error ?? "Failed") : formatBytes(item.size)),
        h("button", { type: "button", class: "icon-btn", "aria-label": `Remove ${item.name}`, onclick: () => this.remove(item) }, icon("close")),
      );
      this.el.appendChild(li);
    }
  }
}

/** Object URLs of thumbnails, by attachment id, shared by every message in the tab. */
const thumbnails = new Map<string, Promise<string>>();

function thumbnailUrl(token: string, id: string): Promise<string> {
  let url = thumbnails.get(id);
  if (!url) {
    url = downloadAttachment("", token, id, "thumbnail").then((b) => URL.createObjectURL(b));
    url.catch(() => thumbnails.delete(id));
    thumbnails.set(id, url);
  }
  return url;
}

async function save(token: string, a: AttachmentRef, toast: (m: string) => void): Promise<void> {
  try {
    const blob = await downloadAttachment("", token, a.id);
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: a.name, hidden: true });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    toast(err instanceof MemchatError ? err.message : "The download failed.");
  }
}

/** Opens an image in a new tab (from an object URL: the tab never sees the token). */
async function view(token: string, a: AttachmentRef, toast: (m: string) => void): Promise<void> {
  const tab = window.open("", "_blank");
  try {
    const url = URL.createObjectURL(await downloadAttachment("", token, a.id));
    if (tab) tab.location.href = url;
    else window.location.assign(url);
  } catch (err) {
    tab?.close();
    toast(err instanceof MemchatError ? err.message : "The image could not be opened.");
  }
}

/** The files of a message: images as thumbnails, everything as a chip with its size and a download button. */
export function attachmentList(token: string, refs: AttachmentRef[], toast: (m: string) => void): HTMLElement {
  const list = h("ul", { class: "msg-files", "aria-label": "Attached files" });
  for (const a of refs) {
    const chip = h(
      "li",
      { class: "file-chip", "data-testid": "attachment", "data-type": a.contentType },
      a.thumbnail ? null : icon("file"),
      h("span", { class: "file-name", title: a.name }, a.name),
      h("span", { class: "file-size" }, formatBytes(a.size)),
      h("button", { type: "button", class: "icon-btn", "aria-label": `Download ${a.name}`, "data-action": "download", onclick: () => void save(token, a, toast) }, icon("download")),
    );
    if (a.thumbnail) {
      const img = h("img", { class: "file-thumb", alt: a.name, "data-testid": "attachment-preview", ...(a.width && a.height ? { width: Math.min(a.width, 240), height: Math.round((Math.min(a.width, 240) / a.width) * a.height) } : {}) });
      thumbnailUrl(token, a.id).then(
        (url) => (img.src = url),
        () => img.replaceWith(icon("file")),
      );
      chip.classList.add("file-image");
      chip.prepend(h("button", { type: "button", class: "thumb-btn", "aria-label": `Open ${a.name}`, onclick: () => void view(token, a, toast) }, img));
    }
    append(list, chip);
  }
  return list;
}
