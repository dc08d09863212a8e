-- BM25 statistics at no extra write per send (issue 16).
--
-- lexical_doc_stats (sql/009) cost a send one more upsert per (session,
-- author) of its batch: a heap update, its WAL record and the ON CONFLICT
-- probe, about a tenth of the database's CPU per message at 100 clients on a
-- quiet machine (README, "The statistics' cost"). A send already updates its
-- session's row (last_seq, message_count); that update now also carries the
-- counts of the rows the session's owner wrote, which in a session of one
-- member are all of them.
--
-- Invariant: for every session s and author a (the nil uuid for "no author"),
--   messages of a in s (count, sum of length(content_tsv))
--     = (a = s.owner_id ? (s.lex_docs, s.lex_len) : (0, 0))
--       + lexical_doc_stats(s, a), absent counting as (0, 0).
-- chat_sessions.lex_* is written only by the send statements (the batch
-- function below, a lone send's statement), for the owner's rows they
-- insert; lexical_doc_stats holds everything else: other authors' rows from
-- those, and every insert, update and delete through the
-- triggers of sql/009 (which therefore now upsert: a cell may be absent and
-- may go below zero, when the owner's rows counted on the session row are
-- deleted or change author). The view lexical_doc_counts adds the two up.
--
-- The existing cells already hold every row, so the new columns start at 0.
-- A backup leaves the columns out (src/db/backup.ts): a restore's inserts go
-- through the trigger, into the cells.
ALTER TABLE chat_sessions
  ADD COLUMN lex_docs bigint NOT NULL DEFAULT 0,
  ADD COLUMN lex_len  bigint NOT NULL DEFAULT 0;

-- Per (session, author): the rows' count and total length, as the invariant adds them up.
CREATE VIEW lexical_doc_counts AS
SELECT x.session_id, x.author_id, sum(x.docs)::bigint AS docs, sum(x.len)::bigint AS len
  FROM (SELECT st.session_id, st.author_id, st.docs, st.len FROM lexical_doc_stats st
        UNION ALL
        SELECT s.id, s.owner_id, s.lex_docs, s.lex_len FROM chat_sessions s) x
 GROUP BY 1, 2
HAVING sum(x.docs) <> 0 OR sum(x.len) <> 0;

-- A lone send's statement counts its own row too (src/db/pg-message-store.ts,
-- COUNTS_OWN_ROWS): it sets memchat.lexical_stats to 'statement ' and its own
-- start time, for its transaction; the trigger stands aside while the setting
-- names the statement running, so a later statement of the same transaction
-- is counted as any other.
DROP TRIGGER chat_messages_lexical_stats_ins ON chat_messages;
CREATE TRIGGER chat_messages_lexical_stats_ins AFTER INSERT ON chat_messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  WHEN (coalesce(current_setting('memchat.lexical_stats', true), '') NOT IN ('caller', 'statement ' || statement_timestamp()::text))
  EXECUTE FUNCTION lexical_stats_ins();

-- Rows deleted with their session (the cascade) leave nothing to count: the
-- session row is gone, and with it every cell. The share lock keeps a
-- session from going between this check and the insert's foreign key.
CREATE OR REPLACE FUNCTION lexical_stats_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lexical_doc_stats AS s (session_id, author_id, docs, len)
  SELECT o.session_id, coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid), -count(*), -coalesce(sum(length(o.content_tsv)), 0)
    FROM old_rows o
   WHERE o.session_id IN (SELECT cs.id FROM chat_sessions cs WHERE cs.id IN (SELECT session_id FROM old_rows) FOR KEY SHARE)
   GROUP BY 1, 2
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = s.docs + EXCLUDED.docs, len = s.len + EXCLUDED.len;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION lexical_stats_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lexical_doc_stats AS s (session_id, author_id, docs, len)
  VALUES (OLD.session_id, coalesce(OLD.user_id, '00000000-0000-0000-0000-000000000000'::uuid), -1, -length(OLD.content_tsv))
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = s.docs + EXCLUDED.docs, len = s.len + EXCLUDED.len;
  INSERT INTO lexical_doc_stats AS s (session_id, author_id, docs, len)
  VALUES (NEW.session_id, coalesce(NEW.user_id, '00000000-0000-0000-0000-000000000000'::uuid), 1, length(NEW.content_tsv))
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = s.docs + 1, len = s.len + EXCLUDED.len;
  RETURN NULL;
END $$;

