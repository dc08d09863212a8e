/**
 * The k6 scripts' Socket.IO framing (loadtest/k6/lib/socketio.js), checked
 * three ways: by itself, against the real socket.io-parser / engine.io-parser,
 * and against a real socket.io server over a plain WebSocket, since k6 itself
 * cannot run here.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as engineParser from "engine.io-parser";
import { Server, type Socket as ServerSocket } from "socket.io";
import { Decoder, Encoder, PacketType } from "socket.io-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  ackErrorCode,
  decodeFrame,
  decodePacket,
  encodePacket,
  LOCAL_ERRORS,
  messageFrame,
  type Packet,
  ProtocolError,
  SIO,
  SioClient,
  socketUrl,
} from "../../loadtest/k6/lib/socketio.js";

const OPEN = '0{"sid":"eio-1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}';

/** A client fed by hand, with a clock the test moves. */
function handClient(opts: { auth?: Record<string, unknown> } = {}) {
  const sent: string[] = [];
  let now = 1_000;
  const sio = new SioClient({ nsp: "/chat", auth: opts.auth ?? { token: "t0k" }, send: (f) => sent.push(f), now: () => now });
  return {
    sio,
    sent,
    tick(ms: number) {
      now += ms;
    },
    connect() {
      sio.handleFrame(OPEN);
      sio.handleFrame('40/chat,{"sid":"sock-1"}');
      sent.length = 0;
    },
  };
}

function expectProtocolError(fn: () => unknown, message?: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  if (message) expect((caught as Error).message).toMatch(message);
}

describe("encodePacket", () => {
  it("writes events and acks with namespace and ack id", () => {
    expect(encodePacket({ type: SIO.EVENT, nsp: "/chat", id: 12, data: ["message:send", { a: 1 }] })).toBe(
      '2/chat,12["message:send",{"a":1}]',
    );
    expect(encodePacket({ type: SIO.EVENT, nsp: "/chat", data: ["typing", { isTyping: true }] })).toBe('2/chat,["typing",{"isTyping":true}]');
    expect(encodePacket({ type: SIO.EVENT, nsp: "/", data: ["hello"] })).toBe('2["hello"]');
    expect(encodePacket({ type: SIO.ACK, nsp: "/chat", id: 7, data: [{ ok: true }] })).toBe('3/chat,7[{"ok":true}]');
    expect(encodePacket({ type: SIO.ACK, nsp: "/chat", id: 0, data: [] })).toBe("3/chat,0[]");
  });

  it("writes connect and disconnect packets", () => {
    expect(encodePacket({ type: SIO.CONNECT, nsp: "/chat", data: { token: "abc" } })).toBe('0/chat,{"token":"abc"}');
    expect(encodePacket({ type: SIO.CONNECT, nsp: "/" })).toBe("0");
    expect(encodePacket({ type: SIO.DISCONNECT, nsp: "/chat" })).toBe("1/chat,");
  });

  it("wraps a packet in an Engine.IO message frame", () => {
    expect(messageFrame({ type: SIO.EVENT, nsp: "/chat", id: 3, data: ["x", 1] })).toBe('42/chat,3["x",1]');
    expect(messageFrame({ type: SIO.CONNECT, nsp: "/chat", data: { token: "t" } })).toBe('40/chat,{"token":"t"}');
  });

  it("refuses packets the server would refuse", () => {
    expectProtocolError(() => encodePacket({ type: SIO.ACK, nsp: "/chat", data: [1] }), /needs an id/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/chat", id: -1, data: ["x"] }), /ack id/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/chat", id: 1.5, data: ["x"] }), /ack id/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/chat", data: ["connect"] }), /payload/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/chat", data: [] }), /payload/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/chat", data: { event: "x" } }), /payload/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "chat", data: ["x"] }), /namespace/);
    expectProtocolError(() => encodePacket({ type: SIO.EVENT, nsp: "/a,b", data: ["x"] }), /namespace/);
    expectProtocolError(() => encodePacket({ type: SIO.DISCONNECT, nsp: "/chat", data: {} }), /payload/);
    expectProtocolError(() => encodePacket({ type: SIO.CONNECT, nsp: "/chat", data: "token" }), /payload/);
    expectProtocolError(() => encodePacket({ type: SIO.BINARY_EVENT, nsp: "/chat", data: ["x"] }), /binary/);
    expectProtocolError(() => encodePacket({ type: 9, nsp: "/chat" }), /payload/);
  });
});

