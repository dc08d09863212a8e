/**
 * The README's two client library examples (client/examples/), run as they
 * are against the real server: the Node one as a program, the browser one
 * bundled by Vite and loaded in Chromium from the server's origin.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@memchat/client";
import type { Browser } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, launchBrowser } from "../support/browser.js";
import { api, register } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServer } from "../support/server-process.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLES = path.join(ROOT, "client/examples");

let db: TestDatabase;
let server: ServerProcess;
let dataDir: string;
let browser: Browser | undefined;

beforeAll(async () => {
  db = await createTestDatabase(2);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-client-examples-"));
  // No OPENAI_BASE_URL: the offline responder answers, word by word.
  server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: "client-examples-secret-0123456789-0123456789", EMBEDDER: "hash", OFFLINE_TOKEN_DELAY_MS: "5" });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function replyRows(sessionId: string) {
  const { rows } = await db.pool.query<{ content: string; status: string }>("SELECT content, status FROM chat_messages WHERE session_id = $1 AND role = 'assistant' ORDER BY seq", [sessionId]);
  return rows;
}

describe("client library examples", () => {
  it("are in the README as they are in client/examples/", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    for (const file of ["node.ts", "browser.ts"]) expect(readme).toContain(await readFile(path.join(EXAMPLES, file), "utf8"));
  });

  it("the Node example asks, streams the reply to stdout, and exits", async () => {
    const u = await register(server.url);
    const child = spawn(process.execPath, ["--import", "tsx", "client/examples/node.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MEMCHAT_URL: server.url, MEMCHAT_USER: u.user.username, MEMCHAT_PASSWORD: u.password },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, stderr).toBe(0);

    const sessions = (await api(server.url, "/api/sessions", { token: u.token })).body.sessions as { id: string; title: string }[];
    expect(sessions.map((s) => s.title)).toEqual(["From Node"]);
    const [reply] = await replyRows(sessions[0]!.id);
    expect(reply!.status).toBe("complete");
    expect(reply!.content.length).toBeGreaterThan(0);
    expect(stdout).toBe(`${reply!.content}\n(complete)\n`);
  });

  it("the browser example shows what is sent and streams the reply in", async () => {
    const outDir = await mkdtemp(path.join(tmpdir(), "memchat-browser-example-"));
    try {
      await build({
        configFile: false,
        root: EXAMPLES,
        base: "/example/",
        logLevel: "silent",
        resolve: { alias: { "@memchat/client": path.join(ROOT, "client/src/index.ts") } },
        build: { outDir, emptyOutDir: true, target: "es2022", rollupOptions: { input: path.join(EXAMPLES, "browser.html") } },
      });
      const u = await register(server.url);
      const owner = await connect({ url: server.url, token: u.token });
      const sessionId = (await owner.createSession({ title: "from the browser" })).id;
      owner.close();

      browser = await launchBrowser();
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      // The example is served from the server's origin, as an app bundled with the library would be.
      await page.route(`${server.url}/example/**`, async (route) => {
        const rel = new URL(route.request().url()).pathname.replace(/^\/example\//, "");
        const file = path.join(outDir, rel);
        await route.fulfill({ body: await readFile(file), contentType: rel.endsWith(".js") ? "text/javascript" : "text/html" });
      });
      await page.addInitScript(`localStorage.setItem("token", ${JSON.stringify(u.token)})`);
      await page.goto(`${server.url}/example/browser.html?session=${sessionId}`);

      const input = page.getByRole("textbox", { name: "Message" });
      await input.fill("hello from a browser");
      await input.press("Enter");
      const [reply] = await eventually(async () => {
        const rows = await replyRows(sessionId);
        expect(rows[0]?.status).toBe("complete");
        return rows;
      });
      await eventually(async () => expect(await page.locator("ol li").allTextContents()).toEqual(["hello from a browser", reply!.content]));
      expect(errors).toEqual([]);
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });
});
