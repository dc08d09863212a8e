/** Lua scripts registered with ioredis `defineCommand` (EVALSHA, falling back to EVAL on NOSCRIPT). */
import type { ChainableCommander, Redis } from "ioredis";

export type ScriptArg = string | number;
export type ScriptCall<R> = (...args: ScriptArg[]) => Promise<R>;

export interface ScriptDefinition {
  /** Unique per script: ioredis keeps one definition per name and client. */
  name: string;
  numberOfKeys: number;
  lua: string;
  readOnly?: boolean;
}

/**
 * Registers the script on the client (once) and returns a function that runs
 * it with KEYS first, then ARGV. The client's keyPrefix is applied to KEYS.
 */
export function defineScript<R>(client: Redis, def: ScriptDefinition): ScriptCall<R> {
  const scripts = client.scriptsSet as Record<string, unknown>;
  if (!(def.name in scripts)) {
    client.defineCommand(def.name, { lua: def.lua, numberOfKeys: def.numberOfKeys, readOnly: def.readOnly });
  }
  const fn = (client as unknown as Record<string, ScriptCall<R>>)[def.name];
  if (typeof fn !== "function") throw new Error(`script ${def.name} was not registered`);
  return fn.bind(client);
}

/** Queues a defined script on a pipeline or transaction of the same client. */
export function queueScript(pipeline: ChainableCommander, def: ScriptDefinition, args: ScriptArg[]): void {
  const fn = (pipeline as unknown as Record<string, (...a: ScriptArg[]) => unknown>)[def.name];
  if (typeof fn !== "function") throw new Error(`script ${def.name} is not defined on this client`);
  fn.apply(pipeline, args);
}

/**
 * Shared Lua prelude. `now_ms()` reads the Redis server clock so that every
 * node computes with the same time, whatever its own clock says. Calling TIME
 * before writing needs effects replication on Redis < 5 (the default later).
 */
export const LUA_PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
`;