describe("decodeFrame", () => {
  it("reads the Engine.IO open packet", () => {
    expect(decodeFrame(OPEN)).toEqual({
      kind: "open",
      handshake: { sid: "eio-1", upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 },
    });
  });

  it("reads ping, pong, close and noop", () => {
    expect(decodeFrame("2")).toEqual({ kind: "ping", data: "" });
    expect(decodeFrame("2probe")).toEqual({ kind: "ping", data: "probe" });
    expect(decodeFrame("3")).toEqual({ kind: "pong", data: "" });
    expect(decodeFrame("1")).toEqual({ kind: "close" });
    expect(decodeFrame("6")).toEqual({ kind: "noop" });
  });

  it("reads connect, connect_error, event, ack and disconnect packets", () => {
    const packet = (f: string) => {
      const d = decodeFrame(f);
      if (d.kind !== "packet") throw new Error(`not a packet: ${f}`);
      return d.packet;
    };
    expect(packet('40/chat,{"sid":"abc"}')).toEqual({ type: SIO.CONNECT, nsp: "/chat", data: { sid: "abc" } });
    expect(packet('44/chat,{"message":"UNAUTHENTICATED","data":{"code":"UNAUTHENTICATED"}}')).toEqual({
      type: SIO.CONNECT_ERROR,
      nsp: "/chat",
      data: { message: "UNAUTHENTICATED", data: { code: "UNAUTHENTICATED" } },
    });
    expect(packet('44/chat,"Invalid namespace"')).toEqual({ type: SIO.CONNECT_ERROR, nsp: "/chat", data: "Invalid namespace" });
    expect(packet('42/chat,["message:new",{"message":{"seq":4}}]')).toEqual({
      type: SIO.EVENT,
      nsp: "/chat",
      data: ["message:new", { message: { seq: 4 } }],
    });
    expect(packet('42/chat,5["question","why?"]')).toEqual({ type: SIO.EVENT, nsp: "/chat", id: 5, data: ["question", "why?"] });
    expect(packet('43/chat,12[{"ok":true,"data":{}}]')).toEqual({ type: SIO.ACK, nsp: "/chat", id: 12, data: [{ ok: true, data: {} }] });
    expect(packet("41/chat,")).toEqual({ type: SIO.DISCONNECT, nsp: "/chat" });
    // The parser also accepts a namespace that ends the packet without its comma.
    expect(packet("41/chat")).toEqual({ type: SIO.DISCONNECT, nsp: "/chat" });
    expect(packet('42["hello",1]')).toEqual({ type: SIO.EVENT, nsp: "/", data: ["hello", 1] });
    expect(packet("40")).toEqual({ type: SIO.CONNECT, nsp: "/" });
  });

  it.each([
    ["an empty frame", "", /empty/],
    ["an unknown Engine.IO type", "9", /Engine\.IO/],
    ["an upgrade on a websocket-only connection", "5", /Engine\.IO/],
    ["an open packet that is not JSON", "0{sid:", /open packet/],
    ["an open packet without its fields", '0{"sid":1,"pingInterval":1,"pingTimeout":1}', /open packet/],
    ["a message without a packet", "4", /empty packet/],
    ["an unknown Socket.IO type", '47["x"]', /unknown packet type/],
    ["an event that is not an array", '42/chat,{"a":1}', /invalid payload/],
    ["an event without a name", "42/chat,[]", /invalid payload/],
    ["an event with a reserved name", '42/chat,["connect"]', /invalid payload/],
    ["an event with broken JSON", '42/chat,1["x"', /not JSON/],
    ["an ack without an id", "43/chat,[1]", /without an id/],
    ["an ack that is not an array", '43/chat,1{"a":1}', /invalid payload/],
    ["an ack id beyond exact integers", "43/chat,1234567890123456[1]", /too long/],
    ["a disconnect with a payload", '41/chat,{"x":1}', /invalid payload/],
    ["a connect with an array payload", "40/chat,[1]", /invalid payload/],
    ["a connect_error without a reason", "44/chat,", /invalid payload/],
    ["a binary event", '451-/chat,["x",{"_placeholder":true,"num":0}]', /binary/],
  ])("rejects %s", (_what, frame, message) => {
    expectProtocolError(() => decodeFrame(frame), message);
  });

  it("keeps the offending frame on the error, cut short", () => {
    try {
      decodeFrame(`42/chat,${"x".repeat(500)}`);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).frame).toBe(`2/chat,${"x".repeat(500)}`.slice(0, 200));
    }
  });
});

