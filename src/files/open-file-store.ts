/** The file store the configuration names: S3 when S3_BUCKET is set, else the disk under DATA_DIR/files. */
import path from "node:path";
import type { Config } from "../config.js";
import { DiskFileStore } from "./disk-file-store.js";
import type { FileStore } from "./file-store.js";

export async function openFileStore(config: Config): Promise<{ store: FileStore; close(): void }> {
  if (config.files.s3) {
    // Loaded only when used: the AWS SDK is large and warns about the Node version at load.
    const { S3FileStore } = await import("./s3-file-store.js");
    const s3 = new S3FileStore(config.files.s3);
    return { store: s3, close: () => s3.destroy() };
  }
  return { store: await new DiskFileStore(path.join(config.dataDir, "files")).init(), close: () => undefined };
}
