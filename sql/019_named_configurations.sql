-- Named assistant configurations (issue 15): admins edit them, sessions
-- refer to one, every assistant reply records the one it used.
--
-- Invariants:
-- * Exactly one configuration is the default, and it is active (the partial
--   unique index allows at most one; src/db/pg-configuration-store.ts moves
--   the flag in one transaction and refuses to retire the default).
-- * chat_sessions.configuration_id NULL means "the default configuration",
--   whichever that is now. A session never refers to a retired
--   configuration: retiring one sets its sessions back to NULL in the same
--   transaction (and a turn that still finds one falls back to the default).
-- * chat_messages.configuration_id is the configuration an assistant reply
--   was produced with; NULL for user and system rows, and for replies
--   stored before this migration.
-- * Configurations are never deleted, only retired: the replies that used
--   one keep naming it, so analytics per configuration stay whole.
CREATE TABLE assistant_configurations (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
  description          text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
  system_prompt        text NOT NULL CHECK (length(system_prompt) BETWEEN 1 AND 8000),
  model                text CHECK (length(model) BETWEEN 1 AND 200),
  temperature          real NOT NULL DEFAULT 0.7 CHECK (temperature BETWEEN 0 AND 2),
  max_tokens           integer NOT NULL DEFAULT 512 CHECK (max_tokens BETWEEN 16 AND 32768),
  top_k                integer NOT NULL DEFAULT 8 CHECK (top_k BETWEEN 1 AND 50),
  similarity_threshold real NOT NULL DEFAULT 0.3 CHECK (similarity_threshold BETWEEN 0 AND 1),
  history_window       integer NOT NULL DEFAULT 12 CHECK (history_window BETWEEN 0 AND 100),
  context_token_budget integer NOT NULL DEFAULT 2000 CHECK (context_token_budget BETWEEN 200 AND 200000),
  retrieval_mode       text NOT NULL DEFAULT 'hybrid' CHECK (retrieval_mode IN ('hybrid', 'vector', 'lexical', 'none')),
  cross_session        boolean NOT NULL DEFAULT true,
  is_default           boolean NOT NULL DEFAULT false,
  active               boolean NOT NULL DEFAULT true,
  created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
  updated_by           uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT assistant_configurations_default_active CHECK (active OR NOT is_default)
);
-- One deployment is one tenant: names are unique across it, ignoring case.
CREATE UNIQUE INDEX assistant_configurations_name ON assistant_configurations (lower(name));
CREATE UNIQUE INDEX assistant_configurations_one_default ON assistant_configurations ((true)) WHERE is_default;

ALTER TABLE chat_sessions
  ADD COLUMN configuration_id uuid REFERENCES assistant_configurations (id) ON DELETE SET NULL;
-- Retiring a configuration finds its sessions.
CREATE INDEX chat_sessions_configuration ON chat_sessions (configuration_id) WHERE configuration_id IS NOT NULL;

-- Written when a reply ends, on the hot path: no foreign key (and its
-- trigger and row lock on the configuration); configurations are never deleted.
ALTER TABLE chat_messages ADD COLUMN configuration_id uuid;

-- The old default row becomes the default configuration. Values outside the
-- new bounds are brought inside them; top_k 0 (no retrieval) becomes mode 'none'.
INSERT INTO assistant_configurations
  (name, description, system_prompt, model, temperature, max_tokens, top_k, similarity_threshold,
   history_window, context_token_budget, retrieval_mode, cross_session, is_default, created_at, updated_at)
SELECT 'Default', 'The settings the assistant used before named configurations.',
       left(system_prompt, 8000), nullif(left(model, 200), ''), temperature, least(greatest(max_tokens, 16), 32768),
       least(greatest(top_k, 1), 50), least(greatest(similarity_threshold, 0), 1), least(history_window, 100),
       least(greatest(context_token_budget, 200), 200000), CASE WHEN top_k = 0 THEN 'none' ELSE 'hybrid' END,
       cross_session, true, created_at, updated_at
  FROM rag_configurations WHERE session_id IS NULL;
-- A database whose default row was deleted by hand still gets a default.
INSERT INTO assistant_configurations (name, description, system_prompt, is_default)
SELECT 'Default', 'The settings the assistant used before named configurations.',
       'You are a helpful assistant in a chat. Use the earlier messages you are given when they are relevant, and say so when you do not know.', true
 WHERE NOT EXISTS (SELECT 1 FROM assistant_configurations);

-- Each per-session override becomes a configuration of its own, which that
-- session then uses. Named by the old row's number, not the session, so
-- the list every user may read tells nothing about other people's sessions.
WITH migrated AS (
  INSERT INTO assistant_configurations
    (name, description, system_prompt, model, temperature, max_tokens, top_k, similarity_threshold,
     history_window, context_token_budget, retrieval_mode, cross_session, created_at, updated_at)
  SELECT 'Migrated settings #' || r.id, 'Per-session settings from before named configurations (rag_configurations row ' || r.id || ').',
         left(r.system_prompt, 8000), nullif(left(r.model, 200), ''), r.temperature, least(greatest(r.max_tokens, 16), 32768),
         least(greatest(r.top_k, 1), 50), least(greatest(r.similarity_threshold, 0), 1), least(r.history_window, 100),
         least(greatest(r.context_token_budget, 200), 200000), CASE WHEN r.top_k = 0 THEN 'none' ELSE 'hybrid' END,
         r.cross_session, r.created_at, r.updated_at
    FROM rag_configurations r WHERE r.session_id IS NOT NULL
  RETURNING id, name
)
UPDATE chat_sessions s SET configuration_id = migrated.id
  FROM rag_configurations r JOIN migrated ON migrated.name = 'Migrated settings #' || r.id
 WHERE s.id = r.session_id;

DROP TABLE rag_configurations;

-- Feedback: positive (1), neutral (0) or negative (-1), with an optional comment.
ALTER TABLE message_feedback DROP CONSTRAINT message_feedback_rating_check;
ALTER TABLE message_feedback ADD CONSTRAINT message_feedback_rating_check CHECK (rating IN (-1, 0, 1));
ALTER TABLE message_feedback ADD CONSTRAINT message_feedback_comment_length CHECK (length(comment) <= 2000);
