/**
 * MessageStore on PostgreSQL. Every statement that reads or writes inside a
 * session carries the caller's user id and checks chat_session_members in
 * the same statement, so a forgotten check in a caller cannot leak rows.
 */
import type pg from "pg";
import type { ArchiveFilter, InsertResult, MessageStore, NewUserMessage } from "../chat/ports.js";
import type { Message, Session } from "../protocol/types.js";
import { isDatabaseUnavailable, isUniqueViolation } from "./errors.js";
import { GroupCommit, type GroupCommitOptions, type Settled } from "./group-commit.js";
import { insertWithAttachments } from "./attachment-send.js";
import {
  ATTACHMENT_REFS,
  HISTORY_COLUMNS,
  HISTORY_FEEDBACK_JOIN,
  type HistoryRow,
  INT4_MAX,
  MESSAGE_COLUMNS,
  type MessageRow,
  SESSION_COLUMNS,
  type SessionRow,
  toHistoryMessage,
  toMessage,
  toSession,
  VISIBLE_SESSION,
} from "./rows.js";

const CREATE_SESSION = `
WITH s AS (
  INSERT INTO chat_sessions (owner_id, title, assistant_enabled) VALUES ($1, $2, $3)
  RETURNING id, title, owner_id, last_seq, created_at, updated_at, archived, archived_at, successor_id, configuration_id
), m AS (
  INSERT INTO chat_session_members (session_id, user_id, role) SELECT id, owner_id, 'owner' FROM s
)
SELECT s.*, 'owner' AS member_role FROM s`;

const GET_SESSION = `
SELECT ${SESSION_COLUMNS}, mem.role AS member_role
  FROM chat_sessions s
  JOIN chat_session_members mem ON mem.session_id = s.id AND mem.user_id = $2
 WHERE s.id = $1`;

// $3: which sessions by archive state, 'active' (the default list), 'archived' or 'all'.
const LIST_SESSIONS = `
SELECT ${SESSION_COLUMNS}, mem.role AS member_role
  FROM chat_session_members mem
  JOIN chat_sessions s ON s.id = mem.session_id
 WHERE mem.user_id = $1
   AND ($3::text = 'all' OR s.archived = ($3::text = 'archived'))
 ORDER BY s.updated_at DESC, s.id
 LIMIT $2`;

// One statement: the owner check and the update see the same snapshot.
const RENAME_SESSION = `
WITH ${VISIBLE_SESSION}, upd AS (
  UPDATE chat_sessions s SET title = $3, updated_at = now()
   WHERE s.id IN (SELECT id FROM visible WHERE owner_id = $2)
  RETURNING ${SESSION_COLUMNS}
)
SELECT (SELECT count(*) FROM visible)::int AS visible, upd.*, 'owner' AS member_role FROM (SELECT 1) one LEFT JOIN upd ON true`;

/*
 * The hot path. Sends go through group commit (src/db/group-commit.ts). A
 * batch of several is one call of chat_insert_user_messages
 * (sql/005_batched_sends.sql), which locks each session once, allocates
 * gap-free seqs, checks membership, idempotency and the one-streaming-reply
 * rule under that lock, and inserts the reply's streaming row with its
 * message when one is wanted. A lone send (with no queue: the common case)
 * takes INSERT_USER_MESSAGE instead: one plain statement with the same rules,
 * cheaper than the function for one send.
 */
const INSERT_USER_MESSAGES = `
SELECT r.idx, r.outcome, r.is_reply, ${MESSAGE_COLUMNS}
  FROM chat_insert_user_messages($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) r
  LEFT JOIN LATERAL (SELECT (r.msg).*) m ON true`;

/**
 * The first CTE of a lone send's statement: the statement trigger stands
 * aside for this statement (sql/029's WHEN), and `dl` is the message's
 * length as content_tsv will have it (its generated expression, sql/001).
 */
const COUNTS_OWN_ROWS = `cfg AS MATERIALIZED (
  SELECT set_config('memchat.lexical_stats', 'statement ' || statement_timestamp()::text, true) AS setting,
         length(to_tsvector('english', $4::text)) AS dl
)`;

