// The page loads its data first and opens its live event stream after it
// (js/app.js), so the first view does not wait on the stream. Whatever
// happens in between must still reach the page: here the stream is held
// back on purpose, a profile is created meanwhile, and once the stream
// opens the dashboard must count it (live.js sees the event in the
// daemon's record, not received live, and the page reloads its data).
// And a page loaded after the dashboard hears that one stream: its modules
// come with the page's one script in the release's files (src/build/web.rs),
// and the pages loaded later must share their instance, not load another.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, openBrowser, ringlet, settled, signIn, until } from "./world.mjs";

const ALIAS = "late-stream";

let page;
openBrowser({}, async ({ context }) => {
  page = await signIn(context);
});

test("what happens before the live stream opens still reaches the dashboard", async () => {
  let release;
  const held = new Promise((r) => (release = r));
  await page.routeWebSocket(/\/ws$/, async (ws) => {
    await held;
    ws.connectToServer();
  });
  try {
    await page.goto(`${BASE}#/dashboard`);
    await page.reload();
    await settled(page, "dashboard");
    const shown = () => page.locator('a[href="#/profiles"] .stat').first().textContent();
    const before = Number(await shown());
    assert.equal(await page.locator("#conn.up").count(), 0, "the stream is held back");

    ringlet(["profiles", "create", "claude", ALIAS, "-p", "anthropic", "--api-key-stdin", "--no-alias"], "sk-ant-late-0123456789abcdefghij\n");
    release();
    await until("the stream connected", async () => (await page.locator("#conn.up").count()) > 0);
    await until(`the dashboard counting ${before + 1} profiles`, async () => Number(await shown()) === before + 1, 10_000);
  } finally {
    release();
    await page.unrouteAll();
    ringlet(["profiles", "delete", ALIAS]);
  }
});

test("a page loaded after the first hears the one live stream", async () => {
  const alias = "late-page";
  await page.goto(`${BASE}#/dashboard`);
  await page.reload();
  await settled(page, "dashboard");
  await until("the stream connected", async () => (await page.locator("#conn.up").count()) > 0);
  await page.goto(`${BASE}#/profiles`);
  await settled(page, "profiles");
  assert.equal(await page.getByText(alias, { exact: true }).count(), 0);
  try {
    ringlet(["profiles", "create", "claude", alias, "-p", "anthropic", "--api-key-stdin", "--no-alias"], "sk-ant-late-0123456789abcdefghij\n");
    await until("the profiles page listing the new profile", async () => (await page.getByText(alias, { exact: true }).count()) > 0, 10_000);
  } finally {
    ringlet(["profiles", "delete", alias]);
  }
});
