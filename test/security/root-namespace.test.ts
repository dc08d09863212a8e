/**
 * Issue 13, finding 5 ("The root namespace"): only /chat accepts
 * connections, and a connection that has not authenticated on /chat is
 * closed after AUTH_TIMEOUT_MS. Driven with raw engine.io long-polling
 * (fetch), as an attacker would, not through socket.io-client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, register } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;

/** An engine.io session over long-polling: the raw packets a socket.io client would exchange. */
class RawEngine {
  private constructor(
    private readonly base: string,
    readonly sid: string,
  ) {}

  static async open(url: string): Promise<RawEngine> {
    const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
    const text = await r.text();
    expect(r.status).toBe(200);
    expect(text.startsWith("0")).toBe(true);
    const { sid } = JSON.parse(text.slice(1)) as { sid: string };
    return new RawEngine(url, sid);
  }

  private get endpoint() {
    return `${this.base}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}`;
  }

  async send(packet: string): Promise<void> {
    const r = await fetch(this.endpoint, { method: "POST", body: packet, headers: { "content-type": "text/plain;charset=UTF-8" } });
    expect(r.status).toBe(200);
  }

  /** The next batch of packets, or "closed" once the server has ended the session. */
  async poll(): Promise<string[] | "closed"> {
    const r = await fetch(this.endpoint);
    const text = await r.text();
    if (r.status === 400) return "closed"; // the sid is gone
    const packets = text.split("\x1e");
    return packets.includes("1") ? "closed" : packets;
  }

  /** Polls until the server closes the session (the test's timeout bounds the wait). */
  async untilClosed(): Promise<void> {
    for (;;) if ((await this.poll()) === "closed") return;
  }
}

beforeAll(async () => {
  db = await createTestDatabase(2);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-sec-root-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "sec-root-secret-0123456789-0123456789-01",
    EMBEDDER: "none",
    AUTH_TIMEOUT_MS: "1000",
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

// The server's own connect timeout is 1 s here; socket.io's default (what the old server had) is 45 s.
describe("only /chat accepts connections", { timeout: 20_000 }, () => {
  it("refuses a raw `40` on the main namespace, then closes the connection", async () => {
    const engine = await RawEngine.open(server.url);
    await engine.send("40");
    const reply = await engine.poll();
    expect(reply).not.toBe("closed");
    const packet = (reply as string[])[0]!;
    expect(packet.startsWith("44")).toBe(true); // CONNECT_ERROR, not CONNECT
    expect(JSON.parse(packet.slice(2))).toMatchObject({ data: { code: "NOT_FOUND" } });
    await engine.untilClosed();
  });

  it("refuses other namespaces", async () => {
    const engine = await RawEngine.open(server.url);
    await engine.send("40/admin,");
    const reply = await engine.poll();
    expect((reply as string[])[0]!.startsWith("44/admin,")).toBe(true);
    await engine.untilClosed();
  });

  it("closes a connection that never connects to a namespace", async () => {
    const engine = await RawEngine.open(server.url);
    await engine.untilClosed();
  });

  it("closes a connection whose /chat auth failed", async () => {
    const engine = await RawEngine.open(server.url);
    await engine.send(`40/chat,${JSON.stringify({ token: "forged" })}`);
    const reply = await engine.poll();
    expect((reply as string[])[0]).toMatch(/^44\/chat,.*UNAUTHENTICATED/);
    await engine.untilClosed();
  });

  it("keeps an authenticated /chat connection", async () => {
    const user = await register(server.url);
    const socket = await connect(server.url, user.token);
    try {
      // Past the auth timeout, the authenticated connection is still served.
      await new Promise((r) => setTimeout(r, 1500));
      const r = await socket.timeout(5000).emitWithAck("session:create", {});
      expect(r.ok).toBe(true);
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });
});
