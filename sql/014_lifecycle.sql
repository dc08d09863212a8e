-- Data lifecycle: archiving, successors of full sessions, retention of
-- archived sessions, and the lease table of the maintenance scheduler.
--
-- Invariants:
-- * An archived session accepts no new message: both send paths (the single
--   statement in src/db/pg-message-store.ts and chat_insert_user_messages
--   below) check NOT archived under the session's row lock, so a send that
--   waited on an archiving transaction sees its outcome. A retry of a message
--   stored before the archive still gets its row back (duplicate).
-- * archived_at is set exactly while archived is true.
-- * purging_at set: retention has started deleting the session. It has no
--   members any more (nobody reads or unarchives it) and retention finishes
--   it on a later run if this one stops half way.
ALTER TABLE chat_sessions
  ADD COLUMN archived_at timestamptz,
  ADD COLUMN purging_at timestamptz,
  -- The session that continues this one after it reached SESSION_MAX_MESSAGES.
  -- Deferrable so a restore can load sessions in any order in one transaction.
  ADD COLUMN successor_id uuid REFERENCES chat_sessions (id) ON DELETE SET NULL DEFERRABLE INITIALLY IMMEDIATE;
UPDATE chat_sessions SET archived_at = updated_at WHERE archived;
ALTER TABLE chat_sessions ADD CONSTRAINT chat_sessions_archived_at CHECK (archived = (archived_at IS NOT NULL));

-- Retention walks archived sessions by age; idle archival walks live ones by last activity.
CREATE INDEX chat_sessions_archived ON chat_sessions (archived_at) WHERE archived;
CREATE INDEX chat_sessions_idle ON chat_sessions ((coalesce(last_message_at, created_at))) WHERE NOT archived;
CREATE INDEX chat_sessions_full ON chat_sessions (message_count) WHERE NOT archived;

-- One row per periodic job, shared by every node. A node runs a job only
-- while it holds the lease (locked_by, lease_until) and the job is due
-- (next_run_at), so each run happens on one node, once per interval.
CREATE TABLE maintenance_jobs (
  name             text PRIMARY KEY,
  locked_by        text,
  lease_until      timestamptz,
  next_run_at      timestamptz,
  last_run_at      timestamptz,
  last_duration_ms integer,
  last_outcome     text CHECK (last_outcome IN ('ok', 'error')),
  last_error       text,
  last_node        text,
  last_summary     jsonb
);

