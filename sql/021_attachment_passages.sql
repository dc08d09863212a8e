-- The assistant reads attachments (issue 19, item 3): the text of text-like
-- files is extracted, split into passages, and indexed beside messages.
--
-- Invariants:
-- * Every attachment that reached 'pending' has one attachment_extractions
--   row (queued by the trigger below, whoever stored it); the extractor
--   settles it as done (passages written), skipped (not a text-like type) or
--   failed (unreadable; the error kept).
-- * A passage is waiting to be indexed exactly while it has a job row in
--   passage_index_jobs; the indexer deletes the job in the statement that
--   sets indexed_at (as message_index_jobs does for messages).
-- * Passage vectors live in the message collections (role 'passage'); in
--   message_vectors a row is a message (message_id set) or a passage
--   (passage_id and attachment_id set), never both. Deleting passages, by
--   any path (their attachment, its session, its uploader's account),
--   deletes their rows in message_vectors in the same statement (trigger),
--   and queues the attachment for the Qdrant purge.
-- * A passage reaches a search only through the scoping rule of messages:
--   sessions the user is a member of; in the session searched from, any
--   sent attachment's passages (and the user's own unsent ones); elsewhere,
--   only attachments the user uploaded (src/db/passage-queries.ts).

CREATE TABLE attachment_extractions (
  attachment_id uuid PRIMARY KEY REFERENCES attachments (id) ON DELETE CASCADE,
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'skipped', 'failed')),
  run_at        timestamptz NOT NULL DEFAULT now(),
  attempts      integer NOT NULL DEFAULT 0,
  error         text,
  page_count    integer,
  chars         integer,
  passages      integer,
  truncated     boolean,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachment_extractions_due ON attachment_extractions (run_at) WHERE status = 'queued';

CREATE TABLE attachment_passages (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  attachment_id   uuid NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
  -- The attachment's session, kept here so searches filter passages as they filter messages.
  session_id      uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  ordinal         integer NOT NULL,
  -- 1-based PDF page; null for formats without pages.
  page            integer,
  -- Character offsets of the passage in its page's (or document's) extracted text.
  char_start      integer NOT NULL,
  char_end        integer NOT NULL,
  content         text NOT NULL,
  content_tsv     tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
  -- BM25's document length (distinct lexemes), so a scope's average length is read without the tsvectors.
  doc_len         integer GENERATED ALWAYS AS (length(to_tsvector('english', content))) STORED,
  vector_id       uuid,
  embedding_model text,
  indexed_at      timestamptz,
  UNIQUE (attachment_id, ordinal)
);
CREATE INDEX attachment_passages_tsv ON attachment_passages USING gin (content_tsv);
CREATE INDEX attachment_passages_session ON attachment_passages (session_id);

CREATE TABLE passage_index_jobs (
  passage_id bigint PRIMARY KEY REFERENCES attachment_passages (id) ON DELETE CASCADE,
  run_at     timestamptz NOT NULL DEFAULT now(),
  attempts   integer NOT NULL DEFAULT 0,
  last_error text
);
CREATE INDEX passage_index_jobs_due ON passage_index_jobs (run_at, passage_id);

-- Which passages an assistant reply used (message_context holds the messages).
CREATE TABLE message_passage_context (
  message_id bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
  passage_id bigint NOT NULL REFERENCES attachment_passages (id) ON DELETE CASCADE,
  score      double precision NOT NULL,
  rank       integer NOT NULL,
  source     text NOT NULL CHECK (source IN ('vector', 'lexical', 'hybrid')),
  PRIMARY KEY (message_id, passage_id)
);
CREATE INDEX message_passage_context_passage ON message_passage_context (passage_id);

-- Passage points beside message points.
ALTER TABLE message_vectors
  ALTER COLUMN message_id DROP NOT NULL,
  ADD COLUMN passage_id bigint,
  ADD COLUMN attachment_id uuid;
-- NOT VALID: existing rows are all messages; checking them would scan the table under lock.
ALTER TABLE message_vectors ADD CONSTRAINT message_vectors_one_kind
  CHECK (CASE WHEN role = 'passage' THEN message_id IS NULL AND passage_id IS NOT NULL AND attachment_id IS NOT NULL
              ELSE message_id IS NOT NULL AND passage_id IS NULL END) NOT VALID;
CREATE INDEX message_vectors_attachment ON message_vectors (attachment_id) WHERE attachment_id IS NOT NULL;

-- Attachments whose passages were deleted: their points in Qdrant collections
-- are deleted by the passage runner (PostgreSQL's are gone with the trigger).
CREATE TABLE attachment_vector_purge (
  attachment_id uuid PRIMARY KEY,
  queued_at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION attachment_passages_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM message_vectors v USING gone WHERE v.passage_id = gone.id AND v.attachment_id = gone.attachment_id;
  INSERT INTO attachment_vector_purge (attachment_id) SELECT DISTINCT attachment_id FROM gone ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;
CREATE TRIGGER attachment_passages_after_delete AFTER DELETE ON attachment_passages
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION attachment_passages_after_delete();

-- A stored attachment is queued for extraction, whichever code path stored it
-- (every upload writes its row as 'uploading' and moves it to 'pending').
-- Not on INSERT: a restore writes rows as they were, with their extraction rows.
CREATE FUNCTION attachments_queue_extraction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO attachment_extractions (attachment_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  PERFORM pg_notify('memchat_extract', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER attachments_queue_extraction AFTER UPDATE OF state ON attachments
  FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION attachments_queue_extraction();
