/**
 * Engine.IO v4 / Socket.IO v5 over one plain WebSocket, for k6 (which has no
 * Socket.IO client). Plain JavaScript with no k6 imports, so the same code is
 * unit-tested in Node against the real socket.io server and parser.
 *
 * Scope is what a websocket-only JSON client needs: no long-polling, no
 * transport upgrade, no binary attachments (the chat server sends none).
 *
 * One WebSocket frame carries one Engine.IO packet: a type digit, then data.
 * An Engine.IO "message" (4) carries one Socket.IO packet:
 *   <type>[<namespace>,][<ack id>][<JSON>]      e.g. 42/chat,7["message:send",{...}]
 */

export const EIO = { OPEN: "0", CLOSE: "1", PING: "2", PONG: "3", MESSAGE: "4", UPGRADE: "5", NOOP: "6" };
export const SIO = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

// The real parser refuses these as event names; SioClient reuses the first three for its own notifications.
const RESERVED_EVENTS = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

// Ack ids are decimal digits in the frame; more than 15 could exceed a double's exact integers.
const MAX_ID_DIGITS = 15;

export class ProtocolError extends Error {
  constructor(message, frame) {
    super(message);
    this.name = "ProtocolError";
    this.frame = typeof frame === "string" ? frame.slice(0, 200) : frame;
  }
}

