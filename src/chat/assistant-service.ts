/**
 * Assistant turns: a streaming reply row, the prompt from memory and the
 * recent window, LLM tokens coalesced into numbered deltas (logged to the
 * stream buffer before they are sent, so a client resuming from the buffer
 * never misses one), and a final row with status, token counts and latency.
 * Cancel requests arrive through the CancelBus, so any node can cancel.
 */
import type { Logger } from "pino";
import type { PgAssistantStore, RagConfig, Settlement, TurnSettings } from "../db/pg-assistant-store.js";
import { LlmError, type LlmProvider } from "../llm/types.js";
import { AppError } from "../protocol/errors.js";
import type { PassageContextPayload } from "../protocol/events.js";
import type { FeedbackRating, Message } from "../protocol/types.js";
import type { Actor } from "./chat-service.js";
import type { ContextBuilder, GatheredContext, UsedPassage } from "./context-builder.js";
import type { CancelBus, StreamBuffer } from "./ports.js";
import type { QuotaService, Reservation } from "./quota-service.js";
import type { RoomEvents } from "./room-events.js";

export interface AssistantOptions {
  /** Longest a token waits to be sent with the ones after it. */
  coalesceMs: number;
  /** How often the text so far is written to the row. */
  checkpointMs: number;
  /** A node silent this long is dead; its streaming replies become interrupted. */
  nodeStaleMs: number;
  /** Period of the heartbeat and orphan sweep. */
  sweepIntervalMs: number;
  /** Model when the configuration names none. */
  defaultModel?: string;
}

export interface AssistantMetrics {
  onFirstToken(seconds: number): void;
  onTurnEnd(status: string): void;
  /** A turn ended having spent these tokens with `model`. */
  onTokens?(model: string, promptTokens: number, completionTokens: number): void;
}

export interface ActiveStream {
  messageId: number;
  seq: number;
  text: string;
}

interface Turn {
  abort: AbortController;
  reason: "cancel" | "shutdown" | undefined;
  sessionId: string;
  userId: string;
  done: Promise<void>;
  /** The quota reservation the turn settles when it ends. */
  reservation?: Reservation;
}

/** A turn's reads, started before its rows exist (`AssistantService.prefetch`). */
export interface PrefetchedContext {
  /** The turn's first read (configuration, scopes, whether a quota override applies). */
  settings: Promise<TurnSettings>;
  reads: Promise<{ config: RagConfig; gathered: GatheredContext }>;
}

export class AssistantService {
  private readonly turns = new Map<number, Turn>();
  private unsubscribe: (() => void) | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly d: {
      store: PgAssistantStore;
      context: ContextBuilder;
      llm: LlmProvider;
      buffer: StreamBuffer;
      cancelBus: CancelBus;
      rooms: RoomEvents;
      nodeId: string;
      log: Logger;
      opts: AssistantOptions;
      metrics?: AssistantMetrics;
      onReplyStored?: () => void;
      /** Daily token quotas and usage accounting; without it turns are neither capped nor counted. */
      quota?: QuotaService;
      /** The passages of shared files a reply used (message:context). */
      passageContext?: (userId: string, messageId: number) => Promise<PassageContextPayload[]>;
      /** Waits (bounded) until the files sent with a question are read, so its reply can use them. */
      attachmentsRead?: (attachments: readonly { id: string; contentType: string }[], signal: AbortSignal) => Promise<{ ready: boolean; checks: number }>;
    },
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.d.cancelBus.subscribe((id) => this.abortLocal(id, "cancel"));
    await this.d.store.heartbeat(this.d.nodeId);
    await this.sweep();
    this.sweepTimer = setInterval(() => {
      this.d.store
        .heartbeat(this.d.nodeId)
        .then(() => this.sweep())
        .catch((err) => this.d.log.warn({ err: (err as Error).message }, "heartbeat or orphan sweep failed"));
    }, this.d.opts.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Ends every turn on this node as interrupted and deregisters the node. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.unsubscribe?.();
    const running = [...this.turns.keys()];
    for (const id of running) this.abortLocal(id, "shutdown");
    await Promise.all([...this.turns.values()].map((t) => t.done));
    await this.d.store.removeNode(this.d.nodeId).catch(() => undefined);
  }

  get nodeId(): string {
    return this.d.nodeId;
  }

