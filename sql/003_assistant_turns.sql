-- A user has at most one reply streaming per session.
CREATE UNIQUE INDEX chat_messages_one_streaming_turn ON chat_messages (session_id, user_id)
  WHERE status = 'streaming' AND role = 'assistant';

-- Live server nodes. A streaming reply whose owner_node stopped beating is
-- an orphan: the sweeper marks it interrupted.
CREATE TABLE chat_nodes (
  node_id      text PRIMARY KEY,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
