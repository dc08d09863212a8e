import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { hashPassword, verifyPassword } from "../../src/auth/passwords.js";
import { TokenService } from "../../src/auth/tokens.js";

describe("passwords", () => {
  it("verifies the right password and refuses others", async () => {
    const h = await hashPassword("hunter2hunter2", 1024);
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(await verifyPassword("hunter2hunter2", h)).toBe(true);
    expect(await verifyPassword("hunter2hunter3", h)).toBe(false);
    expect(await verifyPassword("hunter2hunter2", "garbage")).toBe(false);
  });

  it("salts: the same password hashes differently", async () => {
    expect(await hashPassword("same-password", 1024)).not.toBe(await hashPassword("same-password", 1024));
  });
});

describe("tokens", () => {
  const secret = "unit-test-secret-0123456789-0123456789";
  const tokens = new TokenService(secret, 3600);
  const user = { id: "6f1f5c9e-54a8-4c55-9a39-5a4a0a7b8d11", username: "alice" };

  it("round-trips a user", async () => {
    expect(await tokens.verify(await tokens.sign(user))).toEqual(user);
  });

  it("refuses missing, malformed, forged, expired and foreign-issuer tokens", async () => {
    const key = new TextEncoder().encode(secret);
    const expired = await new SignJWT({ name: "alice" }).setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer("memchat").setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(key);
    const foreign = await new SignJWT({ name: "alice" }).setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer("other").setExpirationTime("1h").sign(key);
    const forged = await new TokenService("another-secret-0123456789-0123456789", 3600).sign(user);
    const notUuid = await new SignJWT({ name: "alice" }).setProtectedHeader({ alg: "HS256" }).setSubject("1").setIssuer("memchat").setExpirationTime("1h").sign(key);
    for (const t of [undefined, null, 42, "", "a.b.c", expired, foreign, forged, notUuid, "x".repeat(5000)]) {
      expect(await tokens.verify(t)).toBeNull();
    }
  });
});
