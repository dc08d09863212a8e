/**
 * SQL of named assistant configurations (sql/019_named_configurations.sql):
 * the admin's list and edits, the default flag, retiring, and which one a
 * session uses. Moving the default and retiring are single transactions, so
 * there is always exactly one active default and no session refers to a
 * retired configuration.
 */
import type pg from "pg";
import type { ConfigurationCreate, ConfigurationUpdate } from "../protocol/configuration-schemas.js";
import type { AssistantConfiguration } from "../protocol/types.js";
import { type SettingsRow, toSettings } from "./configuration-rows.js";
import { isUniqueViolation } from "./errors.js";

const COLUMNS = `c.id, c.name, c.description, c.system_prompt, c.model, c.temperature, c.max_tokens, c.top_k,
  c.similarity_threshold, c.history_window, c.context_token_budget, c.retrieval_mode, c.cross_session,
  c.is_default, c.active, c.created_at, c.updated_at`;

interface Row extends SettingsRow {
  name: string;
  description: string;
  is_default: boolean;
  active: boolean;
  created_at: Date;
  updated_at: Date;
}

export const toConfiguration = (r: Row): AssistantConfiguration => ({
  ...toSettings(r),
  name: r.name,
  description: r.description,
  isDefault: r.is_default,
  active: r.active,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

/** API field → column, for inserts and updates (the only names ever put into SQL text). */
const SETTING_COLUMNS: Record<keyof ConfigurationCreate, string> = {
  name: "name",
  description: "description",
  systemPrompt: "system_prompt",
  model: "model",
  temperature: "temperature",
  maxTokens: "max_tokens",
  topK: "top_k",
  similarityThreshold: "similarity_threshold",
  historyWindow: "history_window",
  contextTokenBudget: "context_token_budget",
  retrievalMode: "retrieval_mode",
  crossSession: "cross_session",
};

const NAME_INDEX = "assistant_configurations_name";

export type WriteResult = AssistantConfiguration | "not_found" | "name_taken";
export type RetireResult = { configuration: AssistantConfiguration; sessionsReset: number } | "not_found" | "default";
export type DefaultResult = AssistantConfiguration | "not_found" | "retired";
export type ConfigureResult = { configurationId: number | null } | "not_found" | "forbidden" | "no_configuration";

export class PgConfigurationStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The default first, then by name. */
  async list(includeRetired: boolean): Promise<AssistantConfiguration[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM assistant_configurations c WHERE c.active OR $1 ORDER BY c.is_default DESC, c.active DESC, lower(c.name)`,
      [includeRetired],
    );
    return rows.map(toConfiguration);
  }

  async get(id: number): Promise<AssistantConfiguration | null> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM assistant_configurations c WHERE c.id = $1`, [id]);
    return rows[0] ? toConfiguration(rows[0]) : null;
  }

  async create(input: ConfigurationCreate, adminId: string): Promise<WriteResult> {
    const keys = settingKeys(input);
    const values = keys.map((k) => input[k]);
    try {
      const { rows } = await this.pool.query<Row>(
        `INSERT INTO assistant_configurations AS c (${keys.map((k) => SETTING_COLUMNS[k]).join(", ")}, created_by, updated_by)
         VALUES (${keys.map((_, i) => `$${i + 1}`).join(", ")}, $${keys.length + 1}, $${keys.length + 1})
         RETURNING ${COLUMNS}`,
        [...values, adminId],
      );
      return toConfiguration(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, NAME_INDEX)) return "name_taken";
      throw err;
    }
  }

  async update(id: number, input: ConfigurationUpdate, adminId: string): Promise<WriteResult> {
    const keys = settingKeys(input);
    const sets = keys.map((k, i) => `${SETTING_COLUMNS[k]} = $${i + 2}`);
    try {
      const { rows } = await this.pool.query<Row>(
        `UPDATE assistant_configurations AS c SET ${sets.join(", ")}, updated_by = $${keys.length + 2}, updated_at = now()
          WHERE c.id = $1 RETURNING ${COLUMNS}`,
        [id, ...keys.map((k) => input[k]), adminId],
      );
      return rows[0] ? toConfiguration(rows[0]) : "not_found";
    } catch (err) {
      if (isUniqueViolation(err, NAME_INDEX)) return "name_taken";
      throw err;
    }
  }

  /** Activating is idempotent. */
  async activate(id: number, adminId: string): Promise<AssistantConfiguration | "not_found"> {
    const { rows } = await this.pool.query<Row>(
      `UPDATE assistant_configurations AS c SET active = true, updated_by = $2, updated_at = CASE WHEN c.active THEN c.updated_at ELSE now() END
        WHERE c.id = $1 RETURNING ${COLUMNS}`,
      [id, adminId],
    );
    return rows[0] ? toConfiguration(rows[0]) : "not_found";
  }

  /**
   * Retires a configuration; its sessions follow the default from their next
   * turn. The default cannot be retired (make another the default first).
   */
  async retire(id: number, adminId: string): Promise<RetireResult> {
    return this.transaction(async (client) => {
      const { rows: locked } = await client.query<{ is_default: boolean }>("SELECT is_default FROM assistant_configurations WHERE id = $1 FOR NO KEY UPDATE", [id]);
      if (!locked[0]) return "not_found";
      if (locked[0].is_default) return "default";
      const { rows } = await client.query<Row>(
        `UPDATE assistant_configurations AS c SET active = false, updated_by = $2, updated_at = CASE WHEN c.active THEN now() ELSE c.updated_at END
          WHERE c.id = $1 RETURNING ${COLUMNS}`,
        [id, adminId],
      );
      const reset = await client.query("UPDATE chat_sessions SET configuration_id = NULL WHERE configuration_id = $1", [id]);
      return { configuration: toConfiguration(rows[0]!), sessionsReset: reset.rowCount ?? 0 };
    });
  }

  /** Makes an active configuration the default; sessions that follow the default use it from their next turn. */
  async setDefault(id: number, adminId: string): Promise<DefaultResult> {
    return this.transaction(async (client) => {
      const { rows: target } = await client.query<{ active: boolean }>("SELECT active FROM assistant_configurations WHERE id = $1 FOR NO KEY UPDATE", [id]);
      if (!target[0]) return "not_found";
      if (!target[0].active) return "retired";
      // Two statements: the unique index on is_default is not deferrable, so the old flag goes first.
      await client.query("UPDATE assistant_configurations SET is_default = false, updated_at = now(), updated_by = $2 WHERE is_default AND id <> $1", [id, adminId]);
      const { rows } = await client.query<Row>(
        `UPDATE assistant_configurations AS c SET is_default = true, updated_by = $2, updated_at = CASE WHEN c.is_default THEN c.updated_at ELSE now() END
          WHERE c.id = $1 RETURNING ${COLUMNS}`,
        [id, adminId],
      );
      return toConfiguration(rows[0]!);
    });
  }

  /**
   * The session's owner picks a configuration (null: follow the default).
   * The target is share-locked while the session row changes, so a concurrent
   * retire (which locks it FOR NO KEY UPDATE first) either sees this session
   * (and resets it) or happens first (and this refuses). Retire's lock does
   * not block the key-share locks of foreign-key checks, so sends and
   * rollovers never wait on it.
   */
  async configureSession(sessionId: string, userId: string, configurationId: number | null): Promise<ConfigureResult> {
    const { rows } = await this.pool.query<{ role: "owner" | "member" | null; usable: boolean; updated: boolean }>(
      `WITH target AS (
         SELECT id FROM assistant_configurations WHERE id = $3 AND active FOR SHARE
       ), mem AS (
         SELECT role FROM chat_session_members WHERE session_id = $1 AND user_id = $2
       ), upd AS (
         UPDATE chat_sessions s SET configuration_id = $3, updated_at = now()
          WHERE s.id = $1 AND EXISTS (SELECT 1 FROM mem WHERE role = 'owner')
            AND ($3::integer IS NULL OR EXISTS (SELECT 1 FROM target))
         RETURNING s.id
       )
       SELECT (SELECT role FROM mem) AS role,
              $3::integer IS NULL OR EXISTS (SELECT 1 FROM target) AS usable,
              EXISTS (SELECT 1 FROM upd) AS updated`,
      [sessionId, userId, configurationId],
    );
    const r = rows[0]!;
    if (r.role === null) return "not_found";
    if (r.role !== "owner") return "forbidden";
    if (!r.usable) return "no_configuration";
    return r.updated ? { configurationId } : "not_found";
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

/** The settings present in `input`, in a fixed order. */
function settingKeys(input: ConfigurationUpdate): (keyof ConfigurationCreate)[] {
  return (Object.keys(SETTING_COLUMNS) as (keyof ConfigurationCreate)[]).filter((k) => input[k] !== undefined);
}
