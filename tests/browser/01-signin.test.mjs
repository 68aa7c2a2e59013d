// Signing in: a ticket from `ringlet ui` signs the browser in with a
// session token that is not the daemon's own (nothing the page keeps holds
// that token), a spent ticket is refused, the favicon needs no token, a new
// tab of the same browser is signed in without a ticket, and a ticket link
// pasted into an open tab signs it in.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, newContext, openBrowser, ringlet, settled, storedValues, ticketUrl, watch } from "./world.mjs";

let page;
const world = openBrowser();

test("a ticket from `ringlet ui` signs in; the page keeps no daemon token", async () => {
  page = await world.context.newPage();
  const checks = watch(page);
  const url = ticketUrl();
  assert.ok(url.startsWith(BASE), `${url} is not on ${BASE}`);
  await page.goto(url);
  await settled(page, "dashboard");
  // The spent ticket left the address bar (and so the history).
  assert.ok(!page.url().includes("ticket="), page.url());
  assert.ok(!(await page.getByRole("heading", { name: "Sign in" }).isVisible()));
  const daemonToken = ringlet(["daemon", "token"]).trim();
  assert.match(daemonToken, /^[0-9a-f]{64}$/);
  const stored = await storedValues(page);
  const session = stored.local.find(([k]) => k === "ringlet.session");
  assert.ok(session, `no browser session in localStorage: ${JSON.stringify(stored.local)}`);
  assert.notEqual(session[1], daemonToken, "the page was given the daemon's own token");
  const all = JSON.stringify(stored);
  assert.ok(!all.includes(daemonToken), `the daemon's token is kept by the page: ${all}`);
  assert.deepEqual(stored.cookies, [], "the daemon set cookies");
  assert.equal(stored.cookie, "");
  // A spent ticket does not sign in a second time.
  const again = await world.context.request.post(`${BASE}api/login`, {
    data: { ticket: new URL(url).hash.slice("#ticket=".length) },
    headers: { Origin: BASE.replace(/\/$/, "") },
  });
  assert.equal(again.status(), 401);
  assert.deepEqual(await checks.problems(), []);
});

test("the favicon is served without a token", async () => {
  const reply = await world.context.request.get(`${BASE}favicon.ico`);
  assert.equal(reply.status(), 200);
});

test("a new tab of the same browser is signed in", async () => {
  assert.ok(page, "not signed in (the first test failed)");
  const tab = await world.context.newPage();
  const tabChecks = watch(tab);
  await tab.goto(`${BASE}#/profiles`);
  await settled(tab, "profiles");
  assert.ok(!(await tab.getByRole("heading", { name: "Sign in" }).isVisible()));
  // The live stream is up in the new tab too.
  await tab.getByText("Live", { exact: true }).waitFor({ timeout: 10_000 });
  assert.deepEqual(await tabChecks.problems(), []);
  await tab.close();
});

test("a browser with no session is asked to sign in; a pasted ticket link signs it in", async () => {
  const other = await newContext(world.browser);
  const tab = await other.newPage();
  await tab.goto(`${BASE}#/profiles`);
  await tab.getByRole("heading", { name: "Sign in" }).waitFor({ timeout: 10_000 });
  // The link pasted into that open tab: only the fragment changes.
  await tab.evaluate((hash) => (location.hash = hash), new URL(ticketUrl()).hash);
  await settled(tab, "dashboard");
  assert.ok(!tab.url().includes("ticket="), tab.url());
  await other.close();
});
