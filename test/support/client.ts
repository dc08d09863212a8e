import { randomBytes } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { Ack } from "../../src/protocol/errors.js";
import type { User } from "../../src/protocol/types.js";

export interface TestUser {
  token: string;
  user: User;
  password: string;
  /** As the server answered at registration. */
  role?: "member" | "admin";
}

export const uniqueName = (prefix = "u") => `${prefix}_${randomBytes(5).toString("hex")}`;

export async function register(baseUrl: string, username = uniqueName(), headers: Record<string, string> = {}): Promise<TestUser> {
  const password = "correct horse battery";
  const res = await fetch(`${baseUrl}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  return { ...((await res.json()) as { token: string; user: User }), password };
}

/** Connects to /chat and resolves once connected (rejects with the connect_error). */
export function connect(baseUrl: string, token: string | undefined, opts: { forceNew?: boolean; headers?: Record<string, string> } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = io(`${baseUrl}/chat`, {
      auth: token === undefined ? {} : { token },
      ...(opts.headers ? { extraHeaders: opts.headers } : {}),
      transports: ["websocket"],
      reconnection: false,
      forceNew: opts.forceNew ?? true,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Emits with an ack and resolves with the envelope. */
export function call<T = any>(socket: Socket, event: string, payload?: unknown, timeoutMs = 10_000): Promise<Ack<T>> {
  return socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<Ack<T>>;
}

/** Like call(), but throws unless ok, and returns data. */
export async function ok<T = any>(socket: Socket, event: string, payload?: unknown): Promise<T> {
  const r = await call<T>(socket, event, payload);
  if (!r.ok) throw new Error(`${event} failed: ${r.error.code} ${r.error.message}`);
  return r.data;
}

export function nextEvent<T = any>(socket: Socket, event: string, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (e: T) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

export async function api(
  baseUrl: string,
  path: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const res = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? "GET",
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** Makes `member` a member the way users do: the owner invites over the socket, the member accepts over REST. */
export async function addMember(baseUrl: string, owner: Socket, sessionId: string, member: TestUser): Promise<void> {
  const r = await ok(owner, "session:invite", { sessionId, username: member.user.username });
  if (!r.pending) return;
  const accepted = await api(baseUrl, `/api/invitations/${sessionId}/accept`, { method: "POST", token: member.token });
  if (accepted.status !== 200) throw new Error(`accept failed: ${accepted.status} ${JSON.stringify(accepted.body)}`);
}
