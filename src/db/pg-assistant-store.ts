/**
 * SQL of assistant turns: the streaming row, its completion, the context it
 * used, feedback, per-session RAG settings, and orphan sweeping. Every
 * statement reached from a client request carries the user id.
 */
import type pg from "pg";
import type { FeedbackRating, Message, MessageStatus } from "../protocol/types.js";
import { type TurnConfiguration, toSettings } from "./configuration-rows.js";
import { isUniqueViolation } from "./errors.js";
import { AUDIENCE_CAN_READ, type SessionScope } from "./memory-queries.js";
import { settleSql } from "./pg-usage-store.js";
import { INT4_MAX, MESSAGE_COLUMNS, type MessageRow, toMessage } from "./rows.js";

/**
 * In a statement whose CTE `upd` returns replies that just ended: queue them for indexing (see
 * sql/004_index_jobs.sql). A job already there is queued anew (attempts 0): a batch that claimed
 * it before holds older text and must not close it (MARKABLE in index-queue.ts).
 */
const QUEUE_FOR_INDEXING = `INSERT INTO message_index_jobs (message_id) SELECT id FROM upd
          ON CONFLICT (message_id) DO UPDATE SET run_at = now(), attempts = 0`;

/**
 * The settings of one turn: the named configuration its session uses
 * (sql/019_named_configurations.sql); the reply records its `id`
 * (chat_messages.config_id) and analytics count the turn for it.
 */
export type RagConfig = TurnConfiguration;

/** A turn's tokens for the user's daily usage row (PgUsageStore.settle's parameters). */
export interface Settlement {
  userId: string;
  day: string;
  reserved: number;
  promptTokens: number;
  completionTokens: number;
}

export interface TurnSettings {
  config: RagConfig;
  scopes: SessionScope[] | undefined;
  quotaOverride: boolean;
  /** The session's recent messages, oldest first (see `turnSettings`). */
  window: WindowMessage[];
}

/** What a prompt uses of a window message. */
export type WindowMessage = Pick<Message, "id" | "seq" | "userId" | "role" | "content" | "status">;

export interface TurnTarget {
  /** The user message being answered. */
  message: Message;
  assistantEnabled: boolean;
  /** An archived session takes no new replies either. */
  archived: boolean;
}

export interface Completion {
  content: string;
  status: Exclude<MessageStatus, "streaming">;
  completionTokens: number | null;
  promptTokens: number | null;
  firstTokenMs: number | null;
  latencyMs: number;
  /** The configuration the reply was produced with (null: its settings were never read). */
  configId?: number | null;
}

/** A passage of a shared file that a reply used. */
export interface PassageContextRow {
  passageId: number;
  score: number;
  rank: number;
  source: "vector" | "lexical" | "hybrid";
}

export interface ContextRow {
  messageId: number;
  score: number;
  rank: number;
  source: "vector" | "lexical" | "hybrid" | "window";
}

const INSERT_ASSISTANT = `
WITH s AS (
  UPDATE chat_sessions SET last_seq = last_seq + 1, message_count = message_count + 1, last_message_at = now(), updated_at = now()
   WHERE id = $1
  RETURNING last_seq
)
INSERT INTO chat_messages AS m (session_id, seq, user_id, role, content, status, reply_to_id, owner_node)
SELECT $1, s.last_seq, $2, 'assistant', '', 'streaming', $3, $4 FROM s
RETURNING ${MESSAGE_COLUMNS}`;

/**
 * The session's configuration when it names an active one, else the
 * default: a retired configuration is never used, even by a session that a
 * retire has not reached yet.
 */
const RAG_CONFIG = `
SELECT c.id, c.system_prompt, c.model, c.temperature, c.max_tokens, c.top_k, c.similarity_threshold, c.history_window,
       c.context_token_budget, c.cross_session, c.retrieval_mode
  FROM assistant_configurations c
  LEFT JOIN chat_sessions s ON s.id = $1 AND s.configuration_id = c.id
 WHERE (s.id IS NOT NULL AND c.active) OR c.is_default
 ORDER BY s.id IS NULL
 LIMIT 1`;

/**
 * A turn's reads before its retrieval, in one round trip and one row: the
 * configuration; when it retrieves (top_k > 0) the sessions its searches
 * cover, as PgMemoryQueries.scopes(userId, cross_session ? null : session,
 * session) reads them; whether an admin capped the user; and the session's
 * recent window (a member's read, newest `history_window` + $4 messages
 * before seq $3). Scopes and window come as JSON arrays of arrays: one row
 * whatever their length, parsed natively. $1 session, $2 user.
 */
