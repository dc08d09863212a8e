/**
 * Builds the web client (web/ -> web/dist, with Vite) when the build is
 * missing or older than its sources. `npm start` runs it first, so a fresh
 * clone serves the client at / with no extra step; the browser tests call it
 * too. Parallel callers: a lock file lets one build while the others wait.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB_DIR = fileURLToPath(new URL("../web/", import.meta.url));
const WEB_DIST = path.join(WEB_DIR, "dist");

async function newestMtime(p: string): Promise<number> {
  const info = await stat(p).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(p)) newest = Math.max(newest, await newestMtime(path.join(p, entry)));
  return newest;
}

async function buildIsStale(): Promise<boolean> {
  const built = await stat(path.join(WEB_DIST, "index.html")).catch(() => null);
  if (!built) return true;
  const sources = Math.max(
    // ../client/src: the client library (@memchat/client) is bundled into the build.
    ...(await Promise.all(["src", "index.html", "vite.config.ts", "../client/src"].map((p) => newestMtime(path.join(WEB_DIR, p))))),
  );
  return sources > built.mtimeMs;
}

/**
 * Builds web/ into web/dist with Vite's JS API when the build is missing or
 * older than its sources. Test files run in parallel processes: a lock file
 * lets one build while the others wait and then find it fresh.
 */
export async function ensureWebBuild(): Promise<void> {
  if (!(await buildIsStale())) return;
  const lockDir = path.join(tmpdir(), "memchat-web-build");
  await mkdir(lockDir, { recursive: true });
  const lock = path.join(lockDir, `${createHash("sha1").update(WEB_DIR).digest("hex").slice(0, 12)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const handle = await open(lock, "wx");
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // A lock left by a crashed run is old; a live build takes seconds.
      const info = await stat(lock).catch(() => null);
      if (info && Date.now() - info.mtimeMs > 60_000) await rm(lock, { force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for the web build lock ${lock}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (!(await buildIsStale())) return;
    const { build } = await import("vite");
    await build({ root: WEB_DIR, configFile: path.join(WEB_DIR, "vite.config.ts"), logLevel: "warn", mode: "production" });
  } finally {
    await rm(lock, { force: true });
  }
}


if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await ensureWebBuild();
}
