/**
 * Roles in the user store (sql/015_user_roles.sql): registrations racing on
 * an empty database make exactly one admin, ADMIN_USERNAMES promotes existing
 * accounts, and concurrent demotions never leave the database without an
 * admin.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgUserStore } from "../../src/db/pg-user-store.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";

let db: TestDatabase;
let users: PgUserStore;
const name = (p: string) => `${p}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  db = await createTestDatabase(12);
  users = new PgUserStore(db.pool);
});
afterAll(async () => db?.drop());

const admins = async () => (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE role = 'admin'")).rows[0]!.n;

describe("user roles", () => {
  it("of eight registrations racing on an empty database, exactly one is admin; later ones are members", async () => {
    expect((await db.pool.query("SELECT count(*)::int AS n FROM users")).rows[0].n).toBe(0);
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => users.create(name(`first${i}`), "x")));
    expect(created.filter((u) => u?.role === "admin")).toHaveLength(1);
    expect(await admins()).toBe(1);
    expect((await users.create(name("later"), "x"))?.role).toBe("member");
    expect((await users.create(name("listed"), "x", true))?.role).toBe("admin");
    const state = await users.accountState(created.find((u) => u?.role === "admin")!.id);
    expect(state).toEqual({ tokenVersion: 0, disabled: false, role: "admin" });
  });

  it("grantAdmin promotes the named accounts case-insensitively and only them", async () => {
    const a = (await users.create(name("Boss"), "x"))!;
    const b = (await users.create(name("bystander"), "x"))!;
    expect(await users.grantAdmin([a.username.toUpperCase(), "nobody-by-this-name"])).toBe(1);
    expect((await users.accountState(a.id))?.role).toBe("admin");
    expect((await users.accountState(b.id))?.role).toBe("member");
    expect(await users.grantAdmin([a.username])).toBe(0);
    expect(await users.grantAdmin([])).toBe(0);
  });

  it("setRole refuses to demote the last admin, also when two admins demote each other at once", async () => {
    await db.pool.query("UPDATE users SET role = 'member'");
    const x = (await users.create(name("x"), "x", true))!;
    const y = (await users.create(name("y"), "x", true))!;
    const results = await Promise.all([users.setRole(x.id, "member"), users.setRole(y.id, "member")]);
    expect(results.filter((r) => r === "last-admin")).toHaveLength(1);
    expect(await admins()).toBe(1);
    expect(await users.setRole(randomUUID(), "admin")).toBe("missing");
    const back = await users.setRole(x.id, "admin");
    expect(back).toMatchObject({ id: x.id, role: "admin" });
  });
});
