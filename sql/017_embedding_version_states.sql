-- Re-embedding on a model change (README, Operations, "Changing the embedding
-- model"). An embedding version is now in one of four states:
--   active    searched, and written by the indexing queue (exactly one);
--   building  being filled by the backfill and by dual writes (at most one);
--   previous  an earlier active version, kept (vectors intact, no new writes);
--   retired   beyond the kept versions: its vectors and collection are
--             deleted (dropped_at says when that finished).
-- The backfill walks chat_messages by id up to backfill_target, recording its
-- cursor here after every batch, so a restart resumes where it stopped.
-- Messages queued after the building version was registered reach it through
-- message_version_jobs (the dual write), filled by a trigger on the indexing
-- queue, so no insert path has to know about versions.
--
-- `active` (boolean) is no longer read: `state` replaces it. It stays so that
-- older writers keep working during a rolling upgrade.

ALTER TABLE embedding_versions
  ADD COLUMN state text NOT NULL DEFAULT 'previous' CHECK (state IN ('active', 'building', 'previous', 'retired')),
  -- How to load the version's embedder on a node not configured for it: {kind, modelId, modelPath, dtype, apiModel}.
  ADD COLUMN spec jsonb,
  ADD COLUMN backfill_cursor bigint NOT NULL DEFAULT 0,
  ADD COLUMN backfill_target bigint NOT NULL DEFAULT 0,
  ADD COLUMN backfill_done bigint NOT NULL DEFAULT 0,
  -- Messages to embed (ids up to the target, not streaming); counted by the first backfill run.
  ADD COLUMN backfill_total bigint,
  ADD COLUMN completed_at timestamptz,
  ADD COLUMN activated_at timestamptz,
  ADD COLUMN retired_at timestamptz,
  ADD COLUMN dropped_at timestamptz;

-- Existing versions: the newest one registered as active is the one in use
-- (a server registers its model at start). When there are others, that one was
-- started empty by a model change, and the messages indexed before it are not
-- in it: it gets a backfill (its target is set, completed_at stays NULL).
WITH current AS (
  SELECT id FROM embedding_versions WHERE active ORDER BY id DESC LIMIT 1
)
UPDATE embedding_versions v
   SET state = CASE WHEN v.id = (SELECT id FROM current) THEN 'active' ELSE 'previous' END,
       activated_at = v.created_at;
UPDATE embedding_versions
   SET backfill_target = coalesce((SELECT max(id) FROM chat_messages), 0),
       completed_at = CASE WHEN (SELECT count(*) FROM embedding_versions) > 1 THEN NULL ELSE now() END,
       backfill_cursor = 0
 WHERE state = 'active';
UPDATE embedding_versions SET completed_at = created_at WHERE state = 'previous';

CREATE UNIQUE INDEX embedding_versions_one_active ON embedding_versions ((true)) WHERE state = 'active';
CREATE UNIQUE INDEX embedding_versions_one_building ON embedding_versions ((true)) WHERE state = 'building';

-- The dual write: one job per (message, building version). Same shape and
-- lease semantics as message_index_jobs (sql/004).
CREATE TABLE message_version_jobs (
  message_id bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
  version_id integer NOT NULL REFERENCES embedding_versions (id) ON DELETE CASCADE,
  run_at     timestamptz NOT NULL DEFAULT now(),
  attempts   integer NOT NULL DEFAULT 0,
  last_error text,
  PRIMARY KEY (message_id, version_id)
);
CREATE INDEX message_version_jobs_due ON message_version_jobs (version_id, run_at, message_id);

-- Every message queued for the active version is queued for the building one
-- too. Registering a building version takes a SHARE lock on
-- message_index_jobs (src/db/embedding-versions.ts), so a queueing
-- transaction either finished before (its message is within the backfill's
-- target) or runs this after the version is visible.
CREATE FUNCTION message_index_jobs_dual_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM embedding_versions WHERE state = 'building') THEN
    INSERT INTO message_version_jobs (message_id, version_id)
    SELECT n.message_id, v.id FROM new_jobs n CROSS JOIN embedding_versions v WHERE v.state = 'building'
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER message_index_jobs_dual_write AFTER INSERT ON message_index_jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION message_index_jobs_dual_write();

-- A job queued again (a reply that ended again while its job waited: ON
-- CONFLICT DO UPDATE in src/db/pg-assistant-store.ts) is queued again for the
-- building version too. Claims (attempts + 1) and recorded failures
-- (last_error) are not re-queueing and are left out.
CREATE FUNCTION message_index_jobs_dual_requeue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM embedding_versions WHERE state = 'building') THEN
    INSERT INTO message_version_jobs (message_id, version_id)
    SELECT n.message_id, v.id
      FROM new_jobs n JOIN old_jobs o ON o.message_id = n.message_id
     CROSS JOIN embedding_versions v
     WHERE v.state = 'building' AND n.attempts = o.attempts AND n.last_error IS NOT DISTINCT FROM o.last_error
    ON CONFLICT (message_id, version_id) DO UPDATE SET run_at = now();
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER message_index_jobs_dual_requeue AFTER UPDATE ON message_index_jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION message_index_jobs_dual_requeue();

-- Dropping a retired version's vectors logs no deletions: no node caches the
-- codes of a version it does not search, and millions of log rows would only
-- be pruned again.
CREATE OR REPLACE FUNCTION message_vectors_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_vector_deletions (collection, user_id, point_id)
  SELECT g.collection, g.user_id, g.point_id FROM gone g
   WHERE NOT EXISTS (SELECT 1 FROM embedding_versions v WHERE v.collection = g.collection AND v.state = 'retired');
  RETURN NULL;
END
$$;
