/**
 * Files in the web client, in headless Chromium against the real server: a
 * member attaches an image with the button and drops a text file on the
 * conversation, sees each upload's progress, sends them with a message;
 * the other member sees the chips and the image inline (its thumbnail) and
 * downloads the text file.
 */
import { readFile } from "node:fs/promises";
import sharp from "sharp";
import { expect, it } from "vitest";
import { composer, createSessionInUi, eventually, screenshot, shownMessages, signUp, storedToken } from "../support/browser.js";
import { api, uniqueName } from "../support/client.js";
import { useWebFixture } from "../support/web-fixture.js";

const web = useWebFixture({ name: "web-files" });

it("attaches by button and by drop with progress, shows chips and the image inline, and downloads", async () => {
  const owner = await web.newPage();
  const ownerName = uniqueName("own");
  await signUp(owner, web.server.url, ownerName);
  await createSessionInUi(owner, "Trip photos");
  await owner.getByLabel("Assistant replies").uncheck();

  const member = await web.newPage();
  const memberName = uniqueName("mem");
  await signUp(member, web.server.url, memberName);
  const token = await storedToken(owner);
  const session = ((await api(web.server.url, "/api/sessions", { token })).body.sessions as { id: string; title: string }[]).find((s) => s.title === "Trip photos")!;
  expect((await api(web.server.url, `/api/sessions/${session.id}/members`, { method: "POST", token, body: { username: memberName } })).status).toBe(201);
  await member.getByRole("button", { name: "Join" }).first().click();
  await member.getByRole("heading", { name: "Trip photos", level: 2 }).waitFor();

  // A slow uplink, so the progress of an upload can be seen.
  const cdp = await owner.context().newCDPSession(owner);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 150 * 1024 });
  // A beach at sunset over film grain (the grain keeps the JPEG large enough to watch it upload).
  const scene = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">
      <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#ff7e5f"/><stop offset="1" stop-color="#feb47b"/></linearGradient></defs>
      <rect width="1200" height="520" fill="url(#sky)"/><circle cx="600" cy="500" r="140" fill="#ffd56b"/>
      <rect y="500" width="1200" height="160" fill="#2a6f97"/><rect y="640" width="1200" height="160" fill="#e9c46a"/>
    </svg>`,
  );
  const grain = await sharp({ create: { width: 1200, height: 800, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 30 } } }).png().toBuffer();
  const photo = await sharp(scene).composite([{ input: grain, blend: "soft-light" }]).jpeg({ quality: 92 }).toBuffer();
  await owner.getByTestId("attach-input").setInputFiles({ name: "beach.jpg", mimeType: "image/jpeg", buffer: photo });
  const progress = owner.getByTestId("upload-progress");
  await progress.waitFor();
  expect(photo.length).toBeGreaterThan(2 * 150 * 1024);
  await eventually(async () => expect(Number(await progress.getAttribute("value"))).toBeGreaterThan(0));
  await screenshot(owner, "attachments-uploading");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await owner.locator('[data-testid="tray-item"][data-state="ready"]').waitFor();

  // a text file dropped on the conversation
  // Runs in the page (the test's own types have no DOM).
  const dt = await owner.evaluateHandle(() => {
    const page = globalThis as unknown as { DataTransfer: new () => { items: { add(f: File): void } } };
    const d = new page.DataTransfer();
    d.items.add(new File(["# Packing list\n\n- sunscreen\n- towel\n"], "packing.md", { type: "text/markdown" }));
    return d;
  });
  for (const type of ["dragenter", "dragover", "drop"]) await owner.dispatchEvent(".conversation", type, { dataTransfer: dt });
  await eventually(async () => expect(await owner.locator('[data-testid="tray-item"][data-state="ready"]').count()).toBe(2));

  await composer(owner).fill("photos and the list");
  await composer(owner).press("Enter");
  await owner.locator('[data-testid="message"] [data-testid="attachment"]').nth(1).waitFor();
  expect(await owner.getByTestId("attachment-tray").isHidden()).toBe(true);

  // the member sees the message with its files, the image inline
  await eventually(async () => expect((await shownMessages(member)).some((m) => m.text.includes("photos and the list"))).toBe(true));
  const chips = member.locator('[data-testid="message"] [data-testid="attachment"]');
  await chips.nth(1).waitFor();
  expect(await chips.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: Record<string, string> }).dataset.type))).toEqual(["image/jpeg", "text/markdown"]);
  const preview = member.getByTestId("attachment-preview");
  await eventually(async () => expect(await preview.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBe(320));
  await screenshot(member, "attachments");

  const download = member.waitForEvent("download");
  await member.getByRole("button", { name: "Download packing.md" }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe("packing.md");
  expect(await readFile((await file.path())!, "utf8")).toContain("sunscreen");

  // history after a reload shows the same
  await member.reload();
  await member.getByRole("heading", { name: "Trip photos", level: 2 }).waitFor();
  await member.getByTestId("attachment-preview").waitFor();
});