-- As in sql/028, with the statistics split by the invariant above (the
-- CTEs counted and lex, and bump).
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
-- this is set: the inserts below count their own rows (the CTEs lex and bump).
SET memchat.lexical_stats = 'caller'
AS $$
BEGIN
  PERFORM 1 FROM (
    SELECT s.id FROM chat_sessions s WHERE s.id = ANY (p_session_ids) ORDER BY s.id FOR NO KEY UPDATE
  ) locked;

  -- No item asks for a reply (a room without an assistant, or assistant:false):
  -- the same rules without the reply's parts. No reply row, no streaming check,
  -- so no item can be busy, and each accepted item takes one seq.
  IF cardinality(array_remove(p_reply_nodes, NULL)) = 0 THEN
    RETURN QUERY
    WITH input AS (
      SELECT t.session_id, t.user_id, t.client_id, t.content, t.i::integer AS i
        FROM unnest(p_session_ids, p_user_ids, p_client_ids, p_contents)
             WITH ORDINALITY AS t(session_id, user_id, client_id, content, i)
    ), checked AS (
      SELECT inp.*, s.last_seq, s.owner_id, coalesce(s.archived, false) AS archived,
             s.id IS NOT NULL AND EXISTS (SELECT 1 FROM chat_session_members mem
                                           WHERE mem.session_id = inp.session_id AND mem.user_id = inp.user_id) AS member
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
    ), seqd AS (
      SELECT h.*, h.last_seq + row_number() OVER (PARTITION BY h.session_id ORDER BY h.i) AS user_seq
        FROM heads h WHERE (h.existing).id IS NULL AND NOT h.archived
    ), ins AS (
      INSERT INTO chat_messages AS x (session_id, seq, user_id, role, content, client_message_id)
      SELECT d.session_id, d.user_seq, d.user_id, 'user', d.content, d.client_id FROM seqd d
      RETURNING x AS row, x.id, x.session_id, x.seq, x.user_id, length(x.content_tsv) AS dl
    ), counted AS (
      SELECT d.session_id, d.user_id, d.user_id = d.owner_id AS by_owner, 1 AS docs, ins.dl
        FROM seqd d JOIN ins ON ins.session_id = d.session_id AND ins.seq = d.user_seq
    ), lex AS (
      -- Rows of other authors than the owner, per (session, author).
      INSERT INTO lexical_doc_stats AS st (session_id, author_id, docs, len)
      SELECT c.session_id, c.user_id, sum(c.docs), sum(c.dl)
        FROM counted c WHERE NOT c.by_owner
       GROUP BY 1, 2
      ON CONFLICT (session_id, author_id) DO UPDATE SET docs = st.docs + EXCLUDED.docs, len = st.len + EXCLUDED.len
    ), jobs AS (
      INSERT INTO message_index_jobs (message_id) SELECT ins.id FROM ins
    ), bump AS (
      UPDATE chat_sessions s
         SET last_seq = s.last_seq + g.n, message_count = s.message_count + g.n,
             lex_docs = s.lex_docs + g.owner_docs, lex_len = s.lex_len + g.owner_len,
             last_message_at = now(), updated_at = now()
        FROM (SELECT c.session_id, count(*)::integer AS n,
                     count(*) FILTER (WHERE c.by_owner) AS owner_docs, coalesce(sum(c.dl) FILTER (WHERE c.by_owner), 0) AS owner_len
                FROM counted c GROUP BY c.session_id) g
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
     WHERE m.nth > 1;
    RETURN;
  END IF;

  RETURN QUERY
  WITH input AS (
    SELECT t.session_id, t.user_id, t.client_id, t.content, t.reply_node, t.i::integer AS i
      FROM unnest(p_session_ids, p_user_ids, p_client_ids, p_contents, p_reply_nodes)
           WITH ORDINALITY AS t(session_id, user_id, client_id, content, reply_node, i)
  ), checked AS (
    SELECT inp.*, s.last_seq, s.owner_id, coalesce(s.archived, false) AS archived,
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
    RETURNING x AS row, x.session_id, x.seq
  ), counted AS (
    -- A message and its reply row (empty text: no length until it is written) have the same author.
    SELECT d.session_id, d.user_id, d.user_id = d.owner_id AS by_owner, d.slots AS docs, ins.dl
      FROM seqd d JOIN ins ON ins.session_id = d.session_id AND ins.seq = d.user_seq
  ), lex AS (
    -- Rows of other authors than the owner, per (session, author).
    INSERT INTO lexical_doc_stats AS st (session_id, author_id, docs, len)
    SELECT c.session_id, c.user_id, sum(c.docs), sum(c.dl)
      FROM counted c WHERE NOT c.by_owner
     GROUP BY 1, 2
    ON CONFLICT (session_id, author_id) DO UPDATE SET docs = st.docs + EXCLUDED.docs, len = st.len + EXCLUDED.len
  ), jobs AS (
    INSERT INTO message_index_jobs (message_id) SELECT ins.id FROM ins
  ), bump AS (
    UPDATE chat_sessions s
       SET last_seq = s.last_seq + g.n, message_count = s.message_count + g.n,
           lex_docs = s.lex_docs + g.owner_docs, lex_len = s.lex_len + g.owner_len,
           last_message_at = now(), updated_at = now()
      FROM (SELECT c.session_id, sum(c.docs)::integer AS n,
                   coalesce(sum(c.docs) FILTER (WHERE c.by_owner), 0) AS owner_docs, coalesce(sum(c.dl) FILTER (WHERE c.by_owner), 0) AS owner_len
              FROM counted c GROUP BY c.session_id) g
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
