-- The indexing queue moves out of chat_messages into its own narrow table.
--
-- Why: with the queue inside chat_messages (indexed_at IS NULL, ordered by
-- index_after), claiming a message and marking it indexed were two non-HOT
-- UPDATEs of a wide row: each wrote a new row version into every index of
-- chat_messages, the full-text GIN index included, and recomputed the
-- tsvector. Now a claim touches only a small job row, and marking a message
-- indexed changes no indexed column of chat_messages, so it is a HOT update
-- (touching no index) whenever its page has room: fillfactor 85 leaves some;
-- a quarter of the marks were HOT in a test of 2,000 messages.
--
-- Invariants:
-- * A message is waiting to be indexed exactly while it has a job row; the
--   indexer deletes the job in the statement that sets indexed_at.
-- * A streaming reply has no job: it gets one when it ends (complete,
--   cancelled, error or interrupted), so only final text is embedded.
-- * Claims count the attempt (attempts + 1) and lease the job (run_at moves
--   out), so a node that dies mid-batch only delays its jobs.
CREATE TABLE message_index_jobs (
  message_id bigint PRIMARY KEY REFERENCES chat_messages (id) ON DELETE CASCADE,
  run_at     timestamptz NOT NULL DEFAULT now(),
  attempts   integer NOT NULL DEFAULT 0,
  last_error text
);
CREATE INDEX message_index_jobs_due ON message_index_jobs (run_at, message_id);

INSERT INTO message_index_jobs (message_id, run_at, attempts, last_error)
SELECT id, index_after, index_attempts, index_error
  FROM chat_messages
 WHERE indexed_at IS NULL AND status <> 'streaming';

DROP INDEX chat_messages_index_queue;
-- index_attempts stays: how many attempts indexing took, written when it succeeds.
ALTER TABLE chat_messages DROP COLUMN index_after, DROP COLUMN index_error;
ALTER TABLE chat_messages SET (fillfactor = 85);
