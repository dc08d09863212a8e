/**
 * The database an operations command (backup, restore) works on: DATABASE_URL
 * when set; otherwise the embedded profile's under DATA_DIR, reached through
 * the running server's PostgreSQL when one runs (its postmaster.pid names the
 * port), or started for the command and stopped after it.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";

export interface OpsDatabase {
  url: string;
  profile: "external" | "embedded (running server)" | "embedded (started for this command)";
  close(): Promise<void>;
}

export async function openOpsDatabase(config: Config, log: Logger): Promise<OpsDatabase> {
  if (config.database.url) return { url: config.database.url, profile: "external", close: async () => undefined };
  const dataDir = path.join(config.dataDir, "pg");
  const running = await runningPort(dataDir);
  if (running !== undefined) {
    const password = (await readFile(`${dataDir}.password`, "utf8")).trim();
    return { url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${running}/memchat`, profile: "embedded (running server)", close: async () => undefined };
  }
  const pg = await startEmbeddedPostgres({ dataDir, port: config.database.embeddedPort, logger: log });
  try {
    const url = await pg.ensureDatabase("memchat");
    return { url, profile: "embedded (started for this command)", close: () => pg.stop() };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

/** The port of the PostgreSQL running on `dataDir`, when its postmaster is alive. */
async function runningPort(dataDir: string): Promise<number | undefined> {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, "utf8")).split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive, run by another user (the postgres user, when the server runs as root).
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return undefined;
  }
  return Number.isInteger(port) && port > 0 ? port : undefined;
}
