// Usage in the browser: after the real Claude Code talked to the mock (the
// terminal test, or a run started here when this file runs alone), the
// usage page shows exactly the tokens the mock reported: every call is 123
// input and 45 output tokens, and the page's totals are the CLI's.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CLAUDE_PROFILE, openBrowser, open, ringlet, signIn, until, watch } from "./world.mjs";

const MOCK_INPUT = 123;
const MOCK_OUTPUT = 45;

const world = openBrowser();

function totals() {
  return JSON.parse(ringlet(["usage", "--json"])).totals;
}

test("the usage page shows the mock's exact tokens", async () => {
  if (totals().input_tokens === 0) ringlet(["profiles", "run", CLAUDE_PROFILE, "--", "-p", "say pong"]);
  const t = await until("usage recorded", () => {
    const t = totals();
    return t.input_tokens > 0 && t;
  });
  // Every model call the mock answered counts 123 in and 45 out.
  const calls = t.input_tokens / MOCK_INPUT;
  assert.ok(Number.isInteger(calls) && calls >= 1, JSON.stringify(t));
  assert.equal(t.output_tokens, calls * MOCK_OUTPUT, JSON.stringify(t));

  const page = await signIn(world.context);
  const checks = watch(page);
  await open(page, "usage");
  const main = page.getByRole("main");
  for (const n of [t.input_tokens, t.output_tokens]) {
    const shown = n.toLocaleString("en-US");
    await main.getByText(shown, { exact: false }).first().waitFor({ timeout: 10_000 }).catch(async () => {
      assert.fail(`the usage page does not show ${shown}:\n${await main.innerText()}`);
    });
  }
  // The daily chart has a mark for today.
  assert.ok((await main.locator("svg").count()) > 0, "no chart on the usage page");
  assert.deepEqual(await checks.problems(), []);
});
