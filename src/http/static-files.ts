/**
 * Serves the browser client that Vite builds into web/dist: index.html at
 * `/` (revalidated on every load, so a new build is picked up at once) and
 * the content-hashed files under /assets/ (cached for a year: a new build
 * gives them new names).
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { AppError } from "../protocol/errors.js";
import type { RouteDoc } from "./route-doc.js";
import type { Reply, RequestContext, Router } from "./router.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

/** One path segment, no leading dot: rules out `..`, hidden files and separators after URL decoding. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The page may talk only to its own origin (REST and the socket). User text is
 * rendered as text, and this keeps injected markup from running anyway.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // blob: thumbnails of attachments, fetched with the token and shown through object URLs.
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const COMMON_HEADERS = { "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

export interface StaticFilesOptions {
  /** The build output folder; defaults to web/dist of this checkout. */
  root?: string;
}

/** web/dist next to the package.json above this module, from src/http as from a compiled dist/src/http. */
export function defaultWebRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return path.join(dir, "web", "dist");
    if (path.dirname(dir) === dir) return path.resolve("web", "dist");
  }
}

export function registerStaticFiles(router: Router, options: StaticFilesOptions = {}): void {
  const root = path.resolve(options.root ?? defaultWebRoot());
  const assets = path.join(root, "assets");
  // HEAD too: node:http leaves the body out by itself.
  for (const method of ["GET", "HEAD"]) {
    router.add(method, "/", (ctx) => serveIndex(root, ctx), INDEX_DOC).add(method, "/assets/:file", (ctx) => serveAsset(assets, ctx.params.file ?? ""), ASSET_DOC);
  }
}

const INDEX_DOC: RouteDoc = {
  summary: "The web client's page",
  tag: "web client",
  auth: false,
  responses: {
    200: { description: "index.html", contentType: "text/html" },
    304: { description: "unchanged since the etag in If-None-Match" },
    503: { description: "the web client is not built: a page saying how to build it", contentType: "text/html" },
  },
  errors: [],
};

const ASSET_DOC: RouteDoc = {
  summary: "A content-hashed file of the web client's build (cached for a year)",
  tag: "web client",
  auth: false,
  params: z.object({ file: z.string() }),
  responses: { 200: { description: "the file, typed by its extension", contentType: "application/octet-stream" } },
  errors: ["NOT_FOUND"],
};

async function serveIndex(root: string, ctx: RequestContext): Promise<Reply> {
  const file = path.join(root, "index.html");
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return notBuilt();
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers = { ...COMMON_HEADERS, "cache-control": "no-cache", etag, "content-security-policy": CSP };
  if (ctx.req.headers["if-none-match"] === etag) return { status: 304, contentType: CONTENT_TYPES[".html"], headers };
  return { body: await readFile(file), contentType: CONTENT_TYPES[".html"], headers };
}

async function serveAsset(dir: string, name: string): Promise<Reply> {
  const type = CONTENT_TYPES[path.extname(name).toLowerCase()];
  if (!SAFE_NAME.test(name) || !type) throw new AppError("NOT_FOUND", "no such file");
  const file = path.join(dir, name);
  const body = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT" || err.code === "EISDIR" || err.code === "ENOTDIR") throw new AppError("NOT_FOUND", "no such file");
    throw err;
  });
  return {
    body,
    contentType: type,
    headers: { ...COMMON_HEADERS, "cache-control": "public, max-age=31536000, immutable" },
  };
}

function notBuilt(): Reply {
  return {
    status: 503,
    contentType: CONTENT_TYPES[".html"],
    headers: { ...COMMON_HEADERS, "cache-control": "no-store", "retry-after": "10" },
    body: `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Memchat: web client not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5">
<h1>The web client is not built yet</h1>
<p>The server is running, but the browser client has not been built. Run</p>
<pre style="background: #f1f1f4; padding: 0.75rem 1rem; border-radius: 8px">npm run build:web</pre>
<p>and reload this page. The REST API and the socket work without it.</p>
</body>
</html>
`,
  };
}
