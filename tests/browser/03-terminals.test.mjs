// Terminals in the browser: a session running a real shell (typed into,
// resized, reloaded and found on the same screen, killed) and one running
// the real Claude Code against the mock provider, whose fullscreen UI is
// scrolled back with the mouse wheel, then connected to from a second tab
// (which must show the same screen as the first) and killed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, CLAUDE_PROFILE, MOCK_REPLY, SHELL_PROFILE, WORK, openBrowser, ringlet, screenText, settled, signIn, sleep, until, waitScreen, watch } from "./world.mjs";

const world = openBrowser();

/// The sessions as `ringlet terminal list --json` shows them.
export function sessions() {
  const v = JSON.parse(ringlet(["terminal", "list", "--json"]));
  return Array.isArray(v) ? v : v.sessions || [];
}

/// Starts a session of `profile` through the new-session form; its id.
export async function startSession(page, profile) {
  const before = new Set(sessions().map((s) => s.id));
  await page.goto(`${BASE}#/terminals?new=1&profile=${encodeURIComponent(profile)}`);
  await settled(page, "terminals");
  const start = page.getByRole("button", { name: /^start( session)?$/i });
  await start.waitFor();
  const form = page.locator("form").filter({ has: start });
  const dir = form.getByLabel(/working dir/i);
  if ((await dir.count()) > 0) await dir.fill(WORK);
  await start.click();
  const session = await until("the new session", () => sessions().find((s) => !before.has(s.id)));
  assert.equal(session.profile, profile, JSON.stringify(session));
  await page.locator(".xterm").first().waitFor({ state: "visible" });
  return session.id;
}

/// The terminal's screen with its trailing blank rows dropped.
const trimmed = (s) => s.replace(/\s+$/, "");

/// Opens the session again (a reload: a new page, a new WebSocket) and
/// expects the same screen the old connection showed, at the same size.
/// The page's live stream connects late on purpose: the header said
/// "Connecting…" (taller at this width) while the terminal was sized, and
/// the reloaded terminal came out two rows short.
async function reconnectSameScreen(page, id, before) {
  const size = () => {
    const s = sessions().find((x) => x.id === id);
    return s && `${s.cols}x${s.rows}`;
  };
  const sizeBefore = size();
  await page.routeWebSocket(/\/ws$/, async (ws) => {
    await sleep(2500);
    ws.connectToServer();
  });
  await page.goto(`${BASE}#/terminals/${id}`);
  await page.reload();
  await settled(page, "terminals");
  let now = "";
  await until(
    "the same screen after reconnecting",
    async () => {
      now = trimmed(await screenText(page));
      return now === trimmed(before) && (await page.locator("#conn.up").count()) > 0;
    },
    15_000,
  ).catch(() => assert.equal(now, trimmed(before), `the reconnected screen differs (session size ${sizeBefore} before, ${size()} after)`));
  // Still the same once the live stream has connected and the layout settled.
  await sleep(500);
  assert.equal(size(), sizeBefore, "the session's size after the reload");
  assert.equal(trimmed(await screenText(page)), trimmed(before));
  await page.unrouteAll();
}

/// A second client connecting now (another tab) must show the screen the
/// first one, connected all along, shows: the daemon's reproduced screen.
/// (Claude Code may redraw when the new tab's terminal takes the focus; the
/// first client sees that redraw live, so the two still agree.)
async function secondClientSameScreen(page, id) {
  const other = await page.context().newPage();
  await other.goto(`${BASE}#/terminals/${id}`);
  await settled(other, "terminals");
  let first = "";
  let second = "";
  await until(
    "the same screen in a second client",
    async () => {
      first = trimmed(await screenText(page));
      second = trimmed(await screenText(other));
      return first !== "" && first === second;
    },
    15_000,
  ).catch(() => assert.equal(second, first, "a client connecting now sees another screen than the one connected all along"));
  await other.close();
}

async function kill(page, id) {
  await page.getByRole("button", { name: /^kill/i }).first().click();
  const dialog = page.getByRole("dialog");
  await dialog.getByRole("button", { name: /kill/i }).click();
  await until("the session ended", () => {
    const s = sessions().find((x) => x.id === id);
    return !s || s.state !== "running";
  });
  await page.getByText(/exited/i).first().waitFor({ timeout: 10_000 });
}