describe("socketUrl", () => {
  it("maps the base URL to the Engine.IO websocket endpoint", () => {
    expect(socketUrl("http://127.0.0.1:3000")).toBe("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket");
    expect(socketUrl("https://chat.example.com/")).toBe("wss://chat.example.com/socket.io/?EIO=4&transport=websocket");
    expect(socketUrl("http://localhost:8080/app/")).toBe("ws://localhost:8080/app/socket.io/?EIO=4&transport=websocket");
    expect(socketUrl("ws://h:1", "/io/")).toBe("ws://h:1/io/?EIO=4&transport=websocket");
  });

  it("refuses what is not an http(s) or ws(s) URL", () => {
    expect(() => socketUrl("127.0.0.1:3000")).toThrow(/BASE_URL/);
    expect(() => socketUrl("ftp://h")).toThrow(/BASE_URL/);
    expect(() => socketUrl("http://h:1/?x=1")).toThrow(/BASE_URL/);
  });
});

describe("SioClient", () => {
  it("answers the open packet with a connect carrying the auth payload, and connects on the server's sid", () => {
    const c = handClient({ auth: { token: "abc" } });
    const connected: unknown[] = [];
    c.sio.on("connect", (d) => connected.push(d));
    c.sio.handleFrame(OPEN);
    expect(c.sent).toEqual(['40/chat,{"token":"abc"}']);
    expect(c.sio.state).toBe("connecting");
    expect(c.sio.handshake?.pingInterval).toBe(25000);
    c.sio.handleFrame('40/chat,{"sid":"sock-9"}');
    expect(c.sio.state).toBe("connected");
    expect(c.sio.sid).toBe("sock-9");
    expect(connected).toEqual([{ sid: "sock-9" }]);
  });

  it("answers every ping with a pong carrying the same data", () => {
    const c = handClient();
    c.connect();
    c.sio.handleFrame("2");
    c.sio.handleFrame("2probe");
    expect(c.sent).toEqual(["3", "3probe"]);
    expect(c.sio.stats.pings).toBe(2);
  });

  it("allocates ack ids in order and matches each ack to its own callback", () => {
    const c = handClient();
    c.connect();
    const replies: [string, unknown, number][] = [];
    const ids = ["a", "b", "c"].map((name) => c.sio.emit("echo", { name }, (r, ms) => replies.push([name, r, ms])));
    expect(ids).toEqual([0, 1, 2]);
    expect(c.sent).toEqual(['42/chat,0["echo",{"name":"a"}]', '42/chat,1["echo",{"name":"b"}]', '42/chat,2["echo",{"name":"c"}]']);
    c.tick(40);
    c.sio.handleFrame('43/chat,2[{"ok":true,"data":"C"}]');
    c.tick(10);
    c.sio.handleFrame('43/chat,0[{"ok":false,"error":{"code":"RATE_LIMITED","message":"slow down","retryAfterMs":250}}]');
    expect(replies).toEqual([
      ["c", { ok: true, data: "C" }, 40],
      ["a", { ok: false, error: { code: "RATE_LIMITED", message: "slow down", retryAfterMs: 250 } }, 50],
    ]);
    expect(c.sio.pending.size).toBe(1);
    expect(c.sio.pending.has(1)).toBe(true);
  });

  it("counts acks nothing waits for: duplicates and ids never sent", () => {
    const c = handClient();
    c.connect();
    let calls = 0;
    c.sio.emit("x", 1, () => calls++);
    c.sio.handleFrame('43/chat,0[{"ok":true}]');
    c.sio.handleFrame('43/chat,0[{"ok":true}]');
    c.sio.handleFrame('43/chat,99[{"ok":true}]');
    expect(calls).toBe(1);
    expect(c.sio.stats.unmatchedAcks).toBe(2);
  });

  it("sends an event without an ack id when no callback is given", () => {
    const c = handClient();
    c.connect();
    expect(c.sio.emit("typing", { isTyping: true })).toBeUndefined();
    expect(c.sent).toEqual(['42/chat,["typing",{"isTyping":true}]']);
    expect(c.sio.emit("ping:me", undefined, () => {})).toBe(0);
    expect(c.sent[1]).toBe('42/chat,0["ping:me"]');
  });

  it("expires only acks older than the timeout, and ignores their late replies", () => {
    const c = handClient();
    c.connect();
    const got: Record<string, unknown> = {};
    c.sio.emit("old", 1, (r) => (got.old = r));
    c.tick(600);
    c.sio.emit("young", 2, (r) => (got.young = r));
    c.tick(500);
    expect(c.sio.expireAcks(1000)).toBe(1);
    expect(got.old).toMatchObject({ ok: false, local: true, error: { code: LOCAL_ERRORS.ACK_TIMEOUT } });
    expect(got.young).toBeUndefined();
    c.sio.handleFrame('43/chat,0[{"ok":true}]');
    expect(got.old).toMatchObject({ ok: false });
    expect(c.sio.stats.unmatchedAcks).toBe(1);
    c.sio.handleFrame('43/chat,1[{"ok":true,"data":2}]');
    expect(got.young).toEqual({ ok: true, data: 2 });
  });

  it("fails outstanding acks when the connection goes: DISCONNECTED if lost, CLOSED if the script closed it", () => {
    const lost = handClient();
    lost.connect();
    const reasons: string[] = [];
    lost.sio.on("disconnect", (r) => reasons.push(r));
    let reply: unknown;
    lost.sio.emit("x", 1, (r) => (reply = r));
    lost.sio.closed("gone", false);
    lost.sio.closed("gone again", false);
    expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.DISCONNECTED);
    expect(reasons).toEqual(["gone"]);
    expect(lost.sio.state).toBe("closed");

    const closed = handClient();
    closed.connect();
    closed.sio.emit("x", 1, (r) => (reply = r));
    closed.sio.closed("done", true);
    expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.CLOSED);
  });

  it("treats the server's namespace disconnect and Engine.IO close as the end of the connection", () => {
    for (const frame of ["41/chat,", "1"]) {
      const c = handClient();
      c.connect();
      let reason = "";
      let reply: unknown;
      c.sio.on("disconnect", (r) => (reason = r));
      c.sio.emit("x", 1, (r) => (reply = r));
      c.sio.handleFrame(frame);
      expect(reason).not.toBe("");
      expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.DISCONNECTED);
    }
  });

  it("fails an emit at once while not connected, without sending", () => {
    const c = handClient();
    let reply: unknown;
    c.sio.emit("early", 1, (r) => (reply = r));
    expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.NOT_CONNECTED);
    expect(c.sent).toEqual([]);
  });

  it("hands server events their arguments, with an ack function last when the server asked for one", () => {
    const c = handClient();
    c.connect();
    const seen: unknown[][] = [];
    c.sio.on("news", (...args) => seen.push(args));
    c.sio.on("question", (q, ack) => {
      ack("because", 42);
      ack("twice");
    });
    c.sio.handleFrame('42/chat,["news","a",{"b":2},3]');
    c.sio.handleFrame('42/chat,7["question","why?"]');
    expect(seen).toEqual([["a", { b: 2 }, 3]]);
    expect(c.sent).toEqual(['43/chat,7["because",42]']);
  });

  it("ignores packets for other namespaces", () => {
    const c = handClient();
    c.connect();
    const seen: unknown[] = [];
    c.sio.on("news", (x) => seen.push(x));
    c.sio.handleFrame('42/admin,["news",1]');
    c.sio.handleFrame('42["news",2]');
    expect(seen).toEqual([]);
    expect(c.sio.stats.otherNamespace).toBe(2);
  });

  it("reports a refused connect, and rejects packets out of order", () => {
    const c = handClient();
    const refusals: unknown[] = [];
    c.sio.on("connect_error", (d) => refusals.push(d));
    c.sio.handleFrame(OPEN);
    c.sio.handleFrame('44/chat,{"message":"UNAUTHENTICATED","data":{"code":"UNAUTHENTICATED"}}');
    expect(c.sio.state).toBe("refused");
    expect(refusals).toEqual([{ message: "UNAUTHENTICATED", data: { code: "UNAUTHENTICATED" } }]);
    expectProtocolError(() => c.sio.handleFrame('42/chat,["news",1]'), /event while refused/);

    const d = handClient();
    expectProtocolError(() => d.sio.handleFrame('40/chat,{"sid":"x"}'), /while opening/);
    d.sio.handleFrame(OPEN);
    expectProtocolError(() => d.sio.handleFrame(OPEN), /second open/);
    expectProtocolError(() => d.sio.handleFrame("40/chat,{}"), /without a sid/);
  });
});

