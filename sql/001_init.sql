-- The whole schema of DESIGN.md section 7.
-- Invariant: every row a user owns is reachable from users.id, through
-- chat_session_members for anything inside a session.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username      text NOT NULL,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE chat_sessions (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title             text NOT NULL DEFAULT '',
  -- The last seq handed out in this session. Incremented under the row lock
  -- by the insert of each message, which makes seqs gap-free and unique.
  last_seq          integer NOT NULL DEFAULT 0,
  message_count     integer NOT NULL DEFAULT 0,
  assistant_enabled boolean NOT NULL DEFAULT true,
  archived          boolean NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  last_message_at   timestamptz
);
CREATE INDEX chat_sessions_owner ON chat_sessions (owner_id);

CREATE TABLE chat_session_members (
  session_id uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role       text NOT NULL CHECK (role IN ('owner', 'member')),
  joined_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, user_id)
);
-- "my sessions" lists start from the user.
CREATE INDEX chat_session_members_user ON chat_session_members (user_id, session_id);

CREATE TABLE chat_messages (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id        uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  seq               integer NOT NULL,
  -- The author for user messages; for assistant rows, the user whose turn it was.
  user_id           uuid REFERENCES users (id) ON DELETE SET NULL,
  role              text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  content           text NOT NULL,
  client_message_id text,
  status            text NOT NULL DEFAULT 'complete'
                    CHECK (status IN ('complete', 'streaming', 'cancelled', 'error', 'interrupted')),
  reply_to_id       bigint REFERENCES chat_messages (id) ON DELETE SET NULL,
  token_count       integer,
  prompt_tokens     integer,
  first_token_ms    integer,
  latency_ms        integer,
  -- Which node streams this row while status = 'streaming' (for the orphan sweeper).
  owner_node        text,
  -- Indexing state: a row with indexed_at IS NULL is queued for the indexer.
  vector_id         uuid,
  embedding_model   text,
  indexed_at        timestamptz,
  index_attempts    integer NOT NULL DEFAULT 0,
  index_after       timestamptz NOT NULL DEFAULT now(),
  index_error       text,
  -- Lexical half of hybrid retrieval.
  content_tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT chat_messages_session_seq UNIQUE (session_id, seq),
  CONSTRAINT chat_messages_client_id UNIQUE (session_id, client_message_id)
);
-- The indexer's queue: only unindexed rows, in the order they become due.
CREATE INDEX chat_messages_index_queue ON chat_messages (index_after, id) WHERE indexed_at IS NULL;
CREATE INDEX chat_messages_tsv ON chat_messages USING gin (content_tsv);
CREATE INDEX chat_messages_streaming ON chat_messages (owner_node) WHERE status = 'streaming';
CREATE INDEX chat_messages_reply_to ON chat_messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

CREATE TABLE message_feedback (
  message_id bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  rating     smallint NOT NULL CHECK (rating IN (-1, 1)),
  comment    text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, user_id)
);

-- Which earlier messages an assistant reply used.
CREATE TABLE message_context (
  message_id         bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
  context_message_id bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
  score              double precision NOT NULL,
  rank               integer NOT NULL,
  source             text NOT NULL CHECK (source IN ('vector', 'lexical', 'hybrid', 'window')),
  PRIMARY KEY (message_id, context_message_id)
);
CREATE INDEX message_context_context ON message_context (context_message_id);

-- session_id NULL is the default row; a session may override it.
CREATE TABLE rag_configurations (
  id                   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id           uuid UNIQUE REFERENCES chat_sessions (id) ON DELETE CASCADE,
  system_prompt        text NOT NULL,
  model                text,
  temperature          real NOT NULL DEFAULT 0.7 CHECK (temperature BETWEEN 0 AND 2),
  max_tokens           integer NOT NULL DEFAULT 512 CHECK (max_tokens > 0),
  top_k                integer NOT NULL DEFAULT 8 CHECK (top_k BETWEEN 0 AND 100),
  similarity_threshold real NOT NULL DEFAULT 0.3,
  history_window       integer NOT NULL DEFAULT 12 CHECK (history_window >= 0),
  context_token_budget integer NOT NULL DEFAULT 2000 CHECK (context_token_budget > 0),
  cross_session        boolean NOT NULL DEFAULT true,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rag_configurations_default ON rag_configurations ((true)) WHERE session_id IS NULL;
INSERT INTO rag_configurations (session_id, system_prompt)
VALUES (NULL, 'You are a helpful assistant in a chat. Use the earlier messages you are given when they are relevant, and say so when you do not know.');

-- Which embedding model and dimension each vector collection holds.
CREATE TABLE embedding_versions (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model      text NOT NULL,
  dimensions integer NOT NULL CHECK (dimensions > 0),
  collection text NOT NULL UNIQUE,
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (model, dimensions)
);
