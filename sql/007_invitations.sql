-- Membership by consent: an owner's invitation waits here until the invitee
-- accepts it (it then becomes a chat_session_members row) or declines it.
-- Invariant: a user is never both a member of a session and invited to it;
-- accepting deletes the invitation and inserts the member in one statement.
-- Memberships that the old invite (which added members directly) created stay
-- as they are: those members can now leave.
CREATE TABLE chat_session_invitations (
  session_id uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
  invitee_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  inviter_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, invitee_id)
);
-- "my pending invitations", newest first, keyset-paged.
CREATE INDEX chat_session_invitations_invitee ON chat_session_invitations (invitee_id, created_at DESC, session_id);