  /**
   * Reserves the quota for a turn of the user before its reply row is
   * written; throws QUOTA_EXCEEDED past the cap. Undefined without quotas.
   */
  async reserveTurn(userId: string, prefetched?: PrefetchedContext): Promise<Reservation | undefined> {
    const quota = this.d.quota;
    if (!quota) return undefined;
    // Without QUOTA_DAILY_TOKENS only an admin's override caps a user, and the
    // turn's first read says whether one exists: an uncapped turn then writes
    // no reservation (its tokens are still counted when it ends). A cap set
    // while that read is in flight applies from the next turn.
    if (prefetched && !quota.hasDefaultCap) {
      const s = await prefetched.settings.catch(() => undefined);
      if (s && !s.quotaOverride) return quota.unreserved(userId);
    }
    return quota.reserve(userId);
  }

  /** Gives back a reservation whose turn did not start. */
  releaseTurn(reservation: Reservation | undefined): void {
    if (!reservation || !this.d.quota) return;
    this.d.quota.release(reservation).catch((err) => this.d.log.warn({ err: (err as Error).message }, "could not release a quota reservation"));
  }

  /** Inserts a streaming reply to `question` and runs it. Null when the user already has a reply streaming in this session. */
  async startTurn(actor: Actor, question: Message, acceptedAt: number, reservation?: Reservation): Promise<Message | null> {
    const reply = await this.d.store.insertStreamingReply(question.sessionId, actor.user.id, question.id, this.d.nodeId);
    if (reply) this.run(actor, question, reply, acceptedAt, undefined, reservation);
    return reply;
  }

  /**
   * Starts a turn's reads (RAG settings, recent window, retrieval) from the
   * question's text alone, so they run while the message and reply rows are
   * being written instead of after. The window is read up to the newest
   * message and trimmed to the question's seq once it is known. If the send
   * is refused (busy, duplicate, not a member) the reads are dropped; they
   * check membership themselves, so a refused send learns nothing from them.
   */
  prefetch(userId: string, sessionId: string, query: string): PrefetchedContext {
    // The newest messages, two more for the question and its reply row if they are written by then.
    const settings = this.d.store.turnSettings(sessionId, userId, { extra: 2 });
    const reads = this.readContext(userId, sessionId, query, undefined, settings);
    // A refused send never awaits them.
    settings.catch(() => undefined);
    reads.catch(() => undefined);
    return { settings, reads };
  }

  /**
   * A turn's reads. With the question's row known (a regenerate, or a
   * prefetch that failed), the window ends just before it; without, it is
   * the newest messages, two extra for the question and its reply row if
   * they are written by the time this reads (`assemble` trims them).
   */
  private async readContext(
    userId: string,
    sessionId: string,
    query: string,
    question?: Message,
    settings?: Promise<TurnSettings>,
  ): Promise<{ config: RagConfig; gathered: GatheredContext }> {
    // Read on every turn, not cached: a session's owner or an admin may change it
    // on any node, and the change applies from the next turn (one indexed read).
    // One statement reads the configuration, the sessions the turn's searches cover and the recent window.
    const { config, scopes, window } = await (settings ?? this.d.store.turnSettings(sessionId, userId, question ? { beforeSeq: question.seq } : { extra: 2 }));
    const gathered = await this.d.context.gather({
      userId,
      sessionId,
      query,
      config,
      window: () => Promise.resolve(window),
      ...(question ? { excludeIds: [question.id] } : {}),
      ...(scopes ? { scopes: Promise.resolve(scopes) } : {}),
    });
    return { config, gathered };
  }

  /**
   * Streams the reply whose row exists (status streaming, owned by this node)
   * in the background. `acceptedAt` (performance.now()) is when the user's
   * message arrived: the base of time to first token.
   */
  run(actor: Actor, question: Message, reply: Message, acceptedAt: number, prefetched?: PrefetchedContext, reservation?: Reservation): void {
    const turn: Turn = {
      abort: new AbortController(),
      reason: undefined,
      sessionId: question.sessionId,
      userId: actor.user.id,
      done: Promise.resolve(),
      ...(reservation ? { reservation } : {}),
    };
    this.turns.set(reply.id, turn);
    turn.done = this.stream(turn, question, reply, acceptedAt, prefetched)
      .catch((err) => this.d.log.error({ err, messageId: reply.id }, "assistant turn failed unexpectedly"))
      .finally(() => this.turns.delete(reply.id));
  }

