// axe-core on every page: no violation of impact "serious" or "critical"
// (contrast, names, labels, landmarks...) in the light theme, and no
// contrast one in the dark theme (the themes differ only in colours; the
// other rules would find the same thing twice at twice the cost).
// The pages run with CSP bypassed here only so axe's bundle can be
// injected; the CSP itself is checked in 01-pages.

import { test } from "node:test";
import assert from "node:assert/strict";
import { AXE, PAGES, openBrowser, open, signIn } from "./world.mjs";

const world = openBrowser({ bypassCSP: true });

for (const theme of ["light", "dark"]) {
  test(`axe finds nothing serious on any page (${theme} theme)`, async () => {
    const page = await signIn(world.context);
    await page.evaluate((t) => localStorage.setItem("ringlet.theme", t), theme);
    await page.reload();
    const found = [];
    for (const name of PAGES) {
      await open(page, name);
      await page.waitForTimeout(250);
      if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async (onlyContrast) => {
        const options = { resultTypes: ["violations"] };
        if (onlyContrast) options.runOnly = { type: "rule", values: ["color-contrast"] };
        const r = await window.axe.run(document, options);
        return r.violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      }, theme === "dark");
      for (const v of violations) found.push(`#/${name}: ${v}`);
    }
    await page.evaluate(() => localStorage.removeItem("ringlet.theme"));
    assert.deepEqual(found, [], `${theme} theme`);
  });
}
