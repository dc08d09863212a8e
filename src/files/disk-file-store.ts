/**
 * FileStore on the local disk (the embedded profile): objects are files under
 * a root directory (DATA_DIR/files). A put writes a temporary file in the
 * root's .tmp and renames it into place once whole, so a cut-off upload (or
 * a crash) never leaves a partial object under a key; stale temporaries from
 * a crash are removed at start.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { assertKey, type FileStore, type StoredObject } from "./file-store.js";

const TMP = ".tmp";
/** Temporaries older than this at start are a crashed process's leftovers. */
const STALE_TMP_MS = 3600_000;

export class DiskFileStore implements FileStore {
  readonly name = "disk";
  private readonly tmpDir: string;

  constructor(private readonly root: string) {
    this.tmpDir = path.join(root, TMP);
  }

  /** Creates the root and clears leftovers of interrupted uploads. */
  async init(): Promise<this> {
    await mkdir(this.tmpDir, { recursive: true });
    const now = Date.now();
    for (const f of await readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, f);
      const s = await stat(p).catch(() => null);
      if (s && now - s.mtimeMs > STALE_TMP_MS) await rm(p, { force: true });
    }
    return this;
  }

  private pathOf(key: string): string {
    assertKey(key);
    return path.join(this.root, ...key.split("/"));
  }

  async put(key: string, body: Readable): Promise<StoredObject> {
    // The stream may fail before the pipeline below listens (while directories are made): that failure is the pipeline's to report.
    body.on("error", () => undefined);
    const target = this.pathOf(key);
    const tmp = path.join(this.tmpDir, randomUUID());
    try {
      await mkdir(this.tmpDir, { recursive: true });
      await pipeline(body, createWriteStream(tmp, { flags: "wx" }));
      await mkdir(path.dirname(target), { recursive: true });
      await rename(tmp, target);
    } catch (err) {
      body.destroy();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return { size: (await stat(target)).size };
  }

  async get(key: string): Promise<Readable | null> {
    const p = this.pathOf(key);
    const stream = createReadStream(p);
    // Open first, so a missing object is null rather than a stream that errors later.
    return new Promise((resolve, reject) => {
      stream.once("open", () => resolve(stream));
      stream.once("error", (err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? resolve(null) : reject(err)));
    });
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async stat(key: string): Promise<StoredObject | null> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { size: s.size } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async check(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return `disk (${this.root})`;
  }
}
