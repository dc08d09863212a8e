/**
 * Where attachment bytes live: the port every file store implements (the
 * local disk under DATA_DIR, or an S3-compatible object store), and the one
 * contract suite in test/contracts/file-store-contract.ts that each passes.
 *
 * Keys are chosen by the server (never from a file name): lower-case
 * letters, digits, '-', '.', '_' and '/' only.
 */
import type { Readable } from "node:stream";

export interface StoredObject {
  size: number;
}

export interface FileStore {
  /** A short name for logs and readiness ("disk", "s3"). */
  readonly name: string;
  /**
   * Stores the stream under `key`, replacing any object there. All or
   * nothing: when the stream fails or is cut off (or the store does), the
   * promise rejects and no object (not a part of one) is left under `key`.
   */
  put(key: string, body: Readable, opts?: { contentType?: string }): Promise<StoredObject>;
  /** The object's bytes, streamed; null when there is none. */
  get(key: string): Promise<Readable | null>;
  /** Removes the object; nothing happens when there is none. */
  delete(key: string): Promise<void>;
  /** The object's size; null when there is none. */
  stat(key: string): Promise<StoredObject | null>;
  /** Readiness: resolves with a short status, rejects when unusable. */
  check(): Promise<string>;
}

const KEY = /^[a-z0-9][a-z0-9._/-]{0,510}$/;

/** Refuses keys that could leave the store's root (.., absolute paths) or need escaping. */
export function assertKey(key: string): void {
  if (!KEY.test(key) || key.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`invalid file store key: ${JSON.stringify(key)}`);
  }
}
