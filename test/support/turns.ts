import type { Socket } from "socket.io-client";

export interface TurnEvents {
  start: { sessionId: string; messageId: number; replyToId: number };
  deltas: { seq: number; text: string }[];
  end?: { message: { id: number; content: string; status: string; replyToId: number | null }; usage: { promptTokens: number; completionTokens: number }; context: { messageId: number; score: number }[] };
  error?: { messageId: number | null; code: string; message: string };
  text: string;
}

/**
 * Collects the next assistant turn in `sessionId` as this socket sees it,
 * until assistant:end or assistant:error.
 */
export function collectTurn(socket: Socket, sessionId: string, timeoutMs = 15_000): Promise<TurnEvents> {
  return new Promise((resolve, reject) => {
    const turn: Partial<TurnEvents> & { deltas: TurnEvents["deltas"] } = { deltas: [] };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`turn did not finish in ${timeoutMs} ms: ${JSON.stringify(turn).slice(0, 300)}`));
    }, timeoutMs);
    const onStart = (e: TurnEvents["start"]) => {
      if (e.sessionId === sessionId && !turn.start) turn.start = e;
    };
    const onDelta = (e: { sessionId: string; messageId: number; seq: number; text: string }) => {
      if (e.sessionId === sessionId && turn.start && e.messageId === turn.start.messageId) turn.deltas.push({ seq: e.seq, text: e.text });
    };
    const finish = () => {
      cleanup();
      resolve({ ...(turn as TurnEvents), text: turn.deltas.map((d) => d.text).join("") });
    };
    const onEnd = (e: TurnEvents["end"] & { sessionId: string }) => {
      if (e.sessionId !== sessionId || !turn.start || e.message.id !== turn.start.messageId) return;
      turn.end = e;
      finish();
    };
    const onError = (e: TurnEvents["error"] & { sessionId: string }) => {
      if (e.sessionId !== sessionId || !turn.start || e.messageId !== turn.start.messageId) return;
      turn.error = e;
      finish();
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off("assistant:start", onStart);
      socket.off("assistant:delta", onDelta);
      socket.off("assistant:end", onEnd);
      socket.off("assistant:error", onError);
    }
    socket.on("assistant:start", onStart);
    socket.on("assistant:delta", onDelta);
    socket.on("assistant:end", onEnd);
    socket.on("assistant:error", onError);
  });
}
