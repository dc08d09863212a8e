/**
 * Who belongs to a session, by consent: invitations, accepting and declining
 * them, leaving, removal and deletion. Each operation is one statement, so
 * the permission check and the change see the same snapshot. Removal and
 * deletion return what the realtime layer must undo on every node: whose
 * sockets leave the room, which streaming replies to cancel.
 */
import type pg from "pg";
import type { Invitation, InviteResult, MembershipStore, RemoveResult, DeleteResult, AcceptResult } from "../chat/ports.js";
import { SESSION_COLUMNS, type SessionRow, toSession, VISIBLE_SESSION } from "./rows.js";

// Inviting someone who is already a member changes nothing and says so;
// inviting again refreshes nothing (the first invitation's time stands).
const INVITE = `
WITH owned AS (
  SELECT s.id, s.title FROM chat_sessions s WHERE s.id = $1 AND s.owner_id = $2
), visible AS (
  SELECT 1 FROM chat_session_members WHERE session_id = $1 AND user_id = $2
), invitee AS (
  SELECT id, username FROM users WHERE lower(username) = lower($3)
), member AS (
  SELECT 1 FROM chat_session_members m, invitee WHERE m.session_id = $1 AND m.user_id = invitee.id
), ins AS (
  INSERT INTO chat_session_invitations (session_id, invitee_id, inviter_id)
  SELECT owned.id, invitee.id, $2 FROM owned, invitee WHERE NOT EXISTS (SELECT 1 FROM member)
  ON CONFLICT (session_id, invitee_id) DO UPDATE SET inviter_id = EXCLUDED.inviter_id
  RETURNING created_at
)
SELECT EXISTS (SELECT 1 FROM visible) AS visible, EXISTS (SELECT 1 FROM owned) AS owned,
       EXISTS (SELECT 1 FROM member) AS is_member,
       (SELECT id FROM invitee) AS user_id, (SELECT username FROM invitee) AS username,
       (SELECT title FROM owned) AS title, (SELECT username FROM users WHERE id = $2) AS inviter_name,
       (SELECT created_at FROM ins) AS created_at`;

const INVITATIONS = `
SELECT i.session_id, s.title, i.inviter_id, inv.username AS inviter_name, i.invitee_id, me.username AS invitee_name, i.created_at
  FROM chat_session_invitations i
  JOIN chat_sessions s ON s.id = i.session_id
  JOIN users inv ON inv.id = i.inviter_id
  JOIN users me ON me.id = i.invitee_id
 WHERE i.invitee_id = $1
 ORDER BY i.created_at DESC, i.session_id
 LIMIT $2`;

// The invitation is consumed and the membership created in one statement.
const ACCEPT = `
WITH inv AS (
  DELETE FROM chat_session_invitations WHERE session_id = $1 AND invitee_id = $2 RETURNING session_id
), ins AS (
  INSERT INTO chat_session_members (session_id, user_id, role)
  SELECT session_id, $2, 'member' FROM inv
  ON CONFLICT (session_id, user_id) DO NOTHING
)
SELECT ${SESSION_COLUMNS}, 'member' AS member_role, u.username
  FROM inv JOIN chat_sessions s ON s.id = inv.session_id, users u WHERE u.id = $2`;

const DECLINE = `DELETE FROM chat_session_invitations WHERE session_id = $1 AND invitee_id = $2`;

/*
 * $2 acts on $3. Anyone may remove themselves (leave), except the owner;
 * the owner may remove any other member, or withdraw a pending invitation.
 * The removed user's replies still streaming in the session are returned so
 * they can be cancelled.
 */
const REMOVE = `
WITH ${VISIBLE_SESSION}, allowed AS (
  SELECT id FROM visible WHERE ($3 = $2 AND owner_id <> $2) OR (owner_id = $2 AND $3 <> $2)
), del AS (
  DELETE FROM chat_session_members WHERE session_id IN (SELECT id FROM allowed) AND user_id = $3 RETURNING user_id
), revoked AS (
  DELETE FROM chat_session_invitations WHERE session_id IN (SELECT id FROM allowed) AND invitee_id = $3 RETURNING invitee_id
)
SELECT (SELECT count(*) FROM visible)::int AS visible,
       (SELECT count(*) FROM visible WHERE owner_id = $2)::int AS owned,
       (SELECT count(*) FROM visible WHERE owner_id = $3)::int AS target_is_owner,
       (SELECT count(*) FROM del)::int AS removed,
       (SELECT count(*) FROM revoked)::int AS revoked,
       (SELECT username FROM users WHERE id = $3) AS username,
       ARRAY(SELECT id FROM chat_messages
              WHERE session_id = $1 AND user_id = $3 AND status = 'streaming' AND role = 'assistant'
                AND EXISTS (SELECT 1 FROM del)) AS streaming`;

