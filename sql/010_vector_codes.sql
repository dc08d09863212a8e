-- Fast search for the PostgreSQL vector store (no pgvector in the embedded
-- server). Each vector gets a binary code, one sign bit per dimension; a node
-- keeps the codes of the users it searches in memory, ranks them by Hamming
-- distance and reranks the nearest few hundred exactly with the float vectors
-- read from here. This migration gives every stored vector its code and the
-- change feed that keeps those in-memory copies current across nodes:
-- `written_xid` (the writer's transaction, on every insert and update) and
-- `message_vector_deletions` (one row per deleted point, written by trigger,
-- so every delete path is covered).

-- Bit b of byte j is the sign bit of dimension 8j+b (float32 little-endian,
-- so the top bit of byte 4i+3). src/memory/vector-codes.ts computes the same
-- code in the server process; this one is for rows written without one.
CREATE FUNCTION message_vector_code(embedding bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(decode(string_agg(lpad(to_hex(s.byte), 2, '0'), '' ORDER BY s.j), 'hex'), '\x'::bytea)
    FROM (SELECT i / 8 AS j, sum((get_byte(embedding, 4 * i + 3) >> 7) << (i % 8))::int AS byte
            FROM generate_series(0, length(embedding) / 4 - 1) AS i
           GROUP BY i / 8) AS s
$$;

ALTER TABLE message_vectors ADD COLUMN code bytea, ADD COLUMN written_xid xid8;
-- One rewrite gives existing rows both.
UPDATE message_vectors SET code = message_vector_code(embedding), written_xid = pg_current_xact_id();
ALTER TABLE message_vectors
  ALTER COLUMN code SET NOT NULL,
  ALTER COLUMN written_xid SET DEFAULT pg_current_xact_id(),
  ALTER COLUMN written_xid SET NOT NULL;
-- A node catching up reads one user's rows written since its last look.
CREATE INDEX message_vectors_user_written ON message_vectors (collection, user_id, written_xid);

CREATE TABLE message_vector_deletions (
  collection  text NOT NULL,
  user_id     uuid NOT NULL,
  point_id    uuid NOT NULL,
  deleted_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_vector_deletions_user ON message_vector_deletions (collection, user_id, deleted_xid);
CREATE INDEX message_vector_deletions_age ON message_vector_deletions (deleted_at);

-- Old deletions are pruned; a node whose copy is older than the newest pruned
-- deletion can no longer catch up and reloads the user instead.
CREATE TABLE message_vector_deletions_pruned (
  single         boolean PRIMARY KEY DEFAULT true CHECK (single),
  pruned_through xid8 NOT NULL
);
INSERT INTO message_vector_deletions_pruned (pruned_through) VALUES ('0');

-- Any writer (an older release during a rolling upgrade, a manual fix) keeps
-- the feed right: the code follows the embedding, every write is stamped, and
-- a point moved to another user or collection counts as deleted for the old one.
CREATE FUNCTION message_vectors_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.code IS NULL
     OR (TG_OP = 'UPDATE' AND NEW.embedding IS DISTINCT FROM OLD.embedding AND NEW.code IS NOT DISTINCT FROM OLD.code) THEN
    NEW.code := message_vector_code(NEW.embedding);
  END IF;
  NEW.written_xid := pg_current_xact_id();
  IF TG_OP = 'UPDATE' AND (NEW.user_id <> OLD.user_id OR NEW.collection <> OLD.collection) THEN
    INSERT INTO message_vector_deletions (collection, user_id, point_id) VALUES (OLD.collection, OLD.user_id, OLD.point_id);
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER message_vectors_before_write BEFORE INSERT OR UPDATE ON message_vectors
  FOR EACH ROW EXECUTE FUNCTION message_vectors_before_write();

CREATE FUNCTION message_vectors_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_vector_deletions (collection, user_id, point_id) SELECT collection, user_id, point_id FROM gone;
  RETURN NULL;
END
$$;
CREATE TRIGGER message_vectors_after_delete AFTER DELETE ON message_vectors
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION message_vectors_after_delete();
