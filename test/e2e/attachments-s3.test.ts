/**
 * The cluster profile's file store end to end: a server configured with
 * S3_* keeps attachments in an S3-compatible store (here the S3 double on
 * loopback, which checks SigV4 like S3 and MinIO do): uploads, thumbnails,
 * downloads and deletion with the session all go through it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { api, connect, ok, register } from "../support/client.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { eventually } from "../support/redis.js";
import { type S3Double, startS3Double } from "../support/s3-double.js";
import { type NginxHandle, startNginx } from "../support/nginx.js";
import { type ServerProcess, startServer } from "../support/server-process.js";
import { png, upload } from "../support/uploads.js";

let db: TestDatabase;
let server: ServerProcess;
let s3: S3Double;
let dataDir: string;
const creds = { accessKeyId: "memchat-e2e", secretAccessKey: "memchat-e2e-secret-0123456789abcdef" };

beforeAll(async () => {
  db = await createTestDatabase(4);
  dataDir = await mkdtemp(path.join(tmpdir(), "memchat-s3-"));
  s3 = await startS3Double({ bucket: "memchat-files", ...creds });
  server = await startServer({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    JWT_SECRET: "attachments-s3-secret-0123456789-012345",
    EMBEDDER: "none",
    S3_BUCKET: "memchat-files",
    S3_ENDPOINT: s3.url,
    S3_ACCESS_KEY_ID: creds.accessKeyId,
    S3_SECRET_ACCESS_KEY: creds.secretAccessKey,
    S3_PREFIX: "prod/",
  });
});

let nginx: NginxHandle | undefined;

afterAll(async () => {
  await nginx?.stop();
  await server?.stop();
  await s3?.close();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("stores, serves and deletes attachments in the S3 store", async () => {
  const ready = await api(server.url, "/readyz");
  expect(ready.body.checks.files).toMatchObject({ ok: true, status: "s3 (bucket memchat-files)" });
  const u = await register(server.url);
  const s = await connect(server.url, u.token);
  try {
    const { session } = await ok(s, "session:create", { title: "s3", assistant: false });
    const image = await png(400, 300);
    const up = await upload(server.url, u.token, session.id, { name: "pic.png", type: "image/png", data: image });
    expect(up.status).toBe(201);
    expect(up.body.thumbnail).toBe(true);
    expect([...s3.objects.keys()].sort()).toEqual([`prod/attachments/${up.body.id}`, `prod/attachments/${up.body.id}.thumb`]);
    expect(s3.objects.get(`prod/attachments/${up.body.id}`)!.data.equals(image)).toBe(true);
    await ok(s, "message:send", { sessionId: session.id, clientMessageId: "s3-1", content: "pic", attachments: [up.body.id] });
    const dl = await fetch(`${server.url}/api/attachments/${up.body.id}/content`, { headers: { authorization: `Bearer ${u.token}` } });
    expect(Buffer.from(await dl.arrayBuffer()).equals(image)).toBe(true);
    expect(s3.signatureFailures).toBe(0);

    expect((await api(server.url, `/api/sessions/${session.id}`, { method: "DELETE", token: u.token })).status).toBe(204);
    await eventually(async () => expect(s3.objects.size).toBe(0));
    expect(s3.multipart.size).toBe(0);
  } finally {
    s.close();
  }
});

it("uploads far larger than other request bodies pass the cluster's nginx (deploy/nginx.conf), streamed", async () => {
  nginx = await startNginx([server.url]);
  const u = await register(server.url);
  const s = await connect(server.url, u.token);
  try {
    const { session } = await ok(s, "session:create", { title: "through nginx", assistant: false });
    const data = new Uint8Array(6 * 1024 * 1024).fill(0x7a);
    const up = await upload(nginx.url, u.token, session.id, { name: "big.txt", type: "text/plain", data });
    expect(up.status).toBe(201);
    expect(up.body.size).toBe(data.length);
    // six MiB is past the 5 MiB part size: the store received it as a multipart upload
    expect(s3.log).toContain("POST complete-multipart");
    // other bodies keep the 1 MB cap
    const json = await fetch(`${nginx.url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: "x".repeat(2 * 1024 * 1024) });
    expect(json.status).toBe(413);
  } finally {
    s.close();
  }
});
