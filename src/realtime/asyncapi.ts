/**
 * The AsyncAPI 3.0 document of the socket protocol (namespace /chat),
 * generated from the same zod schemas the handlers parse with
 * (src/protocol/schemas.ts) and the schemas of what the server sends
 * (src/protocol/output-schemas.ts, checked against events.ts at compile
 * time). The application described is the server: it receives the
 * client-to-server events, answers each with an ack (the operation's
 * reply), and sends the room events.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import type { ZodTypeAny } from "zod";
import { ackDataSchemas, errorBody, serverEventSchemas } from "../protocol/output-schemas.js";
import type { ProtocolSchemas } from "../protocol/schemas.js";
import { z } from "../protocol/zod-openapi.js";
import { API_VERSION } from "../http/openapi.js";

/** Every client-to-server event, from the ack schema map (which the type check keeps equal to ClientToServerEvents). */
export const CLIENT_EVENTS = Object.keys(ackDataSchemas) as (keyof typeof ackDataSchemas)[];
export const SERVER_EVENTS = Object.keys(serverEventSchemas) as (keyof typeof serverEventSchemas)[];

const CHANNEL = "chat";
/** AsyncAPI keys allow letters, digits, '.', '-', '_': `session:create` → `session.create`. */
const key = (event: string) => event.replace(/:/g, ".");
const ref = (path: string) => ({ $ref: path });

export function buildAsyncApiDocument(schemas: ProtocolSchemas): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  const named = (name: string, schema: ZodTypeAny) => {
    registry.register(name, schema);
    return ref(`#/components/schemas/${name}`);
  };
  registry.register("Error", errorBody);

  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const event of CLIENT_EVENTS) {
    const request = `${key(event)}.request`;
    const ack = `${key(event)}.ack`;
    messages[request] = {
      name: event,
      title: `${event} (client to server)`,
      payload: named(request, schemas[event]),
    };
    messages[ack] = {
      name: `${event} ack`,
      title: `Ack of ${event}`,
      summary: "The ack callback's argument: the result, or the error with its code.",
      payload: named(
        ack,
        z.union([
          z.object({ ok: z.literal(true), data: ackDataSchemas[event] }),
          z.object({ ok: z.literal(false), error: errorBody }),
        ]),
      ),
    };
    operations[`receive.${key(event)}`] = {
      action: "receive",
      channel: ref(`#/channels/${CHANNEL}`),
      summary: `The client emits ${event} with an ack callback.`,
      messages: [ref(`#/channels/${CHANNEL}/messages/${request}`)],
      reply: { channel: ref(`#/channels/${CHANNEL}`), messages: [ref(`#/channels/${CHANNEL}/messages/${ack}`)] },
    };
  }
  for (const event of SERVER_EVENTS) {
    const id = `${key(event)}.event`;
    messages[id] = { name: event, title: `${event} (server to room)`, payload: named(id, serverEventSchemas[event]) };
    operations[`send.${key(event)}`] = {
      action: "send",
      channel: ref(`#/channels/${CHANNEL}`),
      summary: `Sent to every socket in the room session:<sessionId>.`,
      messages: [ref(`#/channels/${CHANNEL}/messages/${id}`)],
    };
  }

  const components = new OpenApiGeneratorV31(registry.definitions).generateComponents().components ?? {};
  return {
    asyncapi: "3.0.0",
    info: {
      title: "memchat socket protocol",
      version: API_VERSION,
      description:
        "Socket.IO namespace /chat. Every client-to-server event takes an ack answered with " +
        "`{ok: true, data}` or `{ok: false, error: {code, message, retryAfterMs?}}`. " +
        "The REST API is described by /api/openapi.json.",
    },
    defaultContentType: "application/json",
    channels: {
      [CHANNEL]: {
        address: "/chat",
        title: "Socket.IO namespace /chat",
        description:
          "Connect with `io(url + \"/chat\", { auth: { token } })`, the token from POST /api/auth/login. " +
          "A missing, forged or expired token is refused with a connect_error whose message is UNAUTHENTICATED " +
          "(RATE_LIMITED when the address connects too often). session:join puts the socket in the room " +
          "`session:<sessionId>`, whose events it then receives.",
        messages,
      },
    },
    operations,
    components: { schemas: components.schemas ?? {} },
  };
}
