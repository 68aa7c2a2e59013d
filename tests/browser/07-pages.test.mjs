// Every page, late in the suite (the world then has profiles, sessions,
// usage and events to show): each renders with no console error, no
// uncaught exception and no CSP violation, and nothing wider than the
// screen, on a desktop (1280 px) and a phone (390 px); a screenshot of each
// lands in target/ui-shots/<page>-<width>.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { PAGES, SHOTS, openBrowser, open, signIn, watch } from "./world.mjs";

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

