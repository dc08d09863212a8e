/**
 * The assistant reads attachments, against the real server process: a PDF
 * whose answer appears nowhere else is uploaded and sent; the question's
 * prompt quotes the passage with its file and page, the reply's context
 * names it (live and from history), and nobody outside the session ever
 * gets it into a prompt of theirs. A question sent in the same message as
 * a file still being read waits for it; one sent with an image does not.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { addMember, connect, ok, register, type TestUser } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { OpenAiLlmDouble } from "../support/openai-llm-double.js";
import { fillerPages, writePdf } from "../support/pdf-writer.js";
import { eventually } from "../support/redis.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";
import { png, upload } from "../support/uploads.js";

let db: TestDatabase;
let server: ServerProcess;
let llm: OpenAiLlmDouble;
let dataDir: string;
const sockets: Socket[] = [];

async function client(u: TestUser) {
  const s = await connect(server.url, u.token);
  sockets.push(s);
  return s;
}
const promptText = (i: number) => llm.requests[i]!.body!.messages.map((m) => `${m.role}: ${m.content}`).join("\n");

/** Waits until the attachment's passages are stored and embedded. */
async function readAndIndexed(attachmentId: string): Promise<number> {
  return eventually(async () => {
    const { rows } = await db.pool.query<{ status: string; passages: number; waiting: number }>(
      `SELECT e.status, e.passages,
              (SELECT count(*)::int FROM attachment_passages p WHERE p.attachment_id = e.attachment_id AND p.indexed_at IS NULL) AS waiting
         FROM attachment_extractions e WHERE e.attachment_id = $1`,
      [attachmentId],
    );
    const r = rows[0];
    if (!r || r.status !== "done" || r.waiting > 0) throw new Error(`not yet: ${JSON.stringify(r)}`);
    return r.passages;
  }, 60_000, 100);
}

const SECRET = "The emergency generator key hangs behind the blue cabinet in room 414.";
const manual = () => writePdf(fillerPages(5, 20, (p) => (p === 2 ? SECRET : undefined)), { title: "Facility manual" });

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-docs-"));
  llm = new OpenAiLlmDouble();
  const llmUrl = (await llm.start()).url;
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "documents-secret-0123456789-0123456789-01",
    EMBEDDER: "hash",
    OPENAI_BASE_URL: llmUrl,
    OPENAI_API_KEY: "test-key",
    OPENAI_MODEL: "double-model",
    INDEXER_POLL_MS: "100",
    RATE_SESSION_BURST: "100",
    RATE_UPLOAD_BURST: "50",
    // Long enough that only the file being read ends the wait, on a slow machine too.
    ATTACHMENT_READ_WAIT_MS: "60000",
  });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.stop();
  await llm?.close();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

beforeEach(() => llm.reset());

