-- Account state that every authenticated request checks (src/auth/auth-service.ts).
--
-- token_version is carried in each token as `tv`; a token whose tv differs
-- from the user's current one is refused. Raising it ("log out everywhere",
-- account deletion) revokes every token issued before, long before their
-- expiry. Tokens issued before this migration carry no tv and count as 0.
--
-- disabled_at set: the account may not log in or use any token.
--
-- deletion_requested_at set: the user asked for the account to be deleted.
-- Deletion disables the account first, then deletes what it owns in small
-- batches; if it is interrupted (a crash, the vector store down), the next
-- start of any node finishes it.
ALTER TABLE users
  ADD COLUMN token_version integer NOT NULL DEFAULT 0,
  ADD COLUMN disabled_at timestamptz,
  ADD COLUMN deletion_requested_at timestamptz;
CREATE INDEX users_deletion_requested ON users (deletion_requested_at) WHERE deletion_requested_at IS NOT NULL;
