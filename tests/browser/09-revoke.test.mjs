// Revocation (last: it ends every browser session of the world): after
// `ringlet ui --revoke all` the page's token gets 401 on REST, its
// WebSockets close, and the page shows that it is signed out by itself.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, SHELL_PROFILE, openBrowser, ringlet, settled, signIn, until } from "./world.mjs";

const world = openBrowser();

test("a revoked browser session gets 401 and its WebSockets close", async () => {
  const sockets = [];
  world.context.on("page", (p) => p.on("websocket", (ws) => {
    const s = { url: ws.url(), closed: false };
    ws.on("close", () => (s.closed = true));
    sockets.push(s);
  }));
  const page = await signIn(world.context);
  // A terminal too, so both kinds of WebSocket are open.
  const id = JSON.parse(ringlet(["terminal", "list", "--json"]));
  void id;
  await page.goto(`${BASE}#/terminals?new=1&profile=${SHELL_PROFILE}`);
  await settled(page, "terminals");
  await page.getByRole("button", { name: /^start( session)?$/i }).click();
  await page.locator(".xterm").first().waitFor();
  await until("both WebSockets open", () => sockets.some((s) => /\/ws$/.test(s.url)) && sockets.some((s) => s.url.includes("/ws/terminal/")));
  const token = await page.evaluate(() => localStorage.getItem("ringlet.session"));
  const get = () => page.evaluate(async (t) => (await fetch("/api/profiles", { headers: { Authorization: `Bearer ${t}` } })).status, token);
  assert.equal(await get(), 200);

  ringlet(["ui", "--revoke", "all"]);
  assert.equal(await get(), 401, "the revoked token still works on REST");
  await until("every WebSocket closed", () => sockets.every((s) => s.closed), 5_000);
  await page.getByRole("heading", { name: "Sign in" }).waitFor({ timeout: 10_000 });
  for (const s of JSON.parse(ringlet(["terminal", "list", "--json"]))) {
    if (s.state === "running") ringlet(["terminal", "kill", s.id]);
  }
});
