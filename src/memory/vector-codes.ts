/**
 * Binary codes for the PostgreSQL vector store's prefilter, kept in memory
 * per (collection, user): two bits per dimension, its sign (sql/010) and
 * whether it is large (sql/024). Candidates are chosen in two steps. The
 * sign bits, weighted by the query's own components (an asymmetric Hamming
 * distance), make a shortlist of the filtered points; the sign and size
 * bits together then rank the shortlist by a closer estimate of the dot
 * product, and the store reranks the best few hundred exactly. Pure data
 * structure: the store loads and refreshes it from SQL
 * (src/memory/pg-vector-store.ts).
 */
import type { StoredRole } from "./types.js";

/** Bytes of a code for `dimensions`; one bit per dimension. */
export function codeBytes(dimensions: number): number {
  return Math.ceil(dimensions / 8);
}

/** A component of a unit vector is large from this, in units of 1/sqrt(d) (sql/024 uses the same). */
const LARGE = 0.6;

/**
 * Bit b of byte j is set when dimension 8j+b of the unit vector is large,
 * |x| >= 0.6 / sqrt(d): about half the components of a dense vector, and
 * exactly the non-zero ones of a sparse one. sql/024's
 * message_vector_magnitude() gives the same bits.
 */
export function magnitudeCode(vector: Float32Array): Buffer {
  const threshold = LARGE / Math.sqrt(vector.length);
  const code = Buffer.alloc(codeBytes(vector.length));
  for (let i = 0; i < vector.length; i++) if (Math.abs(vector[i]!) >= threshold) code[i >> 3]! |= 1 << (i & 7);
  return code;
}

/**
 * Bit b of byte j is the sign bit of dimension 8j+b, read from the float32
 * bytes as stored, so sql/010's message_vector_code() gives the same code.
 */
export function signCode(vector: Float32Array): Buffer {
  const bytes = new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
  const code = Buffer.alloc(codeBytes(vector.length));
  for (let i = 0; i < vector.length; i++) if (bytes[4 * i + 3]! & 0x80) code[i >> 3]! |= 1 << (i & 7);
  return code;
}

const ROLE_CODES: Record<StoredRole, number> = { user: 0, assistant: 1, system: 2, passage: 3 };
/** Roles are sent from SQL as one byte each; 4 is a role this code does not know. */
export const ROLE_SQL = `CASE role WHEN 'user' THEN '\\x00'::bytea WHEN 'assistant' THEN '\\x01'::bytea WHEN 'system' THEN '\\x02'::bytea WHEN 'passage' THEN '\\x03'::bytea ELSE '\\x04'::bytea END`;
const DEAD = 255;

/** Rows as the store reads them: each field concatenated over n rows. */
export interface CodeRows {
  n: number;
  /** 16 bytes per row (uuid_send). */
  ids: Buffer;
  sessions: Buffer;
  /** 1 byte per row, ROLE_SQL. */
  roles: Buffer;
  /** codeBytes(dimensions) per row: sign bits (signCode). */
  codes: Buffer;
  /** codeBytes(dimensions) per row: size bits (magnitudeCode). */
  magnitudes: Buffer;
}

export interface CodeFilter {
  sessionIds: readonly string[];
  /** Default: every role. */
  roles?: readonly StoredRole[];
}

