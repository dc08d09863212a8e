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