/** A CTE counting the message (and `docs` rows in all) in another author's cell, when the sender is not the owner. */
const OTHER_AUTHOR_CELL = (docs: string) => `lex AS (
  INSERT INTO lexical_doc_stats AS st (session_id, author_id, docs, len)
  SELECT $1, $2, ${docs}, cfg.dl FROM s, ins, cfg WHERE NOT s.by_owner
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = st.docs + EXCLUDED.docs, len = st.len + EXCLUDED.len
)`;

/*
 * One send, one statement. The UPDATE takes the session's row lock, so
 * concurrent senders to one session queue here and each gets the next
 * seq(s). A duplicate clientMessageId makes the UPDATE match nothing (nothing
 * inserted) or, when the twin commits while we wait on the lock, fails the
 * unique constraint and rolls the whole statement back. Either way no seq is
 * consumed without a row: seqs stay gap-free. When $5 (the node id) is given
 * and the session has an assistant, the reply's streaming row is inserted
 * too (seq + 1); the partial unique index chat_messages_one_streaming_turn
 * then refuses the whole statement if this user's previous reply still
 * streams, on any node. The message's indexing job goes in with it.
 *
 * BM25 statistics (sql/029): the statement counts its own rows, as the
 * batch function does. `cfg` tells the statement trigger
 * chat_messages_lexical_stats_ins to stand aside for this statement only
 * (the setting names the statement's start, which the next statement of a
 * transaction does not share). The session owner's rows go on the session
 * row being updated anyway; another author's in their lexical_doc_stats
 * cell. A reply row starts empty: one more document, no length.
 */
const INSERT_USER_MESSAGE = `
WITH ${COUNTS_OWN_ROWS}, s AS (
  UPDATE chat_sessions
     SET last_seq = last_seq + CASE WHEN $5::text IS NOT NULL AND assistant_enabled THEN 2 ELSE 1 END,
         message_count = message_count + CASE WHEN $5::text IS NOT NULL AND assistant_enabled THEN 2 ELSE 1 END,
         lex_docs = lex_docs + CASE WHEN owner_id <> $2 THEN 0 WHEN $5::text IS NOT NULL AND assistant_enabled THEN 2 ELSE 1 END,
         lex_len = lex_len + CASE WHEN owner_id = $2 THEN (SELECT dl FROM cfg) ELSE 0 END,
         last_message_at = now(), updated_at = now()
   WHERE id = $1 AND NOT archived AND (SELECT dl FROM cfg) IS NOT NULL
     AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
     AND NOT EXISTS (SELECT 1 FROM chat_messages WHERE session_id = $1 AND client_message_id = $3)
  RETURNING last_seq, ($5::text IS NOT NULL AND assistant_enabled) AS with_reply, owner_id = $2 AS by_owner
), ins AS (
  INSERT INTO chat_messages AS m (session_id, seq, user_id, role, content, client_message_id)
  SELECT $1, CASE WHEN s.with_reply THEN s.last_seq - 1 ELSE s.last_seq END, $2, 'user', $4, $3 FROM s
  RETURNING ${MESSAGE_COLUMNS}
), job AS (
  INSERT INTO message_index_jobs (message_id) SELECT id FROM ins
), ${OTHER_AUTHOR_CELL("CASE WHEN s.with_reply THEN 2 ELSE 1 END")}, reply AS (
  INSERT INTO chat_messages AS m (session_id, seq, user_id, role, content, status, reply_to_id, owner_node)
  SELECT $1, s.last_seq, $2, 'assistant', '', 'streaming', ins.id, $5 FROM s, ins WHERE s.with_reply
  RETURNING ${MESSAGE_COLUMNS}
)
SELECT false AS is_reply, ins.* FROM ins
UNION ALL
SELECT true AS is_reply, reply.* FROM reply`;

/*
 * INSERT_USER_MESSAGE for a send that wants no reply ($5 is NULL): the same
 * statement without its reply part, which every execution pays to set up
 * (the second insert's indexes, constraints and generated column) even when
 * it inserts nothing. Sends without a reply: rooms without an assistant,
 * assistant:false. Measured side by side (alternating, backend CPU), 9-31 %
 * less PostgreSQL CPU for the statement (README, "Tails at a fixed load").
 */
