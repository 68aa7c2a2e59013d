// Keyboard only: Tab reaches "Skip to content", then every page of the nav
// in order, each with a visible focus ring; Enter on a link opens its page;
// Tab walks the profile form's fields; and the terminal's keyboard trap has
// a documented way out (the key its `aria-keyshortcuts` names).

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PAGES, SHELL_PROFILE, openBrowser, open, ringlet, settled, signIn, until, waitScreen, watch } from "./world.mjs";

const world = openBrowser();

/// What has the focus: its accessible-ish name, tag, and whether a focus
/// ring shows (an outline or a box shadow).
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
    const label = el.labels && el.labels[0] ? el.labels[0].textContent : "";
    return {
      name: (el.getAttribute("aria-label") || label || el.textContent || el.value || "").trim(),
      tag: el.tagName.toLowerCase(),
      inTerminal: !!el.closest(".xterm"),
      ring,
      visible: el.getClientRects().length > 0,
    };
  });
}

async function tabUntil(page, what, pred, limit = 60) {
  const seen = [];
  // Already there (a form may focus its first field when it opens).
  const now = await focused(page);
  if (now && pred(now)) return now;
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const f = await focused(page);
    seen.push(f && f.name);
    if (f && pred(f)) return f;
  }
  assert.fail(`Tab never reached ${what}; it went through: ${JSON.stringify(seen)}`);
}

test("Tab goes through the skip link and the whole nav with a visible focus", async () => {
  const page = await signIn(world.context);
  const checks = watch(page);
  await page.goto(`${BASE}#/dashboard`);
  await settled(page, "dashboard");
  // From the top of the document.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("Tab");
  const first = await focused(page);
  assert.match(first?.name || "", /skip to content/i);
  const titles = PAGES.map((p) => p[0].toUpperCase() + p.slice(1));
  for (const title of titles) {
    const f = await tabUntil(page, `the ${title} link`, (f) => f.tag === "a" && f.name === title, 5);
    assert.ok(f.ring, `the ${title} link shows no focus ring`);
  }
  // Back to Profiles with Shift+Tab, and Enter opens it.
  for (let i = 0; i < 20; i++) {
    const f = await focused(page);
    if (f && f.name === "Profiles") break;
    await page.keyboard.press("Shift+Tab");
  }
  assert.equal((await focused(page))?.name, "Profiles");
  await page.keyboard.press("Enter");
  await settled(page, "profiles");
  assert.deepEqual(await checks.problems(), []);
});

test("the profile form is reached and filled with the keyboard alone", async () => {
  const page = await signIn(world.context);
  await open(page, "profiles");
  const submit = page.getByRole("button", { name: /create profile/i });
  if (!(await submit.isVisible())) {
    await tabUntil(page, "the New profile button", (f) => /new profile/i.test(f.name));
    await page.keyboard.press("Enter");
    await submit.waitFor();
  }
  const alias = await tabUntil(page, "the Alias field", (f) => /alias/i.test(f.name));
  assert.ok(alias.ring, "the Alias field shows no focus ring");
  await page.keyboard.type("kbprofile");
  await tabUntil(page, "the API key field", (f) => /^api key/i.test(f.name));
  await tabUntil(page, "the Create profile button", (f) => /create profile/i.test(f.name));
});

test("the terminal's keyboard trap has a documented way out", async () => {
  const page = await signIn(world.context);
  await page.goto(`${BASE}#/terminals?new=1&profile=${SHELL_PROFILE}`);
  await settled(page, "terminals");
  await tabUntil(page, "the Start session button", (f) => /^start( session)?$/i.test(f.name));
  await page.keyboard.press("Enter");
  await page.locator(".xterm").first().waitFor();
  await waitScreen(page, "the shell prompt", (s) => /^\$ ?$/m.test(s));
  // The terminal gets the keyboard (it may take it by itself, or by Tab).
  if (!(await focused(page))?.inTerminal) await tabUntil(page, "the terminal", (f) => f.inTerminal);
  // Tab inside the terminal is the shell's (completion), not the page's.
  await page.keyboard.type("echo kb-$((2+3))");
  await page.keyboard.press("Enter");
  await waitScreen(page, "the echo", (s) => s.includes("kb-5"));
  await page.keyboard.press("Tab");
  assert.ok((await focused(page))?.inTerminal, "Tab left the terminal: programs never see it");
  // The way out, as documented: `aria-keyshortcuts` on the terminal (or an
  // ancestor), or the hint the page shows under it.
  let key = await page.locator(".xterm").first().evaluate((el) => el.closest("[aria-keyshortcuts]")?.getAttribute("aria-keyshortcuts"));
  if (!key && (await page.getByText(/Ctrl\+Shift\+↑ leaves the terminal/).count()) > 0) key = "Control+Shift+ArrowUp";
  assert.ok(key, "the terminal documents no key to leave it (aria-keyshortcuts, or a hint on the page)");
  await page.keyboard.press(key.split(" ")[0]);
  const out = await focused(page);
  assert.ok(out && !out.inTerminal && out.visible, `${key} did not move the focus out of the terminal: ${JSON.stringify(out)}`);
  const id = JSON.parse(ringlet(["terminal", "list", "--json"])).find?.((s) => s.profile === SHELL_PROFILE && s.state === "running")?.id;
  if (id) ringlet(["terminal", "kill", id]);
  void until;
});
