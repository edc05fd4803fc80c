import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import puppeteer, { type Browser, type ConsoleMessage, type Page } from "puppeteer-core";
import { REPO_ROOT } from "../helpers/sharedData.js";

/** Debian's chromium (`.ci/run` installs it). */
export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

/** Screenshots and pictures the browser tests leave for a person to look at (git-ignored). */
export const ARTIFACTS = path.join(REPO_ROOT, "test-artifacts", "console");

/** Builds the console's page and script from the sources as they are now, so the test never runs a stale bundle. */
export function buildConsole(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, "scripts/build-console.mjs")], { stdio: "pipe" });
}

/** What a page said on its console, and the errors it threw. */
export interface PageLog {
  errors: { at: number; text: string }[];
  all: string[];
}

/** A headless chromium with a fresh profile, closed and removed by `close()`. */
export class TestBrowser {
  readonly browser: Browser;
  readonly #profile: string;

  private constructor(browser: Browser, profile: string) {
    this.browser = browser;
    this.#profile = profile;
  }

  static async launch(): Promise<TestBrowser> {
    if (!CHROMIUM) throw new Error("chromium is not installed (apt-get install chromium)");
    const profile = mkdtempSync(path.join(os.tmpdir(), "cityedge-chromium-"));
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    return new TestBrowser(browser, profile);
  }

  /** A new page of 1280x900 whose console errors and thrown errors are collected. */
  async page(): Promise<{ page: Page; log: PageLog }> {
    const page = await this.browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const log: PageLog = { errors: [], all: [] };
    page.on("console", (m: ConsoleMessage) => {
      const text = `${m.type()}: ${m.text()}${m.location().url ? ` (${m.location().url})` : ""}`;
      log.all.push(text);
      if (m.type() === "error") log.errors.push({ at: Date.now(), text });
    });
    page.on("pageerror", (e: unknown) => log.errors.push({ at: Date.now(), text: `uncaught: ${(e as Error).message}` }));
    return { page, log };
  }

  async screenshot(page: Page, name: string): Promise<string> {
    const file = path.join(ARTIFACTS, name);
    await page.screenshot({ path: file });
    return file;
  }

  async close(): Promise<void> {
    await this.browser.close();
    rmSync(this.#profile, { recursive: true, force: true });
  }
}