const INSERT_USER_MESSAGE_NO_REPLY = `
WITH ${COUNTS_OWN_ROWS}, s AS (
  UPDATE chat_sessions
     SET last_seq = last_seq + 1, message_count = message_count + 1,
         lex_docs = lex_docs + CASE WHEN owner_id = $2 THEN 1 ELSE 0 END,
         lex_len = lex_len + CASE WHEN owner_id = $2 THEN (SELECT dl FROM cfg) ELSE 0 END,
         last_message_at = now(), updated_at = now()
   WHERE id = $1 AND NOT archived AND (SELECT dl FROM cfg) IS NOT NULL
     AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
     AND NOT EXISTS (SELECT 1 FROM chat_messages WHERE session_id = $1 AND client_message_id = $3)
  RETURNING last_seq, owner_id = $2 AS by_owner
), ins AS (
  INSERT INTO chat_messages AS m (session_id, seq, user_id, role, content, client_message_id)
  SELECT $1, s.last_seq, $2, 'user', $4, $3 FROM s
  RETURNING ${MESSAGE_COLUMNS}
), job AS (
  INSERT INTO message_index_jobs (message_id) SELECT id FROM ins
), ${OTHER_AUTHOR_CELL("1")}
SELECT false AS is_reply, ins.* FROM ins`;

const FIND_BY_CLIENT_ID = `
SELECT ${MESSAGE_COLUMNS}, ${ATTACHMENT_REFS} FROM chat_messages m
 WHERE m.session_id = $1 AND m.client_message_id = $3
   AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)`;

// Why a send stored nothing and had no twin: the session is archived (for a member), or not theirs.
const SEND_REFUSAL = `
SELECT s.archived FROM chat_sessions s
 WHERE s.id = $1 AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)`;

type BatchRow = MessageRow & { idx: number; outcome: "inserted" | "duplicate" | "not_found" | "busy" | "archived"; is_reply: boolean };

/** Defaults for send batching; see SEND_BATCH_MAX and SEND_BATCH_IN_FLIGHT in src/config.ts. */
export const DEFAULT_SEND_BATCHING: GroupCommitOptions = { maxBatch: 64, maxInFlight: 2 };

/**
 * A lone send goes as one plain statement: the function's fixed cost (about
 * 0.3 ms of PostgreSQL per call once warm, several ms on a connection's first
 * calls) only pays off when sends share it. From two sends on, one call and
 * one commit beat a statement and a commit each (bench:send at 10 and 100
 * clients: 1,975 and 5,901 sends/s, against 1,732 and 5,433 when batches
 * under four went one statement per send).
 */
const FUNCTION_MIN_BATCH = 2;

const LIST_AFTER = `
SELECT ${HISTORY_COLUMNS}, ${ATTACHMENT_REFS} FROM chat_messages m
 ${HISTORY_FEEDBACK_JOIN}
 WHERE m.session_id = $1 AND m.seq > $3
   AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
 ORDER BY m.seq
 LIMIT $4`;

const LIST_BEFORE = `
SELECT ${HISTORY_COLUMNS}, ${ATTACHMENT_REFS} FROM chat_messages m
 ${HISTORY_FEEDBACK_JOIN}
 WHERE m.session_id = $1 AND m.seq < $3
   AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2)
 ORDER BY m.seq DESC
 LIMIT $4`;

/** Where a send's time goes, for /metrics (milliseconds). */
export interface SendTiming {
  /** An item waited this long in the group-commit queue for its batch to leave. */
  queued(ms: number): void;
  /** A batch (or lone send) waited this long for a pool connection. */
  poolWait(ms: number): void;
  /** A batch's (or lone send's) statement took this long, round trip and commit included. */
  statement(ms: number): void;
}

export class PgMessageStore implements MessageStore {
  /** assistant_enabled never changes after creation, so a hit is never stale. */
  private readonly assistantFlags = new Map<string, boolean>();

  private readonly sends: GroupCommit<NewUserMessage, InsertResult>;
  /** Send batches stored, and how many of them failed and were retried item by item. */
  readonly sendStats = { batches: 0, items: 0, fallbacks: 0 };

