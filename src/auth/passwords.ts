/**
 * Password hashing with scrypt (memory-hard, in Node's crypto, no native
 * addon). Runs on libuv's thread pool, so hashing never blocks the event loop.
 * Stored as `scrypt$N$r$p$salt$hash` so the cost can rise without breaking old hashes.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";

const KEY_LEN = 32;
const R = 8;
const P = 1;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize("NFKC"), salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const maxmem = (n: number, r: number) => 256 * n * r; // twice the need, so Node never refuses

export async function hashPassword(password: string, n: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, { N: n, r: R, p: P, maxmem: maxmem(n, R) });
  return ["scrypt", n, R, P, salt.toString("base64"), key.toString("base64")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split("$");
  if (alg !== "scrypt" || !n || !r || !p || !salt || !hash) return false;
  const N = Number(n);
  const rr = Number(r);
  const expected = Buffer.from(hash, "base64");
  const key = await scrypt(password, Buffer.from(salt, "base64"), { N, r: rr, p: Number(p), maxmem: maxmem(N, rr) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of a random password, to spend the same time on unknown usernames. */
export const decoyHash = (n: number) => hashPassword(randomBytes(12).toString("hex"), n);
