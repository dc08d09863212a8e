import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CodeCache, type CodeRows, magnitudeCode, queryWeights, signCode, UserCodes } from "../../src/memory/vector-codes.js";

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
    // Every component large: the second step then ranks as the first.
    magnitudes: Buffer.alloc(items.length * (D / 8), 0xff),
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
  // Equal weights on every dimension: the weighted distance is the Hamming distance.
  const query = new Float32Array(D).fill(1 / Math.sqrt(D));

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
    expect(() => codes.apply({ ...bad, magnitudes: Buffer.alloc(1) })).toThrow(/do not match/);
  });
});

describe("weighted distance", () => {
  it("weighs a differing sign by how much the query uses that dimension", () => {
    const s = randomUUID();
    // The query is made of dimension 0 (and a little of 1..3): a point differing there only is
    // farther than one differing in three dimensions the query barely uses, though its plain
    // Hamming distance is smaller.
    const q = new Float32Array(D);
    q[0] = 0.9;
    q[1] = q[2] = q[3] = 0.25;
    const signs = (neg: number[]) => signCode(Float32Array.from({ length: D }, (_, i) => (neg.includes(i) ? -1 : 1)));
    const far = { id: randomUUID(), code: signs([0]) };
    const near = { id: randomUUID(), code: signs([1, 2, 3]) };
    const codes = new UserCodes(D / 8);
    codes.apply({
      n: 2,
      ids: Buffer.concat([far, near].map((p) => uuidBytes(p.id))),
      sessions: Buffer.concat([uuidBytes(s), uuidBytes(s)]),
      roles: Buffer.from([0, 0]),
      codes: Buffer.concat([far.code, near.code]),
      magnitudes: Buffer.alloc(2 * (D / 8), 0xff),
    });
    expect(codes.nearest(q, { sessionIds: [s] }, 1)).toEqual([near.id]);
    // The query's own signs decide what differs: with dimension 0 negative, the first point agrees there.
    q[0] = -0.9;
    expect(codes.nearest(q, { sessionIds: [s] }, 1)).toEqual([far.id]);
  });

  it("scales |q| to integers that sum to about 8192, and a zero query to equal weights", () => {
    const q = Float32Array.from({ length: D }, (_, i) => (i % 2 ? 0.1 : -0.3));
    const w = queryWeights(q);
    const sum = w.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - 8192)).toBeLessThanOrEqual(D / 2);
    expect(w[0]! / w[1]!).toBeCloseTo(3, 1);
    expect([...queryWeights(new Float32Array(D))].every((x) => x === 1)).toBe(true);
  });

  it("tells a zero component from a positive one, and a small from a large one (the size bits)", () => {
    const s = randomUUID();
    const unit = (v: Float32Array) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    // Sparse vectors: the query uses dimensions 0-3. All three points have no negative
    // component (the same sign bits); only the size bits say which share the query's dimensions.
    const sparse = (dims: number[]) => unit(Float32Array.from({ length: D }, (_, i) => (dims.includes(i) ? 1 : 0)));
    const q = sparse([0, 1, 2, 3]);
    const points = [
      { id: randomUUID(), v: sparse([10, 11, 12, 13]) },
      { id: randomUUID(), v: sparse([0, 1, 2, 3, 20]) },
      { id: randomUUID(), v: sparse([2, 3, 30, 31]) },
    ];
    const codes = new UserCodes(D / 8);
    codes.apply({
      n: points.length,
      ids: Buffer.concat(points.map((p) => uuidBytes(p.id))),
      sessions: Buffer.concat(points.map(() => uuidBytes(s))),
      roles: Buffer.alloc(points.length),
      codes: Buffer.concat(points.map((p) => signCode(p.v))),
      magnitudes: Buffer.concat(points.map((p) => magnitudeCode(p.v))),
    });
    expect(codes.nearest(q, { sessionIds: [s] }, 1)).toEqual([points[1]!.id]);
    expect(codes.nearest(q, { sessionIds: [s] }, 2)).toEqual([points[1]!.id, points[2]!.id]);
  });

  it("marks the components at least 0.6 / sqrt(d) in size", () => {
    const v = new Float32Array(16);
    const t = 0.6 / 4;
    v[0] = t;
    v[1] = -t;
    v[2] = Math.fround(t * 0.999);
    v[9] = -1;
    expect([...magnitudeCode(v)]).toEqual([0b00000011, 0b00000010]);
  });

  it("rejects a query of another width", () => {
    expect(() => new UserCodes(D / 8).nearest(new Float32Array(D + 8), { sessionIds: [] }, 1)).toThrow(/dimensions/);
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
