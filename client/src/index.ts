/**
 * @memchat/client: one connect() that handles auth, reconnect and resume;
 * sessions whose send() retries with one clientMessageId until stored;
 * assistant replies as async iterables that survive reconnects; presence and
 * typing. Runs in browsers and Node 20+ (socket.io-client 4.8 as a peer).
 */
export { discardAttachment, downloadAttachment, getAttachment, uploadAttachment, type UploadOptions } from "./attachments.js";
export { authenticate, ChatClient, type ClientEvents, connect, type ConnectOptions, userOfToken } from "./client.js";
export { Emitter } from "./emitter.js";
export { asMemchatError, type ClientErrorCode, MemchatError, TRANSIENT_CODES } from "./errors.js";
export { newClientMessageId, Outbox, type OutboxItem, type OutboxOptions } from "./outbox.js";
export type * from "./protocol.js";
export { rest, type RestInit } from "./rest.js";
export {
  type AnalyticsReport,
  type AnalyticsRow,
  type ConfigurationTotals,
  fetchAnalytics,
  fetchMe,
  fetchUsage,
  setUserQuota,
  setUserRole,
  type UsageReport,
} from "./usage.js";
export { type ReplyDelta, type ReplyEnd, ReplyStream } from "./reply-stream.js";
export { ChatSession, type SessionEvents } from "./session.js";
export { defaultStorage, type KeyValueStorage, memoryStorage } from "./storage.js";
export { type ConnectionState, Transport, type TransportOptions } from "./transport.js";
