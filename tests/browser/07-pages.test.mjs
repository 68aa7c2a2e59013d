// Every page, late in the suite (the world then has profiles, sessions,
// usage and events to show): each renders with no console error, no
// uncaught exception and no CSP violation, and nothing wider than the
// screen, on a desktop (1280 px) and a phone (390 px); a screenshot of each
// lands in target/ui-shots/<page>-<width>.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BASE, PAGES, SHOTS, newContext, openBrowser, open, settled, signIn, watch } from "./world.mjs";

let page;
let checks;
const world = openBrowser({}, async ({ context }) => {
  page = await signIn(context);
  checks = watch(page);
});

for (const [width, height] of [
  [1280, 800],
  [390, 844],
]) {
  test(`every page at ${width} px renders with no error and no CSP violation`, async () => {
    await page.setViewportSize({ width, height });
    const failures = [];
    for (const name of PAGES) {
      await checks.clear();
      try {
        await open(page, name);
      } catch (e) {
        failures.push(`#/${name}: did not render: ${e.message.split("\n")[0]}`);
      }
      // Let late requests and live updates land before judging.
      await page.waitForTimeout(250);
      await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
      for (const p of await checks.problems()) failures.push(`#/${name}: ${p}`);
      // Nothing wider than the screen makes the whole page scroll sideways
      // (tables scroll inside their own wrapper).
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) failures.push(`#/${name}: ${overflow} px wider than the screen`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    assert.deepEqual(failures, [], `at ${width} px`);
  });
}


// The dashboard's rules come inside the page and the other pages' in
// static/pages.css, which js/app.js links before it shows the first of
// them: a tab opened straight on another page has that page's rules from
// its first frame, and a cold load of the dashboard asks for the file only
// after its own first frame.
test("a tab opened on another page has its styles; the dashboard's first frame does without them", async () => {
  // A new context: this browser's session, and nothing in its cache.
  const fresh = await newContext(world.browser, { storageState: await world.context.storageState() });
  const tab = await fresh.newPage();
  try {
    // Noted by the page itself when the dashboard's cards go in: whether
    // pages.css is linked by then.
    await fresh.addInitScript(() => {
      const seen = new MutationObserver(() => {
        if (!document.querySelector("main .card")) return;
        seen.disconnect();
        window.__pagesCssAtCards = !!document.querySelector('link[href$="/pages.css"]');
      });
      seen.observe(document, { childList: true, subtree: true });
    });
    await tab.goto(`${BASE}#/dashboard`);
    await settled(tab, "dashboard");
    assert.equal(await tab.evaluate(() => window.__pagesCssAtCards), false, "pages.css linked before the dashboard's cards");
    await tab.waitForFunction(() => document.querySelector('link[href$="/pages.css"]'), null, { timeout: 10_000 });

    await tab.goto(`${BASE}#/usage`);
    await tab.reload();
    await settled(tab, "usage");
    const shown = await tab.evaluate(() => getComputedStyle(document.querySelector(".usage-filters")).display);
    assert.equal(shown, "grid", "the usage page's own rule (pages.css) applies");
  } finally {
    await fresh.close();
  }
});
