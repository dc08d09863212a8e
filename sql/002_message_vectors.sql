-- Vectors for the embedded profile's exact-search VectorStore (no pgvector
-- here). One row per point; `collection` keeps embedding versions apart
-- like Qdrant collections do. Float32 little-endian in `embedding`.
CREATE TABLE message_vectors (
  collection text NOT NULL,
  point_id   uuid NOT NULL,
  message_id bigint NOT NULL,
  session_id uuid NOT NULL,
  user_id    uuid NOT NULL,
  role       text NOT NULL,
  content    text NOT NULL,
  ts         timestamptz NOT NULL,
  embedding  bytea NOT NULL,
  PRIMARY KEY (collection, point_id)
);
-- Every search is filtered by tenant and sessions.
CREATE INDEX message_vectors_tenant ON message_vectors (collection, user_id, session_id);
CREATE INDEX message_vectors_session ON message_vectors (session_id);