describe("ackErrorCode", () => {
  it("is null for ok, the code for an error envelope, BAD_REPLY for anything else", () => {
    expect(ackErrorCode({ ok: true, data: 1 })).toBeNull();
    expect(ackErrorCode({ ok: false, error: { code: "FORBIDDEN", message: "no" } })).toBe("FORBIDDEN");
    expect(ackErrorCode(undefined)).toBe("BAD_REPLY");
    expect(ackErrorCode({ ok: false })).toBe("BAD_REPLY");
    expect(ackErrorCode("ok")).toBe("BAD_REPLY");
  });
});

describe("against the real parsers", () => {
  // Packets as socket.io-parser shapes them (nsp always present, id only when there is one).
  const packets: Packet[] = [
    { type: PacketType.CONNECT, nsp: "/chat", data: { token: "eyJhbGciOi.J9.x-y_z" } },
    { type: PacketType.CONNECT, nsp: "/" },
    { type: PacketType.CONNECT, nsp: "/chat", data: { sid: "Zx_8-aQ" } },
    { type: PacketType.CONNECT_ERROR, nsp: "/chat", data: { message: "UNAUTHENTICATED", data: { code: "UNAUTHENTICATED", message: "bad token" } } },
    { type: PacketType.CONNECT_ERROR, nsp: "/chat", data: "Invalid namespace" },
    { type: PacketType.EVENT, nsp: "/chat", id: 0, data: ["session:join", { sessionId: "9b2f4c2e-0000-4000-8000-000000000001", afterSeq: 17 }] },
    { type: PacketType.EVENT, nsp: "/chat", id: 123456, data: ["message:send", { content: 'quotes " \\ and ünïcödé ✓ 🎉\n, commas', n: -1.5e-7 }] },
    { type: PacketType.EVENT, nsp: "/chat", data: ["message:new", { message: { id: 1, seq: 2, content: "[1,2]", status: "complete", clientMessageId: null } }] },
    { type: PacketType.EVENT, nsp: "/chat", data: ["many", 1, "two", [3], { four: 4 }, null, true] },
    { type: PacketType.EVENT, nsp: "/", id: 9, data: ["root"] },
    { type: PacketType.ACK, nsp: "/chat", id: 42, data: [{ ok: true, data: { messages: [], nextBeforeSeq: null } }] },
    { type: PacketType.ACK, nsp: "/chat", id: 7, data: [] },
    { type: PacketType.ACK, nsp: "/chat", id: 8, data: ["a", 2] },
    { type: PacketType.DISCONNECT, nsp: "/chat" },
  ];

  function parserDecode(str: string): unknown {
    const decoder = new Decoder();
    let out: unknown;
    decoder.on("decoded", (p: unknown) => (out = p));
    decoder.add(str);
    return out;
  }

  it.each(packets.map((p) => [JSON.stringify(p), p] as const))("encodes like socket.io-parser and reads what it writes: %s", (_name, p) => {
    const [theirs] = new Encoder().encode(p as Parameters<Encoder["encode"]>[0]);
    expect(typeof theirs).toBe("string");
    expect(encodePacket(p)).toBe(theirs);
    expect(decodePacket(theirs as string)).toEqual(p);
    expect(parserDecode(encodePacket(p))).toEqual(p);
  });

  it.each([
    '2/chat,{"a":1}',
    '2/chat,["connect"]',
    "2/chat,[]",
    '3/chat,1{"a":1}',
    '1/chat,{"a":1}',
    "0/chat,[1]",
    '9["x"]',
    '2/chat,1["x"',
  ])("rejects what socket.io-parser rejects: %s", (bad) => {
    expect(() => parserDecode(bad)).toThrow();
    expectProtocolError(() => decodePacket(bad));
  });

  it("reads Engine.IO frames as engine.io-parser does", () => {
    const kinds: Record<string, string> = { open: "open", close: "close", ping: "ping", pong: "pong", message: "packet", noop: "noop" };
    for (const frame of [OPEN, "1", "2", "2probe", "3probe", '42/chat,3["x",1]', "6"]) {
      const theirs = engineParser.decodePacket(frame);
      const ours = decodeFrame(frame);
      expect(ours.kind).toBe(kinds[theirs.type]);
      if (ours.kind === "open") expect(ours.handshake).toEqual(JSON.parse(theirs.data as string));
      if (ours.kind === "ping" || ours.kind === "pong") expect(ours.data).toBe(theirs.data ?? "");
      if (ours.kind === "packet") expect(encodePacket(ours.packet)).toBe(theirs.data);
    }
    const packet = { type: SIO.EVENT, nsp: "/chat", id: 5, data: ["message:send", { content: "hi" }] };
    let theirs = "";
    engineParser.encodePacket({ type: "message", data: encodePacket(packet) }, false, (encoded) => (theirs = encoded as string));
    expect(messageFrame(packet)).toBe(theirs);
  });
});