/** One user's codes in one collection. Slots of deleted points are reused. */
export class UserCodes {
  private readonly words: number;
  private capacity = 0;
  private used = 0;
  private codes = new Uint32Array(0);
  private magnitudes = new Uint32Array(0);
  /** Per slot, 1 / the norm of its two-bit estimate (see nearest). */
  private inverseNorm = new Float32Array(0);
  private sessionOf = new Uint32Array(0);
  private roleOf = new Uint8Array(0);
  private ids: string[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly free: number[] = [];
  private readonly sessions: string[] = [];
  private readonly sessionIndex = new Map<string, number>();
  private dist = new Uint16Array(0);

  constructor(private readonly bytes: number) {
    this.words = Math.ceil(bytes / 4);
  }

  /** Live points. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Writes or overwrites the given rows. */
  apply(rows: CodeRows): void {
    if (rows.ids.length !== rows.n * 16 || rows.sessions.length !== rows.n * 16 || rows.roles.length !== rows.n || rows.codes.length !== rows.n * this.bytes || rows.magnitudes.length !== rows.n * this.bytes) {
      throw new Error("code rows do not match their count");
    }
    this.reserve(this.slotOf.size + rows.n);
    const word = new Uint8Array(this.words * 4);
    const view = new DataView(word.buffer);
    for (let r = 0; r < rows.n; r++) {
      const id = rows.ids.toString("latin1", r * 16, r * 16 + 16);
      let slot = this.slotOf.get(id);
      if (slot === undefined) {
        slot = this.free.pop() ?? this.used++;
        this.slotOf.set(id, slot);
        this.ids[slot] = id;
      }
      word.fill(0);
      rows.codes.copy(word, 0, r * this.bytes, (r + 1) * this.bytes);
      for (let w = 0; w < this.words; w++) this.codes[slot * this.words + w] = view.getUint32(w * 4, true);
      word.fill(0);
      rows.magnitudes.copy(word, 0, r * this.bytes, (r + 1) * this.bytes);
      let large = 0;
      for (let w = 0; w < this.words; w++) {
        const m = view.getUint32(w * 4, true);
        this.magnitudes[slot * this.words + w] = m;
        large += popcount(m);
      }
      this.inverseNorm[slot] = 1 / Math.sqrt(large + (this.bytes * 8 - large) / 16);
      this.sessionOf[slot] = this.session(rows.sessions.toString("latin1", r * 16, r * 16 + 16));
      this.roleOf[slot] = rows.roles[r]!;
    }
  }

  /** Forgets points by id (16 bytes each, uuid_send); unknown ids are ignored. */
  remove(ids: Buffer): void {
    for (let o = 0; o + 16 <= ids.length; o += 16) {
      const id = ids.toString("latin1", o, o + 16);
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      this.slotOf.delete(id);
      this.roleOf[slot] = DEAD;
      this.free.push(slot);
    }
  }

  /**
   * Ids (canonical uuid text) of the `count` points that pass the filter
   * nearest to `query` (a unit vector), all of them when no more pass, and
   * the points tied with the last of them, up to `max` in all: codes that
   * tie say nothing about which vector is nearer, so a whole tie is taken
   * rather than an arbitrary part of it.
   *
   * Step 1 ranks every passing point by its sign bits, each bit where the
   * point's sign differs from the query's weighing |q_i| (quantised, see
   * queryWeights) rather than 1: a dimension the query barely uses no longer
   * counts as much as one it is made of. It keeps a shortlist of
   * max(4 × count, 4,096). Step 2 ranks the shortlist by the dot product of
   * the query with the point's two-bit estimate (each component ±1 where
   * large, ±1/4 where small) over the estimate's norm, which tells a zero from a positive component
   * and a small component from a large one (README, Vector search in
   * PostgreSQL).
   */
  nearest(query: Float32Array, filter: CodeFilter, count: number, max = count): string[] {
    if (codeBytes(query.length) !== this.bytes) throw new Error(`query has ${query.length} dimensions, codes have ${this.bytes * 8}`);
    const allowed = new Uint8Array(this.sessions.length);
    for (const s of filter.sessionIds) {
      const i = this.sessionIndex.get(uuidKey(s));
      if (i !== undefined) allowed[i] = 1;
    }
    let roleMask = 0xff;
    if (filter.roles) {
      roleMask = 0;
      for (const r of filter.roles) roleMask |= 1 << ROLE_CODES[r];
    }
    const q = new Uint32Array(this.words);
    const padded = Buffer.alloc(this.words * 4);
    signCode(query).copy(padded);
    for (let w = 0; w < this.words; w++) q[w] = padded.readUInt32LE(w * 4);
    const { table, total } = byteTables(queryWeights(query), this.words * 4);

    // Distances, and how many points sit at each, so the cut-off is found without sorting.
    const skip = 0xffff;
    const dist = this.dist;
    const histogram = new Uint32Array(total + 1);
    const { words, codes, sessionOf, roleOf } = this;
    let passing = 0;
    for (let slot = 0; slot < this.used; slot++) {
      const role = roleOf[slot]!;
      if (role === DEAD || !((roleMask >> role) & 1) || !allowed[sessionOf[slot]!]) {
        dist[slot] = skip;
        continue;
      }
      // One table lookup per byte of differing bits: the sum of the weights of the bits set in it.
      let d = 0;
      const base = slot * words;
      for (let w = 0, o = 0; w < words; w++, o += 1024) {
        const x = codes[base + w]! ^ q[w]!;
        d += table[o + (x & 0xff)]! + table[o + 256 + ((x >>> 8) & 0xff)]! + table[o + 512 + ((x >>> 16) & 0xff)]! + table[o + 768 + (x >>> 24)]!;
      }
      dist[slot] = d;
      histogram[d]!++;
      passing++;
    }
    if (passing <= count) {
      const all: string[] = [];
      for (let slot = 0; slot < this.used; slot++) if (dist[slot] !== skip) all.push(this.ids[slot]!);
      return all.map(uuidText);
    }
    // Step 1: the shortlist, by the weighted sign distance.
    const size = Math.min(passing, Math.max(SHORTLIST_FACTOR * count, SHORTLIST_MIN));
    let cut = 0;
    for (let seen = 0; cut < histogram.length; cut++) {
      seen += histogram[cut]!;
      if (seen >= size) break;
    }
    const shortlist: number[] = [];
    const atCut: number[] = [];
    for (let slot = 0; slot < this.used; slot++) {
      const d = dist[slot]!;
      if (d < cut) shortlist.push(slot);
      else if (d === cut) atCut.push(slot);
    }
    for (let i = 0; i < atCut.length && shortlist.length < size; i++) shortlist.push(atCut[i]!);

    // Step 2: sign and size bits. Per dimension, in units of the query's weight there: a large
    // component of the query's sign costs 0, a small one 3, a small one of the other sign 5 and
    // a large one 8, i.e. 4 × (1 - the query's product with the estimate ±1 or ±1/4). The
    // product, divided by the estimate's norm, estimates the cosine: without the norm a long
    // sparse vector, with many large components, would beat a short one that shares as much.
    const magnitudes = this.magnitudes;
    const inverseNorm = this.inverseNorm;
    const score = new Float64Array(shortlist.length);
    for (let k = 0; k < shortlist.length; k++) {
      const base = shortlist[k]! * words;
      let c = 0;
      for (let w = 0, o = 0; w < words; w++, o += 1024) {
        const d = codes[base + w]! ^ q[w]!;
        const m = magnitudes[base + w]!;
        const small = ~m;
        const smallDiff = d & small;
        const largeDiff = d & m;
        for (let b = 0, ob = o; b < 32; b += 8, ob += 256) {
          c += 3 * table[ob + ((small >>> b) & 0xff)]! + 2 * table[ob + ((smallDiff >>> b) & 0xff)]! + 8 * table[ob + ((largeDiff >>> b) & 0xff)]!;
        }
      }
      score[k] = (4 * total - c) * inverseNorm[shortlist[k]!]!;
    }
    // Best first, by one native sort of keys that carry their position: the score, rounded to
    // a thousandth of a unit (far below what separates two points), then the position.
    const n = shortlist.length;
    const rank = new Float64Array(n);
    const keys = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      rank[k] = Math.round(-score[k]! * 1000);
      keys[k] = rank[k]! * n + k;
    }
    keys.sort();
    const order = Array.from(keys, (key) => ((key % n) + n) % n);
    const upTo = Math.max(count, max);
    const last = rank[order[count - 1]!]!;
    const out: string[] = [];
    for (const k of order) {
      if (out.length >= upTo || (out.length >= count && rank[k]! > last)) break;
      out.push(this.ids[shortlist[k]!]!);
    }
    return out.map(uuidText);
  }

