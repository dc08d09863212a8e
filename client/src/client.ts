/**
 * connect(): signs in (or takes a token), opens the socket, and keeps it
 * useful across drops: every (re)connect rejoins the open sessions from where
 * they were and sends what the outbox holds.
 */
import { Emitter } from "./emitter.js";
import { MemchatError } from "./errors.js";
import { rest } from "./rest.js";
import { discardAttachment, downloadAttachment, uploadAttachment, type UploadOptions } from "./attachments.js";
import { Outbox, type OutboxItem } from "./outbox.js";
import type {
  AssistantConfiguration,
  AttachmentPayload,
  Calls,
  ConfigurationSettings,
  ConfigurationSummary,
  FeedbackRating,
  InvitationPayload,
  MemoryHit,
  SessionSummary,
  User,
  UserRole,
} from "./protocol.js";
import { ChatSession } from "./session.js";
import { defaultStorage, type KeyValueStorage } from "./storage.js";
import { type ConnectionState, Transport, type TransportOptions } from "./transport.js";

export interface ConnectOptions {
  /** Server origin, e.g. "http://127.0.0.1:3000". Default "": the page's own origin (browser). */
  url?: string;
  /** A token from /api/auth/login or /api/auth/register ... */
  token?: string;
  /** ... or a username and password to log in with (register: true creates the account first). */
  credentials?: { username: string; password: string; register?: boolean };
  /** Where unsent messages are kept. Default: localStorage in a browser, memory elsewhere. */
  storage?: KeyValueStorage;
  /** How long connect() waits for the first connection. Default 20 s. */
  connectTimeoutMs?: number;
  /** How long a call waits for its ack. Default 10 s. */
  callTimeoutMs?: number;
  /** Transient send failures tolerated before a message is marked failed. Default 8. */
  maxSendAttempts?: number;
  /** Passed to socket.io-client, e.g. { transports: ["websocket"] }. */
  socket?: TransportOptions["socket"];
}

export interface ClientEvents {
  state: ConnectionState;
  /** Every connect after the first one, once the open sessions are rejoined. */
  reconnected: undefined;
  /** The token was refused (expired, or the account is gone): sign in again. The client is closed. */
  unauthenticated: MemchatError;
  /** The outbox changed for this session: an item was added, changed state, or left. */
  outbox: { sessionId: string };
  /** An outbox item failed for good (refused, or out of attempts): retry or discard it. */
  sendFailed: OutboxItem;
  /** Someone invited you to a session: acceptInvitation() or declineInvitation(). */
  invitation: InvitationPayload;
  /** A message was stored but its reply did not start: your daily token quota is spent until `resetAt`. */
  replyRefused: { sessionId: string; messageId: number; code: "QUOTA_EXCEEDED"; message: string; resetAt: string };
}

export interface AuthResult {
  token: string;
  user: User;
  /** member or admin (servers before roles answer without it). */
  role?: UserRole;
}

/** POST /api/auth/login (or /register); rejects with the server's code. */
export async function authenticate(url: string, credentials: { username: string; password: string; register?: boolean }): Promise<AuthResult> {
  const path = credentials.register ? "/api/auth/register" : "/api/auth/login";
  return rest<AuthResult>(url, path, { method: "POST", body: { username: credentials.username, password: credentials.password } });
}

/** The user a token names (its claims; the server verifies it, this side only reads it). */
export function userOfToken(token: string): User | undefined {
  try {
    const part = token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="))) as { sub?: unknown; name?: unknown };
    return typeof claims.sub === "string" && typeof claims.name === "string" ? { id: claims.sub, username: claims.name } : undefined;
  } catch {
    return undefined;
  }
}

export class ChatClient extends Emitter<ClientEvents> {
  readonly transport: Transport;
  readonly outbox: Outbox;
  private readonly sessions = new Map<string, ChatSession>();
  private closed = false;