describe("an answer that is only in an attached document", () => {
  it("quotes the passage (file and page) in the prompt, and the reply's context names it, live and from history", async () => {
    const [owner, member, outsider] = [await register(server.url), await register(server.url), await register(server.url)];
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "facility" });
    await addMember(server.url, o, session.id, member);
    await ok(o, "session:join", { sessionId: session.id });

    const up = await upload(server.url, owner.token, session.id, { name: "facility manual.pdf", type: "application/pdf", data: manual() });
    expect(up.status).toBe(201);
    const attachmentId: string = up.body.id;
    expect(await readAndIndexed(attachmentId)).toBeGreaterThan(5);

    llm.enqueue({ tokens: ["Behind", " the", " blue", " cabinet", "."] });
    const turn = collectTurn(o, session.id, 30_000);
    await ok(o, "message:send", { sessionId: session.id, clientMessageId: "doc-q1", content: "Here is the manual. Where is the emergency generator key?", attachments: [attachmentId] });
    const t = await turn;
    expect(t.error).toBeUndefined();

    const prompt = promptText(0);
    expect(prompt).toContain('<quoted source="documents">');
    expect(prompt).toContain('- from document "facility manual.pdf", page 3:');
    expect(prompt).toContain("blue cabinet in room 414");
    // Quoted data in the system message, never a turn of its own.
    const turns = llm.requests[0]!.body!.messages.filter((m) => m.role !== "system");
    expect(turns.some((m) => m.content.includes("room 414"))).toBe(false);

    const passages = (t.end as unknown as { passages: { attachmentId: string; name: string; page: number | null }[] }).passages;
    expect(passages[0]).toMatchObject({ attachmentId, name: "facility manual.pdf", page: 3 });

    // From history: a member asks for the reply's context.
    const m = await client(member);
    const ctx = await ok(m, "message:context", { messageId: t.end!.message.id });
    expect(ctx.passages[0]).toMatchObject({ attachmentId, name: "facility manual.pdf", page: 3 });
    expect(ctx.passages[0].content).toContain("room 414");

    // An outsider cannot read that reply's context, and their own question never reaches the document.
    const x = await client(outsider);
    const ctxOut = await import("../support/client.js").then(({ call }) => call(x, "message:context", { messageId: t.end!.message.id }));
    expect(ctxOut.ok ? ctxOut.data.passages : []).toEqual([]);
    const { session: own } = await ok(x, "session:create", { title: "mine" });
    await ok(x, "session:join", { sessionId: own.id });
    llm.enqueue({ tokens: ["No", " idea", "."] });
    const turn2 = collectTurn(x, own.id, 30_000);
    await ok(x, "message:send", { sessionId: own.id, clientMessageId: "doc-q2", content: "Where is the emergency generator key?" });
    await turn2;
    expect(promptText(1)).not.toContain("room 414");
    expect(promptText(1)).not.toContain("facility manual");
  });

  it("a member's private session does not draw on a file another member shared elsewhere", async () => {
    const [owner, member] = [await register(server.url), await register(server.url)];
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "shared" });
    await addMember(server.url, o, session.id, member);
    await ok(o, "session:join", { sessionId: session.id });
    const up = await upload(server.url, owner.token, session.id, { name: "manual.pdf", type: "application/pdf", data: manual() });
    const attachmentId: string = up.body.id;
    await ok(o, "message:send", { sessionId: session.id, clientMessageId: "share", content: "the manual", attachments: [attachmentId], assistant: false });
    await readAndIndexed(attachmentId);

    const m = await client(member);
    const { session: priv } = await ok(m, "session:create", { title: "private" });
    await ok(m, "session:join", { sessionId: priv.id });
    llm.enqueue({ tokens: ["?"] });
    const turn = collectTurn(m, priv.id, 30_000);
    await ok(m, "message:send", { sessionId: priv.id, clientMessageId: "priv-q", content: "Where is the emergency generator key?" });
    await turn;
    expect(promptText(0)).not.toContain("room 414");
  });

  it("a question sent with a file that is still being read waits for it; one sent with an image does not wait", async () => {
    const owner = await register(server.url);
    const o = await client(owner);
    const { session } = await ok(o, "session:create", { title: "just uploaded" });
    const { session: pictures } = await ok(o, "session:create", { title: "pictures" });
    await ok(o, "session:join", { sessionId: session.id });
    await ok(o, "session:join", { sessionId: pictures.id });

    // Holds the extraction back where it writes the passages' indexing jobs: until this
    // transaction ends, the file's extraction cannot settle (whichever node runs it).
    const hold = await db.pool.connect();
    let held = true;
    try {
      await hold.query("BEGIN");
      await hold.query("LOCK TABLE passage_index_jobs IN SHARE MODE");

      const notes = "# Night desk notes\n\n" + "Routine rounds are logged hourly in the blue binder.\n\n".repeat(30) +
        "The spare archive badge lives in drawer nine of the night desk.\n\n" + "Visitors sign in at the front desk.\n\n".repeat(30);
      const doc = await upload(server.url, owner.token, session.id, { name: "night desk.md", type: "text/markdown", data: new TextEncoder().encode(notes) });
      expect(doc.status).toBe(201);
      const image = await upload(server.url, owner.token, pictures.id, { name: "desk.png", type: "image/png", data: await png(320, 240) });
      expect(image.status).toBe(201);

      llm.enqueue({ tokens: ["Drawer", " nine", "."] }, { tokens: ["A", " desk", "."] });
      const docTurn = collectTurn(o, session.id, 90_000);
      await ok(o, "message:send", { sessionId: session.id, clientMessageId: "fresh-doc", content: "Where is the spare archive badge kept?", attachments: [doc.body.id] });

      // The extraction is stuck writing its passages: the file is not read yet.
      await eventually(async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO attachment_passages%'",
        );
        if (rows[0]!.n === 0) throw new Error("the extraction is not waiting yet");
      }, 30_000, 50);
      const { rows: state } = await db.pool.query<{ status: string }>("SELECT status FROM attachment_extractions WHERE attachment_id = $1", [doc.body.id]);
      expect(state[0]!.status).toBe("queued");

      // An image is not read for text: its question is answered while the document's still waits.
      const imageTurn = collectTurn(o, pictures.id, 30_000);
      await ok(o, "message:send", { sessionId: pictures.id, clientMessageId: "fresh-image", content: "What does this desk look like?", attachments: [image.body.id] });
      const it = await imageTurn;
      expect(it.error).toBeUndefined();
      expect(it.end?.message.status).toBe("complete");
      expect(llm.requests).toHaveLength(1);
      expect(promptText(0)).toContain("What does this desk look like?");

      await hold.query("COMMIT");
      held = false;
      const t = await docTurn;
      expect(t.error).toBeUndefined();
      expect(llm.requests).toHaveLength(2);
      const prompt = promptText(1);
      expect(prompt).toContain("Where is the spare archive badge kept?");
      expect(prompt).toContain('- from document "night desk.md"');
      expect(prompt).toContain("drawer nine of the night desk");
      const passages = (t.end as unknown as { passages: { attachmentId: string }[] }).passages;
      expect(passages.map((p) => p.attachmentId)).toContain(doc.body.id);
    } finally {
      if (held) await hold.query("ROLLBACK").catch(() => undefined);
      hold.release();
    }
  });
});
