import type { ServerToClientEvents } from "../protocol/events.js";

/** How the domain tells a session's room about something; the realtime layer implements it. */
export interface RoomEvents {
  emit<E extends keyof ServerToClientEvents>(
    sessionId: string,
    event: E,
    payload: Parameters<ServerToClientEvents[E]>[0],
    /** A connection that must not receive it (the sender, who gets an ack instead). */
    exceptConnectionId?: string,
  ): void;
}
