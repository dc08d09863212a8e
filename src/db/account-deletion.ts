/**
 * The statements of account deletion (src/account/account-service.ts runs
 * them in order). Each is short and touches a bounded number of rows, so no
 * step holds locks other users wait on for long:
 *   1. requestDeletion: the account stops accepting logins and tokens at once,
 *      and stays marked until the user row is gone (pendingDeletions).
 *   2. ownedSessionBatch + deleteMessagesOf + deleteSessions: the user's own
 *      sessions go, their messages in chunks first (a session of a million
 *      messages is not one statement), then the session rows, which cascade
 *      to members, feedback, context, jobs and settings.
 *   3. disownMessages: their messages in other people's sessions stay, with
 *      the author cleared, in chunks.
 *   4. deleteUser: the user row, cascading to memberships and feedback (and
 *      clearing the author of anything step 3 did not reach).
 */
import type pg from "pg";

/** Marks the account for deletion, disables it and revokes its tokens; false when there is no such user. */
export async function requestDeletion(pool: pg.Pool, userId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE users SET disabled_at = coalesce(disabled_at, now()), deletion_requested_at = coalesce(deletion_requested_at, now()),
                      token_version = token_version + 1
      WHERE id = $1`,
    [userId],
  );
  return (rowCount ?? 0) > 0;
}

/** Accounts whose deletion was asked for and has not finished (the user row still exists). */
export async function pendingDeletions(pool: pg.Pool, limit: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    "SELECT id FROM users WHERE deletion_requested_at IS NOT NULL ORDER BY deletion_requested_at LIMIT $1",
    [limit],
  );
  return rows.map((r) => r.id);
}

/** Up to `limit` ids of sessions the user owns. */
export async function ownedSessionBatch(pool: pg.Pool, userId: string, limit: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>("SELECT id FROM chat_sessions WHERE owner_id = $1 ORDER BY id LIMIT $2", [userId, limit]);
  return rows.map((r) => r.id);
}

/** Deletes up to `limit` messages of the sessions (which the caller checked the user owns); returns how many. */
export async function deleteMessagesOf(pool: pg.Pool, sessionIds: readonly string[], limit: number): Promise<number> {
  const { rowCount } = await pool.query(
    `DELETE FROM chat_messages WHERE id IN (
       SELECT id FROM chat_messages WHERE session_id = ANY ($1::uuid[]) LIMIT $2)`,
    [sessionIds, limit],
  );
  return rowCount ?? 0;
}

/**
 * Deletes the sessions among `sessionIds` that the user owns (with whatever
 * they still cascade to); returns each deleted session with who was a member,
 * read in the same statement, so their sockets can be told.
 */
export async function deleteSessions(pool: pg.Pool, userId: string, sessionIds: readonly string[]): Promise<{ sessionId: string; memberIds: string[] }[]> {
  const { rows } = await pool.query<{ id: string; members: string[] }>(
    `WITH gone AS (
       SELECT s.id, ARRAY(SELECT user_id FROM chat_session_members WHERE session_id = s.id) AS members
         FROM chat_sessions s WHERE s.id = ANY ($1::uuid[]) AND s.owner_id = $2
     ), del AS (
       DELETE FROM chat_sessions WHERE id IN (SELECT id FROM gone) RETURNING id
     )
     SELECT gone.id, gone.members FROM gone JOIN del USING (id)`,
    [sessionIds, userId],
  );
  return rows.map((r) => ({ sessionId: r.id, memberIds: r.members }));
}

/** Replies still streaming in the sessions: cancelled before their rows go. */
export async function streamingRepliesIn(pool: pg.Pool, sessionIds: readonly string[]): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    "SELECT id FROM chat_messages WHERE session_id = ANY ($1::uuid[]) AND status = 'streaming'",
    [sessionIds],
  );
  return rows.map((r) => r.id);
}

/**
 * Clears the author of up to `limit` of the user's messages (and of the
 * assistant replies to their turns) in sessions they are a member of; returns how many.
 */
export async function disownMessages(pool: pg.Pool, userId: string, limit: number): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE chat_messages SET user_id = NULL WHERE id IN (
       SELECT m.id FROM chat_session_members mem
         JOIN chat_messages m ON m.session_id = mem.session_id AND m.user_id = $1
        WHERE mem.user_id = $1
        LIMIT $2)`,
    [userId, limit],
  );
  return rowCount ?? 0;
}

/** Deletes the user row; true when it existed. */
export async function deleteUser(pool: pg.Pool, userId: string): Promise<boolean> {
  const { rowCount } = await pool.query("DELETE FROM users WHERE id = $1", [userId]);
  return (rowCount ?? 0) > 0;
}
