-- The lexical search's index reads only the rows it may return (issue 17).
--
-- A term the recent window finds rare is read from the full-text index
-- (src/db/memory-queries.ts, the `gin` step): every match in the user's
-- scope, up to the term cap. On chat_messages_tsv (content_tsv alone) that
-- meant every user's matches: each was fetched from the heap and then
-- dropped for its author, so the cost of a search grew with the number of
-- users on the server, not with the user's own history. With 20 users of
-- 2,000 messages, a word in a sixth of the messages read 5,867 heap rows
-- per term to keep about 300.
--
-- This index keys each message by its scope keys beside its lexemes: its
-- author ('u' || user_id) and its session ('s' || session_id). The search
-- asks for rows whose keys overlap {its user, its home session} and that
-- hold the word, which is the memory scoping rule (the user's own rows
-- anywhere, a reply carrying its asker's user_id; any author's rows in the
-- session asked in); GIN intersects the two posting lists. Only a GIN index
-- can answer an array overlap, so no generic plan can swap in the btree on
-- (user_id, created_at) and walk a user's whole history instead (a
-- btree_gin index on (user_id, content_tsv) was tried: the generic plan
-- took that btree). The expression must stay exactly as scopeKeys writes
-- it in memory-queries.ts. Nothing else searches chat_messages.content_tsv.
--
-- Built inside this migration's transaction, which blocks writes to
-- chat_messages while it builds: about 5 s per million messages on a
-- two-core machine (README, "Operations").
CREATE INDEX chat_messages_scope_tsv ON chat_messages
  USING gin ((ARRAY['u' || user_id::text, 's' || session_id::text]), content_tsv);
DROP INDEX chat_messages_tsv;
