import { pino } from "pino";

/** A real logger that writes nowhere unless TEST_LOG=1, for code that takes a logger. */
export const silentLogger = pino({ level: process.env.TEST_LOG ? "debug" : "silent" });
