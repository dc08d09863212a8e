-- Memory at scale (issue 16).
--
-- 1. chat_messages_user_time: a user's messages by time. Lexical search reads
--    the user's latest messages (or those before the end of the period a
--    question names) as its window, in this order (src/db/memory-queries.ts),
--    instead of every message holding a common word.
CREATE INDEX chat_messages_user_time ON chat_messages (user_id, created_at);

-- 2. lexical_doc_stats upkeep moves into the batched send: the statement
--    trigger of sql/009 added a trigger call and a second pass over the
--    inserted rows to every batch. chat_insert_user_messages now counts the rows it
--    inserts in the same statement and sets memchat.lexical_stats = 'caller'
--    for its duration; the trigger stands aside then and still counts every
--    other insert (the single send, replies written apart, system messages,
--    restores, bulk loads). Deletes and updates keep their triggers, so the
--    statistics stay exact under retention, session and account deletion.
DROP TRIGGER chat_messages_lexical_stats_ins ON chat_messages;
CREATE TRIGGER chat_messages_lexical_stats_ins AFTER INSERT ON chat_messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  WHEN (current_setting('memchat.lexical_stats', true) IS DISTINCT FROM 'caller')
  EXECUTE FUNCTION lexical_stats_ins();

-- As in sql/014, plus the statistics (the CTE lex and the two RETURNING lists).
CREATE OR REPLACE FUNCTION chat_insert_user_messages(
  p_session_ids uuid[],
  p_user_ids uuid[],
  p_client_ids text[],
  p_contents text[],
  p_reply_nodes text[]
) RETURNS TABLE (idx integer, outcome text, is_reply boolean, msg chat_messages)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
-- The statement trigger chat_messages_lexical_stats_ins stands aside while
-- this is set: the inserts below count their own rows (the CTE lex).
SET memchat.lexical_stats = 'caller'
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
    RETURNING x AS row, x.id, x.session_id, x.seq, x.user_id, length(x.content_tsv) AS dl
  ), reply AS (
    INSERT INTO chat_messages AS x (session_id, seq, user_id, role, content, status, reply_to_id, owner_node)
    SELECT d.session_id, d.user_seq + 1, d.user_id, 'assistant', '', 'streaming', ins.id, d.reply_node
      FROM seqd d JOIN ins ON ins.session_id = d.session_id AND ins.seq = d.user_seq
     WHERE d.wants_reply
    RETURNING x AS row, x.session_id, x.seq, x.user_id, length(x.content_tsv) AS dl
  ), lex AS (
    -- One upsert per (session, author) of the batch, under the session locks taken above.
    INSERT INTO lexical_doc_stats AS st (session_id, author_id, docs, len)
    SELECT r.session_id, coalesce(r.user_id, '00000000-0000-0000-0000-000000000000'::uuid), count(*), sum(r.dl)
      FROM (SELECT ins.session_id, ins.user_id, ins.dl FROM ins UNION ALL SELECT reply.session_id, reply.user_id, reply.dl FROM reply) r
     GROUP BY 1, 2
    ON CONFLICT (session_id, author_id) DO UPDATE SET docs = st.docs + EXCLUDED.docs, len = st.len + EXCLUDED.len
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
