/**
 * Real redis-server processes for the tests (DESIGN.md section 8): the shared
 * one the global setup starts, private ones for tests that stop and restart
 * Redis, and per-test-file clients whose keys no other file sees.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { createRedisClient, type RedisClientOptions, waitUntilReady } from "../../src/redis/client.js";
import { silentLogger } from "./logger.js";

export interface RedisServerHandle {
  url: string;
  port: number;
  /** Stops the server (SIGTERM; SIGKILL if it lingers). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (no persistence). */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  dispose(): Promise<void>;
}

/** True when a redis-server binary can be started here. */
export function redisServerAvailable(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Starts a private redis-server on a free loopback port, without persistence. */
export async function startRedisServer(): Promise<RedisServerHandle> {
  if (!redisServerAvailable()) {
    throw new Error("redis-server is not installed: run scripts/ensure-test-deps.sh, or set TEST_REDIS_URL to use a running Redis");
  }
  const dir = await mkdtemp(path.join(tmpdir(), "memchat-test-redis-"));
  let port = 0;
  let child: ChildProcess | undefined;
  // A free port can be taken between finding it and redis binding it.
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    try {
      child = await launch(dir, port);
    } catch (err) {
      if (attempt >= 4 || !String(err).includes("Address already in use")) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  let current: ChildProcess | undefined = child;
  const stop = async () => {
    const c = current;
    current = undefined;
    if (c) await terminate(c);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      current = await launch(dir, port);
    },
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function launch(dir: string, port: number): Promise<ChildProcess> {
  const conf = path.join(dir, "redis.conf");
  await writeFile(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      'save ""',
      "appendonly no",
      `dir ${dir}`,
      "daemonize no",
      'logfile ""',
      "loglevel notice",
    ].join("\n") + "\n",
  );
  const child = spawn("redis-server", [conf], { stdio: ["ignore", "pipe", "pipe"] });
  // A test run that dies must not leave servers behind.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-server on port ${port} not ready after 10 s:\n${output}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        child.off("exit", onExit);
        child.stdout!.off("data", onData);
        child.stderr!.off("data", onData);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${output}`));
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", onExit);
  });
  // Keep draining its output (a full pipe would block the server) without
  // keeping a test process alive for it.
  for (const s of [child.stdout, child.stderr]) {
    s?.resume();
    (s as net.Socket | null)?.unref();
  }
  child.unref();
  return child;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  url: string;
  /** Prepended to every key of the clients made here; unique per call. */
  keyPrefix: string;
  /** A client with the project's settings and this prefix (closed by cleanup()). */
  client: Redis;
  /** Another connected client on the same prefix: a second "node". Closed by cleanup(). */
  newClient(opts?: Partial<RedisClientOptions>): Promise<Redis>;
  /** A pub/sub channel name no other test uses (keyPrefix does not apply to channels). */
  channel(name: string): string;
  /** Deletes every key under the prefix and closes the clients. */
  cleanup(): Promise<void>;
}

/**
 * Clients on the shared test Redis (or `url`) under a random key prefix, so
 * test files running in parallel never see each other's keys.
 */
export async function connectTestRedis(url?: string): Promise<TestRedis> {
  // Imported here, not at the top: the global setup imports this module too,
  // and vitest's test API is not available there.
  const redisUrl = url ?? (await import("vitest")).inject("redisUrl");
  const keyPrefix = `t:${randomBytes(6).toString("hex")}:`;
  const clients: Redis[] = [];
  const newClient = async (opts: Partial<RedisClientOptions> = {}) => {
    const c = createRedisClient({ url: redisUrl, logger: silentLogger, keyPrefix, ...opts });
    clients.push(c);
    // Without an offline queue a client takes commands only once it is ready.
    await waitUntilReady(c);
    return c;
  };
  const client = await newClient();
  return {
    url: redisUrl,
    keyPrefix,
    client,
    newClient,
    channel: (name) => `${keyPrefix}${name}:${randomBytes(4).toString("hex")}`,
    async cleanup() {
      const raw = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
      try {
        await raw.connect();
        let cursor = "0";
        do {
          const [next, keys] = await raw.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 500);
          cursor = next;
          if (keys.length > 0) await raw.del(...keys);
        } while (cursor !== "0");
      } finally {
        raw.disconnect();
        for (const c of clients) c.disconnect();
      }
    },
  };
}

/** Waits until `fn` stops throwing (for reconnects), or rethrows its last error after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
