// Types of socketio.js for the TypeScript tests that import it; k6 never reads this file.

export declare const EIO: {
  readonly OPEN: "0";
  readonly CLOSE: "1";
  readonly PING: "2";
  readonly PONG: "3";
  readonly MESSAGE: "4";
  readonly UPGRADE: "5";
  readonly NOOP: "6";
};
export declare const SIO: {
  readonly CONNECT: 0;
  readonly DISCONNECT: 1;
  readonly EVENT: 2;
  readonly ACK: 3;
  readonly CONNECT_ERROR: 4;
  readonly BINARY_EVENT: 5;
  readonly BINARY_ACK: 6;
};

export interface Packet {
  type: number;
  nsp: string;
  id?: number;
  data?: unknown;
}

export interface Handshake {
  sid: string;
  pingInterval: number;
  pingTimeout: number;
  maxPayload?: number;
  upgrades?: string[];
}

export type Frame =
  | { kind: "open"; handshake: Handshake }
  | { kind: "ping" | "pong"; data: string }
  | { kind: "close" }
  | { kind: "noop" }
  | { kind: "packet"; packet: Packet };

export declare class ProtocolError extends Error {
  readonly frame: unknown;
  constructor(message: string, frame?: unknown);
}

export declare function socketUrl(baseUrl: string, path?: string): string;
export declare function encodePacket(packet: { type: number; nsp?: string; id?: number | null; data?: unknown }): string;
export declare function decodePacket(str: string): Packet;
export declare function messageFrame(packet: { type: number; nsp?: string; id?: number | null; data?: unknown }): string;
export declare function decodeFrame(frame: string): Frame;

export declare const LOCAL_ERRORS: {
  readonly ACK_TIMEOUT: "ACK_TIMEOUT";
  readonly DISCONNECTED: "DISCONNECTED";
  readonly CLOSED: "CLOSED";
  readonly NOT_CONNECTED: "NOT_CONNECTED";
};

export type AckReply =
  | { ok: true; data: any }
  | { ok: false; error: { code: string; message: string; retryAfterMs?: number }; local?: true }
  | any;

export declare function ackErrorCode(reply: unknown): string | null;

export interface SioClientOptions {
  send: (frame: string) => void;
  nsp?: string;
  auth?: Record<string, unknown>;
  now?: () => number;
}

export declare class SioClient {
  constructor(opts: SioClientOptions);
  readonly nsp: string;
  state: "opening" | "connecting" | "connected" | "refused" | "closed";
  handshake: Handshake | null;
  sid: string | null;
  nextId: number;
  readonly pending: Map<number, { event: string; cb: (reply: AckReply, elapsedMs: number) => void; sentAt: number }>;
  readonly stats: { pings: number; unmatchedAcks: number; otherNamespace: number };
  on(event: string, handler: (...args: any[]) => void): this;
  handleFrame(frame: string): Frame;
  emit(event: string, payload?: unknown, cb?: (reply: AckReply, elapsedMs: number) => void): number | undefined;
  expireAcks(timeoutMs: number): number;
  closed(reason: string, byClient: boolean): void;
}