// A frame the server misreads leaves a promise unresolved; fail in seconds, not at the suite-wide timeout.
describe("against a real socket.io server over a plain WebSocket", { timeout: 10_000 }, () => {
  const GOOD = "good-token";
  let httpServer: http.Server;
  let io: Server;
  let baseUrl: string;
  const serverSockets = new Map<string, ServerSocket>();
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    httpServer = http.createServer();
    // Short heartbeats, so the test sees pings (and what happens without pongs) in well under a second.
    io = new Server(httpServer, { pingInterval: 150, pingTimeout: 250 });
    const chat = io.of("/chat");
    chat.use((socket, next) => {
      if (socket.handshake.auth?.token === GOOD) {
        socket.data.user = "alice";
        return next();
      }
      const err = new Error("UNAUTHENTICATED") as Error & { data?: unknown };
      err.data = { code: "UNAUTHENTICATED", message: "missing, invalid or expired token" };
      next(err);
    });
    chat.on("connection", (socket) => {
      serverSockets.set(socket.id, socket);
      socket.on("echo", (payload: unknown, ack: (r: unknown) => void) => ack({ ok: true, data: { payload, user: socket.data.user } }));
      socket.on("slow", (ms: number, ack: (r: unknown) => void) => setTimeout(() => ack({ ok: true, data: ms }), ms));
      socket.on("shout", (text: string) => socket.emit("news", text.toUpperCase(), text.length));
      socket.on("ask", async (q: string, ack: (r: unknown) => void) => {
        try {
          const answer: unknown = await socket.timeout(2000).emitWithAck("question", q);
          ack({ ok: true, data: answer });
        } catch (err) {
          ack({ ok: false, error: { code: "INTERNAL", message: String(err) } });
        }
      });
      socket.on("kick", () => socket.disconnect());
    });
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await new Promise<void>((resolve) => io.close(() => resolve()));
  });

  /** Drives a SioClient over a `ws` WebSocket the way client.js drives it over k6/ws. */
  function open(token: string, opts: { dropPongs?: boolean } = {}) {
    const ws = new WebSocket(socketUrl(baseUrl));
    sockets.push(ws);
    const received: string[] = [];
    const sio = new SioClient({
      nsp: "/chat",
      auth: { token },
      send: (frame) => {
        if (opts.dropPongs && frame.startsWith("3")) return;
        ws.send(frame);
      },
    });
    ws.on("message", (data, isBinary) => {
      expect(isBinary).toBe(false);
      const frame = data.toString();
      received.push(frame);
      sio.handleFrame(frame);
    });
    const closed = new Promise<void>((resolve) =>
      ws.on("close", () => {
        sio.closed("websocket closed", false);
        resolve();
      }),
    );
    const outcome = new Promise<{ connected: boolean; data: any }>((resolve) => {
      sio.on("connect", (data) => resolve({ connected: true, data }));
      sio.on("connect_error", (data) => resolve({ connected: false, data }));
    });
    return { ws, sio, received, closed, outcome };
  }

  function call(sio: SioClient, event: string, payload?: unknown): Promise<[any, number]> {
    return new Promise((resolve) => sio.emit(event, payload, (reply, ms) => resolve([reply, ms])));
  }

  async function connected(token = GOOD, opts: { dropPongs?: boolean } = {}) {
    const c = open(token, opts);
    const o = await c.outcome;
    expect(o.connected).toBe(true);
    return c;
  }

  it("completes the handshake: open packet, namespace connect with the token, sid of the server's socket", async () => {
    const c = await connected();
    expect(c.received[0]!.startsWith("0{")).toBe(true);
    expect(c.sio.handshake).toMatchObject({ pingInterval: 150, pingTimeout: 250 });
    expect(c.sio.state).toBe("connected");
    const serverSide = serverSockets.get(c.sio.sid!);
    expect(serverSide).toBeDefined();
    expect(serverSide!.handshake.auth).toEqual({ token: GOOD });
    expect(serverSide!.data.user).toBe("alice");
  });

  it("sends an event with an ack and gets the server's reply matched to it", async () => {
    const c = await connected();
    const payload = { text: 'héllo "world" ✓ 🎉', list: [1, 2, 3], nested: { a: null } };
    const [reply, ms] = await call(c.sio, "echo", payload);
    expect(reply).toEqual({ ok: true, data: { payload, user: "alice" } });
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(c.sio.pending.size).toBe(0);
  });

  it("matches acks that come back out of order", async () => {
    const c = await connected();
    const order: number[] = [];
    const slow = call(c.sio, "slow", 200).then(([r]) => order.push(r.data));
    const fast = call(c.sio, "slow", 10).then(([r]) => order.push(r.data));
    await Promise.all([slow, fast]);
    expect(order).toEqual([10, 200]);
  });

  it("receives server events with several arguments", async () => {
    const c = await connected();
    const news = new Promise<unknown[]>((resolve) => c.sio.on("news", (...args) => resolve(args)));
    c.sio.emit("shout", "hi there");
    expect(await news).toEqual(["HI THERE", 8]);
  });

  it("acks an event the server sent with emitWithAck", async () => {
    const c = await connected();
    c.sio.on("question", (q: string, ack: (...a: unknown[]) => void) => ack(`answer to ${q}`));
    const [reply] = await call(c.sio, "ask", "life?");
    expect(reply).toEqual({ ok: true, data: "answer to life?" });
  });

  it("keeps the connection alive by answering pings; without the pongs the server drops it", async () => {
    const alive = await connected();
    const starved = await connected(GOOD, { dropPongs: true });
    const starvedClosedAt = starved.closed.then(() => Date.now());
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1200));
    // Several heartbeats passed: the answering client is still connected, the silent one was closed by the server.
    expect(alive.sio.stats.pings).toBeGreaterThanOrEqual(3);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    expect(serverSockets.get(alive.sio.sid!)!.connected).toBe(true);
    const [reply] = await call(alive.sio, "echo", "still here");
    expect(reply.ok).toBe(true);
    expect(starved.sio.stats.pings).toBeGreaterThanOrEqual(1);
    expect(starved.ws.readyState).toBe(WebSocket.CLOSED);
    expect((await starvedClosedAt) - t0).toBeLessThan(1200);
    expect(starved.sio.state).toBe("closed");
  });

  it("reports a refused connect with the middleware's error data, and the server never sees a connection", async () => {
    const before = serverSockets.size;
    const c = open("stolen-token");
    const o = await c.outcome;
    expect(o.connected).toBe(false);
    expect(o.data).toEqual({ message: "UNAUTHENTICATED", data: { code: "UNAUTHENTICATED", message: "missing, invalid or expired token" } });
    expect(c.sio.state).toBe("refused");
    expect(c.received.some((f) => f.startsWith("44/chat,"))).toBe(true);
    expect(serverSockets.size).toBe(before);
    let reply: unknown;
    c.sio.emit("echo", 1, (r) => (reply = r));
    expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.NOT_CONNECTED);
  });

  it("ends the connection when the server disconnects the socket, failing acks still outstanding", async () => {
    const c = await connected();
    const pending = call(c.sio, "slow", 500);
    const disconnected = new Promise<string>((resolve) => c.sio.on("disconnect", resolve));
    c.sio.emit("kick");
    expect(await disconnected).toMatch(/server/);
    const [reply] = await pending;
    expect(ackErrorCode(reply)).toBe(LOCAL_ERRORS.DISCONNECTED);
    expect(c.received).toContain("41/chat,");
  });
});
