-- A message's indexing is recorded by its job alone (issue 17).
--
-- The indexer used to mark each indexed message on its chat_messages row
-- (vector_id, embedding_model, indexed_at, index_attempts) in the statement
-- that deletes its job. Nothing read those columns: the vector's point id is
-- derived from the message id (src/memory/point-id.ts), the model is the
-- embedding version's, and "indexed" is "has no job" (sql/004's invariant).
-- Writing them cost a new version of a wide row per message: by auto_explain
-- 2-6 ms of a 3-7 ms claim statement for about 30 messages, and a quarter to
-- a third of those updates were not HOT (the page was full), so each wrote
-- the row into every index of chat_messages again, the full-text GIN index
-- included. With these columns gone, closing the job is the whole mark.
--
-- fillfactor 85 (sql/004) kept room for those marks to be HOT; no update of
-- a message row can be HOT now (a reply's final text and status change
-- indexed columns), so new pages are filled. Existing pages keep their
-- layout; dropping columns rewrites nothing.
ALTER TABLE chat_messages
  DROP COLUMN IF EXISTS vector_id,
  DROP COLUMN IF EXISTS embedding_model,
  DROP COLUMN IF EXISTS indexed_at,
  DROP COLUMN IF EXISTS index_attempts;
ALTER TABLE chat_messages RESET (fillfactor);
