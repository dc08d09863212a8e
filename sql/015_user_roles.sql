-- Roles (issue 15): a user is a member or an admin. Admins see the
-- analytics, set quotas and manage assistant configurations.
--
-- Who is admin:
-- * the first registered user: PgUserStore.create decides it under an
--   advisory lock taken while the table is empty, so two registrations racing
--   on a fresh database make one admin, not two;
-- * anyone named in ADMIN_USERNAMES: granted at registration and, for
--   accounts that already exist, at every node's start. The list only
--   grants: removing a name does not demote the account.
-- On an existing database the oldest account becomes admin here, as if it
-- had registered under this rule.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin'));
UPDATE users SET role = 'admin'
 WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);
