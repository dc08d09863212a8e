/**
 * The static file routes on a real HTTP server, over a build folder the test
 * writes itself: what is served, with which headers, and what never is.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../../src/http/metrics.js";
import { Router } from "../../src/http/router.js";
import { defaultWebRoot, registerStaticFiles } from "../../src/http/static-files.js";
import { silentLogger } from "../support/logger.js";

let dir: string;
const servers: http.Server[] = [];

async function serve(root: string): Promise<string> {
  const router = new Router(silentLogger, new Metrics(), 64 * 1024);
  registerStaticFiles(router, { root });
  const server = http.createServer(router.handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "memchat-static-"));
  await mkdir(path.join(dir, "dist", "assets", "nested"), { recursive: true });
  await writeFile(path.join(dir, "dist", "index.html"), "<!doctype html><title>client</title>");
  await writeFile(path.join(dir, "dist", "assets", "app-1a2b3c.js"), "console.log('é ✓');");
  await writeFile(path.join(dir, "dist", "assets", "app-1a2b3c.css"), "body{}");
  await writeFile(path.join(dir, "dist", "assets", "logo-9f9f.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  await writeFile(path.join(dir, "dist", "assets", ".hidden.js"), "secret");
  await writeFile(path.join(dir, "dist", "secret.txt"), "outside assets");
  await writeFile(path.join(dir, "private.js"), "outside the root");
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe("static files", () => {
  it("serves index.html at / to revalidate, with a content security policy and an etag", async () => {
    const base = await serve(path.join(dir, "dist"));
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("cache-control")).toBe("no-cache");
    expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await r.text()).toBe("<!doctype html><title>client</title>");
    const again = await fetch(`${base}/`, { headers: { "if-none-match": r.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
    const head = await fetch(`${base}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("text/html; charset=utf-8");
  });

  it("serves hashed assets for a year with their content types, byte for byte", async () => {
    const base = await serve(path.join(dir, "dist"));
    const js = await fetch(`${base}/assets/app-1a2b3c.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await js.text()).toBe("console.log('é ✓');");
    const css = await fetch(`${base}/assets/app-1a2b3c.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const png = await fetch(`${base}/assets/logo-9f9f.png`);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect([...new Uint8Array(await png.arrayBuffer())]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });

  it("answers 404 for missing files, unknown types, hidden files and any path outside assets", async () => {
    const base = await serve(path.join(dir, "dist"));
    for (const p of [
      "/assets/missing-000.js",
      "/assets/nested",
      "/assets/nested/x.js",
      "/assets/.hidden.js",
      "/assets/..%2Fsecret.txt",
      "/assets/..%2F..%2Fprivate.js",
      "/assets/%2E%2E%2F%2E%2E%2Fprivate.js",
      "/assets/..%5C..%5Cprivate.js",
      "/assets/%2Fetc%2Fpasswd",
      "/assets/app-1a2b3c.js%00.png",
      "/assets/README",
      "/secret.txt",
      "/index.html",
    ]) {
      const r = await fetch(`${base}${p}`);
      expect(r.status, p).toBe(404);
      const body = await r.text();
      expect(body, p).not.toContain("outside");
      expect(body, p).not.toContain("secret");
    }
  });

  it("tells how to build the client when there is no build", async () => {
    const base = await serve(path.join(dir, "no-such-dist"));
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(503);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await r.text()).toContain("npm run build:web");
    expect((await fetch(`${base}/assets/app-1a2b3c.js`)).status).toBe(404);
  });

  it("finds web/dist of this checkout by default", () => {
    expect(defaultWebRoot()).toBe(path.resolve("web", "dist"));
    expect(defaultWebRoot(path.resolve("dist", "src", "http"))).toBe(path.resolve("web", "dist"));
  });
});