  async regenerate(actor: Actor, input: { sessionId: string; messageId: number }): Promise<{ message: Message }> {
    const target = await this.d.store.findTurnTarget(input.sessionId, actor.user.id, input.messageId);
    if (!target) throw new AppError("NOT_FOUND", "no such user message in this session");
    if (!target.assistantEnabled) throw new AppError("BAD_REQUEST", "this session has no assistant");
    if (target.archived) throw new AppError("ARCHIVED", "this session is archived: it takes no new replies (its owner can unarchive it)");
    const reservation = await this.reserveTurn(actor.user.id);
    let reply: Message | null = null;
    try {
      reply = await this.startTurn(actor, target.message, performance.now(), reservation);
    } finally {
      if (!reply) this.releaseTurn(reservation);
    }
    if (!reply) throw busyError();
    return { message: reply };
  }

  async cancel(actor: Actor, input: { sessionId: string; messageId: number }): Promise<{ cancelled: boolean }> {
    const reply = await this.d.store.findStreamingReply(input.sessionId, actor.user.id, input.messageId);
    if (!reply) return { cancelled: false };
    await this.d.cancelBus.publish(reply.id);
    return { cancelled: true };
  }

  /**
   * Cancels replies whose session or member is gone, wherever they stream.
   * Their rows may already be deleted: such a turn ends without a word to
   * the room (see `stream`).
   */
  async cancelReplies(messageIds: readonly number[]): Promise<void> {
    await Promise.all(messageIds.map((id) => this.d.cancelBus.publish(id)));
  }

  /** Every reply streaming in the session, oldest first, with the text its stream buffer holds so far. */
  async activeStreams(sessionId: string, userId: string): Promise<ActiveStream[]> {
    const replies = await this.d.store.activeReplies(sessionId, userId);
    return Promise.all(
      replies.map(async (m) => {
        const deltas = await this.d.buffer.read(m.id, 0);
        return deltas.length > 0
          ? { messageId: m.id, seq: deltas[deltas.length - 1]!.seq, text: deltas.map((x) => x.text).join("") }
          : { messageId: m.id, seq: 0, text: "" };
      }),
    );
  }

  /** Rates a finished reply the caller may read; rating again replaces their earlier rating. */
  async feedback(actor: Actor, input: { messageId: number; rating: FeedbackRating; comment?: string }) {
    const f = await this.d.store.upsertFeedback(actor.user.id, input.messageId, input.rating, input.comment || null);
    if (!f) throw new AppError("NOT_FOUND", "no finished assistant reply with this id in your sessions");
    return { feedback: f };
  }

  async context(actor: Actor, messageId: number) {
    const [context, passages] = await Promise.all([
      this.d.store.contextOf(actor.user.id, messageId),
      this.d.passageContext ? this.d.passageContext(actor.user.id, messageId) : Promise.resolve([]),
    ]);
    return { context, passages };
  }

  private abortLocal(messageId: number, reason: "cancel" | "shutdown"): void {
    const t = this.turns.get(messageId);
    if (!t || t.abort.signal.aborted) return;
    t.reason = reason;
    t.abort.abort();
  }

