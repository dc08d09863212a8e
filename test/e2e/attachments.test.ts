/**
 * Issue 19 against the real server process (disk store under DATA_DIR):
 * members upload, send, see and download files; nobody else can, by any
 * id; types are judged by bytes; a cut-off upload leaves nothing; quota and
 * size limits refuse with their codes; deleting a session or an account
 * deletes the stored files.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { connect as connectClient, MemchatError } from "@memchat/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addMember, api, call, connect, nextEvent, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { eventually } from "../support/redis.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { partialUpload, png, upload } from "../support/uploads.js";

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
const sockets: Socket[] = [];
let owner: TestUser;
let member: TestUser;
let outsider: TestUser;

const MAX = 2 * 1024 * 1024;
const QUOTA = 6 * 1024 * 1024;

async function client(u: TestUser) {
  const s = await connect(server.url, u.token);
  sockets.push(s);
  return s;
}

/** Files in the store (not counting the temporary directory). */
async function storedObjects(): Promise<string[]> {
  const root = path.join(dataDir, "files", "attachments");
  return (await readdir(root).catch(() => [] as string[])).sort();
}
const tmpFiles = async () => readdir(path.join(dataDir, "files", ".tmp")).catch(() => [] as string[]);
const errCode = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? undefined : r.error?.code);
const text = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-files-"));
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "attachments-secret-0123456789-0123456789",
    EMBEDDER: "none",
    OFFLINE_TOKEN_DELAY_MS: "0",
    MAX_UPLOAD_BYTES: String(MAX),
    STORAGE_QUOTA_BYTES: String(QUOTA),
    ATTACHMENT_SWEEP_INTERVAL_MS: "1000",
    RATE_UPLOAD_BURST: "60",
    RATE_SESSION_BURST: "200",
  });
  [owner, member, outsider] = await Promise.all([register(server.url), register(server.url), register(server.url)]);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("sharing files in a session", () => {
  it("a member uploads, sends with a message; the room sees it live and in history; members download it and its thumbnail", async () => {
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "files", assistant: false });
    await addMember(server.url, o, session.id, member);
    const m = await client(member);
    await ok(m, "session:join", { sessionId: session.id });

    const image = await png(800, 600);
    const up = await upload(server.url, owner.token, session.id, { name: "chart.png", type: "image/png", data: image });
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ sessionId: session.id, uploaderId: owner.user.id, name: "chart.png", contentType: "image/png", size: image.length, state: "pending", thumbnail: true, width: 800, height: 600 });
    const notes = await upload(server.url, owner.token, session.id, { name: "notes.md", type: "text/markdown", data: text("# Notes\n\nThe launch code word is *heliotrope*.\n") });
    expect(notes.body.contentType).toBe("text/markdown");

    // before it is sent, only the uploader can read it
    expect((await api(server.url, `/api/attachments/${up.body.id}`, { token: member.token })).status).toBe(404);
    expect((await api(server.url, `/api/attachments/${up.body.id}`, { token: owner.token })).status).toBe(200);

    const heard = nextEvent(m, "message:new");
    const sent = await ok(o, "message:send", { sessionId: session.id, clientMessageId: "f1", content: "see attached", attachments: [up.body.id, notes.body.id] });
    expect(sent.message.attachments.map((a: { id: string }) => a.id)).toEqual([up.body.id, notes.body.id]);
    const live = await heard;
    expect(live.message.attachments).toEqual(sent.message.attachments);
    expect(live.message.attachments[0]).toEqual({ id: up.body.id, name: "chart.png", contentType: "image/png", size: image.length, thumbnail: true, width: 800, height: 600 });

    const history = await api(server.url, `/api/sessions/${session.id}/messages`, { token: member.token });
    expect(history.body.messages.at(-1).attachments).toEqual(sent.message.attachments);
    const joined = await ok(m, "session:join", { sessionId: session.id });
    expect(joined.messages.at(-1).attachments).toEqual(sent.message.attachments);
    // a retry answers the stored row with its files
    const retry = await ok(o, "message:send", { sessionId: session.id, clientMessageId: "f1", content: "see attached", attachments: [up.body.id, notes.body.id] });
    expect(retry.message.id).toBe(sent.message.id);
    expect(retry.message.attachments).toEqual(sent.message.attachments);

    const dl = await fetch(`${server.url}/api/attachments/${up.body.id}/content`, { headers: { authorization: `Bearer ${member.token}` } });
    expect(dl.status).toBe(200);
    expect(dl.headers.get("content-type")).toBe("image/png");
    expect(dl.headers.get("content-disposition")).toMatch(/^attachment; filename="chart.png"/);
    expect(dl.headers.get("x-content-type-options")).toBe("nosniff");
    expect(Buffer.from(await dl.arrayBuffer()).equals(image)).toBe(true);
    const thumb = await fetch(`${server.url}/api/attachments/${up.body.id}/thumbnail`, { headers: { authorization: `Bearer ${member.token}` } });
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/webp");
    const t = Buffer.from(await thumb.arrayBuffer());
    expect(t.subarray(0, 4).toString()).toBe("RIFF");
    expect(t.subarray(8, 12).toString()).toBe("WEBP");
    // a text file has no thumbnail
    expect((await api(server.url, `/api/attachments/${notes.body.id}/thumbnail`, { token: member.token })).status).toBe(404);
    const md = await api(server.url, `/api/attachments/${notes.body.id}/content`, { token: member.token });
    expect(md.body).toContain("heliotrope");

    // an attachment goes with one message only
    const again = await call(o, "message:send", { sessionId: session.id, clientMessageId: "f2", content: "again", attachments: [up.body.id] });
    expect(errCode(again)).toBe("BAD_REQUEST");
    const metrics = await api(server.url, "/metrics");
    expect(metrics.body).toMatch(/chat_attachments\{state="attached"\} [1-9]/);
    expect(metrics.body).toMatch(/chat_attachment_uploads_total\{outcome="stored"\} [1-9]/);
    // Without an embedder the notes' passages wait unembedded: the gauge counts them.
    await eventually(async () => {
      const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM passage_index_jobs");
      expect(rows[0]!.n).toBeGreaterThan(0);
      const scraped = (await api(server.url, "/metrics")).body as string;
      expect(scraped).toMatch(new RegExp(`^chat_passage_index_backlog ${rows[0]!.n}$`, "m"));
    });
  });

  it("an outsider can use no attachment route with ids of other sessions, and nobody can send another's upload", async () => {
    const o = await client(owner);
    const x = await client(outsider);
    const m = await client(member);
    const { session } = await ok(o, "session:create", { title: "private files", assistant: false });
    await addMember(server.url, o, session.id, member);
    const { session: mine } = await ok(x, "session:create", { title: "outsider's", assistant: false });
    const file = { name: "secret.txt", type: "text/plain", data: text("the secret is 42") };
    const up = await upload(server.url, owner.token, session.id, file);
    const pendingOfMember = await upload(server.url, member.token, session.id, { ...file, name: "m.txt" });
    await ok(o, "message:send", { sessionId: session.id, clientMessageId: "s1", content: "secret", attachments: [up.body.id] });
    const id = up.body.id as string;

    // upload into someone else's session, with and without a token
    expect((await upload(server.url, outsider.token, session.id, file)).status).toBe(404);
    expect((await upload(server.url, undefined, session.id, file)).status).toBe(401);
    expect((await upload(server.url, outsider.token, "not-a-uuid", file)).status).toBe(400);
    // read by id, in every spelling
    for (const spelled of [id, id.toUpperCase()]) {
      for (const route of ["", "/content", "/thumbnail"]) {
        const r = await api(server.url, `/api/attachments/${spelled}${route}`, { token: outsider.token });
        expect(r.status).toBe(404);
        expect(JSON.stringify(r.body)).not.toContain("secret is 42");
      }
      expect((await api(server.url, `/api/attachments/${spelled}`, { method: "DELETE", token: outsider.token })).status).toBe(404);
    }
    for (const route of ["", "/content", "/thumbnail"]) expect((await api(server.url, `/api/attachments/${id}${route}`)).status).toBe(401);
    // sending someone else's attachment: into the outsider's own session, or into the session they are not in
    expect(errCode(await call(x, "message:send", { sessionId: mine.id, clientMessageId: "x1", content: "steal", attachments: [id] }))).toBe("BAD_REQUEST");
    expect(errCode(await call(x, "message:send", { sessionId: session.id, clientMessageId: "x2", content: "steal", attachments: [id] }))).toBe("NOT_FOUND");
    // a member cannot send the owner's (sent) file again, nor the owner the member's pending upload
    expect(errCode(await call(m, "message:send", { sessionId: session.id, clientMessageId: "m1", content: "mine?", attachments: [id] }))).toBe("BAD_REQUEST");
    expect(errCode(await call(o, "message:send", { sessionId: session.id, clientMessageId: "o2", content: "yours?", attachments: [pendingOfMember.body.id] }))).toBe("BAD_REQUEST");
    // a member may not discard another's upload or a sent file
    expect((await api(server.url, `/api/attachments/${pendingOfMember.body.id}`, { method: "DELETE", token: owner.token })).status).toBe(404);
    expect((await api(server.url, `/api/attachments/${id}`, { method: "DELETE", token: owner.token })).status).toBe(404);
    // bad ids are refused before anything runs
    expect(errCode(await call(o, "message:send", { sessionId: session.id, clientMessageId: "o3", content: "x", attachments: ["nope"] }))).toBe("BAD_REQUEST");
    expect(errCode(await call(o, "message:send", { sessionId: session.id, clientMessageId: "o4", content: "x", attachments: Array(11).fill(id) }))).toBe("BAD_REQUEST");
    // nothing the refusals touched changed: one message, the file still attached to it
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = ANY($1)", [[session.id, mine.id]]);
    expect(rows[0].n).toBe(1);
    expect((await api(server.url, `/api/attachments/${id}/content`, { token: member.token })).body).toBe("the secret is 42");
    // the member discards their own upload
    expect((await api(server.url, `/api/attachments/${pendingOfMember.body.id}`, { method: "DELETE", token: member.token })).status).toBe(204);
    expect((await api(server.url, `/api/attachments/${pendingOfMember.body.id}`, { token: member.token })).status).toBe(404);
  });
});