  constructor(
    readonly url: string,
    private currentToken: string,
    readonly user: User | undefined,
    opts: ConnectOptions,
  ) {
    super();
    this.transport = new Transport({ url, token: () => this.currentToken, callTimeoutMs: opts.callTimeoutMs, socket: opts.socket });
    this.outbox = new Outbox({
      send: (item) =>
        this.transport
          .call("message:send", {
            sessionId: item.sessionId,
            clientMessageId: item.clientMessageId,
            content: item.content,
            assistant: item.assistant,
            ...(item.attachments?.length ? { attachments: item.attachments } : {}),
          })
          .then((r) => {
            if (r.replyRefused) this.emit("replyRefused", { sessionId: item.sessionId, messageId: r.message.id, ...r.replyRefused });
            return r.message;
          }),
      online: () => this.transport.connected,
      storage: opts.storage ?? defaultStorage(),
      // Per user: a shared browser must not send one user's drafts as another.
      storageKey: `memchat.outbox.${user?.id ?? "anonymous"}`,
      maxAttempts: opts.maxSendAttempts,
    });
    this.outbox.on("change", (e) => this.emit("outbox", e));
    this.outbox.on("failed", (item) => this.emit("sendFailed", item));
    this.transport.on("state", (s) => this.emit("state", s));
    this.transport.on("unauthenticated", (e) => {
      this.shutDown();
      this.emit("unauthenticated", e);
    });
    this.transport.on("connect", ({ first }) => void this.onConnect(first));
    this.transport.listen("session:invitation", (e) => this.emit("invitation", e.invitation));
  }

  get token(): string {
    return this.currentToken;
  }

  /** A renewed token, used from the next (re)connect on. */
  set token(token: string) {
    this.currentToken = token;
  }

  get state(): ConnectionState {
    return this.transport.state;
  }

  get connected(): boolean {
    return this.transport.connected;
  }

  /** Joins a session (yours, or one you were invited to) and returns its handle; the same one while it is open. */
  async join(sessionId: string): Promise<ChatSession> {
    if (this.closed) throw new MemchatError("CLOSED", "The client is closed.");
    const id = sessionId.toLowerCase();
    let s = this.sessions.get(id);
    if (!s) {
      s = new ChatSession(id, { transport: this.transport, outbox: this.outbox, me: this.user, released: (sid) => this.sessions.delete(sid) });
      this.sessions.set(id, s);
    }
    try {
      await s.join();
    } catch (err) {
      if (this.sessions.get(id) === s && !(err instanceof MemchatError && ["OFFLINE", "TIMEOUT"].includes(err.code))) s.close();
      throw err;
    }
    return s;
  }

  /** Creates a session (with an assistant unless told otherwise) and joins it. */
  async createSession(opts: { title?: string; assistant?: boolean } = {}): Promise<ChatSession> {
    const { session } = await this.transport.call("session:create", opts);
    return this.join(session.id);
  }

  /** One page of your sessions, most recently active first; pass the previous page's nextCursor for the next. */
  listSessions(opts: { cursor?: string | null; limit?: number } = {}): Promise<{ sessions: SessionSummary[]; nextCursor: string | null }> {
    const q = new URLSearchParams();
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    if (opts.cursor) q.set("cursor", opts.cursor);
    return rest(this.url, `/api/sessions${q.size ? `?${q}` : ""}`, { token: this.currentToken });
  }

  /** Uploads a file into a session you are a member of; send its id with session.send(text, { attachments: [id] }). */
  upload(sessionId: string, file: Blob, name: string, opts: UploadOptions = {}): Promise<AttachmentPayload> {
    return uploadAttachment(this.url, this.currentToken, sessionId, file, name, opts);
  }

  /** An attachment's bytes, or its thumbnail, for a member of its session. */
  download(attachmentId: string, variant: "content" | "thumbnail" = "content"): Promise<Blob> {
    return downloadAttachment(this.url, this.currentToken, attachmentId, variant);
  }

  /** Discards your own upload that was not sent (sent ones go with their message or session). */
  discardUpload(attachmentId: string): Promise<void> {
    return discardAttachment(this.url, this.currentToken, attachmentId);
  }

  /** Your pending invitations, newest first. */
  invitations(): Promise<InvitationPayload[]> {
    return this.transport.call("invitation:list", {}).then((r) => r.invitations);
  }

  /** Accepts an invitation (you become a member) and joins the session. */
  async acceptInvitation(sessionId: string): Promise<ChatSession> {
    await this.transport.call("invitation:accept", { sessionId });
    return this.join(sessionId);
  }

