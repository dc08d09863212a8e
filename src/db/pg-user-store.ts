import type pg from "pg";
import type { AccountState, UserStore } from "../chat/ports.js";
import type { User, UserRole } from "../protocol/types.js";

// Serialises registrations only while there is no account yet, so exactly one becomes the first admin.
const FIRST_USER_LOCK_KEY = 7_311_942_015;

export class PgUserStore implements UserStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Null when the username (case-insensitively) is taken. The first account
   * of the database is an admin: while the table is empty, registrations take
   * a transaction lock, and the insert (a new snapshot once the lock is
   * held) sees any account a racing registration committed.
   */
  async create(username: string, passwordHash: string, admin = false): Promise<(User & { role: UserRole }) | null> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1) WHERE NOT EXISTS (SELECT 1 FROM users)", [FIRST_USER_LOCK_KEY]);
      const { rows } = await client.query<User & { role: UserRole }>(
        `INSERT INTO users (username, password_hash, role)
         VALUES ($1, $2, CASE WHEN $3::boolean OR NOT EXISTS (SELECT 1 FROM users) THEN 'admin' ELSE 'member' END)
         ON CONFLICT ((lower(username))) DO NOTHING
         RETURNING id, username, role`,
        [username, passwordHash, admin],
      );
      await client.query("COMMIT");
      return rows[0] ?? null;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async grantAdmin(usernames: readonly string[]): Promise<number> {
    if (usernames.length === 0) return 0;
    const { rowCount } = await this.pool.query(
      "UPDATE users SET role = 'admin' WHERE lower(username) = ANY($1::text[]) AND role <> 'admin'",
      [usernames.map((u) => u.toLowerCase())],
    );
    return rowCount ?? 0;
  }

  async setRole(id: string, role: UserRole): Promise<(User & { role: UserRole }) | "missing" | "last-admin"> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // Demotions one at a time, so two admins demoting each other cannot leave none.
      if (role !== "admin") await client.query("SELECT pg_advisory_xact_lock($1)", [FIRST_USER_LOCK_KEY]);
      const { rows } = await client.query<User & { role: UserRole; others: boolean }>(
        `SELECT id, username, role,
                EXISTS (SELECT 1 FROM users o WHERE o.role = 'admin' AND o.id <> u.id AND o.disabled_at IS NULL) AS others
           FROM users u WHERE id = $1 AND disabled_at IS NULL FOR UPDATE`,
        [id],
      );
      const row = rows[0];
      let result: (User & { role: UserRole }) | "missing" | "last-admin";
      if (!row) result = "missing";
      else if (role !== "admin" && row.role === "admin" && !row.others) result = "last-admin";
      else {
        await client.query("UPDATE users SET role = $2 WHERE id = $1", [id, role]);
        result = { id: row.id, username: row.username, role };
      }
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async findByUsername(username: string): Promise<(User & AccountState & { passwordHash: string }) | null> {
    const { rows } = await this.pool.query<User & AccountState & { passwordHash: string }>(
      `SELECT id, username, password_hash AS "passwordHash", token_version AS "tokenVersion", disabled_at IS NOT NULL AS disabled, role
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
      name: "account_state_role",
      text: `SELECT token_version AS "tokenVersion", disabled_at IS NOT NULL AS disabled, role FROM users WHERE id = $1`,
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
