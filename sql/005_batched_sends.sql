-- Group commit for message:send. A node collects the sends that arrive while
-- its earlier batches are still in PostgreSQL and stores them with one call of
-- this function: one round trip and one commit for the whole batch, and one
-- row lock per session however many of its messages the batch holds.
--
-- Item i is (p_session_ids[i], p_user_ids[i], p_client_ids[i], p_contents[i],
-- p_reply_nodes[i]); p_reply_nodes[i] is the node that will stream the reply,
-- or NULL when no reply is wanted. One row comes back per item (and a second,
-- is_reply, when a reply row was created), outcome one of:
--   inserted   msg is the new user message, queued for indexing (and, is_reply,
--              its streaming reply)
--   duplicate  msg is the row stored earlier under this client_message_id
--   not_found  no such session, or the user is not a member: nothing written
--   busy       this user's previous reply in the session still streams: nothing written
--
-- Invariants:
-- * Every writer of a session's messages holds the session row lock (FOR NO KEY
--   UPDATE, the lock an UPDATE of last_seq takes) while it allocates seqs. The
--   batch takes all its locks first, in session id order, so two batches
--   cannot deadlock; its second statement then runs with a fresh snapshot and
--   sees every committed twin: a duplicate or a busy turn is answered, never
--   raised as a unique violation.
-- * Items of one session get increasing seqs in item order, with no gap: seqs
--   are counted up from last_seq read under the lock, last_seq moves by the
--   number of rows inserted, and the batch commits or rolls back as one.
-- * Within a batch, the first item with a given (session, clientMessageId)
--   decides; later items with the same key get its row as a duplicate (or its
--   busy). Of one user's items wanting a reply in one session, only the first
--   gets one (unless a reply of theirs already streams); the rest are busy.
CREATE FUNCTION chat_insert_user_messages(
  p_session_ids uuid[],
  p_user_ids uuid[],
  p_client_ids text[],
  p_contents text[],
  p_reply_nodes text[]
) RETURNS TABLE (idx integer, outcome text, is_reply boolean, msg chat_messages)
LANGUAGE plpgsql
-- Plan the statements below once per connection: with custom plans (the default for the
-- first calls, and whenever they look cheaper) the large statement is re-planned per call.
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
    SELECT inp.*, s.last_seq,
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
      FROM heads h WHERE (h.existing).id IS NULL
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
           CASE WHEN (h.existing).id IS NOT NULL THEN 'duplicate' WHEN ins.id IS NULL THEN 'busy' ELSE 'inserted' END AS outcome,
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
