import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { FileStore } from "../../src/files/file-store.js";

export interface FileStoreFixture {
  store: FileStore;
  /** Pieces of unfinished puts the backend still holds (temporary files, open multipart uploads). */
  leftovers(): Promise<number>;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** `total` bytes in 64 KiB chunks, produced as they are read; fails after `failAfter` bytes when given. */
function source(data: Buffer, failAfter?: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && offset >= failAfter) {
        this.destroy(new Error("connection cut"));
        return;
      }
      if (offset >= data.length) return void this.push(null);
      const end = Math.min(data.length, offset + 64 * 1024);
      this.push(data.subarray(offset, end));
      offset = end;
    },
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The contract every FileStore keeps (src/files/file-store.ts). */
export function fileStoreContract(name: string, make: () => Promise<FileStoreFixture>) {
  describe(`FileStore contract: ${name}`, () => {
    it("stores a stream and gives the same bytes back, with its size", async () => {
      const { store } = await make();
      const key = `attachments/${randomUUID()}`;
      const data = randomBytes(300_000);
      expect(await store.put(key, source(data))).toEqual({ size: data.length });
      expect(await store.stat(key)).toEqual({ size: data.length });
      expect(sha(await readAll((await store.get(key))!))).toBe(sha(data));
    });

    it("round-trips a file larger than one multipart part (12 MiB), streamed", async () => {
      const { store, leftovers } = await make();
      const key = `attachments/${randomUUID()}`;
      const data = randomBytes(12 * 1024 * 1024 + 123);
      expect((await store.put(key, source(data))).size).toBe(data.length);
      expect(sha(await readAll((await store.get(key))!))).toBe(sha(data));
      expect(await leftovers()).toBe(0);
    });

    it("replaces an object put again under the same key", async () => {
      const { store } = await make();
      const key = `attachments/${randomUUID()}`;
      await store.put(key, source(Buffer.from("first version")));
      await store.put(key, source(Buffer.from("second")));
      expect((await readAll((await store.get(key))!)).toString()).toBe("second");
      expect(await store.stat(key)).toEqual({ size: 6 });
    });

    it("answers null for a missing object and deletes idempotently", async () => {
      const { store } = await make();
      const key = `attachments/${randomUUID()}`;
      expect(await store.get(key)).toBeNull();
      expect(await store.stat(key)).toBeNull();
      await store.delete(key);
      await store.put(key, source(Buffer.from("x")));
      await store.delete(key);
      expect(await store.get(key)).toBeNull();
      expect(await store.stat(key)).toBeNull();
      await store.delete(key);
    });

    it("keeps nothing of a put whose stream fails halfway, small or multipart", async () => {
      const { store, leftovers } = await make();
      for (const [size, cut] of [
        [200_000, 100_000],
        [12 * 1024 * 1024, 7 * 1024 * 1024],
      ] as const) {
        const key = `attachments/${randomUUID()}`;
        await expect(store.put(key, source(randomBytes(size), cut))).rejects.toThrow();
        expect(await store.stat(key)).toBeNull();
        expect(await store.get(key)).toBeNull();
      }
      expect(await leftovers()).toBe(0);
    });

    it("a failed put leaves an object already under the key as it was", async () => {
      const { store } = await make();
      const key = `attachments/${randomUUID()}`;
      await store.put(key, source(Buffer.from("kept")));
      await expect(store.put(key, source(randomBytes(200_000), 70_000))).rejects.toThrow();
      expect((await readAll((await store.get(key))!)).toString()).toBe("kept");
    });

    it("refuses keys that could leave its root", async () => {
      const { store } = await make();
      for (const key of ["../escape", "a/../../b", "/abs", "A/Upper", "a//b", ""]) {
        await expect(store.put(key, source(Buffer.from("x")))).rejects.toThrow(/invalid file store key/);
        await expect(store.get(key)).rejects.toThrow(/invalid file store key/);
      }
    });

    it("reports ready", async () => {
      const { store } = await make();
      expect(await store.check()).toContain(store.name);
    });
  });
}
