import { afterEach, describe, expect, it } from "vitest";
import type { CancelBus } from "../../src/chat/ports.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A bus all of whose nodes hear each other, and nothing from another world.
 * For a distributed implementation each node() is a separate instance with
 * its own connections (a separate server node); an in-process one may return
 * the same instance every time.
 */
export interface CancelBusWorld {
  node(): Promise<CancelBus> | CancelBus;
}

/** Collects what a handler receives, and lets a test wait for it. */
function recorder() {
  const got: number[] = [];
  const waiters: (() => void)[] = [];
  return {
    got,
    handler: (id: number) => {
      got.push(id);
      for (const w of waiters.splice(0)) w();
    },
    async waitFor(count: number, timeoutMs = 3000): Promise<number[]> {
      const deadline = Date.now() + timeoutMs;
      while (got.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} cancels, got ${JSON.stringify(got)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return got;
    },
  };
}

/** The contract every CancelBus must keep. */
export function cancelBusContract(name: string, makeWorld: () => Promise<CancelBusWorld> | CancelBusWorld) {
  describe(`CancelBus contract: ${name}`, () => {
    const made = new Set<CancelBus>();
    const node = async (world: CancelBusWorld) => {
      const b = await world.node();
      made.add(b);
      return b;
    };
    afterEach(async () => {
      const all = [...made];
      made.clear();
      await Promise.all(all.map((b) => b.close()));
    });

    it("delivers a published cancel to a subscriber", async () => {
      const bus = await node(await makeWorld());
      const r = recorder();
      await bus.subscribe(r.handler);
      await bus.publish(42);
      expect(await r.waitFor(1)).toEqual([42]);
    });

    it("delivers across nodes, to every subscriber", async () => {
      const world = await makeWorld();
      const [a, b] = [await node(world), await node(world)];
      const [ra, rb, rb2] = [recorder(), recorder(), recorder()];
      await a.subscribe(ra.handler);
      await b.subscribe(rb.handler);
      await b.subscribe(rb2.handler);
      await a.publish(7);
      await b.publish(8);
      for (const r of [ra, rb, rb2]) expect((await r.waitFor(2)).sort()).toEqual([7, 8]);
    });

    it("stops delivering to an unsubscribed handler, and only to it", async () => {
      const world = await makeWorld();
      const [a, b] = [await node(world), await node(world)];
      const [kept, dropped] = [recorder(), recorder()];
      await b.subscribe(kept.handler);
      const unsubscribe = await b.subscribe(dropped.handler);
      await a.publish(1);
      await kept.waitFor(1);
      await dropped.waitFor(1);
      unsubscribe();
      await a.publish(2);
      expect(await kept.waitFor(2)).toEqual([1, 2]);
      // The second cancel reached the node; give a straggler a moment to show.
      await sleep(50);
      expect(dropped.got).toEqual([1]);
    });

    it("does not hear other buses", async () => {
      const [mine, other] = [await node(await makeWorld()), await node(await makeWorld())];
      const r = recorder();
      await mine.subscribe(r.handler);
      await other.publish(5);
      await mine.publish(6);
      expect(await r.waitFor(1)).toEqual([6]);
      await sleep(50);
      expect(r.got).toEqual([6]);
    });
  });
}
