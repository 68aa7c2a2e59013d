// What every browser test shares: the test world tests/browser.rs built (a
// real daemon in a temp HOME, named by environment variables), `ringlet`
// run in that world, the one Chromium of the suite, signed-in pages, and
// the checks every page gets (console errors, uncaught errors, CSP
// violations). Run by `node --test` from the Rust harness; a file may also
// be run alone against a world the harness left running (see
// notes14/browser.md).

import { execFileSync } from "node:child_process";
import { after, before } from "node:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through tests/browser.rs (cargo test --test integration browser)`);
  return v;
};

const modules = join(need("RINGLET_TEST_BROWSER"), "node_modules");
const { chromium } = await import(join(modules, "playwright-core", "index.mjs"));

/// axe-core's browser bundle, injected into pages by path.
export const AXE = join(modules, "axe-core", "axe.min.js");
/// The daemon's address, e.g. `http://127.0.0.1:41234/`.
export const BASE = need("RINGLET_UI_URL");
/// The binary under test, and the environment of its world.
const BIN = need("RINGLET_BIN");
const WORLD = JSON.parse(need("RINGLET_WORLD"));
/// Where screenshots go (`target/ui-shots`).
export const SHOTS = need("RINGLET_SHOTS");
/// The work directory sessions start in, and the world's profiles.
export const WORK = need("RINGLET_WORK");
export const SHELL_PROFILE = need("RINGLET_SHELL_PROFILE");
export const CLAUDE_PROFILE = need("RINGLET_CLAUDE_PROFILE");
export const MOCK_PROVIDER = need("RINGLET_MOCK_PROVIDER");
/// The first line of the mock's reply (its other lines are numbered).
export const MOCK_REPLY = need("RINGLET_MOCK_REPLY");

export const PAGES = ["dashboard", "profiles", "terminals", "usage", "proxies", "agents", "registry", "events", "doctor", "settings"];
/// The h1 each page starts with (its nav name; "Agents" may say more).
export const TITLES = {
  dashboard: /^Dashboard/i,
  profiles: /^Profiles/i,
  terminals: /^Terminals/i,
  usage: /^Usage/i,
  proxies: /^Proxies/i,
  agents: /^Agents/i,
  registry: /^Registry/i,
  events: /^Events/i,
  doctor: /^Doctor/i,
  settings: /^Settings/i,
};

mkdirSync(SHOTS, { recursive: true });

/// `ringlet args...` in the test world; its stdout. Fails the test on a
/// non-zero exit, with what it said.
export function ringlet(args, input) {
  try {
    return execFileSync(BIN, args, {
      env: WORLD,
      cwd: WORK,
      input: input ?? "",
      timeout: 60_000,
      encoding: "utf8",
    });
  } catch (e) {
    throw new Error(`ringlet ${args.join(" ")} failed: ${e.message}\nstdout: ${e.stdout}\nstderr: ${e.stderr}`);
  }
}

/// A fresh one-time sign-in link from `ringlet ui --no-open`.
export function ticketUrl() {
  const out = ringlet(["ui", "--no-open"]);
  const url = out.split("\n").find((l) => /^https?:\/\/.*#ticket=[0-9a-f]{64}$/.test(l.trim()));
  assert.ok(url, `no sign-in link in:\n${out}`);
  return url.trim();
}

/// The suite's Chromium: the one the harness started (RINGLET_BROWSER_WS),
/// else one of this file's own.
export async function browser() {
  if (process.env.RINGLET_BROWSER_WS) return chromium.connect(process.env.RINGLET_BROWSER_WS);
  return chromium.launch(launchOptions());
}

export function launchOptions() {
  const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
  return { executablePath: process.env.RINGLET_CHROMIUM || "/usr/bin/chromium", headless: true, args };
}

export { chromium };

/// Collects what must never happen on a page: console errors, uncaught
/// exceptions, CSP violations (as the `securitypolicyviolation` event sees
/// them; Chromium also logs them to the console). `problems()` lists them.
export function watch(page) {
  const seen = [];
  page.on("console", (m) => {
    if (m.type() === "error") seen.push(`console error: ${m.text()} (${m.location().url || "?"})`);
  });
  page.on("pageerror", (e) => seen.push(`uncaught: ${e.message}`));
  page.on("crash", () => seen.push("the page crashed"));
  return {
    problems: async () => {
      const csp = await page.evaluate(() => window.__cspViolations || []).catch(() => []);
      return [...new Set([...seen, ...csp.map((v) => `CSP violation: ${v}`)])];
    },
    clear: () => {
      seen.length = 0;
      return page.evaluate(() => (window.__cspViolations = [])).catch(() => {});
    },
  };
}

/// A new browser context whose pages record CSP violations.
export async function newContext(b, options = {}) {
  const context = await b.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  return context;
}

/// What every test file opens with: before its tests, the suite's browser
/// and a new context of it (`options` as for newContext), then
/// `setup(world)` if given; after them, both closed. Returns the `world`
/// whose `browser` and `context` are set by the time a test runs.
export function openBrowser(options = {}, setup) {
  const world = {};
  before(async () => {
    world.browser = await browser();
    world.context = await newContext(world.browser, options);
    if (setup) await setup(world);
  });
  after(async () => {
    await world.context?.close();
    await world.browser?.close();
  });
  return world;
}

/// A page on the dashboard, signed in: through a fresh ticket, unless the
/// context (the browser) has a session already, which every new tab shares.
/// (A ticket opened in a signed-in browser replaces the session, and the
/// page's live stream, started with the old token, reconnects once.)
export async function signIn(context) {
  const state = await context.storageState();
  const origin = BASE.replace(/\/$/, "");
  const has = state.origins.some((o) => o.origin === origin && o.localStorage.some((e) => e.name === "ringlet.session"));
  const page = await context.newPage();
  await page.goto(has ? `${BASE}#/dashboard` : ticketUrl());
  await settled(page, "dashboard");
  return page;
}

/// Waits until `page` shows `name`'s h1 and nothing is left loading.
export async function settled(page, name, timeout = 30_000) {
  await page.getByRole("heading", { level: 1, name: TITLES[name] }).first().waitFor({ timeout });
  await page.waitForFunction(() => !document.querySelector("main .loading"), null, { timeout });
}

/// Goes to `#/<name>` and waits for it.
export async function open(page, name, timeout) {
  await page.goto(`${BASE}#/${name}`);
  await settled(page, name, timeout);
}

/// The screen of the visible terminal, one line per row.
export function screenText(page) {
  return page.evaluate(() => {
    const rows = [...document.querySelectorAll(".xterm-rows")].find((r) => r.offsetParent !== null);
    if (!rows) return "";
    return [...rows.children].map((r) => r.textContent.replace(/\u00a0/g, " ").trimEnd()).join("\n");
  });
}

/// Polls the terminal until `pred(screen)` holds; fails with the screen.
export async function waitScreen(page, what, pred, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let screen = "";
  for (;;) {
    screen = await screenText(page);
    if (pred(screen)) return screen;
    if (Date.now() > deadline) assert.fail(`no ${what} within ${timeout} ms; the screen:\n${screen}`);
    await page.waitForTimeout(100);
  }
}

/// Sleeps `ms`.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls `fn` until it returns a truthy value; fails naming `what`.
export async function until(what, fn, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeout} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

/// Every value the page keeps: localStorage, sessionStorage, cookies.
export async function storedValues(page) {
  const storage = await page.evaluate(() => ({
    local: Object.entries(localStorage),
    session: Object.entries(sessionStorage),
    cookie: document.cookie,
  }));
  const cookies = await page.context().cookies();
  return { ...storage, cookies };
}
