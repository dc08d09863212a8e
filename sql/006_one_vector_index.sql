-- message_vectors kept two secondary indexes: (collection, user_id,
-- session_id) for searches and (session_id) for deleting a session's points.
-- Every indexed message paid for both. One index with the session before the
-- tenant serves both: a search names its collection, tenant and sessions
-- (session_id = ANY, then user_id), a delete its collection and session.
CREATE INDEX message_vectors_collection_session ON message_vectors (collection, session_id, user_id);
DROP INDEX message_vectors_tenant;
DROP INDEX message_vectors_session;
