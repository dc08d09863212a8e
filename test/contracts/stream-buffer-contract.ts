import { afterEach, describe, expect, it } from "vitest";
import type { StreamBuffer } from "../../src/chat/ports.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let nextId = Math.floor(Math.random() * 1e9);
/** Message ids unique within the run, so tests sharing a backing store never meet. */
const messageId = () => ++nextId;

export interface StreamBufferContractOptions {
  /** The grace period after end() that `make` configures; keep it short (a few hundred ms). */
  endGraceMs: number;
}

/** The contract every StreamBuffer must keep. */
export function streamBufferContract(
  name: string,
  make: () => Promise<StreamBuffer> | StreamBuffer,
  opts: StreamBufferContractOptions,
) {
  describe(`StreamBuffer contract: ${name}`, () => {
    const made: StreamBuffer[] = [];
    const buffer = async () => {
      const b = await make();
      made.push(b);
      return b;
    };
    afterEach(async () => {
      await Promise.all(made.splice(0).map((b) => b.close()));
    });

    it("reads back appended deltas in order", async () => {
      const sb = await buffer();
      const id = messageId();
      const deltas = ["Hel", "lo", ", ", "", "wörld 🌍", "\n"].map((text, i) => ({ seq: i + 1, text }));
      for (const d of deltas) await sb.append(id, d);
      expect(await sb.read(id, 0)).toEqual(deltas);
    });

    it("reads only the deltas after a seq", async () => {
      const sb = await buffer();
      const id = messageId();
      for (let seq = 1; seq <= 5; seq++) await sb.append(id, { seq, text: `t${seq}` });
      expect(await sb.read(id, 3)).toEqual([
        { seq: 4, text: "t4" },
        { seq: 5, text: "t5" },
      ]);
      expect(await sb.read(id, 5)).toEqual([]);
      expect(await sb.read(id, 99)).toEqual([]);
    });

    it("answers empty for a stream it never saw", async () => {
      const sb = await buffer();
      expect(await sb.read(messageId(), 0)).toEqual([]);
    });

    it("keeps an ended stream readable for the grace period, then forgets it", async () => {
      const sb = await buffer();
      const id = messageId();
      await sb.append(id, { seq: 1, text: "a" });
      await sb.append(id, { seq: 2, text: "b" });
      await sb.end(id);
      expect(await sb.read(id, 1)).toEqual([{ seq: 2, text: "b" }]);
      await sleep(opts.endGraceMs + 300);
      expect(await sb.read(id, 0)).toEqual([]);
    });

    it("keeps messages apart", async () => {
      const sb = await buffer();
      const [a, b] = [messageId(), messageId()];
      await Promise.all([
        (async () => {
          for (let seq = 1; seq <= 20; seq++) await sb.append(a, { seq, text: `a${seq}` });
        })(),
        (async () => {
          for (let seq = 1; seq <= 20; seq++) await sb.append(b, { seq, text: `b${seq}` });
        })(),
      ]);
      await sb.end(a);
      const ra = await sb.read(a, 0);
      const rb = await sb.read(b, 0);
      expect(ra.map((d) => d.text)).toEqual(Array.from({ length: 20 }, (_, i) => `a${i + 1}`));
      expect(rb.map((d) => d.text)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i + 1}`));
      await sleep(opts.endGraceMs + 300);
      // Ending one stream does not end the other.
      expect(await sb.read(a, 0)).toEqual([]);
      expect(await sb.read(b, 18)).toEqual([
        { seq: 19, text: "b19" },
        { seq: 20, text: "b20" },
      ]);
    });
  });
}
