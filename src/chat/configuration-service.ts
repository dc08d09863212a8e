/**
 * Named assistant configurations: admins create, edit, activate, retire
 * them and move the default; a session's owner picks the one its turns use.
 * Callers check the admin role (RouteGuards.requireAdmin); this checks
 * ownership of sessions. Turns read the session's configuration each time
 * (PgAssistantStore.ragConfig), so every change here applies from the next turn.
 */
import type { ConfigureResult, PgConfigurationStore, WriteResult } from "../db/pg-configuration-store.js";
import { configurationCreate, type ConfigurationCreate, type ConfigurationUpdate, configurationUpdate } from "../protocol/configuration-schemas.js";
import { AppError, ValidationError } from "../protocol/errors.js";
import type { SessionConfiguredPayload } from "../protocol/events.js";
import type { AssistantConfiguration, ConfigurationSummary, User } from "../protocol/types.js";
import type { RoomEvents } from "./room-events.js";
import type { z } from "zod";

/** What every user may read of a configuration: no prompt, no tuning. */
export const toSummary = (c: AssistantConfiguration): ConfigurationSummary => ({
  id: c.id,
  name: c.name,
  description: c.description,
  model: c.model,
  retrievalMode: c.retrievalMode,
  crossSession: c.crossSession,
  isDefault: c.isDefault,
});

const notFound = () => new AppError("NOT_FOUND", "no such configuration");

/** Parses an admin's settings; VALIDATION naming each field out of bounds (not BAD_REQUEST: the editor shows them per field). */
export function parseSettings<S extends typeof configurationCreate | typeof configurationUpdate>(schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  throw new ValidationError(
    r.error.issues.slice(0, 20).map((i) => ({
      field: i.path.length ? i.path.join(".") : i.code === "unrecognized_keys" ? i.keys.join(", ") : "",
      message: i.code === "unrecognized_keys" ? `unknown setting ${i.keys.map((k) => `'${k}'`).join(", ")}` : i.message,
    })),
  );
}

export class ConfigurationService {
  constructor(
    private readonly d: {
      store: PgConfigurationStore;
      rooms: RoomEvents;
    },
  ) {}

  /** What any user may read: the active configurations, without their prompts. */
  async listActive(): Promise<{ configurations: ConfigurationSummary[] }> {
    return { configurations: (await this.d.store.list(false)).map(toSummary) };
  }

  async adminList(includeRetired: boolean): Promise<{ configurations: AssistantConfiguration[] }> {
    return { configurations: await this.d.store.list(includeRetired) };
  }

  async create(admin: User, raw: unknown): Promise<{ configuration: AssistantConfiguration }> {
    const input: ConfigurationCreate = parseSettings(configurationCreate, raw);
    return { configuration: written(await this.d.store.create(input, admin.id), input.name) };
  }

  async update(admin: User, id: number, raw: unknown): Promise<{ configuration: AssistantConfiguration }> {
    const input: ConfigurationUpdate = parseSettings(configurationUpdate, raw);
    return { configuration: written(await this.d.store.update(id, input, admin.id), input.name) };
  }

  async activate(admin: User, id: number): Promise<{ configuration: AssistantConfiguration }> {
    const r = await this.d.store.activate(id, admin.id);
    if (r === "not_found") throw notFound();
    return { configuration: r };
  }

  /** Sessions that used it follow the default from their next turn (they are not told one by one: nothing changes for them until then). */
  async retire(admin: User, id: number): Promise<{ configuration: AssistantConfiguration; sessionsReset: number }> {
    const r = await this.d.store.retire(id, admin.id);
    if (r === "not_found") throw notFound();
    if (r === "default") throw new AppError("CONFLICT", "the default configuration cannot be retired: make another one the default first");
    return r;
  }

  async setDefault(admin: User, id: number): Promise<{ configuration: AssistantConfiguration }> {
    const r = await this.d.store.setDefault(id, admin.id);
    if (r === "not_found") throw notFound();
    if (r === "retired") throw new AppError("CONFLICT", "a retired configuration cannot be the default: activate it first");
    return { configuration: r };
  }

  /** Owner only; the room hears session:configured. */
  async configureSession(user: User, sessionId: string, configurationId: number | null, exceptConnectionId?: string): Promise<SessionConfiguredPayload> {
    const r: ConfigureResult = await this.d.store.configureSession(sessionId, user.id, configurationId);
    if (r === "not_found") throw new AppError("NOT_FOUND", "session not found");
    if (r === "forbidden") throw new AppError("FORBIDDEN", "only the session owner can change its configuration");
    if (r === "no_configuration") throw new AppError("NOT_FOUND", "no active configuration with this id");
    const effective = configurationId === null ? await this.defaultConfiguration() : await this.d.store.get(configurationId);
    if (!effective) throw notFound();
    const payload = { sessionId, configurationId: r.configurationId, configuration: toSummary(effective) };
    this.d.rooms.emit(sessionId, "session:configured", payload, exceptConnectionId);
    return payload;
  }

  private async defaultConfiguration(): Promise<AssistantConfiguration | null> {
    return (await this.d.store.list(false)).find((c) => c.isDefault) ?? null;
  }
}

function written(r: WriteResult, name: string | undefined): AssistantConfiguration {
  if (r === "not_found") throw notFound();
  if (r === "name_taken") throw new ValidationError([{ field: "name", message: `a configuration named '${name ?? ""}' exists already` }]);
  return r;
}