const TURN_SETTINGS = `
WITH cfg AS (${RAG_CONFIG})
SELECT cfg.*, EXISTS (SELECT 1 FROM user_quotas q WHERE q.user_id = $2::uuid) AS quota_override,
       (SELECT json_agg(json_build_array(s.id, s.owner_id, s.archived,
                 EXISTS (SELECT 1 FROM attachment_passages p WHERE p.session_id = s.id)))
          FROM chat_session_members mem
          JOIN chat_sessions s ON s.id = mem.session_id
         WHERE cfg.top_k > 0 AND mem.user_id = $2::uuid AND (cfg.cross_session OR s.id = $1::uuid)
           AND ${AUDIENCE_CAN_READ("s.id", "$1")}) AS scopes,
       (SELECT json_agg(json_build_array(w.id, w.seq, w.user_id, w.role, w.content, w.status) ORDER BY w.seq)
          FROM (SELECT m.id, m.seq, m.user_id, m.role, m.content, m.status FROM chat_messages m
                 WHERE m.session_id = $1::uuid AND m.seq < $3::int
                   AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1::uuid AND user_id = $2::uuid)
                 ORDER BY m.seq DESC
                 LIMIT CASE WHEN cfg.history_window = 0 THEN 0 ELSE cfg.history_window + $4::int END) w) AS recent
  FROM cfg`;