  private async stream(turn: Turn, question: Message, reply: Message, acceptedAt: number, prefetched?: PrefetchedContext): Promise<void> {
    const { rooms, buffer, store, log } = this.d;
    const sessionId = question.sessionId;
    rooms.emit(sessionId, "assistant:start", { sessionId, messageId: reply.id, replyToId: question.id });

    let text = "";
    let seq = 0;
    let pending = "";
    let timer: NodeJS.Timeout | undefined;
    let firstTokenMs: number | null = null;
    let usage = { promptTokens: 0, completionTokens: 0 };
    // The prompt's own count, asked for only when the provider reports no usage.
    let estimatePrompt: (() => number) | undefined;
    let reported = false;
    let used: { messageId: number; score: number; rank: number; source: "vector" | "lexical" | "hybrid" | "window" }[] = [];
    let usedPassages: UsedPassage[] = [];
    // Deltas leave in seq order: each waits for the previous one's buffer append.
    let chain = Promise.resolve();
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!pending) return;
      const delta = { seq: ++seq, text: pending };
      pending = "";
      chain = chain.then(async () => {
        await buffer.append(reply.id, delta).catch((err) => log.warn({ err: (err as Error).message }, "stream buffer append failed"));
        rooms.emit(sessionId, "assistant:delta", { sessionId, messageId: reply.id, ...delta });
      });
    };
    let lastCheckpoint = "";
    let configId: number | null = null;
    let model = this.d.opts.defaultModel ?? this.d.llm.name;
    const checkpoints = setInterval(() => {
      if (text === lastCheckpoint) return;
      lastCheckpoint = text;
      store.checkpoint(reply.id, text, configId).catch((err) => log.warn({ err: (err as Error).message }, "checkpoint failed"));
    }, this.d.opts.checkpointMs);
    checkpoints.unref();

    // Phase times (ms since the user's message arrived), logged at debug level.
    const marks: Record<string, number> = {};
    let status: "complete" | "cancelled" | "error" | "interrupted" = "complete";
    let failure: { code: string; message: string } | undefined;
    try {
      marks.started = performance.now() - acceptedAt;
      await this.awaitAttachments(turn, question, reply.id);
      marks.attachments = performance.now() - acceptedAt;
      const { config, gathered } =
        (await prefetched?.reads.catch(() => undefined)) ?? (await this.readContext(turn.userId, sessionId, question.content, question));
      marks.reads = performance.now() - acceptedAt;
      configId = config.id ?? null;
      model = config.model ?? model;
      const built = this.d.context.assemble(gathered, question, config);
      used = built.used;
      usedPassages = built.usedPassages;
      estimatePrompt = built.promptTokens;
      marks.context = performance.now() - acceptedAt;
      for await (const chunk of this.d.llm.stream({ ...this.requestOptions(config), messages: built.messages, signal: turn.abort.signal })) {
        if (chunk.type === "usage") {
          usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens };
          reported = true;
          continue;
        }
        if (!chunk.text) continue;
        text += chunk.text;
        pending += chunk.text;
        if (firstTokenMs === null) {
          firstTokenMs = Math.round(performance.now() - acceptedAt);
          marks.firstToken = firstTokenMs;
          this.d.metrics?.onFirstToken(firstTokenMs / 1000);
          flush(); // the first token goes at once: it is what the user waits for
        } else if (!timer) {
          timer = setTimeout(flush, this.d.opts.coalesceMs);
        }
      }
    } catch (err) {
      if (turn.abort.signal.aborted) {
        status = turn.reason === "shutdown" ? "interrupted" : "cancelled";
      } else {
        status = "error";
        failure =
          err instanceof LlmError
            ? { code: err.code, message: err.message }
            : { code: "INTERNAL", message: "the reply could not be produced" };
        if (!(err instanceof LlmError)) log.error({ err, messageId: reply.id }, "assistant turn failed");
        else log.warn({ code: err.code, err: err.message, messageId: reply.id }, "LLM request failed");
      }
    } finally {
      clearInterval(checkpoints);
    }
    flush();
    await chain;
    if (!reported && estimatePrompt) usage.promptTokens = estimatePrompt();

    const completion = {
      content: text,
      status,
      completionTokens: usage.completionTokens || null,
      promptTokens: usage.promptTokens || null,
      firstTokenMs,
      latencyMs: Math.round(performance.now() - acceptedAt),
      configId,
    };
    // The tokens count whatever became of the row: they were spent. They are counted by the
    // reply's final write itself (one statement); only if that cannot be stored are they counted alone.
    const settlement = this.d.quota?.settlement(turn.userId, turn.reservation, usage.promptTokens, usage.completionTokens);
    const stored = await this.completeWithRetry(reply.id, completion, used, usedPassages, settlement);
    if (stored === undefined) await this.settle(turn, usage.promptTokens, usage.completionTokens);
    if (usage.promptTokens + usage.completionTokens > 0) this.d.metrics?.onTokens?.(model, usage.promptTokens, usage.completionTokens);
    log.debug({ messageId: reply.id, status, ms: marks }, "assistant turn phases");
    await buffer.end(reply.id).catch(() => undefined);
    this.d.metrics?.onTurnEnd(status);
    // No streaming row was left to complete: the session was deleted (its
    // members have left the room) or the sweeper already ended the reply and told the room.
    if (stored === null) return;
    this.d.onReplyStored?.();
    // As history will show it: the row's token counts on the message itself.
    const message: Message = { ...(stored ?? { ...reply, content: text, status }), usage: { promptTokens: completion.promptTokens, completionTokens: completion.completionTokens } };
    if (failure) {
      rooms.emit(sessionId, "assistant:error", { sessionId, messageId: reply.id, code: failure.code, message: failure.message });
    } else {
      rooms.emit(sessionId, "assistant:end", {
        sessionId,
        message,
        usage,
        context: used.map((u) => ({ messageId: u.messageId, score: u.score })),
        passages: usedPassages.map((p) => ({ passageId: p.passageId, attachmentId: p.attachmentId, name: p.name, page: p.page, score: p.score })),
      });
    }
  }

  /**
   * A question sent with files waits for them to be read (ChatService does
   * not prefetch such a turn's reads: they would run before the passages
   * exist). Time running out or a failed check lets the reply go on without
   * them; a cancel ends the wait and the turn.
   */
  private async awaitAttachments(turn: Turn, question: Message, replyId: number): Promise<void> {
    const files = question.attachments ?? [];
    if (files.length === 0 || !this.d.attachmentsRead) return;
    const outcome = await this.d.attachmentsRead(files, turn.abort.signal).catch((err: Error) => {
      this.d.log.warn({ err: err.message, messageId: replyId }, "could not check whether the question's files are read; answering without waiting");
      return { ready: true, checks: 0 };
    });
    turn.abort.signal.throwIfAborted();
    if (!outcome.ready) this.d.log.info({ messageId: replyId, attachments: files.map((f) => f.id) }, "the question's files are not read yet; answering without them");
  }

  /** Counts the turn's tokens for its user (and releases its reservation); a failure is logged, never thrown. */
  private async settle(turn: Turn, promptTokens: number, completionTokens: number): Promise<void> {
    const quota = this.d.quota;
    if (!quota) return;
    await quota.settle(turn.userId, turn.reservation, promptTokens, completionTokens).catch((err) =>
      this.d.log.warn({ err: (err as Error).message, userId: turn.userId }, "could not count a turn's tokens"),
    );
  }

  private requestOptions(config: RagConfig) {
    const model = config.model ?? this.d.opts.defaultModel;
    return { ...(model ? { model } : {}), temperature: config.temperature, maxTokens: config.maxTokens };
  }

  /**
   * The reply's final state must reach the row; PostgreSQL may be briefly
   * away. Null: no streaming row to complete; undefined: it could not be stored.
   */
  private async completeWithRetry(
    id: number,
    c: Parameters<PgAssistantStore["complete"]>[1],
    used: Parameters<PgAssistantStore["complete"]>[2],
    passages: Parameters<PgAssistantStore["complete"]>[3] = [],
    settlement?: Settlement,
  ): Promise<Message | null | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.d.store.complete(id, c, used, passages, settlement);
      } catch (err) {
        if (attempt >= 6) {
          this.d.log.error({ err: (err as Error).message, messageId: id }, "could not store the reply; the sweeper will mark it interrupted");
          return undefined;
        }
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  /** Replies whose node died: mark them interrupted (with the text the buffer kept) and tell their rooms. */
  async sweep(): Promise<void> {
    const orphans = await this.d.store.sweepOrphans(this.d.opts.nodeStaleMs);
    for (const m of orphans) {
      const deltas = await this.d.buffer.read(m.id, 0).catch(() => []);
      const buffered = deltas.map((x) => x.text).join("");
      let message = m;
      if (buffered.length > m.content.length) {
        await this.d.store.setInterruptedContent(m.id, buffered);
        message = { ...m, content: buffered };
      }
      this.d.log.info({ messageId: m.id }, "marked an orphaned streaming reply interrupted");
      if (m.userId && this.d.quota) {
        await this.d.quota.releaseOrphan(m.userId, new Date(m.createdAt)).catch((err) => this.d.log.warn({ err: (err as Error).message }, "could not release an orphaned reply's quota reservation"));
      }
      const ended: Message = { ...message, usage: { promptTokens: null, completionTokens: null } };
      this.d.rooms.emit(m.sessionId, "assistant:end", { sessionId: m.sessionId, message: ended, usage: { promptTokens: 0, completionTokens: 0 }, context: [] });
    }
    if (orphans.length > 0) this.d.onReplyStored?.();
  }
}

export const busyError = () =>
  new AppError("CONFLICT", "a reply is still streaming in this session: cancel it or wait for it to end");
