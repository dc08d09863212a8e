import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import "../../src/db/pool.js";
import { PgVectorStore } from "../../src/memory/pg-vector-store.js";
import { vectorStoreContract } from "../contracts/vector-store-contract.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(5);
});
afterAll(() => db?.drop());

// A collection per test keeps tests apart on one database.
const collection = () => `test_${randomBytes(4).toString("hex")}`;

vectorStoreContract("PostgreSQL, code prefilter and exact rerank", async () => {
  const store = new PgVectorStore(db.pool, collection(), 384);
  return { store, dimensions: 384, cleanup: () => store.close() };
});

vectorStoreContract("PostgreSQL exact search", async () => {
  const store = new PgVectorStore(db.pool, collection(), 384, { exact: true });
  return { store, dimensions: 384, cleanup: () => store.close() };
});

vectorStoreContract("PostgreSQL exact search, payloads in a second pass (large candidate sets)", async () => {
  const store = new PgVectorStore(db.pool, collection(), 384, { exact: true, inlinePayloadsMax: 0 });
  return { store, dimensions: 384, cleanup: () => store.close() };
});