export class PgAssistantStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Where turnSettings runs: a node's genericPlanPool (src/db/pool.ts). */
    private readonly genericPlans: pg.Pool = pool,
  ) {}

  /** The user message `messageId` of a session `userId` is a member of. */
  async findTurnTarget(sessionId: string, userId: string, messageId: number): Promise<TurnTarget | null> {
    const { rows } = await this.pool.query<MessageRow & { assistant_enabled: boolean; archived: boolean }>(
      `SELECT ${MESSAGE_COLUMNS}, s.assistant_enabled, s.archived FROM chat_messages m
         JOIN chat_sessions s ON s.id = m.session_id
         JOIN chat_session_members mem ON mem.session_id = m.session_id AND mem.user_id = $2
        WHERE m.session_id = $1 AND m.id = $3 AND m.role = 'user'`,
      [sessionId, userId, messageId],
    );
    return rows[0] ? { message: toMessage(rows[0]), assistantEnabled: rows[0].assistant_enabled, archived: rows[0].archived } : null;
  }

  /** Null when this user already has a reply streaming in the session. */
  async insertStreamingReply(sessionId: string, userId: string, replyToId: number, nodeId: string): Promise<Message | null> {
    try {
      const { rows } = await this.pool.query<MessageRow>({ name: "insert_assistant", text: INSERT_ASSISTANT, values: [sessionId, userId, replyToId, nodeId] });
      return toMessage(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, "chat_messages_one_streaming_turn")) return null;
      throw err;
    }
  }

  /** Keeps the text produced so far, so a crash of this node loses at most one checkpoint interval. */
  async checkpoint(messageId: number, content: string, configId: number | null = null): Promise<void> {
    await this.pool.query({
      name: "checkpoint_reply_config",
      text: "UPDATE chat_messages SET content = $2, config_id = coalesce($3, config_id), updated_at = now() WHERE id = $1 AND status = 'streaming'",
      values: [messageId, content, configId],
    });
  }

  /**
   * Final state of a reply. Only a row still streaming is changed (the
   * sweeper may have interrupted it); it then becomes due for indexing.
   */
  async complete(
    messageId: number,
    c: Completion,
    context: readonly ContextRow[],
    passages: readonly PassageContextRow[] = [],
    settle?: Settlement,
  ): Promise<Message | null> {
    // One statement: the final state and the context it used land together (and, with `settle`,
    // the turn's tokens are counted whether or not a streaming row was left to complete).
    const { rows } = await this.pool.query<MessageRow>({
      name: settle ? "complete_reply_settle" : "complete_reply_config",
      text: `WITH ${settle ? `settle AS (${settleSql(17)}), ` : ""}upd AS (
         UPDATE chat_messages m SET content = $2, status = $3, token_count = $4, prompt_tokens = $5, first_token_ms = $6,
                latency_ms = $7, owner_node = NULL, config_id = coalesce($12, config_id), updated_at = now()
          WHERE id = $1 AND status = 'streaming'
         RETURNING ${MESSAGE_COLUMNS}
       ), job AS (
         ${QUEUE_FOR_INDEXING}
       ), ctx AS (
         INSERT INTO message_context (message_id, context_message_id, score, rank, source)
         SELECT upd.id, u.id, u.score, u.rank, u.source
           FROM upd, unnest($8::bigint[], $9::float8[], $10::int[], $11::text[]) AS u(id, score, rank, source)
         ON CONFLICT DO NOTHING
       ), pctx AS (
         -- A passage deleted since the turn read it (its file went) is simply not recorded.
         INSERT INTO message_passage_context (message_id, passage_id, score, rank, source)
         SELECT upd.id, u.id, u.score, u.rank, u.source
           FROM upd, unnest($13::bigint[], $14::float8[], $15::int[], $16::text[]) AS u(id, score, rank, source)
          WHERE EXISTS (SELECT 1 FROM attachment_passages p WHERE p.id = u.id)
         ON CONFLICT DO NOTHING
       )
       SELECT * FROM upd`,
      values: [
        messageId, c.content, c.status, c.completionTokens, c.promptTokens, c.firstTokenMs, c.latencyMs,
        context.map((x) => x.messageId), context.map((x) => x.score), context.map((x) => x.rank), context.map((x) => x.source),
        c.configId ?? null,
        passages.map((x) => x.passageId), passages.map((x) => x.score), passages.map((x) => x.rank), passages.map((x) => x.source),
        ...(settle ? [settle.userId, settle.day, settle.reserved, settle.promptTokens, settle.completionTokens] : []),
      ],
    });
    return rows[0] ? toMessage(rows[0]) : null;
  }

  /** Replies in `sessionId` still streaming (several users may each have one), oldest first. */
  async activeReplies(sessionId: string, userId: string): Promise<Message[]> {
    const { rows } = await this.pool.query<MessageRow>({
      name: "active_replies",
      text: `SELECT ${MESSAGE_COLUMNS} FROM chat_messages m
        WHERE m.session_id = $1 AND m.status = 'streaming' AND m.role = 'assistant'
          AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
        ORDER BY m.seq`,
      values: [sessionId, userId],
    });
    return rows.map(toMessage);
  }

  /** The streaming reply `messageId`, when `userId` may see it. */
  async findStreamingReply(sessionId: string, userId: string, messageId: number): Promise<Message | null> {
    const { rows } = await this.pool.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM chat_messages m
        WHERE m.session_id = $1 AND m.id = $3 AND m.role = 'assistant' AND m.status = 'streaming'
          AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)`,
      [sessionId, userId, messageId],
    );
    return rows[0] ? toMessage(rows[0]) : null;
  }

  async ragConfig(sessionId: string): Promise<RagConfig> {
    const { rows } = await this.pool.query({ name: "rag_config", text: RAG_CONFIG, values: [sessionId] });
    return toSettings(rows[0]);
  }

  /**
   * The configuration of a turn by `userId` in the session, (when it
   * retrieves) the sessions its searches cover, and the session's recent
   * window, in one statement. Scopes is undefined when the configuration
   * retrieves nothing (top_k 0). `quotaOverride`: an admin set a daily token
   * cap for the user. The window holds the `history_window` messages before
   * seq `beforeSeq` (the newest when undefined) plus `extra` more, oldest
   * first; none when the user is not a member.
   */
  async turnSettings(sessionId: string, userId: string, window: { beforeSeq?: number; extra?: number } = {}): Promise<TurnSettings> {
    const { rows } = await this.genericPlans.query({ name: "turn_settings_window", text: TURN_SETTINGS, values: [sessionId, userId, window.beforeSeq ?? INT4_MAX, window.extra ?? 0] });
    const r = rows[0];
    const config = toSettings(r);
    const recent = ((r.recent ?? []) as [number, number, string | null, Message["role"], string, MessageStatus][]).map(
      ([id, seq, uid, role, content, status]): WindowMessage => ({ id, seq, userId: uid, role, content, status }),
    );
    const quotaOverride: boolean = r.quota_override;
    if (config.topK <= 0) return { config, scopes: undefined, quotaOverride, window: recent };
    const scopes = ((r.scopes ?? []) as [string, string, boolean, boolean][]).map(
      ([sid, ownerId, archived, hasPassages]): SessionScope => ({ sessionId: sid, ownerId, archived, hasPassages }),
    );
    return { config, scopes, quotaOverride, window: recent };
  }

  /** One rating per user per reply; a second call replaces it. Null unless it is a finished assistant reply the user may read. */
  async upsertFeedback(userId: string, messageId: number, rating: FeedbackRating, comment: string | null) {
    const { rows } = await this.pool.query<{ message_id: number; rating: number; comment: string | null; updated_at: Date }>(
      `INSERT INTO message_feedback (message_id, user_id, rating, comment)
       SELECT m.id, $1, $3, $4 FROM chat_messages m
        WHERE m.id = $2 AND m.role = 'assistant' AND m.status <> 'streaming' AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = m.session_id AND user_id = $1)
       ON CONFLICT (message_id, user_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()
       RETURNING message_id, rating, comment, updated_at`,
      [userId, messageId, rating, comment],
    );
    const r = rows[0];
    return r ? { messageId: r.message_id, rating: r.rating as FeedbackRating, comment: r.comment, updatedAt: r.updated_at.toISOString() } : null;
  }

  /**
   * The context a reply used, for a user who may see the reply. The text and
   * session of a context message are given only when the caller may read
   * that message's session now.
   */
  async contextOf(userId: string, messageId: number): Promise<(ContextRow & { sessionId: string | null; role: string | null; content: string | null })[]> {
    const { rows } = await this.pool.query<{ context_message_id: number; score: number; rank: number; source: ContextRow["source"]; session_id: string | null; role: string | null; content: string | null }>(
      `SELECT c.context_message_id, c.score, c.rank, c.source,
              readable.session_id, readable.role, readable.content
         FROM message_context c
         JOIN chat_messages m ON m.id = c.message_id
         LEFT JOIN LATERAL (
           SELECT cm.session_id, cm.role, cm.content FROM chat_messages cm
            WHERE cm.id = c.context_message_id
              AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = cm.session_id AND user_id = $1)
         ) readable ON true
        WHERE c.message_id = $2 AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = m.session_id AND user_id = $1)
        ORDER BY c.rank`,
      [userId, messageId],
    );
    return rows.map((r) => ({
      messageId: r.context_message_id,
      score: r.score,
      rank: r.rank,
      source: r.source,
      sessionId: r.session_id,
      role: r.role,
      content: r.content,
    }));
  }

  /** The text changed after the reply was queued: it is queued again, so the longer text is what gets embedded. */
  async setInterruptedContent(messageId: number, content: string): Promise<void> {
    await this.pool.query(
      `WITH upd AS (
         UPDATE chat_messages SET content = $2 WHERE id = $1 AND status = 'interrupted' RETURNING id
       )
       ${QUEUE_FOR_INDEXING}`,
      [messageId, content],
    );
  }

  async heartbeat(nodeId: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO chat_nodes (node_id) VALUES ($1)
       ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()`,
      [nodeId],
    );
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.pool.query("DELETE FROM chat_nodes WHERE node_id = $1", [nodeId]);
  }

  /**
   * Marks streaming replies whose node is gone (no heartbeat for `staleMs`,
   * or never registered) as interrupted, keeping their last checkpoint.
   */
  async sweepOrphans(staleMs: number): Promise<Message[]> {
    const { rows } = await this.pool.query<MessageRow>(
      `WITH upd AS (
         UPDATE chat_messages m SET status = 'interrupted', owner_node = NULL, updated_at = now(),
                -- its turn never stored the configuration it read: the one its session uses now is the best guess
                config_id = coalesce(m.config_id,
                  (SELECT coalesce(s.configuration_id, (SELECT id FROM assistant_configurations WHERE is_default))
                     FROM chat_sessions s WHERE s.id = m.session_id))
          WHERE m.status = 'streaming'
            AND NOT EXISTS (SELECT 1 FROM chat_nodes n WHERE n.node_id = m.owner_node
                             AND n.heartbeat_at > now() - make_interval(secs => $1::double precision / 1000))
         RETURNING ${MESSAGE_COLUMNS}
       ), job AS (
         ${QUEUE_FOR_INDEXING}
       )
       SELECT * FROM upd`,
      [staleMs],
    );
    return rows.map(toMessage);
  }
}

