-- Memory scoping (issue 13) and BM25 statistics (issue 16).
--
-- 1. message_vectors.author_id: chat_messages.user_id of the point's message
--    (the author of a user message; for an assistant row, the user whose
--    turn it was). Cross-session retrieval reaches another session's points
--    only when author_id is the searching user, so the vector leg needs it
--    beside the vector. NULL (a deleted user, or a row written before this
--    migration that had no message) is reachable from its own session only.
ALTER TABLE message_vectors ADD COLUMN author_id uuid;
UPDATE message_vectors v SET author_id = m.user_id FROM chat_messages m WHERE m.id = v.message_id;

-- 2. lexical_doc_stats: per (session, author) the number of stored messages
--    and the sum of their lengths (length(content_tsv): distinct lexemes,
--    stop words excluded). A search's scope is a union of such cells (its
--    home session, any author; other sessions, the user as author), so its
--    document count N and average length come from summing a few rows.
--    Document frequencies are not kept: they are counted over the search's
--    own candidates, which are exactly the scope's messages holding a query
--    term, so they are exact for that scope and nothing is kept per term.
--    author_id uses the nil uuid for "no author" so it can be a key.
CREATE TABLE lexical_doc_stats (
  session_id uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  author_id  uuid NOT NULL,
  docs       bigint NOT NULL DEFAULT 0,
  len        bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (session_id, author_id)
);
-- "this user's cells in their sessions"
CREATE INDEX lexical_doc_stats_author ON lexical_doc_stats (author_id, session_id);

INSERT INTO lexical_doc_stats (session_id, author_id, docs, len)
SELECT session_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid), count(*), coalesce(sum(length(content_tsv)), 0)
  FROM chat_messages GROUP BY 1, 2;

-- Inserts and deletes are counted once per statement (a batched send is one
-- statement): one upsert per (session, author) in the batch. The insert path
-- already holds each session's row lock, so these rows add no new waiting.
CREATE FUNCTION lexical_stats_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lexical_doc_stats AS s (session_id, author_id, docs, len)
  SELECT session_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid), count(*), coalesce(sum(length(content_tsv)), 0)
    FROM new_rows GROUP BY 1, 2
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = s.docs + EXCLUDED.docs, len = s.len + EXCLUDED.len;
  RETURN NULL;
END $$;

CREATE FUNCTION lexical_stats_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE lexical_doc_stats s SET docs = s.docs - d.docs, len = s.len - d.len
    FROM (SELECT session_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid) AS author_id, count(*) AS docs,
                 coalesce(sum(length(content_tsv)), 0) AS len
            FROM old_rows GROUP BY 1, 2) d
   WHERE s.session_id = d.session_id AND s.author_id = d.author_id;
  RETURN NULL;
END $$;

-- Updates that change the text or the author (a reply's text as it streams
-- and when it ends, a deleted user's rows losing their author) move one
-- row's length; other updates (indexing marks, status) do not fire this.
CREATE FUNCTION lexical_stats_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE lexical_doc_stats SET docs = docs - 1, len = len - length(OLD.content_tsv)
   WHERE session_id = OLD.session_id AND author_id = coalesce(OLD.user_id, '00000000-0000-0000-0000-000000000000'::uuid);
  INSERT INTO lexical_doc_stats AS s (session_id, author_id, docs, len)
  VALUES (NEW.session_id, coalesce(NEW.user_id, '00000000-0000-0000-0000-000000000000'::uuid), 1, length(NEW.content_tsv))
  ON CONFLICT (session_id, author_id) DO UPDATE SET docs = s.docs + 1, len = s.len + EXCLUDED.len;
  RETURN NULL;
END $$;

CREATE TRIGGER chat_messages_lexical_stats_ins AFTER INSERT ON chat_messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lexical_stats_ins();
CREATE TRIGGER chat_messages_lexical_stats_del AFTER DELETE ON chat_messages
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lexical_stats_del();
CREATE TRIGGER chat_messages_lexical_stats_upd AFTER UPDATE OF content, user_id, session_id ON chat_messages
  FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.session_id IS DISTINCT FROM NEW.session_id)
  EXECUTE FUNCTION lexical_stats_upd();
