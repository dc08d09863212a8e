-- Daily analytics per configuration, and per-user token usage and quotas
-- (issue 15 items 2 and 3).

-- Which rag_configurations row an assistant reply was produced with. Set
-- when the reply ends (and with its checkpoints, so a reply a dead node
-- left interrupted usually keeps it). No foreign key: a configuration may
-- be retired or removed, its replies keep counting for it.
ALTER TABLE chat_messages ADD COLUMN config_id integer;
-- The roll-up reads one day at a time. created_at never changes, so this
-- index does not stop the streaming row's updates from being HOT.
CREATE INDEX chat_messages_created ON chat_messages (created_at);
-- Feedback given since the last roll-up marks its reply's day for recomputation.
CREATE INDEX message_feedback_updated ON message_feedback (updated_at);

-- One row per UTC day and configuration, recomputed whole from the message
-- rows (never incremented), so a re-run gives the same row. config_id 0:
-- messages no configuration answered (assistant off, quota refusals) and
-- replies from before config_id existed.
CREATE TABLE analytics_daily (
  day                  date NOT NULL,
  config_id            integer NOT NULL,
  sessions_active      integer NOT NULL,
  user_messages        integer NOT NULL,
  assistant_messages   integer NOT NULL,
  system_messages      integer NOT NULL,
  -- Assistant replies that ended (any final status), and how.
  assistant_turns      integer NOT NULL,
  turns_failed         integer NOT NULL,
  turns_cancelled      integer NOT NULL,
  turns_interrupted    integer NOT NULL,
  prompt_tokens        bigint NOT NULL,
  completion_tokens    bigint NOT NULL,
  -- Percentiles over the day's turns (percentile_cont), null without any.
  ttft_p50_ms          double precision,
  ttft_p95_ms          double precision,
  latency_p50_ms       double precision,
  latency_p95_ms       double precision,
  feedback_positive    integer NOT NULL,
  feedback_negative    integer NOT NULL,
  feedback_neutral     integer NOT NULL,
  -- positive / (positive + negative); null without either.
  satisfaction         double precision,
  -- Ended turns whose prompt carried at least one retrieved message, and the mean count.
  turns_with_memory    integer NOT NULL,
  mean_context_items   double precision,
  PRIMARY KEY (day, config_id)
);

-- The roll-up's watermark: the clock time its last successful run started.
CREATE TABLE analytics_rollup_state (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_run_start timestamptz NOT NULL
);

-- Tokens each user spent per UTC day, counted as turns end. reserved_tokens
-- holds the estimates of turns still running: a turn starts only while
-- used + reserved < cap, checked and reserved in one upsert under the row's
-- lock, so concurrent turns on several nodes cannot all pass at the edge.
CREATE TABLE usage_daily (
  user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  day               date NOT NULL,
  prompt_tokens     bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  turns             integer NOT NULL DEFAULT 0,
  reserved_tokens   bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
  PRIMARY KEY (user_id, day)
);
CREATE INDEX usage_daily_day ON usage_daily (day);

-- An admin's per-user cap, over QUOTA_DAILY_TOKENS.
CREATE TABLE user_quotas (
  user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  daily_tokens bigint NOT NULL CHECK (daily_tokens >= 0),
  set_by       uuid REFERENCES users (id) ON DELETE SET NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
