import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Presence } from "../../src/chat/ports.js";

/** The contract every Presence must keep: per user, not per connection. */
export function presenceContract(name: string, make: () => Promise<Presence> | Presence) {
  describe(`Presence contract: ${name}`, () => {
    it("counts a user once across connections and leaves with the last one", async () => {
      const p = await make();
      const s = randomUUID();
      expect(await p.join(s, "u1", "c1")).toEqual({ first: true });
      expect(await p.join(s, "u1", "c2")).toEqual({ first: false });
      expect(await p.join(s, "u2", "c3")).toEqual({ first: true });
      expect((await p.list(s)).map((e) => e.userId).sort()).toEqual(["u1", "u2"]);
      expect(await p.leave(s, "u1", "c1")).toEqual({ last: false });
      expect((await p.list(s)).map((e) => e.userId).sort()).toEqual(["u1", "u2"]);
      expect(await p.leave(s, "u1", "c2")).toEqual({ last: true });
      expect((await p.list(s)).map((e) => e.userId)).toEqual(["u2"]);
    });

    it("ignores leaving a connection that never joined, and joining twice", async () => {
      const p = await make();
      const s = randomUUID();
      expect(await p.leave(s, "u1", "c1")).toEqual({ last: false });
      await p.join(s, "u1", "c1");
      expect(await p.join(s, "u1", "c1")).toEqual({ first: false });
      expect(await p.leave(s, "u1", "c1")).toEqual({ last: true });
      expect(await p.leave(s, "u1", "c1")).toEqual({ last: false });
      expect(await p.list(s)).toEqual([]);
    });

    it("keeps sessions apart", async () => {
      const p = await make();
      const [s1, s2] = [randomUUID(), randomUUID()];
      await p.join(s1, "u1", "c1");
      expect(await p.list(s2)).toEqual([]);
      expect(await p.join(s2, "u1", "c1")).toEqual({ first: true });
    });
  });
}
