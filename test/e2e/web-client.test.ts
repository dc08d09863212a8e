/**
 * The web client in a real headless Chromium against the real server process
 * (private PostgreSQL database), as a user would use it: sign up, sessions,
 * messages, history, a server restart, two users side by side, a phone.
 */
import { readFile } from "node:fs/promises";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { composer, createSessionInUi, eventually, pageWidth, logIn, screenshot, sendInUi, shownMessages, signUp, storedToken, transformOf } from "../support/browser.js";
import { api, connect, ok, register, uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

const PAGE_SIZE = 20;
const web = useWebFixture({
  name: "web-e2e",
  // Fixed, so the page can reconnect to the restarted server at the same address.
  fixedPort: true,
  env: {
    HISTORY_PAGE_SIZE: String(PAGE_SIZE),
    SHUTDOWN_TIMEOUT_MS: "2000",
    // The history test seeds pages of messages faster than a person types.
    RATE_MESSAGE_BURST: "1000",
    // The session list test seeds more sessions than a burst of session changes allows.
    RATE_SESSION_BURST: "1000",
  },
});

/** The core tests check messages, not replies: the assistant stays quiet. */
async function assistantOff(page: Page): Promise<void> {
  await page.getByLabel("Assistant replies").uncheck();
}

async function openSessionId(page: Page): Promise<string> {
  const id = await page.locator('[data-testid="session"].active').getAttribute("data-session-id");
  if (!id) throw new Error("no open session");
  return id;
}

async function storedMessages(token: string, sessionId: string) {
  const r = await api(web.server.url, `/api/sessions/${sessionId}/messages?limit=200`, { token });
  expect(r.status).toBe(200);
  return r.body.messages as { seq: number; content: string; role: string }[];
}

describe("web client", () => {
  it("is served at / with its assets, and refuses paths outside them", async () => {
    const index = await fetch(`${web.server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const html = await index.text();
    const asset = /\/assets\/[\w.-]+\.js/.exec(html)?.[0];
    expect(asset).toBeDefined();
    const js = await fetch(`${web.server.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toContain("immutable");
    const again = await fetch(`${web.server.url}/`, { headers: { "if-none-match": index.headers.get("etag")! } });
    expect(again.status).toBe(304);
    for (const p of ["/assets/..%2F..%2Fpackage.json", "/assets/..%2Findex.html", "/assets/.env", "/assets/missing-abc.js", "/assets/%2Fetc%2Fpasswd"]) {
      const r = await fetch(`${web.server.url}${p}`);
      expect(r.status, p).toBe(404);
      expect(await r.text()).not.toContain('"name": "memchat"');
    }
  });

  it("signs up, creates a session, sends with Enter (Shift+Enter for a new line), and shows it all again after a reload", async () => {
    const page = await web.newPage();
    await page.goto(web.server.url);
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    await screenshot(page, "login");

    const name = uniqueName("web");
    await signUp(page, web.server.url, name);
    await createSessionInUi(page, "Groceries");
    await assistantOff(page);
    await sendInUi(page, "Buy oat milk");
    await composer(page).fill("line one");
    await composer(page).press("Shift+Enter");
    await composer(page).pressSequentially("line two");
    await composer(page).press("Enter");
    await eventually(async () => {
      expect((await shownMessages(page)).map((m) => [m.text, m.status])).toEqual([
        ["Buy oat milk", "complete"],
        ["line one\nline two", "complete"],
      ]);
    });
    expect(await composer(page).inputValue()).toBe("");
    expect(await page.getByTestId("pending-message").count()).toBe(0);

    const token = await storedToken(page);
    const sessionId = await openSessionId(page);
    expect((await storedMessages(token, sessionId)).map((m) => m.content)).toEqual(["Buy oat milk", "line one\nline two"]);

    await page.reload();
    await page.getByRole("heading", { name: "Groceries", level: 2 }).waitFor();
    await eventually(async () => {
      expect((await shownMessages(page)).map((m) => m.text)).toEqual(["Buy oat milk", "line one\nline two"]);
    });
    expect(await page.getByTestId("connection").getAttribute("data-state")).toBe("online");
  });

  it("refuses a wrong password and a taken username with a visible message", async () => {
    const page = await web.newPage();
    const name = uniqueName("web");
    await register(web.server.url, name);
    await page.goto(web.server.url);
    await page.getByLabel("Username").fill(name);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong username or password." }).waitFor();
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Password").fill("another password");
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByRole("alert").filter({ hasText: "That username is taken" }).waitFor();
  });

  it("loads older messages as the user scrolls up, in order and each once", async () => {
    const u = await register(web.server.url, uniqueName("hist"));
    const s = await connect(web.server.url, u.token);
    const { session } = await ok(s, "session:create", { title: "Long history" });
    const total = 3 * PAGE_SIZE + 5;
    for (let i = 1; i <= total; i++) {
      await ok(s, "message:send", { sessionId: session.id, clientMessageId: `h${i}`, content: `history line ${i}`, assistant: false });
    }
    s.close();

    const page = await web.newPage({ width: 1024, height: 700 });
    await logIn(page, web.server.url, u.user.username);
    await page.getByRole("heading", { name: "Long history", level: 2 }).waitFor();
    await eventually(async () => {
      const shown = await shownMessages(page);
      expect(shown.map((m) => m.seq)).toEqual(Array.from({ length: PAGE_SIZE }, (_, i) => total - PAGE_SIZE + 1 + i));
    });
    const scroller = page.locator(".scroller");
    // At the bottom first: the newest message is what one sees.
    expect(await scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(5);

    let previous = PAGE_SIZE;
    await eventually(
      async () => {
        await scroller.evaluate((el) => (el.scrollTop = 0));
        const count = (await shownMessages(page)).length;
        if (count > previous) {
          // The page grew above the reader, who must stay where they were, not jump to the top.
          previous = count;
          if (count < total) expect(await scroller.evaluate((el) => el.scrollTop)).toBeGreaterThan(0);
        }
        expect(count).toBe(total);
      },
      15_000,
      150,
    );
    const shown = await shownMessages(page);
    expect(shown.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(shown.map((m) => m.text)).toEqual(Array.from({ length: total }, (_, i) => `history line ${i + 1}`));
    await page.getByText("This is the beginning of the conversation.").waitFor();
  });

  it("shows the connection dropping, sends what was typed meanwhile once, and continues the session after a server restart", { timeout: 120_000 }, async () => {
    const page = await web.newPage();
    const name = uniqueName("web");
    await signUp(page, web.server.url, name);
    await createSessionInUi(page, "Survives restarts");
    await assistantOff(page);
    await sendInUi(page, "before the restart");
    await eventually(async () => expect((await shownMessages(page)).map((m) => m.text)).toEqual(["before the restart"]));
    const token = await storedToken(page);
    const sessionId = await openSessionId(page);
    const conn = page.getByTestId("connection");

    expect(await web.server.stop("SIGTERM")).toBe(0);
    await eventually(async () => expect(await conn.getAttribute("data-state")).not.toBe("online"));
    expect(await conn.textContent()).toMatch(/Reconnecting|Offline/);

    await sendInUi(page, "typed while the server was down");
    await page.getByTestId("pending-message").filter({ hasText: "typed while the server was down" }).waitFor();
    expect(await page.getByTestId("pending-message").textContent()).toContain("Waiting for connection");

    await web.start();
    await eventually(async () => expect(await conn.getAttribute("data-state")).toBe("online"), 20_000);
    await eventually(async () => {
      expect((await shownMessages(page)).map((m) => m.text)).toEqual(["before the restart", "typed while the server was down"]);
      expect(await page.getByTestId("pending-message").count()).toBe(0);
    });
    expect((await storedMessages(token, sessionId)).map((m) => m.content)).toEqual(["before the restart", "typed while the server was down"]);

    // Back in the room: what another device of the same user sends arrives live.
    const other = await connect(web.server.url, token);
    await ok(other, "message:send", { sessionId, clientMessageId: "from-elsewhere", content: "sent from another device", assistant: false });
    other.close();
    await eventually(async () => {
      const shown = await shownMessages(page);
      expect(shown.map((m) => m.text)).toEqual(["before the restart", "typed while the server was down", "sent from another device"]);
      expect(shown.map((m) => m.seq)).toEqual([1, 2, 3]);
    });
    await sendInUi(page, "and after it");
    await eventually(async () => expect((await storedMessages(token, sessionId)).map((m) => m.seq)).toEqual([1, 2, 3, 4]));
  });

  it("gets what it missed while the network was down, each message once", async () => {
    const page = await web.newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Flaky network");
    await assistantOff(page);
    await sendInUi(page, "one");
    await eventually(async () => expect((await shownMessages(page)).map((m) => m.status)).toEqual(["complete"]));
    const token = await storedToken(page);
    const sessionId = await openSessionId(page);
    const conn = page.getByTestId("connection");

    await page.context().setOffline(true);
    await eventually(async () => expect(await conn.getAttribute("data-state")).not.toBe("online"));
    await sendInUi(page, "three, typed offline");
    // Meanwhile another device of the same user writes into the session.
    const other = await connect(web.server.url, token);
    await ok(other, "message:send", { sessionId, clientMessageId: "missed", content: "two, sent while this page was offline", assistant: false });
    other.close();
    await page.getByTestId("pending-message").filter({ hasText: "Waiting for connection" }).waitFor();

    await page.context().setOffline(false);
    await eventually(async () => expect(await conn.getAttribute("data-state")).toBe("online"));
    await eventually(async () => {
      const shown = await shownMessages(page);
      expect(shown.map((m) => [m.seq, m.text])).toEqual([
        [1, "one"],
        [2, "two, sent while this page was offline"],
        [3, "three, typed offline"],
      ]);
      expect(await page.getByTestId("pending-message").count()).toBe(0);
    });
    expect((await storedMessages(token, sessionId)).map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("keeps a message typed offline when the tab is closed, and sends it once when the app is opened again", async () => {
    const page = await web.newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Closed while offline");
    await assistantOff(page);
    const token = await storedToken(page);
    const sessionId = await openSessionId(page);
    const context = page.context();

    await context.setOffline(true);
    await eventually(async () => expect(await page.getByTestId("connection").getAttribute("data-state")).not.toBe("online"));
    await sendInUi(page, "typed, then the tab closed");
    await page.getByTestId("pending-message").filter({ hasText: "Waiting for connection" }).waitFor();
    await page.close();
    expect(await storedMessages(token, sessionId)).toEqual([]);

    await context.setOffline(false);
    const again = await context.newPage();
    web.watch(again);
    await again.goto(web.server.url);
    await eventually(async () => {
      expect((await shownMessages(again)).map((m) => [m.text, m.status])).toEqual([["typed, then the tab closed", "complete"]]);
      expect(await again.getByTestId("pending-message").count()).toBe(0);
    });
    expect((await storedMessages(token, sessionId)).map((m) => m.content)).toEqual(["typed, then the tab closed"]);
  });

  it("never shows one user's sessions or memories to another", async () => {
    const alice = await web.newPage();
    const bob = await web.newPage();
    const aliceName = uniqueName("alice");
    const bobName = uniqueName("bob");
    await signUp(alice, web.server.url, aliceName);
    await signUp(bob, web.server.url, bobName);

    await createSessionInUi(alice, "Alice private plans");
    await assistantOff(alice);
    await sendInUi(alice, "The vault code is zanzibar42");
    await eventually(async () => expect((await shownMessages(alice)).map((m) => m.status)).toEqual(["complete"]));
    await createSessionInUi(bob, "Bob notes");

    for (const page of [alice, bob]) await page.reload();
    await alice.getByRole("heading", { name: "Alice private plans", level: 2 }).waitFor();
    await bob.getByRole("heading", { name: "Bob notes", level: 2 }).waitFor();
    const titles = (page: Page) => page.locator('[data-testid="session"] .session-title').allTextContents();
    expect(await titles(alice)).toEqual(["Alice private plans"]);
    expect(await titles(bob)).toEqual(["Bob notes"]);

    // Alice finds her own words; Bob, searching the same, finds nothing of hers.
    const search = async (page: Page, q: string) => {
      await page.getByLabel("Search memory across all sessions").fill(q);
      await page.getByRole("button", { name: "Search", exact: true }).click();
    };
    await eventually(
      async () => {
        await search(alice, "zanzibar42");
        await alice.locator(".hit-text").filter({ hasText: "zanzibar42" }).first().waitFor({ timeout: 1_000 });
      },
      15_000,
      300,
    );
    await search(bob, "zanzibar42");
    await bob.getByText("Nothing found for “zanzibar42”.").waitFor();
    expect(await bob.locator(".hit").count()).toBe(0);
  });

  it("shares a session: invite, presence, typing and each other's messages live", async () => {
    const alice = await web.newPage();
    const bob = await web.newPage();
    const aliceName = uniqueName("alice");
    const bobName = uniqueName("bob");
    await signUp(bob, web.server.url, bobName);
    await signUp(alice, web.server.url, aliceName);
    await createSessionInUi(alice, "Team room");
    await assistantOff(alice);

    await alice.getByRole("button", { name: "Invite" }).click();
    await alice.getByLabel("Username to invite").fill("nobody_by_that_name");
    await alice.getByRole("button", { name: "Invite", exact: true }).last().click();
    await alice.getByRole("alert").filter({ hasText: "There is no user “nobody_by_that_name”." }).waitFor();
    await alice.getByLabel("Username to invite").fill(bobName);
    await alice.locator(".invite-form").getByRole("button", { name: "Invite" }).click();
    await alice.getByText(`Invited ${bobName}: they join when they accept.`).waitFor();

    // Bob's open page hears the invitation live; nothing is joined until he says so.
    const invitation = bob.getByTestId("invitations").locator(".invitation").filter({ hasText: "Team room" });
    await invitation.waitFor();
    expect(await invitation.textContent()).toContain(`${aliceName} invited you to Team room`);
    expect(await bob.locator('[data-testid="session"]').filter({ hasText: "Team room" }).count()).toBe(0);
    await bob.getByRole("button", { name: "Join Team room" }).click();
    await bob.getByRole("heading", { name: "Team room", level: 2 }).waitFor();
    await assistantOff(bob);
    expect(await bob.locator('[data-testid="session"]').filter({ hasText: "Team room" }).textContent()).toContain("shared with you");
    await eventually(async () => expect(await alice.getByTestId("presence").textContent()).toBe(`Here now: you and ${bobName}`));
    // Bob's own count comes with his join's answer, which may reach his page after Alice heard him arrive.
    await expect.poll(() => bob.getByTestId("presence").getAttribute("data-count")).toBe("2");

    await composer(bob).pressSequentially("hello al");
    await alice.getByTestId("typing").filter({ hasText: `${bobName} is typing…` }).waitFor();
    await composer(bob).press("Enter");
    await eventually(async () => {
      const seen = await shownMessages(alice);
      expect(seen.map((m) => m.text)).toEqual(["hello al"]);
      expect(await alice.getByTestId("typing").textContent()).toBe("");
    });
    expect(await alice.locator('[data-testid="message"] .author').allTextContents()).toEqual([bobName]);
    await sendInUi(alice, "hi bob");
    await eventually(async () => expect((await shownMessages(bob)).map((m) => m.text)).toEqual(["hello al", "hi bob"]));
    expect(await bob.locator('[data-testid="message"] .author').allTextContents()).toEqual(["You", aliceName]);

    // Bob is a member, not the owner: he cannot delete it, and leaving shows.
    expect(await bob.getByRole("button", { name: "Delete session Team room" }).count()).toBe(0);
    await bob.close();
    await eventually(async () => expect(await alice.getByTestId("presence").textContent()).toBe("Only you are here"));
  });

  it("lets a member leave a shared session, and tells a removed member's open page at once", async () => {
    const alice = await web.newPage();
    const bob = await web.newPage();
    const bobName = uniqueName("bob");
    await signUp(bob, web.server.url, bobName);
    await signUp(alice, web.server.url, uniqueName("alice"));
    const aliceToken = await storedToken(alice);
    const bobToken = await storedToken(bob);
    const bobId = (JSON.parse(Buffer.from(bobToken.split(".")[1]!, "base64url").toString()) as { sub: string }).sub;
    const share = async (title: string) => {
      const { session } = await ok(await connect(web.server.url, aliceToken), "session:create", { title, assistant: false });
      expect((await api(web.server.url, `/api/sessions/${session.id}/members`, { method: "POST", token: aliceToken, body: { username: bobName } })).status).toBe(201);
      expect((await api(web.server.url, `/api/invitations/${session.id}/accept`, { method: "POST", token: bobToken })).status).toBe(200);
      return session.id as string;
    };
    const leaving = await share("Leave me");
    const removing = await share("Remove me");
    await bob.reload();
    await bob.locator('[data-testid="session"]').filter({ hasText: "Remove me" }).waitFor();

    bob.once("dialog", (d) => void d.accept());
    await bob.getByRole("button", { name: "Leave session Leave me" }).click();
    await eventually(async () => expect(await bob.locator('[data-testid="session"]').filter({ hasText: "Leave me" }).count()).toBe(0));
    expect((await api(web.server.url, `/api/sessions/${leaving}/messages`, { token: bobToken })).status).toBe(404);

    await bob.locator('[data-testid="session"]').filter({ hasText: "Remove me" }).locator(".session-open").click();
    await bob.getByRole("heading", { name: "Remove me", level: 2 }).waitFor();
    expect((await api(web.server.url, `/api/sessions/${removing}/members/${bobId}`, { method: "DELETE", token: aliceToken })).status).toBe(204);
    await bob.getByText("You were removed from “Remove me”.").waitFor();
    await eventually(async () => expect(await bob.locator('[data-testid="session"]').filter({ hasText: "Remove me" }).count()).toBe(0));
    expect(await bob.getByRole("heading", { name: "Remove me", level: 2 }).count()).toBe(0);
  });

  it("renames a session, and the new name shows in the list, the header and the server", async () => {
    const page = await web.newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "First name");
    const sessionId = await openSessionId(page);
    const token = await storedToken(page);
    page.once("dialog", (d) => void d.accept("Second name"));
    await page.getByRole("button", { name: "Rename session First name" }).click();
    await eventually(async () => expect(await page.locator('[data-testid="session"] .session-title').allTextContents()).toEqual(["Second name"]));
    await page.getByRole("heading", { name: "Second name" }).waitFor();
    const listed = await api(web.server.url, "/api/sessions", { token });
    expect(listed.body.sessions.find((x: { id: string }) => x.id === sessionId).title).toBe("Second name");
  });

  it("deletes a session after asking", async () => {
    const page = await web.newPage();
    await signUp(page, web.server.url, uniqueName("web"));
    await createSessionInUi(page, "Keep me");
    await createSessionInUi(page, "Throw me away");
    const sessionId = await openSessionId(page);
    const token = await storedToken(page);
    const del = page.getByRole("button", { name: "Delete session Throw me away" });
    page.once("dialog", (d) => void d.dismiss());
    await del.click();
    expect(await page.locator('[data-testid="session"] .session-title').allTextContents()).toEqual(["Throw me away", "Keep me"]);
    page.once("dialog", (d) => void d.accept());
    await del.click();
    await eventually(async () => expect(await page.locator('[data-testid="session"] .session-title').allTextContents()).toEqual(["Keep me"]));
    await page.getByRole("heading", { name: "No session open" }).waitFor();
    expect((await api(web.server.url, `/api/sessions/${sessionId}/messages`, { token })).status).toBe(404);
  });

  it("fits a phone: the sessions list becomes a drawer", async () => {
    const page = await web.newPage({ width: 390, height: 844 });
    const name = uniqueName("phone");
    await signUp(page, web.server.url, name);
    const toggle = page.getByRole("button", { name: "Sessions" });
    const sidebar = page.locator("#sidebar");
    // No session yet: the drawer opens by itself, offering to start one.
    await eventually(async () => expect(await toggle.getAttribute("aria-expanded")).toBe("true"));
    await createSessionInUi(page, "On the go");
    expect(await toggle.getAttribute("aria-expanded")).toBe("false");
    await eventually(async () => expect(await sidebar.isVisible()).toBe(false));
    await assistantOff(page);
    await sendInUi(page, "Short message from a phone");
    await eventually(async () => expect((await shownMessages(page)).map((m) => m.status)).toEqual(["complete"]));
    expect(await pageWidth(page)).toBeLessThanOrEqual(390);

    await toggle.click();
    expect(await toggle.getAttribute("aria-expanded")).toBe("true");
    // Done sliding in, so the picture shows the drawer, not a frame of its animation.
    await eventually(async () => expect(await transformOf(sidebar)).toBe("none"));
    await screenshot(page, "phone-sessions");
    await page.keyboard.press("Escape");
    await eventually(async () => expect(await sidebar.isVisible()).toBe(false));
    expect(await toggle.getAttribute("aria-expanded")).toBe("false");
  });
  it("loads more sessions as the list scrolls, each once and in order", async () => {
    const name = uniqueName("many");
    const u = await register(web.server.url, name);
    const s = await connect(web.server.url, u.token);
    const titles: string[] = [];
    try {
      for (let i = 0; i < 130; i++) titles.push((await ok(s, "session:create", { title: `Session ${String(i).padStart(3, "0")}`, assistant: false })).session.title);
    } finally {
      s.close();
    }
    const page = await web.newPage();
    await logIn(page, web.server.url, name, u.password);
    const shown = () => page.locator('[data-testid="session"] .session-title').allTextContents();
    await eventually(async () => expect(await shown()).toHaveLength(50));
    const newestFirst = [...titles].reverse();
    expect(await shown()).toEqual(newestFirst.slice(0, 50));
    for (const expected of [100, 130]) {
      await page.locator('[data-testid="sessions-more"]').scrollIntoViewIfNeeded();
      await eventually(async () => expect(await shown()).toHaveLength(expected));
    }
    expect(await shown()).toEqual(newestFirst);
    expect(await page.locator('[data-testid="sessions-more"]').count()).toBe(0);
  });

  it("leaves the account menu open when a session opens by itself after the menu was opened", async () => {
    const name = uniqueName("menu");
    const first = await web.newPage();
    await signUp(first, web.server.url, name);
    await createSessionInUi(first, "Opens by itself");
    const page = await web.newPage();
    // The session list is held back until the menu is open: the session it brings opens after.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route("**/api/sessions?*", async (route) => {
      await held;
      await route.continue();
    });
    await logIn(page, web.server.url, name);
    await page.getByRole("button", { name: "Account" }).click();
    release();
    await page.locator('[data-testid="session"].active').waitFor();
    await page.getByRole("button", { name: "Delete account" }).waitFor({ state: "visible", timeout: 2000 });
    await page.unroute("**/api/sessions?*");
  });

  it("exports the user's data, logs out everywhere, and deletes the account from the account menu", async () => {
    const name = uniqueName("acct");
    const page = await web.newPage();
    await signUp(page, web.server.url, name);
    const other = await web.newPage();
    await logIn(other, web.server.url, name);
    await createSessionInUi(page, "Mine to keep");
    await assistantOff(page);
    await sendInUi(page, "a line only I wrote");
    await eventually(async () => expect((await shownMessages(page)).map((m) => m.status)).toEqual(["complete"]));

    await page.getByRole("button", { name: "Account" }).click();
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Export my data" }).click();
    const file = await (await download).path();
    const doc = JSON.parse(await readFile(file, "utf8"));
    expect(doc.user.username).toBe(name);
    expect(doc.sessions.map((x: { title: string }) => x.title)).toEqual(["Mine to keep"]);
    expect(doc.sessions[0].messages.map((m: { content: string }) => m.content)).toEqual(["a line only I wrote"]);

    const oldToken = await storedToken(page);
    await page.getByRole("button", { name: "Account" }).click();
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Log out everywhere" }).click();
    await page.getByRole("status").filter({ hasText: "logged out everywhere" }).waitFor();
    expect((await api(web.server.url, "/api/sessions", { token: oldToken })).status).toBe(401);
    // The other browser is signed out too (its connection is closed and its token refused).
    await other.getByRole("button", { name: "Log in" }).waitFor();

    await logIn(page, web.server.url, name);
    await page.getByRole("button", { name: "Account" }).click();
    page.once("dialog", (d) => void d.accept("not my name"));
    await page.getByRole("button", { name: "Delete account" }).click();
    await page.getByText("The username did not match").waitFor();
    await page.getByRole("button", { name: "Account" }).click();
    page.once("dialog", (d) => void d.accept(name));
    await page.getByRole("button", { name: "Delete account" }).click();
    await page.getByRole("status").filter({ hasText: "Your account was deleted" }).waitFor();
    const { rows } = await web.db.pool.query("SELECT count(*)::int AS n FROM users WHERE username = $1", [name]);
    expect(rows[0].n).toBe(0);
    const login = await api(web.server.url, "/api/auth/login", { method: "POST", body: { username: name, password: "correct horse battery" } });
    expect(login.status).toBe(401);
  });
});
