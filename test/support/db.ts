import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { PgMembershipStore } from "../../src/db/pg-membership-store.js";
import "../../src/db/pool.js"; // bigint ids as numbers, as the server reads them
import { withDatabase } from "./global-setup.js";

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/**
 * A fresh database cloned from the migrated template, private to the caller,
 * so test files run in parallel without seeing each other's rows.
 */
export async function createTestDatabase(poolSize = 10): Promise<TestDatabase> {
  const adminUrl = inject("pgAdminUrl");
  const name = `memchat_t_${randomBytes(6).toString("hex")}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name} TEMPLATE ${inject("pgTemplate")}`);
  const url = withDatabase(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // DROP ... WITH (FORCE) may end connections the pool is still closing.
  pool.on("error", () => undefined);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // CREATE DATABASE ... TEMPLATE fails while another clone of the same template is in progress.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== "55006" || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await client.end();
  }
}

/** Makes `member` a member of the session the way users do: the owner invites, the member accepts. */
export async function addMember(pool: pg.Pool, sessionId: string, ownerId: string, member: { id: string; username: string }): Promise<void> {
  const membership = new PgMembershipStore(pool);
  const invited = await membership.invite(sessionId, ownerId, member.username);
  if (invited.kind !== "invited") throw new Error(`invite failed: ${invited.kind}`);
  if ((await membership.accept(sessionId, member.id)).kind !== "accepted") throw new Error("accept failed");
}
