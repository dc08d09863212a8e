import type { Message, MessageStatus } from "./protocol.js";

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function clockTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : timeFmt.format(d);
}

export function fullTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : dateTimeFmt.format(d);
}

export function relativeTime(iso: string, now = Date.now()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return "just now";
  if (abs < 3600) return relFmt.format(Math.round(s / 60), "minute");
  if (abs < 86_400) return relFmt.format(Math.round(s / 3600), "hour");
  if (abs < 7 * 86_400) return relFmt.format(Math.round(s / 86_400), "day");
  return dateTimeFmt.format(new Date(t));
}

/**
 * A v4 UUID for clientMessageId. crypto.randomUUID exists only in secure
 * contexts; a server reached over plain http on a LAN address is not one.
 */
export function newClientMessageId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function statusLabel(s: MessageStatus): string {
  switch (s) {
    case "streaming":
      return "writing…";
    case "cancelled":
      return "stopped";
    case "interrupted":
      return "interrupted";
    case "error":
      return "failed";
    case "complete":
      return "";
  }
}

export function roleName(role: Message["role"]): string {
  return role === "assistant" ? "Assistant" : role === "system" ? "System" : "Message";
}

/** One line of at most `max` characters, for lists of search hits and context. */
export function snippet(text: string, max = 160): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** "a", "a and b", "a, b and c". */
export function listJoin(parts: string[]): string {
  if (parts.length <= 1) return parts.join("");
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}
