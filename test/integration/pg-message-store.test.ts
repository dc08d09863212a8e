import { afterAll } from "vitest";
import { PgMessageStore } from "../../src/db/pg-message-store.js";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import "../../src/db/pool.js"; // bigint parser
import { messageStoreContract } from "../contracts/message-store-contract.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase | undefined;
afterAll(() => db?.drop());

messageStoreContract("PostgreSQL", async () => {
  db = await createTestDatabase(20);
  const pool = db.pool;
  return {
    store: new PgMessageStore(pool),
    users: new PgUserStore(pool),
    async countMessages(sessionId) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM chat_messages WHERE session_id = $1", [sessionId]);
      return rows[0]!.n;
    },
  };
});