  declineInvitation(sessionId: string): Promise<boolean> {
    return this.transport.call("invitation:decline", { sessionId }).then((r) => r.declined);
  }

  memorySearch(query: string, opts: { sessionId?: string; limit?: number; mode?: "hybrid" | "vector" | "lexical" } = {}): Promise<Calls["memory:search"]["output"] & { hits: MemoryHit[] }> {
    return this.transport.call("memory:search", { query, ...opts });
  }

  /** Rates a reply: 1 positive, 0 neutral, -1 negative, with an optional comment. */
  feedback(messageId: number, rating: FeedbackRating, comment?: string): Promise<Calls["message:feedback"]["output"]["feedback"]> {
    return this.transport.call("message:feedback", comment === undefined ? { messageId, rating } : { messageId, rating, comment }).then((r) => r.feedback);
  }

  /** The active assistant configurations, to pick one for a session you own (ChatSession.configure). */
  configurations(): Promise<ConfigurationSummary[]> {
    return rest<{ configurations: ConfigurationSummary[] }>(this.url, "/api/configurations", { token: this.currentToken }).then((r) => r.configurations);
  }

  /** Admins: the assistant configurations with every setting (retired ones too when asked). */
  adminConfigurations(opts: { retired?: boolean } = {}): Promise<AssistantConfiguration[]> {
    return rest<{ configurations: AssistantConfiguration[] }>(this.url, `/api/admin/configurations${opts.retired ? "?retired=true" : ""}`, { token: this.currentToken }).then(
      (r) => r.configurations,
    );
  }

  /**
   * Admins: creates a configuration (no id) or changes the given settings of
   * one. Settings out of bounds reject with code VALIDATION, `field` and `issues`.
   */
  saveConfiguration(settings: ConfigurationSettings, id?: number): Promise<AssistantConfiguration> {
    const init = { token: this.currentToken, body: settings, method: id === undefined ? "POST" : "PATCH" };
    return rest<{ configuration: AssistantConfiguration }>(this.url, `/api/admin/configurations${id === undefined ? "" : `/${id}`}`, init).then((r) => r.configuration);
  }

  /** Admins: "activate", "retire" (its sessions follow the default) or "default" (make it the default). */
  configurationAction(id: number, action: "activate" | "retire" | "default"): Promise<AssistantConfiguration> {
    return rest<{ configuration: AssistantConfiguration }>(this.url, `/api/admin/configurations/${id}/${action}`, { token: this.currentToken, method: "POST" }).then(
      (r) => r.configuration,
    );
  }

  /** Any call of the protocol, typed, with the ack envelope unwrapped (rejects with MemchatError). */
  call<K extends keyof Calls>(event: K, payload: Calls[K]["input"]): Promise<Calls[K]["output"]> {
    return this.transport.call(event, payload);
  }

  /** Resolves once connected (at once if connected); rejects after timeoutMs or if the client closes. */
  ready(timeoutMs?: number): Promise<void> {
    return this.transport.whenConnected(timeoutMs);
  }

  /** Closes the socket. Unsent messages stay in storage, and go out with the next client of this user. */
  close(): void {
    if (this.closed) return;
    this.shutDown();
    this.transport.close();
  }

  private shutDown(): void {
    this.closed = true;
    this.outbox.stop();
    for (const s of [...this.sessions.values()]) s.close();
  }

  private async onConnect(first: boolean): Promise<void> {
    // Rooms first: a message sent before its session is rejoined would fan out to a client not yet listening.
    await Promise.all([...this.sessions.values()].map((s) => s.join().catch(() => undefined)));
    this.outbox.flush();
    if (!first) this.emit("reconnected", undefined);
  }
}

/** Signs in if asked to, connects, and resolves once the socket is up. */
export async function connect(opts: ConnectOptions): Promise<ChatClient> {
  const url = opts.url ?? "";
  let token = opts.token;
  let user = token ? userOfToken(token) : undefined;
  if (!token) {
    if (!opts.credentials) throw new MemchatError("BAD_REQUEST", "connect() needs a token or credentials.");
    ({ token, user } = await authenticate(url, opts.credentials));
  }
  const client = new ChatClient(url, token, user, opts);
  try {
    await client.ready(opts.connectTimeoutMs ?? 20_000);
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}
