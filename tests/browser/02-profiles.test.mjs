// A profile created through the form: the key typed into the password field
// lands in the daemon's secret store (the CLI of the same world prints it
// from there), nothing the page keeps holds it, and the profile runs: the
// real Claude Code answers through it from the mock provider.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CLAUDE_PROFILE, MOCK_PROVIDER, MOCK_REPLY, openBrowser, open, ringlet, signIn, storedValues, until, watch } from "./world.mjs";

const ALIAS = "formmade";
const KEY = process.env.RINGLET_FORM_KEY || "sk-ant-api03-browserform-0123456789abcdefKLMN";

const world = openBrowser();

/// The create form: the form holding the "Create profile" button.
async function createForm(page) {
  const submit = page.getByRole("button", { name: /create profile/i });
  if (!(await submit.isVisible())) {
    await page
      .getByRole("button", { name: /new profile/i })
      .or(page.getByRole("link", { name: /new profile/i }))
      .first()
      .click();
  }
  await submit.waitFor();
  return page.locator("form").filter({ has: submit });
}

test("a profile created through the form keeps its key in the store and runs", async () => {
  const page = await signIn(world.context);
  const checks = watch(page);
  await open(page, "profiles");
  const form = await createForm(page);
  await form.getByRole("combobox", { name: /^agent/i }).selectOption("claude");
  await form.getByRole("textbox", { name: /alias/i }).fill(ALIAS);
  const provider = form.getByRole("combobox", { name: /^provider/i });
  // The providers offered follow the agent: wait for the test world's one.
  await until("the mock provider offered", () => provider.locator(`option[value="${MOCK_PROVIDER}"]`).count());
  await provider.selectOption(MOCK_PROVIDER);
  const keyField = form.getByLabel(/^api key/i);
  assert.equal(await keyField.getAttribute("type"), "password");
  await keyField.fill(KEY);
  await form.getByRole("button", { name: /create profile/i }).click();

  const inspected = await until("the profile created", () => {
    try {
      return JSON.parse(ringlet(["profiles", "inspect", ALIAS, "--json"]));
    } catch {
      return null;
    }
  });
  assert.equal(inspected.agent, "claude");
  assert.equal(inspected.provider, MOCK_PROVIDER);
  await page.getByText(ALIAS).first().waitFor({ timeout: 10_000 });
  // The key is in the daemon's store (the CLI reads it from there) ...
  assert.ok(ringlet(["profiles", "env", ALIAS]).includes(KEY), "the key is not in the secret store");
  // ... and nowhere in the page: not the DOM, not the form, not storage.
  const html = await page.content();
  assert.ok(!html.includes(KEY), "the key is still in the page");
  const fieldValues = await page.evaluate(() => [...document.querySelectorAll("input")].map((i) => i.value));
  assert.ok(!fieldValues.includes(KEY), "the key is still in a field");
  assert.ok(!JSON.stringify(await storedValues(page)).includes(KEY), "the page stored the key");
  assert.deepEqual(await checks.problems(), []);

  // The profile runs: the real Claude Code, the mock's answer.
  const out = ringlet(["profiles", "run", ALIAS, "--", "-p", "say pong"]);
  assert.ok(out.includes(MOCK_REPLY), `the run did not answer from the mock:\n${out}`);
});

test("a refused profile gets the daemon's own error, and nothing changes", async () => {
  const page = await signIn(world.context);
  await open(page, "profiles");
  const form = await createForm(page);
  await form.getByRole("combobox", { name: /^agent/i }).selectOption("claude");
  // An alias that passes the form's own checks but exists already.
  await form.getByRole("textbox", { name: /alias/i }).fill(CLAUDE_PROFILE);
  const provider = form.getByRole("combobox", { name: /^provider/i });
  await until("the mock provider offered", () => provider.locator(`option[value="${MOCK_PROVIDER}"]`).count());
  await provider.selectOption(MOCK_PROVIDER);
  await form.getByLabel(/^api key/i).fill("sk-ant-api03-refused-0123456789abcdefKLMN");
  await form.getByRole("button", { name: /create profile/i }).click();
  // The daemon's refusal, shown where the user looks (the form's alert).
  const said = await until("an error shown", async () => {
    const texts = await page.getByRole("alert").allInnerTexts();
    return texts.find((t) => t.trim() !== "");
  });
  assert.match(said, /already exists/i, `the page said: ${said}`);
  assert.ok(said.includes(CLAUDE_PROFILE), `the page said: ${said}`);
  // The existing profile kept its key.
  assert.ok(!ringlet(["profiles", "env", CLAUDE_PROFILE]).includes("refused"), "the refused key replaced the profile's");
});
