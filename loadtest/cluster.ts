/**
 * Starts the server as a user runs it, for load tests and benchmarks: one
 * node on the embedded profile, or several nodes on one PostgreSQL and one
 * Redis (both started here, on loopback).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { silentLogger } from "../test/support/logger.js";
import { startRedisServer } from "../test/support/redis.js";
import { type ServerProcess, startServer } from "../test/support/server-process.js";

export interface Cluster {
  urls: string[];
  nodes: ServerProcess[];
  redisUrl?: string;
  databaseUrl?: string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes: number;
  redis: boolean;
  env?: Record<string, string>;
  /** Write a V8 CPU profile of each node into this folder. */
  cpuProfDir?: string;
  /** Another checkout to run (a benchmark comparing against an earlier version). */
  root?: string;
  /** One node too gets its PostgreSQL from the cluster, so `databaseUrl` is set (a benchmark reading pg_stat_database). */
  ownPostgres?: boolean;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "memchat-cluster-"));
  await chmod(dir, 0o711); // as root, PostgreSQL runs as 'postgres' and must be able to enter it
  const cleanups: (() => Promise<void>)[] = [async () => rm(dir, { recursive: true, force: true })];
  // --expose-gc lets the harness measure retained memory (SIGUSR2: full GC, then a log line).
  const nodeArgs = ["--expose-gc", ...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : [])];
  // All load comes from one address here: per-address limits (connects, logins, REST) would measure the limiter, not the server.
  const base = {
    EMBEDDER: "hash",
    LOG_LEVEL: "info",
    PASSWORD_SCRYPT_N: "1024",
    RATE_CONNECT_BURST: "1000000",
    RATE_CONNECT_PER_SEC: "1000000",
    RATE_LOGIN_BURST: "1000000",
    RATE_LOGIN_PER_SEC: "1000000",
    RATE_REST_BURST: "1000000",
    RATE_REST_PER_SEC: "1000000",
    ...opts.env,
  };
  try {
    if (opts.nodes === 1 && !opts.redis && !opts.ownPostgres) {
      const node = await startServer({ ...base, DATA_DIR: path.join(dir, "node") }, 120_000, nodeArgs, undefined, opts.root);
      cleanups.push(async () => void (await node.stop()));
      return { urls: [node.url], nodes: [node], stop: () => runAll(cleanups) };
    }
    const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), logger: silentLogger });
    cleanups.push(() => pg.stop());
    const databaseUrl = await pg.ensureDatabase("memchat");
    let redisUrl: string | undefined;
    if (opts.redis) {
      const redis = await startRedisServer();
      cleanups.push(() => redis.dispose());
      redisUrl = redis.url;
    }
    const env = { ...base, DATABASE_URL: databaseUrl, JWT_SECRET: "cluster-secret-0123456789-0123456789-0123", ...(redisUrl ? { REDIS_URL: redisUrl } : {}) };
    // Start one first so it migrates; the others find the schema ready.
    const nodes: ServerProcess[] = [];
    for (let i = 0; i < opts.nodes; i++) {
      const node = await startServer({ ...env, NODE_ID: `node${i + 1}`, DATA_DIR: path.join(dir, `node${i + 1}`) }, 120_000, nodeArgs, undefined, opts.root);
      nodes.push(node);
      cleanups.push(async () => void (await node.stop()));
    }
    return { urls: nodes.map((n) => n.url), nodes, redisUrl, databaseUrl, stop: () => runAll(cleanups) };
  } catch (err) {
    await runAll(cleanups);
    throw err;
  }
}

async function runAll(cleanups: (() => Promise<void>)[]): Promise<void> {
  for (const c of [...cleanups].reverse()) await c().catch(() => undefined);
}
