import type pg from "pg";
import type { AccountState, UserStore } from "../chat/ports.js";
import type { User } from "../protocol/types.js";

export class PgUserStore implements UserStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Null when the username (case-insensitively) is taken. */
  async create(username: string, passwordHash: string): Promise<User | null> {
    const { rows } = await this.pool.query<User>(
      `INSERT INTO users (username, password_hash) VALUES ($1, $2)
       ON CONFLICT ((lower(username))) DO NOTHING
       RETURNING id, username`,
      [username, passwordHash],
    );
    return rows[0] ?? null;
  }

  async findByUsername(username: string): Promise<(User & AccountState & { passwordHash: string }) | null> {
    const { rows } = await this.pool.query<User & AccountState & { passwordHash: string }>(
      `SELECT id, username, password_hash AS "passwordHash", token_version AS "tokenVersion", disabled_at IS NOT NULL AS disabled
         FROM users WHERE lower(username) = lower($1)`,
      [username],
    );
    return rows[0] ?? null;
  }

  async findById(id: string): Promise<User | null> {
    const { rows } = await this.pool.query<User>("SELECT id, username FROM users WHERE id = $1", [id]);
    return rows[0] ?? null;
  }

  async accountState(id: string): Promise<AccountState | null> {
    const { rows } = await this.pool.query<AccountState>({
      name: "account_state",
      text: `SELECT token_version AS "tokenVersion", disabled_at IS NOT NULL AS disabled FROM users WHERE id = $1`,
      values: [id],
    });
    return rows[0] ?? null;
  }

  async revokeTokens(id: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ v: number }>(
      "UPDATE users SET token_version = token_version + 1 WHERE id = $1 AND disabled_at IS NULL RETURNING token_version AS v",
      [id],
    );
    return rows[0]?.v ?? null;
  }
}