  /** Memory held, in points' worth of slots (for the cache's budget). */
  get slots(): number {
    return this.capacity;
  }

  private session(key: string): number {
    let i = this.sessionIndex.get(key);
    if (i === undefined) {
      i = this.sessions.length;
      this.sessions.push(key);
      this.sessionIndex.set(key, i);
    }
    return i;
  }

  private reserve(points: number): void {
    if (points <= this.capacity) return;
    const capacity = Math.max(points, Math.ceil(this.capacity * 1.5), 64);
    const codes = new Uint32Array(capacity * this.words);
    codes.set(this.codes);
    const magnitudes = new Uint32Array(capacity * this.words);
    magnitudes.set(this.magnitudes);
    const inverseNorm = new Float32Array(capacity);
    inverseNorm.set(this.inverseNorm);
    const sessionOf = new Uint32Array(capacity);
    sessionOf.set(this.sessionOf);
    const roleOf = new Uint8Array(capacity).fill(DEAD);
    roleOf.set(this.roleOf);
    this.codes = codes;
    this.magnitudes = magnitudes;
    this.inverseNorm = inverseNorm;
    this.sessionOf = sessionOf;
    this.roleOf = roleOf;
    this.dist = new Uint16Array(capacity);
    this.capacity = capacity;
  }
}