-- Outcome 'archived': the session is archived, nothing written. A duplicate
-- clientMessageId is still answered with its stored row.
CREATE OR REPLACE FUNCTION chat_insert_user_messages(
  p_session_ids uuid[],
  p_user_ids uuid[],
  p_client_ids text[],
  p_contents text[],
  p_reply_nodes text[]
) RETURNS TABLE (idx integer, outcome text, is_reply boolean, msg chat_messages)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  PERFORM 1 FROM (
    SELECT s.id FROM chat_sessions s WHERE s.id = ANY (p_session_ids) ORDER BY s.id FOR NO KEY UPDATE
  ) locked;

  RETURN QUERY
  WITH input AS (
    SELECT t.session_id, t.user_id, t.client_id, t.content, t.reply_node, t.i::integer AS i
      FROM unnest(p_session_ids, p_user_ids, p_client_ids, p_contents, p_reply_nodes)
           WITH ORDINALITY AS t(session_id, user_id, client_id, content, reply_node, i)
  ), checked AS (
    SELECT inp.*, s.last_seq, coalesce(s.archived, false) AS archived,
           s.id IS NOT NULL AND EXISTS (SELECT 1 FROM chat_session_members mem
                                         WHERE mem.session_id = inp.session_id AND mem.user_id = inp.user_id) AS member,
           inp.reply_node IS NOT NULL AND coalesce(s.assistant_enabled, false) AS wants_reply
      FROM input inp LEFT JOIN chat_sessions s ON s.id = inp.session_id
  ), members AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.session_id, c.client_id ORDER BY c.i) AS nth
      FROM checked c WHERE c.member
  ), heads AS (
    SELECT m.*, ex.row AS existing
      FROM members m
      LEFT JOIN LATERAL (SELECT x AS row FROM chat_messages x
                          WHERE x.session_id = m.session_id AND x.client_message_id = m.client_id) ex ON true
     WHERE m.nth = 1
  ), fresh AS (
    SELECT h.*,
           h.wants_reply AND EXISTS (SELECT 1 FROM chat_messages x
                                      WHERE x.session_id = h.session_id AND x.user_id = h.user_id
                                        AND x.status = 'streaming' AND x.role = 'assistant') AS streaming_already
      FROM heads h WHERE (h.existing).id IS NULL AND NOT h.archived
  ), accepted AS (
    SELECT f.*,
           f.wants_reply AND (f.streaming_already OR
             row_number() OVER (PARTITION BY f.session_id, f.user_id, f.wants_reply ORDER BY f.i) > 1) AS busy
      FROM fresh f
  ), seqd AS (
    SELECT a.*, CASE WHEN a.wants_reply THEN 2 ELSE 1 END AS slots,
           a.last_seq + sum(CASE WHEN a.wants_reply THEN 2 ELSE 1 END)
             OVER (PARTITION BY a.session_id ORDER BY a.i ROWS UNBOUNDED PRECEDING)
             - CASE WHEN a.wants_reply THEN 2 ELSE 1 END + 1 AS user_seq
      FROM accepted a WHERE NOT a.busy
  ), ins AS (
    INSERT INTO chat_messages AS x (session_id, seq, user_id, role, content, client_message_id)
    SELECT d.session_id, d.user_seq, d.user_id, 'user', d.content, d.client_id FROM seqd d
    RETURNING x AS row, x.id, x.session_id, x.seq
  ), reply AS (
    INSERT INTO chat_messages AS x (session_id, seq, user_id, role, content, status, reply_to_id, owner_node)
    SELECT d.session_id, d.user_seq + 1, d.user_id, 'assistant', '', 'streaming', ins.id, d.reply_node
      FROM seqd d JOIN ins ON ins.session_id = d.session_id AND ins.seq = d.user_seq
     WHERE d.wants_reply
    RETURNING x AS row, x.session_id, x.seq
  ), jobs AS (
    INSERT INTO message_index_jobs (message_id) SELECT ins.id FROM ins
  ), bump AS (
    UPDATE chat_sessions s
       SET last_seq = s.last_seq + g.n, message_count = s.message_count + g.n,
           last_message_at = now(), updated_at = now()
      FROM (SELECT d.session_id, sum(d.slots)::integer AS n FROM seqd d GROUP BY d.session_id) g
     WHERE s.id = g.session_id
  ), head_out AS (
    SELECT h.i, h.session_id, h.client_id,
           CASE WHEN (h.existing).id IS NOT NULL THEN 'duplicate' WHEN h.archived THEN 'archived'
                WHEN ins.id IS NULL THEN 'busy' ELSE 'inserted' END AS outcome,
           CASE WHEN (h.existing).id IS NOT NULL THEN h.existing ELSE ins.row END AS msg
      FROM heads h
      LEFT JOIN seqd d ON d.i = h.i
      LEFT JOIN ins ON ins.session_id = d.session_id AND ins.seq = d.user_seq
  )
  SELECT c.i, 'not_found'::text, false, NULL::chat_messages FROM checked c WHERE NOT c.member
  UNION ALL
  SELECT ho.i, ho.outcome, false, ho.msg FROM head_out ho
  UNION ALL
  SELECT m.i, CASE WHEN ho.outcome = 'inserted' THEN 'duplicate' ELSE ho.outcome END, false, ho.msg
    FROM members m JOIN head_out ho ON ho.session_id = m.session_id AND ho.client_id = m.client_id
   WHERE m.nth > 1
  UNION ALL
  SELECT d.i, 'inserted', true, reply.row
    FROM seqd d JOIN reply ON reply.session_id = d.session_id AND reply.seq = d.user_seq + 1;
END
$$;
