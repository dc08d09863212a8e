-- Files members upload into a session and send with a message (issue 19).
--
-- Life of a row:
--   uploading  the bytes are being streamed to the file store under storage_key;
--              the row exists first so that a crash mid-upload leaves nothing the
--              database does not know about (the attachments job removes stale ones).
--   pending    stored whole, sniffed and accepted; the uploader may send it with
--              one message in its session within ATTACHMENT_PENDING_TTL_MS.
--   attached   sent: message_id is the user message that carries it.
--
-- Invariants:
-- * An attachment belongs to one session and one uploader; it is only ever
--   attached to a message of that session by that uploader (checked under
--   the row lock by the send, src/db/pg-message-store.ts).
-- * state = 'attached' exactly when message_id is set.
-- * Every stored object has a row here or a row in attachment_object_purge:
--   deleting an attachment row, by any path (its session, its message, its
--   uploader's account, expiry), queues its objects for deletion in the same
--   transaction (trigger below); the purger deletes them after commit.
-- * Other tables refer to an attachment by its id (e.g. extracted passages),
--   with ON DELETE CASCADE, so they go with it.
CREATE TABLE attachments (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id    uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  uploader_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  message_id    bigint REFERENCES chat_messages (id) ON DELETE CASCADE,
  state         text NOT NULL DEFAULT 'uploading' CHECK (state IN ('uploading', 'pending', 'attached')),
  -- The name the uploader gave (sanitised); never used as a storage path.
  name          text NOT NULL,
  -- What the bytes are (sniffed), not what the uploader declared.
  content_type  text NOT NULL DEFAULT 'application/octet-stream',
  declared_type text,
  size_bytes    bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
  sha256        text,
  storage_key   text NOT NULL UNIQUE,
  -- A small WebP of an image, stored beside the file; null for other files.
  thumbnail_key text UNIQUE,
  width         integer,
  height        integer,
  created_at    timestamptz NOT NULL DEFAULT now(),
  attached_at   timestamptz,
  CONSTRAINT attachments_attached CHECK ((state = 'attached') = (message_id IS NOT NULL)),
  CONSTRAINT attachments_stored CHECK (state = 'uploading' OR sha256 IS NOT NULL)
);
CREATE INDEX attachments_message ON attachments (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX attachments_session ON attachments (session_id);
-- Quota sums and the uploader's own pending list.
CREATE INDEX attachments_uploader ON attachments (uploader_id, state);
-- The expiry sweep walks unsent uploads by age.
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE state <> 'attached';

-- Objects whose rows are gone, waiting for the purger to delete them from the
-- file store (after the deleting transaction committed).
CREATE TABLE attachment_object_purge (
  storage_key text PRIMARY KEY,
  queued_at   timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0
);

CREATE FUNCTION attachments_queue_purge() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO attachment_object_purge (storage_key) VALUES (OLD.storage_key) ON CONFLICT DO NOTHING;
  IF OLD.thumbnail_key IS NOT NULL THEN
    INSERT INTO attachment_object_purge (storage_key) VALUES (OLD.thumbnail_key) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER attachments_queue_purge AFTER DELETE ON attachments
  FOR EACH ROW EXECUTE FUNCTION attachments_queue_purge();
