import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DiskFileStore } from "../../src/files/disk-file-store.js";
import { S3FileStore } from "../../src/files/s3-file-store.js";
import { fileStoreContract } from "../contracts/file-store-contract.js";
import { type S3Double, startS3Double } from "../support/s3-double.js";

let dir: string;
let s3: S3Double;
const creds = { accessKeyId: "memchat-test", secretAccessKey: "memchat-test-secret-key-0123456789" };
const stores: S3FileStore[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "memchat-files-"));
  s3 = await startS3Double({ bucket: "memchat", ...creds });
});
afterAll(async () => {
  for (const s of stores) s.destroy();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

fileStoreContract("local disk", async () => {
  const root = path.join(dir, "disk");
  const store = await new DiskFileStore(root).init();
  return { store, leftovers: async () => (await readdir(path.join(root, ".tmp"))).length };
});

fileStoreContract("S3 over the S3 double", async () => {
  const store = new S3FileStore({ bucket: "memchat", endpoint: s3.url, region: "us-east-1", forcePathStyle: true, prefix: "t/", ...creds });
  stores.push(store);
  return { store, leftovers: async () => s3.multipart.size };
});

it("the S3 double refuses a request signed with the wrong secret, as S3 does", async () => {
  const store = new S3FileStore({ bucket: "memchat", endpoint: s3.url, region: "us-east-1", forcePathStyle: true, prefix: "", accessKeyId: creds.accessKeyId, secretAccessKey: "wrong-secret-wrong-secret-wrong" });
  stores.push(store);
  const before = s3.signatureFailures;
  await expect(store.check()).rejects.toThrow();
  expect(s3.signatureFailures).toBeGreaterThan(before);
  // the correct credentials went through multipart uploads and single puts alike
  expect(s3.log).toContain("POST complete-multipart");
  expect(s3.log).toContain("DELETE abort-multipart");
});