// Members and streaming replies are read in the statement that deletes them (before the cascade).
const DELETE_SESSION = `
WITH ${VISIBLE_SESSION}, target AS (
  SELECT id FROM visible WHERE owner_id = $2
), gone AS (
  SELECT ARRAY(SELECT user_id FROM chat_session_members WHERE session_id IN (SELECT id FROM target)) AS members,
         ARRAY(SELECT id FROM chat_messages WHERE session_id IN (SELECT id FROM target) AND status = 'streaming') AS streaming
), del AS (
  DELETE FROM chat_sessions WHERE id IN (SELECT id FROM target) RETURNING id
)
SELECT (SELECT count(*) FROM visible)::int AS visible, (SELECT count(*) FROM del)::int AS deleted, gone.members, gone.streaming FROM gone`;

interface InvitationRow {
  session_id: string;
  title: string;
  inviter_id: string;
  inviter_name: string;
  invitee_id: string;
  invitee_name: string;
  created_at: Date;
}

const toInvitation = (r: InvitationRow): Invitation => ({
  sessionId: r.session_id,
  sessionTitle: r.title,
  inviter: { userId: r.inviter_id, username: r.inviter_name },
  invitee: { userId: r.invitee_id, username: r.invitee_name },
  createdAt: r.created_at.toISOString(),
});

export class PgMembershipStore implements MembershipStore {
  constructor(private readonly pool: pg.Pool) {}

  async invite(sessionId: string, ownerId: string, username: string): Promise<InviteResult> {
    const { rows } = await this.pool.query<{
      visible: boolean;
      owned: boolean;
      is_member: boolean;
      user_id: string | null;
      username: string | null;
      title: string | null;
      inviter_name: string;
      created_at: Date | null;
    }>(INVITE, [sessionId, ownerId, username]);
    const r = rows[0]!;
    if (!r.visible) return { kind: "not_found" };
    if (!r.owned) return { kind: "forbidden" };
    if (!r.user_id || !r.username) return { kind: "no_user" };
    if (r.is_member) return { kind: "member", member: { userId: r.user_id, username: r.username } };
    return {
      kind: "invited",
      invitation: toInvitation({
        session_id: sessionId,
        title: r.title ?? "",
        inviter_id: ownerId,
        inviter_name: r.inviter_name,
        invitee_id: r.user_id,
        invitee_name: r.username,
        created_at: r.created_at!,
      }),
    };
  }

  async invitations(userId: string, limit: number): Promise<Invitation[]> {
    const { rows } = await this.pool.query<InvitationRow>({ name: "pending_invitations", text: INVITATIONS, values: [userId, limit] });
    return rows.map(toInvitation);
  }

  async accept(sessionId: string, userId: string): Promise<AcceptResult> {
    const { rows } = await this.pool.query<SessionRow & { username: string }>(ACCEPT, [sessionId, userId]);
    const r = rows[0];
    if (!r) return { kind: "not_found" };
    return { kind: "accepted", session: toSession(r), member: { userId, username: r.username } };
  }

  async decline(sessionId: string, userId: string): Promise<boolean> {
    const r = await this.pool.query(DECLINE, [sessionId, userId]);
    return (r.rowCount ?? 0) > 0;
  }

  async removeMember(sessionId: string, actorId: string, memberId: string): Promise<RemoveResult> {
    const { rows } = await this.pool.query<{
      visible: number;
      owned: number;
      target_is_owner: number;
      removed: number;
      revoked: number;
      username: string | null;
      streaming: string[];
    }>(REMOVE, [sessionId, actorId, memberId]);
    const r = rows[0]!;
    if (r.visible === 0) return { kind: "not_found" };
    if (r.removed > 0) return { kind: "removed", member: { userId: memberId, username: r.username ?? "" }, streamingReplyIds: r.streaming.map(Number) };
    if (r.revoked > 0) return { kind: "revoked" };
    if (r.target_is_owner > 0 && memberId === actorId) return { kind: "owner" };
    if (r.owned === 0 && memberId !== actorId) return { kind: "forbidden" };
    return { kind: "not_found" };
  }

  async deleteSession(sessionId: string, userId: string): Promise<DeleteResult> {
    const { rows } = await this.pool.query<{ visible: number; deleted: number; members: string[]; streaming: string[] }>(DELETE_SESSION, [
      sessionId,
      userId,
    ]);
    const r = rows[0]!;
    if (r.deleted > 0) return { kind: "deleted", memberIds: r.members, streamingReplyIds: r.streaming.map(Number) };
    return { kind: r.visible > 0 ? "forbidden" : "not_found" };
  }
}
