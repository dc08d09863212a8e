/**
 * Headless Chromium for the web client's end-to-end tests, and the Vite build
 * of web/ they need. Chromium is the system one (/usr/bin/chromium, or
 * CHROMIUM_PATH): `apt-get install -y chromium` where it is missing.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const WEB_DIR = path.join(ROOT, "web");
export const WEB_DIST = path.join(WEB_DIR, "dist");
export { ensureWebBuild } from "../../scripts/ensure-web-build.js";
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Each launch runs on a fresh temporary profile (user-data-dir) that
 * playwright creates and deletes; contexts from it are isolated from each
 * other (cookies, localStorage), like two different people's browsers.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** A port free right now on loopback, so a restarted server can listen on the same one. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// ---- driving the client ------------------------------------------------------

// Page functions below run in the browser; the test program has no DOM types,
// so these are the few browser globals they touch.
declare const document: { documentElement: { scrollWidth: number } };
declare const localStorage: { getItem(key: string): string | null };
declare function getComputedStyle(el: unknown): { transform: string };

interface ShownElement {
  dataset: Record<string, string | undefined>;
  classList: { contains(name: string): boolean };
  querySelector(selector: string): { textContent: string | null } | null;
}

export const PASSWORD = "correct horse battery";

/** Signs up through the form and waits for the signed-in screen. */
export async function signUp(page: Page, baseUrl: string, username: string): Promise<void> {
  await page.goto(baseUrl);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByTestId("username").filter({ hasText: username }).waitFor({ state: "attached" });
}

export async function logIn(page: Page, baseUrl: string, username: string, password = PASSWORD): Promise<void> {
  await page.goto(baseUrl);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByTestId("username").filter({ hasText: username }).waitFor({ state: "attached" });
}

/** The token the client keeps, for checking through REST what the page did. */
export async function storedToken(page: Page): Promise<string> {
  const raw = await page.evaluate(() => localStorage.getItem("memchat.auth"));
  const token = raw ? (JSON.parse(raw) as { token?: string }).token : undefined;
  if (!token) throw new Error("no token in localStorage");
  return token;
}

export async function createSessionInUi(page: Page, title: string): Promise<void> {
  await page.getByLabel("Title of the new session").fill(title);
  await page.getByRole("button", { name: "New chat" }).first().click();
  await page.getByRole("heading", { name: title, level: 2 }).waitFor();
}

export function composer(page: Page): Locator {
  return page.getByRole("textbox", { name: "Message", exact: true });
}

export async function sendInUi(page: Page, text: string): Promise<void> {
  await composer(page).fill(text);
  await composer(page).press("Enter");
}

/** The stored messages shown, in page order. */
export function shownMessages(page: Page): Promise<{ id: number; seq: number | null; status: string; role: string; text: string }[]> {
  return page.locator('[data-testid="message"]').evaluateAll((els: ShownElement[]) =>
    els.map((e) => {
      return {
        id: Number(e.dataset.id),
        seq: e.dataset.seq ? Number(e.dataset.seq) : null,
        status: e.dataset.status ?? "",
        role: e.classList.contains("msg-assistant") ? "assistant" : e.classList.contains("msg-user") ? "user" : "system",
        text: (e.querySelector(".msg-body")?.textContent ?? "").replace("Thinking…", ""),
      };
    }),
  );
}

/** Polls until `check` passes (returns without throwing), or throws its last error. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/** Saves a screenshot when WEB_SCREENSHOTS_DIR is set (docs/screenshots is where they are kept). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.WEB_SCREENSHOTS_DIR;
  if (!dir) return;
  await mkdir(path.resolve(ROOT, dir), { recursive: true });
  await page.screenshot({ path: path.resolve(ROOT, dir, `${name}.png`) });
}

/** Width of the whole page: wider than the viewport means sideways scrolling on a phone. */
export function pageWidth(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

/** The computed CSS transform, "none" once a slide-in has finished. */
export function transformOf(locator: Locator): Promise<string> {
  return locator.evaluate((el) => getComputedStyle(el).transform);
}
