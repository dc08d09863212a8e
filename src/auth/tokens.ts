/**
 * Access tokens: HS256 JWTs carrying the user id, name and token version
 * (`tv`). The signature proves who issued a token; whether its account still
 * accepts it (exists, not disabled, same token version) is the auth
 * service's check.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { User } from "../protocol/types.js";

const ISSUER = "memchat";
// Tokens issued before token versions existed carry no tv: they count as version 0.
const claims = z.object({ sub: z.string().uuid(), name: z.string(), tv: z.number().int().nonnegative().default(0) });

export interface VerifiedToken {
  user: User;
  tokenVersion: number;
}

export class TokenService {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(user: User, tokenVersion = 0): Promise<string> {
    return new SignJWT({ name: user.username, tv: tokenVersion })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(user.id)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /** The user the token names, or null for a missing, forged, malformed or expired token. */
  async verify(token: unknown): Promise<User | null> {
    return (await this.verifyClaims(token))?.user ?? null;
  }

  /** The user and token version the token carries, or null like verify(). */
  async verifyClaims(token: unknown): Promise<VerifiedToken | null> {
    if (typeof token !== "string" || token.length === 0 || token.length > 4096) return null;
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ["HS256"] });
      const c = claims.safeParse(payload);
      return c.success ? { user: { id: c.data.sub, username: c.data.name }, tokenVersion: c.data.tv } : null;
    } catch (err) {
      if (err instanceof errors.JOSEError || err instanceof TypeError) return null;
      throw err;
    }
  }
}

/**
 * The configured secret, or one generated on first start and kept in
 * DATA_DIR so tokens survive restarts of a single node.
 */
export async function loadJwtSecret(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured) return configured;
  const file = path.join(dataDir, "jwt-secret");
  try {
    const existing = (await readFile(file, "utf8")).trim();
    if (existing.length >= 32) return existing;
  } catch {
    // first start: fall through and create it
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(48).toString("base64url");
  await writeFile(file, secret, { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}
