import { randomUUID } from "node:crypto";
import { UserCodes as NewCodes, signCode } from "../src/memory/vector-codes.js";
import { UserCodes as OldCodes } from "/work/wt/hybrid-base/src/memory/vector-codes.js";
const D = 384, N = 100_000;
let s = 12345; const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
const vec = () => { const v = Float32Array.from({ length: D }, gauss); let n = 0; for (const x of v) n += x * x; n = Math.sqrt(n); return v.map((x) => x / n); };
const sessions = Array.from({ length: 200 }, () => randomUUID());
const ub = (u: string) => Buffer.from(u.replaceAll("-", ""), "hex");
const ids: Buffer[] = [], ss: Buffer[] = [], cs: Buffer[] = [];
for (let i = 0; i < N; i++) { ids.push(ub(randomUUID())); ss.push(ub(sessions[i % 200]!)); cs.push(signCode(vec())); }
const rows = { n: N, ids: Buffer.concat(ids), sessions: Buffer.concat(ss), roles: Buffer.alloc(N), codes: Buffer.concat(cs) };
const a = new OldCodes(48); a.apply(rows); const b = new NewCodes(48); b.apply(rows);
const qs = Array.from({ length: 60 }, vec);
const f = { sessionIds: sessions, roles: ["user" as const, "assistant" as const] };
for (let round = 0; round < 3; round++) {
  let t = process.cpuUsage(); for (const q of qs) a.nearest(signCode(q), f, 400, 800); const ta = process.cpuUsage(t);
  t = process.cpuUsage(); for (const q of qs) b.nearest(q, f, 400, 800); const tb = process.cpuUsage(t);
  console.log(`round ${round}: CPU ms per search over ${N} codes: Hamming ${((ta.user + ta.system) / 1000 / qs.length).toFixed(2)}, weighted ${((tb.user + tb.system) / 1000 / qs.length).toFixed(2)}`);
}
