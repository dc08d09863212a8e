import type { AccountState, UserStore } from "../chat/ports.js";
import { isDatabaseUnavailable } from "../db/errors.js";
import { AppError } from "../protocol/errors.js";
import type { User, UserRole } from "../protocol/types.js";
import { decoyHash, hashPassword, verifyPassword } from "./passwords.js";
import type { TokenService, VerifiedToken } from "./tokens.js";

export interface AuthResult {
  token: string;
  user: User;
  role: UserRole;
}

/** A valid token's claims with the account's role, read with its state (never from the token). */
export interface AuthenticatedClaims extends VerifiedToken {
  role: UserRole;
}

interface CachedState {
  state: Promise<AccountState | null>;
  expiresAt: number;
}

const CACHE_MAX = 50_000;

export class AuthService {
  private decoy: Promise<string> | undefined;
  private readonly cache = new Map<string, CachedState>();

  /**
   * @param cacheMs how long an account's state read from the database is
   *   trusted (AUTH_CACHE_MS): a connect storm reads each user once per window,
   *   and a revocation on another node takes effect here within it.
   * @param adminUsernames ADMIN_USERNAMES: accounts registered under these
   *   names are admins (existing ones are promoted at start, see app.ts).
   */
  constructor(
    private readonly users: UserStore,
    private readonly tokens: TokenService,
    private readonly scryptN: number,
    private readonly cacheMs = 5_000,
    adminUsernames: readonly string[] = [],
  ) {
    this.adminNames = new Set(adminUsernames.map((n) => n.toLowerCase()));
  }

  private readonly adminNames: Set<string>;

  async register(username: string, password: string): Promise<AuthResult> {
    const created = await this.users.create(username, await hashPassword(password, this.scryptN), this.adminNames.has(username.toLowerCase()));
    if (!created) throw new AppError("CONFLICT", "username is taken");
    const user = { id: created.id, username: created.username };
    return { token: await this.tokens.sign(user, 0), user, role: created.role };
  }

  async login(username: string, password: string): Promise<AuthResult> {
    const found = await this.users.findByUsername(username);
    // Hash even for unknown users, so response time does not reveal which names exist.
    const ok = await verifyPassword(password, found?.passwordHash ?? (await (this.decoy ??= decoyHash(this.scryptN))));
    if (!found || !ok) throw new AppError("UNAUTHENTICATED", "wrong username or password");
    if (found.disabled) throw new AppError("UNAUTHENTICATED", "this account is disabled");
    const user = { id: found.id, username: found.username };
    return { token: await this.tokens.sign(user, found.tokenVersion), user, role: found.role };
  }

  /**
   * The user a valid token names, or null: a forged or expired token, or one
   * whose account is deleted, disabled or has revoked it (token version
   * raised). The account is read through a short cache (AUTH_CACHE_MS).
   */
  async authenticate(token: unknown): Promise<User | null> {
    return (await this.authenticateClaims(token))?.user ?? null;
  }

  /** Like authenticate(), with the token version the token carries and the account's role. */
  async authenticateClaims(token: unknown): Promise<AuthenticatedClaims | null> {
    const claims = await this.tokens.verifyClaims(token);
    if (!claims) return null;
    const state = await this.accountState(claims.user.id);
    if (!state || state.disabled || state.tokenVersion !== claims.tokenVersion) return null;
    return { ...claims, role: state.role };
  }

  /**
   * Log out everywhere: every token issued so far stops working (here at
   * once, on other nodes within AUTH_CACHE_MS). Returns the new token version.
   */
  async revokeAll(userId: string): Promise<number> {
    const v = await this.users.revokeTokens(userId);
    this.forget(userId);
    if (v === null) throw new AppError("UNAUTHENTICATED", "no such account");
    return v;
  }

  /**
   * An admin sets an account's role. Takes effect here at once and on other
   * nodes within AUTH_CACHE_MS (the role is read with the account state).
   */
  async setRole(userId: string, role: UserRole): Promise<{ user: User; role: UserRole }> {
    const r = await this.users.setRole(userId, role);
    if (r === "missing") throw new AppError("NOT_FOUND", "no such account");
    if (r === "last-admin") throw new AppError("CONFLICT", "this is the only admin: promote another account first");
    this.forget(userId);
    return { user: { id: r.id, username: r.username }, role: r.role };
  }

  /** The account's current state, read from the database (not the cache). */
  currentState(userId: string): Promise<AccountState | null> {
    return this.users.accountState(userId);
  }

  /** Drops this node's cached state of the user, so the next check reads the database. */
  forget(userId: string): void {
    this.cache.delete(userId);
  }

  private accountState(userId: string): Promise<AccountState | null> {
    const now = Date.now();
    const hit = this.cache.get(userId);
    if (hit && hit.expiresAt > now) return hit.state;
    // One read per user per window, however many connects wait on it. Fails
    // closed: while the database cannot answer, no token is accepted.
    const state = this.users.accountState(userId).catch((err: unknown) => {
      if (this.cache.get(userId)?.state === state) this.cache.delete(userId);
      if (isDatabaseUnavailable(err)) throw new AppError("UNAVAILABLE", "cannot check the account right now, try again");
      throw err;
    });
    if (this.cacheMs > 0) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(userId, { state, expiresAt: now + this.cacheMs });
    }
    return state;
  }
}