describe("the client library", () => {
  it("uploads with progress, sends the id with a message, downloads, and reports refusals by code", async () => {
    const a = await connectClient({ url: server.url, token: owner.token, socket: { transports: ["websocket"] } });
    const b = await connectClient({ url: server.url, token: member.token, socket: { transports: ["websocket"] } });
    try {
      const s = await a.createSession({ title: "library files", assistant: false });
      const o = await client(owner);
      await addMember(server.url, o, s.id, member);
      const progress: number[] = [];
      const pic = await png(300, 200);
      const up = await a.upload(s.id, new Blob([pic], { type: "image/png" }), "pic.png", { onProgress: (sent) => progress.push(sent) });
      expect(up).toMatchObject({ contentType: "image/png", thumbnail: true, state: "pending" });
      expect(progress.at(-1)).toBe(pic.length);
      const sent = await s.send("a picture", { attachments: [up.id] });
      expect(sent.attachments?.map((x) => x.id)).toEqual([up.id]);
      const bytes = Buffer.from(await (await b.download(up.id)).arrayBuffer());
      expect(bytes.equals(pic)).toBe(true);
      expect((await b.download(up.id, "thumbnail")).size).toBeGreaterThan(0);
      const refused = await b.discardUpload(up.id).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MemchatError);
      expect((refused as MemchatError).code).toBe("NOT_FOUND");
      const wrong = await b.upload(s.id, new Blob([new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])]), "x.txt").catch((e: unknown) => e);
      expect((wrong as MemchatError).code).toBe("UNSUPPORTED_MEDIA_TYPE");
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("what a file is, and limits", () => {
  let sessionId: string;
  beforeAll(async () => {
    const o = await client(owner);
    sessionId = (await ok(o, "session:create", { title: "types", assistant: false })).session.id;
  });

  it("judges files by their bytes when the name and declared type lie", async () => {
    const image = await png(64, 64);
    const pngAsText = await upload(server.url, owner.token, sessionId, { name: "notes.txt", type: "text/plain", data: image });
    expect(pngAsText.status).toBe(201);
    expect(pngAsText.body).toMatchObject({ contentType: "image/png", thumbnail: true });

    const textAsPng = await upload(server.url, owner.token, sessionId, { name: "photo.png", type: "image/png", data: text("just words, not pixels") });
    expect(textAsPng.status).toBe(201);
    expect(textAsPng.body).toMatchObject({ contentType: "text/plain", thumbnail: false });

    const elf = new Uint8Array(8192);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    const exe = await upload(server.url, owner.token, sessionId, { name: "cute-cat.jpg", type: "image/jpeg", data: elf });
    expect(exe.status).toBe(415);
    expect(exe.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");

    // text at first, binary after the sniffed head: refused at the end, nothing kept
    const sneaky = new Uint8Array(20_000).fill(0x61);
    sneaky[15_000] = 0xff;
    const bad = await upload(server.url, owner.token, sessionId, { name: "data.csv", type: "text/csv", data: sneaky });
    expect(bad.status).toBe(415);

    const html = await upload(server.url, owner.token, sessionId, { name: "page.txt", type: "text/plain", data: text("<!DOCTYPE html><script>alert(1)</script>") });
    expect(html.body.contentType).toBe("text/html");
    const served = await fetch(`${server.url}/api/attachments/${html.body.id}/content`, { headers: { authorization: `Bearer ${owner.token}` } });
    expect(served.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(served.headers.get("content-security-policy")).toContain("sandbox");

    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE session_id = $1 AND content_type = 'application/octet-stream'", [sessionId]);
    expect(rows[0].n).toBe(0);
    expect(await tmpFiles()).toEqual([]);
  });

  it("refuses a file over MAX_UPLOAD_BYTES with PAYLOAD_TOO_LARGE, and empty or malformed bodies", async () => {
    const before = await storedObjects();
    const big = await upload(server.url, owner.token, sessionId, { name: "big.txt", type: "text/plain", data: new Uint8Array(MAX + 1).fill(0x62) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await upload(server.url, owner.token, sessionId, { name: "empty.txt", type: "text/plain", data: new Uint8Array(0) })).status).toBe(400);
    const json = await api(server.url, `/api/sessions/${sessionId}/attachments`, { method: "POST", token: owner.token, body: { file: "x" } });
    expect(json.status).toBe(415);
    expect(await storedObjects()).toEqual(before);
  });

  it("an upload cut off halfway leaves neither a row nor an object", async () => {
    const before = await storedObjects();
    const total = 1_500_000;
    const u = partialUpload(server.url, owner.token, sessionId, total, total / 2);
    await u.written;
    // the upload is under way: its row exists and bytes are arriving in a temporary file
    await eventually(async () => {
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE session_id = $1 AND state = 'uploading'", [sessionId]);
      expect(rows[0].n).toBe(1);
      expect((await tmpFiles()).length).toBe(1);
    });
    await u.cut();
    // the server cleans up once it sees the connection gone: row, temporary file, and the object's purge entry
    await eventually(async () => {
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE session_id = $1 AND state = 'uploading'", [sessionId]);
      expect(rows[0].n).toBe(0);
      expect(await tmpFiles()).toEqual([]);
      const purge = await db.pool.query("SELECT count(*)::int AS n FROM attachment_object_purge");
      expect(purge.rows[0].n).toBe(0);
    });
    expect(await storedObjects()).toEqual(before);
  });

  it("refuses an upload over the user's storage quota with STORAGE_QUOTA_EXCEEDED and keeps nothing of it", async () => {
    const u = await register(server.url);
    const s = await client(u);
    const { session } = await ok(s, "session:create", { title: "quota", assistant: false });
    const chunk = (c: number) => new Uint8Array(MAX - 1000).fill(c);
    for (const c of [0x61, 0x62, 0x63]) expect((await upload(server.url, u.token, session.id, { name: "part.txt", type: "text/plain", data: chunk(c) })).status).toBe(201);
    const before = await storedObjects();
    const over = await upload(server.url, u.token, session.id, { name: "part.txt", type: "text/plain", data: chunk(0x64) });
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe("STORAGE_QUOTA_EXCEEDED");
    expect(await storedObjects()).toEqual(before);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n, sum(size_bytes)::bigint AS bytes FROM attachments WHERE uploader_id = $1", [u.user.id]);
    expect(rows[0].n).toBe(3);
    expect(Number(rows[0].bytes)).toBeLessThanOrEqual(QUOTA);
  });
});

describe("files go with what holds them", () => {
  it("deleting a session deletes its stored files", async () => {
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "doomed", assistant: false });
    const a = await upload(server.url, owner.token, session.id, { name: "a.png", type: "image/png", data: await png(100, 100) });
    const b = await upload(server.url, owner.token, session.id, { name: "b.txt", type: "text/plain", data: text("unsent") });
    await ok(o, "message:send", { sessionId: session.id, clientMessageId: "d1", content: "pic", attachments: [a.body.id] });
    const keys = [`${a.body.id}`, `${a.body.id}.thumb`, `${b.body.id}`];
    expect(await storedObjects()).toEqual(expect.arrayContaining(keys));
    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: owner.token })).status).toBe(204);
    await eventually(async () => expect((await storedObjects()).filter((k) => keys.includes(k))).toEqual([]));
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE session_id = $1", [session.id]);
    expect(rows[0].n).toBe(0);
  });

  it("deleting an account deletes the files it uploaded, in its sessions and in others'", async () => {
    const o = await client(owner);
    const leaving = await register(server.url);
    const l = await client(leaving);
    const { session: shared } = await ok(o, "session:create", { title: "shared", assistant: false });
    await addMember(server.url, o, shared.id, leaving);
    const { session: own } = await ok(l, "session:create", { title: "own", assistant: false });
    const inShared = await upload(server.url, leaving.token, shared.id, { name: "x.txt", type: "text/plain", data: text("in shared") });
    await ok(l, "message:send", { sessionId: shared.id, clientMessageId: "l1", content: "file", attachments: [inShared.body.id] });
    const inOwn = await upload(server.url, leaving.token, own.id, { name: "y.txt", type: "text/plain", data: text("in own") });
    expect((await api(server.url, "/api/me", { method: "DELETE", token: leaving.token })).status).toBeLessThan(300);
    await eventually(async () => {
      const objects = await storedObjects();
      expect(objects).not.toContain(inShared.body.id);
      expect(objects).not.toContain(inOwn.body.id);
    }, 15_000);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE uploader_id = $1", [leaving.user.id]);
    expect(rows[0].n).toBe(0);
  });

  it("uploads are rate limited per user (family upload)", async () => {
    const u = await register(server.url);
    const s = await client(u);
    const { session } = await ok(s, "session:create", { title: "flood", assistant: false });
    let status = 0;
    for (let i = 0; i < 80 && status !== 429; i++) {
      status = (await upload(server.url, u.token, session.id, { name: "n.txt", type: "text/plain", data: text(`note ${i}`) })).status;
    }
    expect(status).toBe(429);
    // another user is not affected
    expect((await upload(server.url, owner.token, session.id, { name: "n.txt", type: "text/plain", data: text("x") })).status).toBe(404);
  });
});
