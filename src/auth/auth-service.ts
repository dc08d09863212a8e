import type { UserStore } from "../chat/ports.js";
import { AppError } from "../protocol/errors.js";
import type { User } from "../protocol/types.js";
import { decoyHash, hashPassword, verifyPassword } from "./passwords.js";
import type { TokenService } from "./tokens.js";

export interface AuthResult {
  token: string;
  user: User;
}

export class AuthService {
  private decoy: Promise<string> | undefined;

  constructor(
    private readonly users: UserStore,
    private readonly tokens: TokenService,
    private readonly scryptN: number,
  ) {}

  async register(username: string, password: string): Promise<AuthResult> {
    const user = await this.users.create(username, await hashPassword(password, this.scryptN));
    if (!user) throw new AppError("CONFLICT", "username is taken");
    return { token: await this.tokens.sign(user), user };
  }

  async login(username: string, password: string): Promise<AuthResult> {
    const found = await this.users.findByUsername(username);
    // Hash even for unknown users, so response time does not reveal which names exist.
    const ok = await verifyPassword(password, found?.passwordHash ?? (await (this.decoy ??= decoyHash(this.scryptN))));
    if (!found || !ok) throw new AppError("UNAUTHENTICATED", "wrong username or password");
    const user = { id: found.id, username: found.username };
    return { token: await this.tokens.sign(user), user };
  }

  /** The user a valid token names; null otherwise. No database read, so connect storms stay cheap. */
  async authenticate(token: unknown): Promise<User | null> {
    return this.tokens.verify(token);
  }
}