test("a real shell: type, resize, reconnect to the same screen, kill", async () => {
  const page = await signIn(world.context);
  const checks = watch(page);
  const id = await startSession(page, SHELL_PROFILE);
  await waitScreen(page, "the shell prompt", (s) => /^\$ ?$/m.test(s));
  await page.locator(".xterm").first().click();
  await page.keyboard.type("echo typed-$((6*7))");
  await page.keyboard.press("Enter");
  await waitScreen(page, "the echo", (s) => s.includes("typed-42"));

  // Resize: a narrower window, a smaller terminal, and the program sees it.
  const wide = sessions().find((s) => s.id === id);
  await page.setViewportSize({ width: 900, height: 600 });
  const narrow = await until("the resize to reach the session", () => {
    const s = sessions().find((x) => x.id === id);
    return s && s.cols < wide.cols && s;
  });
  await page.keyboard.type("stty size");
  await page.keyboard.press("Enter");
  await waitScreen(page, "stty's answer", (s) => s.includes(`${narrow.rows} ${narrow.cols}`));

  await page.keyboard.type("seq 1 200");
  await page.keyboard.press("Enter");
  const screen = await waitScreen(page, "seq's end", (s) => /^200$/m.test(s) && /^\$ ?$/m.test(s.split("200").pop()));
  await reconnectSameScreen(page, id, screen);
  await page.setViewportSize({ width: 1280, height: 800 });
  await kill(page, id);
  assert.deepEqual(await checks.problems(), []);
});

/// Claude Code 2.1.332's folder-trust dialog selects "No, exit" first and
/// drops keys for a moment: move to "Yes" and confirm only once it shows.
async function trustThisFolder(page) {
  const YES = "Yes, I trust this folder";
  await waitScreen(page, "the folder-trust question", (s) => s.includes(YES), 60_000);
  await sleep(1500);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const screen = await screenText(page);
    if (!screen.includes(YES)) return;
    assert.ok(!screen.includes("isn't trusted"), `Claude Code took it as No:\n${screen}`);
    assert.ok(Date.now() < deadline, `the trust dialog stayed:\n${screen}`);
    const onYes = screen.split("\n").some((l) => l.trimStart().startsWith("❯") && l.includes(YES));
    await page.keyboard.press(onYes ? "Enter" : "ArrowDown");
    await sleep(1000);
  }
}

test("the real Claude Code: prompt, the mock's reply, wheel scrollback, a second client on the same screen, kill", async () => {
  const page = await signIn(world.context);
  const checks = watch(page);
  const id = await startSession(page, CLAUDE_PROFILE);
  await page.locator(".xterm").first().click();
  await trustThisFolder(page);
  await waitScreen(page, "the prompt", (s) => !s.includes("trust this folder") && s.includes("❯"), 60_000);
  // Its fullscreen UI tracks the mouse: xterm.js marks the terminal so.
  await until("Claude Code's mouse tracking", () => page.evaluate(() => !!document.querySelector(".xterm.enable-mouse-events")), 20_000);
  await sleep(500);
  await page.keyboard.type("say pong");
  await waitScreen(page, "the typed prompt", (s) => s.includes("say pong"));
  await page.keyboard.press("Enter");
  const answered = await waitScreen(page, "the end of the mock's reply", (s) => s.includes("BROWSER-MOCK-REPLY-END"), 60_000);
  // The reply is taller than the terminal: its top is scrolled away ...
  assert.ok(!answered.includes(MOCK_REPLY), `the whole reply fits on the screen; the test needs it taller:\n${answered}`);
  // ... and the mouse wheel over the terminal brings it back (Claude Code
  // scrolls its own fullscreen view from the wheel's mouse reports).
  const box = await page.locator(".xterm").first().boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  let scrolled = "";
  await until(
    "the top of the reply after wheeling up",
    async () => {
      await page.mouse.wheel(0, -400);
      await sleep(150);
      scrolled = await screenText(page);
      return scrolled.includes(MOCK_REPLY);
    },
    20_000,
  );
  // The view holds still where the wheel left it.
  await sleep(1500);
  scrolled = await screenText(page);
  await sleep(1500);
  assert.equal(trimmed(await screenText(page)), trimmed(scrolled), "Claude Code's view moved by itself after the wheel");
  await secondClientSameScreen(page, id);
  await kill(page, id);
  assert.deepEqual(await checks.problems(), []);
});