/** The Engine.IO websocket URL for a server's base URL (http→ws, https→wss; a path prefix is kept). */
export function socketUrl(baseUrl, path) {
  const m = /^(https?|wss?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(String(baseUrl).trim());
  if (!m) throw new Error(`BASE_URL must look like http://host:port, got '${baseUrl}'`);
  const secure = m[1].toLowerCase() === "https" || m[1].toLowerCase() === "wss";
  const prefix = (m[3] || "").replace(/\/+$/, "");
  const ioPath = path || "/socket.io/";
  return `${secure ? "wss" : "ws"}://${m[2]}${prefix}${ioPath}?EIO=4&transport=websocket`;
}

const isObject = (v) => Object.prototype.toString.call(v) === "[object Object]";

// The same payload rules as socket.io-parser, so a frame we accept is one the server could have sent.
function isDataValid(type, data) {
  switch (type) {
    case SIO.CONNECT:
      return data === undefined || isObject(data);
    case SIO.DISCONNECT:
      return data === undefined;
    case SIO.CONNECT_ERROR:
      return typeof data === "string" || isObject(data);
    case SIO.EVENT:
      return (
        Array.isArray(data) &&
        (typeof data[0] === "number" || (typeof data[0] === "string" && RESERVED_EVENTS.indexOf(data[0]) === -1))
      );
    case SIO.ACK:
      return Array.isArray(data);
    default:
      return false;
  }
}

function isNamespace(nsp) {
  return typeof nsp === "string" && nsp.charAt(0) === "/" && nsp.indexOf(",") === -1;
}

/** One Socket.IO packet ({type, nsp, id?, data?}) as a string, byte for byte what socket.io-parser writes. */
export function encodePacket(p) {
  if (p.type === SIO.BINARY_EVENT || p.type === SIO.BINARY_ACK) throw new ProtocolError("binary packets are not supported");
  const nsp = p.nsp === undefined ? "/" : p.nsp;
  if (!isNamespace(nsp)) throw new ProtocolError(`bad namespace '${nsp}'`);
  const hasId = p.id !== undefined && p.id !== null;
  if (hasId && !(Number.isInteger(p.id) && p.id >= 0)) throw new ProtocolError(`bad ack id '${p.id}'`);
  if (p.type === SIO.ACK && !hasId) throw new ProtocolError("an ack needs an id");
  if (!isDataValid(p.type, p.data)) throw new ProtocolError(`bad payload for packet type ${p.type}`);
  let s = String(p.type);
  if (nsp !== "/") s += nsp + ",";
  if (hasId) s += String(p.id);
  if (p.data !== undefined) s += JSON.stringify(p.data);
  return s;
}

/** Parses one Socket.IO packet string; throws ProtocolError on anything the real parser would refuse. */
export function decodePacket(str) {
  if (typeof str !== "string" || str.length === 0) throw new ProtocolError("empty packet", str);
  const type = str.charCodeAt(0) - 48;
  if (!(type >= 0 && type <= 6)) throw new ProtocolError(`unknown packet type '${str.charAt(0)}'`, str);
  if (type === SIO.BINARY_EVENT || type === SIO.BINARY_ACK) throw new ProtocolError("binary packets are not supported", str);
  let i = 1;
  let nsp = "/";
  if (str.charAt(i) === "/") {
    const comma = str.indexOf(",", i);
    nsp = str.slice(i, comma === -1 ? str.length : comma);
    i = comma === -1 ? str.length : comma + 1;
  }
  const idStart = i;
  while (i < str.length && str.charCodeAt(i) >= 48 && str.charCodeAt(i) <= 57) i++;
  let id;
  if (i > idStart) {
    if (i - idStart > MAX_ID_DIGITS) throw new ProtocolError("ack id too long", str);
    id = Number(str.slice(idStart, i));
  }
  let data;
  if (i < str.length) {
    try {
      data = JSON.parse(str.slice(i));
    } catch (e) {
      throw new ProtocolError("payload is not JSON", str);
    }
  }
  if (!isDataValid(type, data)) throw new ProtocolError(`invalid payload for packet type ${type}`, str);
  if (type === SIO.ACK && id === undefined) throw new ProtocolError("ack without an id", str);
  const packet = { type, nsp };
  if (id !== undefined) packet.id = id;
  if (data !== undefined) packet.data = data;
  return packet;
}

/** A Socket.IO packet wrapped as an Engine.IO message frame, ready for ws.send. */
export function messageFrame(packet) {
  return EIO.MESSAGE + encodePacket(packet);
}

/**
 * Parses one WebSocket text frame:
 *   {kind:"open", handshake} | {kind:"ping"|"pong", data} | {kind:"close"} | {kind:"noop"} | {kind:"packet", packet}
 */
export function decodeFrame(frame) {
  if (typeof frame !== "string" || frame.length === 0) throw new ProtocolError("empty or non-text frame", frame);
  const rest = frame.slice(1);
  switch (frame.charAt(0)) {
    case EIO.OPEN: {
      let hs;
      try {
        hs = JSON.parse(rest);
      } catch (e) {
        throw new ProtocolError("open packet is not JSON", frame);
      }
      if (!isObject(hs) || typeof hs.sid !== "string" || typeof hs.pingInterval !== "number" || typeof hs.pingTimeout !== "number") {
        throw new ProtocolError("open packet lacks sid, pingInterval or pingTimeout", frame);
      }
      return { kind: "open", handshake: hs };
    }
    case EIO.CLOSE:
      return { kind: "close" };
    case EIO.PING:
      return { kind: "ping", data: rest };
    case EIO.PONG:
      return { kind: "pong", data: rest };
    case EIO.MESSAGE:
      return { kind: "packet", packet: decodePacket(rest) };
    case EIO.NOOP:
      return { kind: "noop" };
    default:
      // UPGRADE (5) included: a websocket-only client never asked for one.
      throw new ProtocolError(`unexpected Engine.IO packet type '${frame.charAt(0)}'`, frame);
  }
}

/**
 * Codes of acks the client fails by itself, shaped like the server's error
 * envelope so scripts handle every reply the same way. None is a server code.
 */
export const LOCAL_ERRORS = {
  ACK_TIMEOUT: "ACK_TIMEOUT", // no ack within the timeout given to expireAcks
  DISCONNECTED: "DISCONNECTED", // the connection went away with the ack outstanding
  CLOSED: "CLOSED", // the script closed the connection itself with the ack outstanding
  NOT_CONNECTED: "NOT_CONNECTED", // emit before connect or after disconnect
};

function localError(code, message) {
  return { ok: false, error: { code, message }, local: true };
}

/** The error code of an ack envelope, or null when it is {ok:true}; a malformed reply counts as BAD_REPLY. */
export function ackErrorCode(reply) {
  if (reply && reply.ok === true) return null;
  if (reply && reply.ok === false && reply.error && typeof reply.error.code === "string") return reply.error.code;
  return "BAD_REPLY";
}

/**
 * One client socket on one namespace, driven by whoever owns the WebSocket:
 * feed it every text frame with handleFrame(), tell it when the transport
 * closed with closed(), and call expireAcks() now and then (k6/ws has no
 * per-ack timers). It writes through opts.send and reads the clock through
 * opts.now, so tests can run it against anything.
 *
 * Local events (on): "connect" (data from the server, with sid),
 * "connect_error" (the server's {message, data}), "disconnect" (reason).
 * Every other name is a server event; handlers get its arguments, plus an
 * ack function last when the server asked for one.
 */
export class SioClient {
  constructor(opts) {
    if (typeof opts.send !== "function") throw new Error("SioClient needs a send(frame) function");
    this.nsp = opts.nsp || "/chat";
    if (!isNamespace(this.nsp)) throw new Error(`bad namespace '${this.nsp}'`);
    this.auth = opts.auth;
    this.send = opts.send;
    this.now = opts.now || Date.now;
    // opening → connecting → connected → closed, or connecting → refused
    this.state = "opening";
    this.handshake = null;
    this.sid = null;
    this.nextId = 0;
    this.pending = new Map();
    this.handlers = {};
    this.stats = { pings: 0, unmatchedAcks: 0, otherNamespace: 0 };
  }

  on(event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
    return this;
  }

  fire(event, args) {
    const hs = this.handlers[event];
    if (!hs) return;
    for (let i = 0; i < hs.length; i++) hs[i].apply(null, args);
  }

  /** Handles one received text frame; throws ProtocolError when the server breaks the protocol. */
  handleFrame(frame) {
    const f = decodeFrame(frame);
    switch (f.kind) {
      case "open":
        if (this.state !== "opening") throw new ProtocolError("second open packet", frame);
        this.handshake = f.handshake;
        this.state = "connecting";
        this.send(messageFrame({ type: SIO.CONNECT, nsp: this.nsp, data: this.auth }));
        break;
      case "ping":
        // The server closes a connection whose pong does not come within pingTimeout.
        this.stats.pings++;
        this.send(EIO.PONG + f.data);
        break;
      case "close":
        this.closed("server closed the transport", false);
        break;
      case "packet":
        this.handlePacket(f.packet, frame);
        break;
    }
    return f;
  }

  handlePacket(p, frame) {
    if (p.nsp !== this.nsp) {
      this.stats.otherNamespace++;
      return;
    }
    switch (p.type) {
      case SIO.CONNECT:
        if (this.state !== "connecting") throw new ProtocolError(`connect packet while ${this.state}`, frame);
        if (!p.data || typeof p.data.sid !== "string") throw new ProtocolError("connect packet without a sid", frame);
        this.sid = p.data.sid;
        this.state = "connected";
        this.fire("connect", [p.data]);
        break;
      case SIO.CONNECT_ERROR:
        if (this.state !== "connecting") throw new ProtocolError(`connect_error packet while ${this.state}`, frame);
        this.state = "refused";
        this.fire("connect_error", [p.data]);
        break;
      case SIO.EVENT: {
        if (this.state !== "connected") throw new ProtocolError(`event while ${this.state}`, frame);
        const args = p.data.slice(1);
        if (p.id !== undefined) {
          const nsp = this.nsp;
          const send = this.send;
          let answered = false;
          args.push(function ack() {
            if (answered) return;
            answered = true;
            send(messageFrame({ type: SIO.ACK, nsp, id: p.id, data: Array.prototype.slice.call(arguments) }));
          });
        }
        this.fire(String(p.data[0]), args);
        break;
      }
      case SIO.ACK: {
        const entry = this.pending.get(p.id);
        // Late (already expired) or never sent: nothing waits for it.
        if (!entry) {
          this.stats.unmatchedAcks++;
          break;
        }
        this.pending.delete(p.id);
        entry.cb(p.data[0], this.now() - entry.sentAt);
        break;
      }
      case SIO.DISCONNECT:
        this.closed("server disconnected the namespace", false);
        break;
    }
  }

  /**
   * Sends an event. With cb, allocates the next ack id and later calls
   * cb(reply, elapsedMs) exactly once: with the server's first ack argument,
   * or with a local {ok:false} envelope (LOCAL_ERRORS). Returns the ack id.
   */
  emit(event, payload, cb) {
    if (this.state !== "connected") {
      if (cb) cb(localError(LOCAL_ERRORS.NOT_CONNECTED, `cannot emit '${event}' while ${this.state}`), 0);
      return undefined;
    }
    const packet = { type: SIO.EVENT, nsp: this.nsp, data: payload === undefined ? [event] : [event, payload] };
    if (cb) {
      packet.id = this.nextId++;
      this.pending.set(packet.id, { event, cb, sentAt: this.now() });
    }
    this.send(messageFrame(packet));
    return packet.id;
  }

  /** Fails every ack outstanding for timeoutMs or longer; returns how many. */
  expireAcks(timeoutMs) {
    const now = this.now();
    const expired = [];
    this.pending.forEach((entry, id) => {
      if (now - entry.sentAt >= timeoutMs) expired.push(id);
    });
    for (let i = 0; i < expired.length; i++) {
      const entry = this.pending.get(expired[i]);
      this.pending.delete(expired[i]);
      entry.cb(localError(LOCAL_ERRORS.ACK_TIMEOUT, `no ack for '${entry.event}' within ${timeoutMs} ms`), now - entry.sentAt);
    }
    return expired.length;
  }

  /** The transport is gone (or the namespace was closed): fails outstanding acks and fires "disconnect" once. */
  closed(reason, byClient) {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    this.state = "closed";
    const code = byClient ? LOCAL_ERRORS.CLOSED : LOCAL_ERRORS.DISCONNECTED;
    const now = this.now();
    const entries = [];
    this.pending.forEach((entry) => entries.push(entry));
    this.pending.clear();
    for (let i = 0; i < entries.length; i++) entries[i].cb(localError(code, `${reason} before the ack of '${entries[i].event}'`), now - entries[i].sentAt);
    if (wasConnected) this.fire("disconnect", [reason]);
  }
}