/**
 * The first step keeps this many times the points asked for, and at least
 * SHORTLIST_MIN: the second step's estimate costs about three times the
 * first's per point, so it ranks a shortlist, not the whole history.
 */
const SHORTLIST_FACTOR = 4;
const SHORTLIST_MIN = 4096;

/** The sum of the query's quantised weights stays under this, so distances fit the Uint16 array and the histogram stays small. */
const WEIGHT_TOTAL = 8192;

/**
 * Per dimension, what a point whose sign differs from the query's there
 * pays: |q_i| scaled to integers summing to about WEIGHT_TOTAL. Integers
 * keep the cut a histogram count; the rounding (at most half a unit a
 * dimension) is far below what separates candidates.
 */
export function queryWeights(query: Float32Array): Uint16Array {
  let sum = 0;
  for (let i = 0; i < query.length; i++) sum += Math.abs(query[i]!);
  const weights = new Uint16Array(query.length);
  if (sum === 0 || !Number.isFinite(sum)) return weights.fill(1);
  const scale = WEIGHT_TOTAL / sum;
  for (let i = 0; i < query.length; i++) weights[i] = Math.round(Math.abs(query[i]!) * scale);
  return weights;
}

/** For each code byte j and each byte value m: the weight of the dimensions 8j+b whose bit b is set in m. */
function byteTables(weights: Uint16Array, bytes: number): { table: Uint16Array; total: number } {
  const table = new Uint16Array(bytes * 256);
  let total = 0;
  for (let j = 0; j < bytes; j++) {
    const o = j * 256;
    for (let m = 1; m < 256; m++) {
      const low = 31 - Math.clz32(m & -m); // the lowest bit set
      table[o + m] = table[o + (m & (m - 1))]! + (weights[8 * j + low] ?? 0);
    }
    total += table[o + 255]!;
  }
  return { table, total };
}

/**
 * Users' codes, least recently searched dropped first once the total passes
 * `maxPoints`. A dropped user is reloaded from SQL on their next search.
 */
export class CodeCache<T extends { readonly slots: number }> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly maxPoints: number) {}

  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  set(key: string, entry: T): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.trim(key);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops least recently used entries (never `keep`) until within budget. */
  trim(keep: string): void {
    let total = 0;
    for (const e of this.entries.values()) total += e.slots;
    for (const [k, e] of this.entries) {
      if (total <= this.maxPoints) break;
      if (k === keep) continue;
      this.entries.delete(k);
      total -= e.slots;
    }
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** The 16 bytes of a uuid as a latin1 string: compact map keys. */
export function uuidKey(uuid: string): string {
  return Buffer.from(uuid.replaceAll("-", ""), "hex").toString("latin1");
}

function uuidText(key: string): string {
  const h = Buffer.from(key, "latin1").toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
