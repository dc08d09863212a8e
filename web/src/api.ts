/** REST calls (DESIGN.md section 5) and where the signed-in user is kept. */
import { MemchatError as RequestError, rest, type RestInit } from "@memchat/client";
import type { AssistantConfiguration, ConfigurationSettings, ConfigurationSummary, SessionSummary, User } from "./protocol.js";

/**
 * A failure to show the user; `code` is the server's, or NETWORK / TIMEOUT / OFFLINE from this side.
 * The client library's error, so REST and socket failures are told apart by code alone.
 */
export { RequestError };

export interface Auth {
  token: string;
  user: User;
}

/** Same-origin REST through the client library's helper. */
const request = <T>(path: string, init: RestInit = {}): Promise<T> => rest<T>("", path, init);

export const api = {
  register: (username: string, password: string) =>
    request<Auth>("/api/auth/register", { method: "POST", body: { username, password } }),
  login: (username: string, password: string) => request<Auth>("/api/auth/login", { method: "POST", body: { username, password } }),
  /** One page of the session list; pass the previous page's nextCursor for the next. */
  listSessions: (token: string, cursor?: string | null, archived: "true" | "false" = "false", limit = 50) =>
    request<{ sessions: SessionSummary[]; nextCursor: string | null }>(
      `/api/sessions?limit=${limit}&archived=${archived}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      { token },
    ),
  logoutAll: (token: string) => request<void>("/api/auth/logout-all", { method: "POST", token }),
  /** Resolves with `{status: "deleting"}` (202) when the server finishes the deletion in the background. */
  deleteAccount: (token: string) => request<{ status: "deleting" } | undefined>("/api/me", { method: "DELETE", token }),
  exportData: (token: string) => request<Blob>("/api/me/export", { token, raw: true }),
  deleteSession: (token: string, sessionId: string) =>
    request<void>(`/api/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE", token }),
  me: (token: string) => request<{ user: User; role: "member" | "admin" }>("/api/me", { token }),
  /** The active assistant configurations, for a session owner's picker. */
  configurations: (token: string) => request<{ configurations: ConfigurationSummary[] }>("/api/configurations", { token }).then((r) => r.configurations),
  /** Admins: every configuration, retired ones included. */
  adminConfigurations: (token: string) =>
    request<{ configurations: AssistantConfiguration[] }>("/api/admin/configurations?retired=true", { token }).then((r) => r.configurations),
  /** Admins: creates (no id) or changes a configuration; VALIDATION errors carry `issues`. */
  saveConfiguration: (token: string, settings: ConfigurationSettings, id?: number) =>
    request<{ configuration: AssistantConfiguration }>(`/api/admin/configurations${id === undefined ? "" : `/${id}`}`, {
      method: id === undefined ? "POST" : "PATCH",
      token,
      body: settings,
    }).then((r) => r.configuration),
  configurationAction: (token: string, id: number, action: "activate" | "retire" | "default") =>
    request<{ configuration: AssistantConfiguration }>(`/api/admin/configurations/${id}/${action}`, { method: "POST", token }).then((r) => r.configuration),
};

const AUTH_KEY = "memchat.auth";
const LAST_SESSION_KEY = "memchat.lastSession";

export function loadAuth(): Auth | null {
  try {
    const raw = localStorage.getItem(AUTH_KEY);
    if (!raw) return null;
    const a = JSON.parse(raw) as Partial<Auth>;
    return typeof a.token === "string" && typeof a.user?.id === "string" && typeof a.user.username === "string"
      ? { token: a.token, user: { id: a.user.id, username: a.user.username } }
      : null;
  } catch {
    return null;
  }
}

export function saveAuth(a: Auth): void {
  localStorage.setItem(AUTH_KEY, JSON.stringify({ token: a.token, user: a.user }));
}

export function clearAuth(): void {
  localStorage.removeItem(AUTH_KEY);
  localStorage.removeItem(LAST_SESSION_KEY);
}

/** The session to reopen after a reload, per user so a shared browser does not leak one into another's view. */
export function lastSession(userId: string): string | null {
  const raw = localStorage.getItem(LAST_SESSION_KEY);
  if (!raw) return null;
  const [owner, sessionId] = raw.split(" ");
  return owner === userId && sessionId ? sessionId : null;
}

export function rememberSession(userId: string, sessionId: string | null): void {
  if (sessionId) localStorage.setItem(LAST_SESSION_KEY, `${userId} ${sessionId}`);
  else localStorage.removeItem(LAST_SESSION_KEY);
}
