/**
 * The setup every browser test file shares: the web build, a private
 * database, headless Chromium, the real server process (and, when asked, the
 * OpenAI-compatible double it streams from), pages in isolated contexts, and
 * the check that no page threw. `useWebFixture` registers the hooks; the
 * tests read what it started from the object it returns.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { ensureWebBuild, freePort, launchBrowser } from "./browser.js";
import { createTestDatabase, type TestDatabase } from "./db.js";
import { OpenAiLlmDouble } from "./openai-llm-double.js";
import { type ServerProcess, startServer } from "./server-process.js";

export interface Viewport {
  width: number;
  height: number;
}

export interface WebFixtureOptions {
  /** Names the data directory and the signing secret, so a leftover directory says which file left it. */
  name: string;
  /** Settings beyond the database, data directory, secret, hash embedder (and the double's address). */
  env?: Record<string, string>;
  /** Listens on one port for the whole file, so a page reconnects to a restarted server at the same address. */
  fixedPort?: boolean;
  /** Starts the OpenAI-compatible double and points the server at it. */
  llm?: boolean;
  /** The size of a new page unless the test asks for another. */
  viewport?: Viewport;
  /** How long a page's waits last before failing: seconds, not the default half minute. */
  timeoutMs?: number;
  /** After each test, no page has thrown (an exception in the page is a bug even when the test's checks passed). */
  checkPageErrors?: boolean;
}

export interface WebFixture {
  readonly db: TestDatabase;
  /** The server started last. */
  readonly server: ServerProcess;
  readonly llm: OpenAiLlmDouble;
  /** Messages of the exceptions thrown in the pages so far. */
  readonly pageErrors: string[];
  /** Starts a server with the file's settings (again, after a stop); every one is stopped after the file. */
  start(): Promise<ServerProcess>;
  /** A page in a context of its own: another person's browser (cookies, localStorage). */
  newPage(viewport?: Viewport): Promise<Page>;
  /** Records the page's exceptions with the others' (for a page opened from a context directly). */
  watch(page: Page): Page;
}

export function useWebFixture(options: WebFixtureOptions): WebFixture {
  const fixture = new BrowserTestFixture(options);
  beforeAll(() => fixture.setUp());
  afterAll(() => fixture.tearDown());
  if (options.checkPageErrors ?? true) {
    afterEach(() => {
      expect(fixture.pageErrors.splice(0)).toEqual([]);
    });
  }
  return fixture;
}

class BrowserTestFixture implements WebFixture {
  readonly pageErrors: string[] = [];
  private database: TestDatabase | undefined;
  private browser: Browser | undefined;
  private double: OpenAiLlmDouble | undefined;
  private dataDir: string | undefined;
  private env: Record<string, string> = {};
  /** Every process started, so none outlives the file even when a restart test times out midway. */
  private readonly servers: ServerProcess[] = [];
  private readonly contexts: BrowserContext[] = [];

  constructor(private readonly options: WebFixtureOptions) {}

  get db(): TestDatabase {
    return ready(this.database, "db");
  }

  get server(): ServerProcess {
    return ready(this.servers.at(-1), "server");
  }

  get llm(): OpenAiLlmDouble {
    return ready(this.double, "llm (pass llm: true)");
  }

  async setUp(): Promise<void> {
    const o = this.options;
    this.double = o.llm ? new OpenAiLlmDouble() : undefined;
    const [, database, browser, port, llm] = await Promise.all([
      ensureWebBuild(),
      createTestDatabase(4),
      launchBrowser(),
      o.fixedPort ? freePort() : undefined,
      this.double?.start(),
    ]);
    this.database = database;
    this.browser = browser;
    this.dataDir = await mkdtemp(path.join(tmpdir(), `memchat-${o.name}-`));
    this.env = {
      DATABASE_URL: database.url,
      DATA_DIR: this.dataDir,
      ...(port ? { PORT: String(port) } : {}),
      JWT_SECRET: `${o.name}-secret-0123456789-0123456789-0123`,
      EMBEDDER: "hash",
      ...(llm ? { OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: "test-key", OPENAI_MODEL: "double-model" } : {}),
      ...o.env,
    };
    await this.start();
  }

  async tearDown(): Promise<void> {
    for (const c of this.contexts) await c.close().catch(() => undefined);
    await this.browser?.close();
    await Promise.all(this.servers.map((s) => s.stop()));
    await this.double?.close();
    await this.database?.drop();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  async start(): Promise<ServerProcess> {
    const s = await startServer(this.env);
    this.servers.push(s);
    return s;
  }

  async newPage(viewport = this.options.viewport ?? { width: 1280, height: 800 }): Promise<Page> {
    const context = await ready(this.browser, "browser").newContext({ viewport });
    this.contexts.push(context);
    context.setDefaultTimeout(this.options.timeoutMs ?? 15_000);
    return this.watch(await context.newPage());
  }

  watch(page: Page): Page {
    page.on("pageerror", (err) => this.pageErrors.push(err.message));
    return page;
  }
}

function ready<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the web fixture has no ${what} yet: use it inside a test`);
  return value;
}
