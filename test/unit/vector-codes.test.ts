import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CodeCache, type CodeRows, signCode, UserCodes } from "../../src/memory/vector-codes.js";

const D = 64;
const uuidBytes = (u: string) => Buffer.from(u.replaceAll("-", ""), "hex");

/** A code at Hamming distance `k` from all-zero bits: the first k bits set. */
function codeAt(k: number): Buffer {
  const v = Float32Array.from({ length: D }, (_, i) => (i < k ? -1 : 1));
  return signCode(v);
}

function rows(items: { id: string; session: string; role?: number; k: number }[]): CodeRows {
  return {
    n: items.length,
    ids: Buffer.concat(items.map((i) => uuidBytes(i.id))),
    sessions: Buffer.concat(items.map((i) => uuidBytes(i.session))),
    roles: Buffer.from(items.map((i) => i.role ?? 0)),
    codes: Buffer.concat(items.map((i) => codeAt(i.k))),
  };
}

describe("signCode", () => {
  it("sets bit b of byte j for a negative dimension 8j+b, including -0", () => {
    const v = new Float32Array(16);
    v[0] = -1;
    v[9] = -0;
    v[15] = -0.5;
    v[3] = 0.5;
    expect([...signCode(v)]).toEqual([0b00000001, 0b10000010]);
  });
});

describe("UserCodes", () => {
  const query = codeAt(0);

  it("returns the `count` nearest passing points, or all of them when fewer pass", () => {
    const s = randomUUID();
    const points = [5, 1, 9, 3, 7].map((k) => ({ id: randomUUID(), session: s, k }));
    const codes = new UserCodes(D / 8);
    codes.apply(rows(points));
    const byK = (k: number) => points.find((p) => p.k === k)!.id;

    expect(new Set(codes.nearest(query, { sessionIds: [s] }, 3))).toEqual(new Set([1, 3, 5].map(byK)));
    expect(codes.nearest(query, { sessionIds: [s] }, 10)).toHaveLength(5);
    expect(codes.nearest(query, { sessionIds: [randomUUID()] }, 10)).toEqual([]);
  });

  it("cuts ties at the boundary to exactly `count`", () => {
    const s = randomUUID();
    const codes = new UserCodes(D / 8);
    codes.apply(rows([2, 4, 4, 4, 4].map((k) => ({ id: randomUUID(), session: s, k }))));
    expect(codes.nearest(query, { sessionIds: [s] }, 3)).toHaveLength(3);
  });

  it("takes the points tied with the last one too, up to `max`", () => {
    const s = randomUUID();
    const codes = new UserCodes(D / 8);
    const points = [2, 4, 4, 4, 4, 6].map((k) => ({ id: randomUUID(), session: s, k }));
    codes.apply(rows(points));
    const tiedAt4 = new Set(points.slice(0, 5).map((p) => p.id));
    expect(new Set(codes.nearest(query, { sessionIds: [s] }, 3, 10))).toEqual(tiedAt4);
    expect(codes.nearest(query, { sessionIds: [s] }, 3, 4)).toHaveLength(4);
    expect(codes.nearest(query, { sessionIds: [s] }, 5, 10)).toHaveLength(5); // no tie past the fifth
  });

  it("filters by session and role before choosing", () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const near = Array.from({ length: 10 }, (_, i) => ({ id: randomUUID(), session: a, k: i % 3 }));
    const far = { id: randomUUID(), session: b, k: 40 };
    const farAssistant = { id: randomUUID(), session: b, role: 1, k: 50 };
    const codes = new UserCodes(D / 8);
    codes.apply(rows([...near, far, farAssistant]));

    expect(codes.nearest(query, { sessionIds: [b.toUpperCase()] }, 1)).toEqual([far.id]);
    expect(codes.nearest(query, { sessionIds: [a, b], roles: ["assistant"] }, 1)).toEqual([farAssistant.id]);
    expect(codes.nearest(query, { sessionIds: [a, b], roles: [] }, 5)).toEqual([]);
  });

  it("overwrites a point in place and reuses a removed point's slot", () => {
    const s = randomUUID();
    const p = { id: randomUUID(), session: s, k: 30 };
    const q = { id: randomUUID(), session: s, k: 10 };
    const codes = new UserCodes(D / 8);
    codes.apply(rows([p, q]));
    codes.apply(rows([{ ...p, k: 0 }]));
    expect(codes.size).toBe(2);
    expect(codes.nearest(query, { sessionIds: [s] }, 1)).toEqual([p.id]);

    codes.remove(uuidBytes(p.id));
    expect(codes.size).toBe(1);
    expect(codes.nearest(query, { sessionIds: [s] }, 5)).toEqual([q.id]);
    const slots = codes.slots;
    const r = { id: randomUUID(), session: s, k: 1 };
    codes.apply(rows([r]));
    expect(codes.slots).toBe(slots);
    expect(new Set(codes.nearest(query, { sessionIds: [s] }, 5))).toEqual(new Set([r.id, q.id]));
  });

  it("rejects rows whose fields do not match their count", () => {
    const codes = new UserCodes(D / 8);
    const bad = rows([{ id: randomUUID(), session: randomUUID(), k: 1 }]);
    expect(() => codes.apply({ ...bad, n: 2 })).toThrow(/do not match/);
  });
});

describe("CodeCache", () => {
  it("drops the least recently used entries past its budget, never the one in use", () => {
    const cache = new CodeCache<{ slots: number }>(100);
    cache.set("a", { slots: 40 });
    cache.set("b", { slots: 40 });
    cache.get("a");
    cache.set("c", { slots: 40 });
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBeDefined();
    cache.set("huge", { slots: 500 });
    expect(cache.get("huge")).toBeDefined();
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("c")).toBeUndefined();
  });
});
