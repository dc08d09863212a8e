/**
 * Archiving in the web client, in headless Chromium against the real server:
 * the owner archives from the session list, the session leaves the default
 * list and shows under the "Show archived" filter, an open archived session
 * is read-only (for a member watching it too), and unarchiving gives the
 * composer back.
 */
import { expect, it } from "vitest";
import { composer, createSessionInUi, eventually, logIn, sendInUi, shownMessages, signUp, storedToken } from "../support/browser.js";
import { addMember, api, connect, ok, register, uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

const web = useWebFixture({ name: "web-lifecycle" });

it("archives from the list, shows archived sessions under the filter read-only, and unarchives", async () => {
  const owner = await web.newPage();
  const ownerName = uniqueName("own");
  await signUp(owner, web.server.url, ownerName);
  await createSessionInUi(owner, "Old project");
  await owner.getByLabel("Assistant replies").uncheck();
  await sendInUi(owner, "the final numbers are in");
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("final numbers") && m.seq !== null));
  await createSessionInUi(owner, "Current work");

  // a member watches the session being archived
  const member = await web.newPage();
  const memberName = uniqueName("mem");
  await signUp(member, web.server.url, memberName);
  const token = await storedToken(owner);
  const sessions = (await api(web.server.url, "/api/sessions", { token })).body.sessions as { id: string; title: string }[];
  const old = sessions.find((s) => s.title === "Old project")!;
  expect((await api(web.server.url, `/api/sessions/${old.id}/members`, { method: "POST", token, body: { username: memberName } })).status).toBe(201);
  await member.getByRole("button", { name: "Join" }).first().click();
  await member.getByRole("heading", { name: "Old project", level: 2 }).waitFor();
  await expect.poll(() => composer(member).isEnabled()).toBe(true);

  await owner.getByRole("button", { name: "Archive session Old project" }).click();
  // gone from the default list, for both
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  await member.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  // the member's open conversation turned read-only, and says so
  await member.getByTestId("archived-note").waitFor();
  expect(await member.getByTestId("archived-note").textContent()).toContain("archived");
  expect(await composer(member).isDisabled()).toBe(true);

  // the filter shows it; opened, it is readable and read-only
  await owner.getByTestId("show-archived").check();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor();
  expect(await owner.locator('[data-testid="session"]').count()).toBe(1);
  await owner.getByRole("button", { name: /Old project/ }).first().click();
  await owner.getByRole("heading", { name: "Old project", level: 2 }).waitFor();
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("final numbers")));
  expect(await composer(owner).isDisabled()).toBe(true);
  expect(await owner.getByTestId("archived-note").textContent()).toContain("unless you unarchive it");

  // unarchive: it leaves the archived list, and both can write again
  await owner.getByRole("button", { name: "Unarchive session Old project" }).click();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor({ state: "detached" });
  await expect.poll(() => composer(owner).isEnabled()).toBe(true);
  await expect.poll(() => composer(member).isEnabled()).toBe(true);
  await owner.getByTestId("show-archived").uncheck();
  await owner.locator(`[data-session-id="${old.id}"]`).waitFor();
  await sendInUi(member, "glad it is back");
  await eventually(async () => (await shownMessages(owner)).some((m) => m.text.includes("glad it is back")));
});

it("shows a session archived after the page listed it, but before it joined, read-only and out of the list", async () => {
  const owner = await register(web.server.url, uniqueName("own"));
  const member = await register(web.server.url, uniqueName("mem"));
  const socket = await connect(web.server.url, owner.token);
  try {
    const { session } = await ok(socket, "session:create", { title: "Archived meanwhile" });
    await addMember(web.server.url, socket, session.id, member);
    const page = await web.newPage();
    // The page's first list of sessions is answered as it was read, and the owner archives the
    // session before the page has it: no session:archived reaches a page not yet in the room.
    let archived = false;
    await page.route(/\/api\/sessions\?/, async (route) => {
      const response = await route.fetch();
      const body: unknown = await response.json();
      if (!archived) {
        archived = true;
        await ok(socket, "session:archive", { sessionId: session.id, archived: true });
      }
      await route.fulfill({ response, json: body });
    });
    await logIn(page, web.server.url, member.user.username, member.password);
    await page.getByRole("heading", { name: "Archived meanwhile", level: 2 }).waitFor();
    // The join answers the session as it is now.
    await page.getByTestId("archived-note").waitFor();
    expect(await composer(page).isDisabled()).toBe(true);
    await page.locator(`[data-session-id="${session.id}"]`).waitFor({ state: "detached" });
  } finally {
    socket.close();
  }
});