  constructor(
    private readonly pool: pg.Pool,
    batching: GroupCommitOptions = DEFAULT_SEND_BATCHING,
    private readonly timing?: SendTiming,
  ) {
    this.sends = new GroupCommit((batch) => this.insertBatch(batch), { ...batching, ...(timing ? { onQueued: (ms: number) => timing.queued(ms) } : {}) });
  }

  /**
   * pool.query, with the wait for a connection and the statement timed apart.
   * Like pool.query, a connection that failed is not reused, and an error it
   * emits while checked out fails the statement instead of the process.
   */
  private async timedQuery<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    if (!this.timing) return this.pool.query<R>(config);
    const t0 = performance.now();
    const client = await this.pool.connect();
    const t1 = performance.now();
    this.timing.poolWait(t1 - t0);
    let failed: Error | undefined;
    const onError = (err: Error) => (failed ??= err);
    client.once("error", onError);
    try {
      return await client.query<R>(config);
    } catch (err) {
      failed ??= err as Error;
      throw err;
    } finally {
      this.timing.statement(performance.now() - t1);
      client.removeListener("error", onError);
      client.release(failed);
    }
  }

  async assistantEnabled(sessionId: string): Promise<boolean | null> {
    const cached = this.assistantFlags.get(sessionId);
    if (cached !== undefined) return cached;
    const { rows } = await this.pool.query<{ assistant_enabled: boolean }>("SELECT assistant_enabled FROM chat_sessions WHERE id = $1", [sessionId]);
    if (!rows[0]) return null;
    if (this.assistantFlags.size >= 100_000) this.assistantFlags.clear();
    this.assistantFlags.set(sessionId, rows[0].assistant_enabled);
    return rows[0].assistant_enabled;
  }

  async createSession(ownerId: string, title: string, assistantEnabled: boolean): Promise<Session> {
    const { rows } = await this.pool.query<SessionRow>(CREATE_SESSION, [ownerId, title, assistantEnabled]);
    return toSession(rows[0]!);
  }

  async getSession(sessionId: string, userId: string): Promise<Session | null> {
    const { rows } = await this.pool.query<SessionRow>({ name: "get_session", text: GET_SESSION, values: [sessionId, userId] });
    return rows[0] ? toSession(rows[0]) : null;
  }

  async listSessions(userId: string, limit: number, archived: ArchiveFilter = "active"): Promise<Session[]> {
    const { rows } = await this.pool.query<SessionRow>(LIST_SESSIONS, [userId, limit, archived]);
    return rows.map(toSession);
  }

  async renameSession(sessionId: string, userId: string, title: string): Promise<Session | "not_found" | "forbidden"> {
    const { rows } = await this.pool.query<SessionRow & { visible: number }>(RENAME_SESSION, [sessionId, userId, title]);
    const r = rows[0]!;
    if (r.id) return toSession(r);
    return r.visible > 0 ? "forbidden" : "not_found";
  }

  insertUserMessage(m: NewUserMessage): Promise<InsertResult> {
    // With files: its own transaction (rare next to plain sends, which keep the batched path).
    if (m.attachmentIds?.length) {
      return insertWithAttachments(this.pool, m, { insert: INSERT_USER_MESSAGE, findByClientId: FIND_BY_CLIENT_ID, refusal: SEND_REFUSAL });
    }
    return this.sends.submit(m);
  }

  /**
   * Stores a batch in one transaction (a small one: one statement per send).
   * If a batch fails for a reason other than the database being unreachable
   * (a bug or a constraint no check foresaw), each item is retried alone, so
   * one bad item cannot fail the messages that happened to share its batch.
   */
  private async insertBatch(batch: NewUserMessage[]): Promise<Settled<InsertResult>[]> {
    this.sendStats.batches++;
    this.sendStats.items += batch.length;
    if (batch.length < FUNCTION_MIN_BATCH) return this.insertEach(batch);
    let rows: BatchRow[];
    try {
      ({ rows } = await this.timedQuery<BatchRow>({
        name: "insert_user_messages",
        text: INSERT_USER_MESSAGES,
        values: [
          batch.map((m) => m.sessionId),
          batch.map((m) => m.userId),
          batch.map((m) => m.clientMessageId),
          batch.map((m) => m.content),
          batch.map((m) => m.replyOwnerNode ?? null),
        ],
      }));
    } catch (error) {
      if (isDatabaseUnavailable(error)) return batch.map(() => ({ ok: false, error }));
      this.sendStats.fallbacks++;
      return this.insertEach(batch);
    }
    const results: Settled<InsertResult>[] = new Array(batch.length);
    for (const r of rows) if (!r.is_reply) results[r.idx - 1] = { ok: true, value: toResult(r) };
    for (const r of rows) {
      const prev = r.is_reply ? results[r.idx - 1] : undefined;
      if (prev?.ok && prev.value.kind === "inserted") prev.value.reply = toMessage(r);
    }
    return results;
  }

  /**
   * Each item its own statement: sessions side by side, one session's items
   * one after another so they keep their order.
   */
  private async insertEach(batch: NewUserMessage[]): Promise<Settled<InsertResult>[]> {
    const results: Settled<InsertResult>[] = new Array(batch.length);
    const bySession = new Map<string, number[]>();
    batch.forEach((m, i) => bySession.set(m.sessionId, [...(bySession.get(m.sessionId) ?? []), i]));
    await Promise.all(
      [...bySession.values()].map(async (indexes) => {
        for (const i of indexes) {
          try {
            results[i] = { ok: true, value: await this.insertOne(batch[i]!) };
          } catch (error) {
            results[i] = { ok: false, error };
          }
        }
      }),
    );
    return results;
  }

  private async insertOne(m: NewUserMessage): Promise<InsertResult> {
    const params = [m.sessionId, m.userId, m.clientMessageId, m.content, m.replyOwnerNode ?? null];
    try {
      // Named: PostgreSQL parses and plans the hot statement once per connection.
      const { rows } = await this.timedQuery<MessageRow & { is_reply: boolean }>(
        (m.replyOwnerNode ?? null) === null
          ? { name: "insert_user_message_no_reply", text: INSERT_USER_MESSAGE_NO_REPLY, values: params.slice(0, 4) }
          : { name: "insert_user_message", text: INSERT_USER_MESSAGE, values: params },
      );
      const user = rows.find((r) => !r.is_reply);
      const reply = rows.find((r) => r.is_reply);
      if (user) return { kind: "inserted", message: toMessage(user), reply: reply ? toMessage(reply) : null };
    } catch (err) {
      if (isUniqueViolation(err, "chat_messages_one_streaming_turn")) return { kind: "busy" };
      if (!isUniqueViolation(err, "chat_messages_client_id")) throw err;
    }
    const { rows } = await this.pool.query<MessageRow>({ name: "find_by_client_id", text: FIND_BY_CLIENT_ID, values: params.slice(0, 3) });
    if (rows[0]) return { kind: "duplicate", message: toMessage(rows[0]) };
    const refusal = await this.pool.query<{ archived: boolean }>({ name: "send_refusal", text: SEND_REFUSAL, values: params.slice(0, 2) });
    return refusal.rows[0]?.archived ? { kind: "archived" } : { kind: "not_found" };
  }

  async listMessagesAfter(sessionId: string, userId: string, afterSeq: number, limit: number): Promise<Message[]> {
    const { rows } = await this.pool.query<HistoryRow>({ name: "list_after", text: LIST_AFTER, values: [sessionId, userId, afterSeq, limit] });
    return rows.map(toHistoryMessage);
  }

  async listMessagesBefore(sessionId: string, userId: string, beforeSeq: number | undefined, limit: number): Promise<Message[]> {
    const { rows } = await this.pool.query<HistoryRow>({ name: "list_before", text: LIST_BEFORE, values: [sessionId, userId, beforeSeq ?? INT4_MAX, limit] });
    return rows.map(toHistoryMessage).reverse();
  }
}

function toResult(r: BatchRow): InsertResult {
  switch (r.outcome) {
    case "inserted":
      return { kind: "inserted", message: toMessage(r), reply: null };
    case "duplicate":
      return { kind: "duplicate", message: toMessage(r) };
    case "busy":
      return { kind: "busy" };
    case "not_found":
      return { kind: "not_found" };
    case "archived":
      return { kind: "archived" };
  }
}
