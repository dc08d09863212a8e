/** Process entry: configuration, start, graceful shutdown on SIGTERM/SIGINT. */
import { startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const log = createLogger(config.logLevel, config.nodeId);

process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));

try {
  const app = await startApp(config, log);
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "signal received");
    app.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  // Memory accounting for operators and load tests: with node --expose-gc,
  // SIGUSR2 runs a full collection and logs what is really retained.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    process.on("SIGUSR2", () => {
      gc();
      log.info({ memory: process.memoryUsage() }, "memory after full GC");
    });
  }
} catch (err) {
  log.fatal({ err }, "start-up failed");
  process.exit(1);
}
