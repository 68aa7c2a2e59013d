// The suite's one Chromium (Debian's, headless), started by tests/browser.rs
// before `node --test` so the test files connect to it instead of each
// starting its own (a start costs seconds on a loaded machine). Prints the
// endpoint the files connect to (RINGLET_BROWSER_WS) as its one line, and
// closes the browser when its stdin closes (the harness dropping it).

import { join } from "node:path";

const modules = join(process.env.RINGLET_TEST_BROWSER, "node_modules");
const { chromium } = await import(join(modules, "playwright-core", "index.mjs"));
// Chromium refuses to run as root with its sandbox on.
const args = process.getuid() === 0 ? ["--no-sandbox"] : [];
const server = await chromium.launchServer({
  executablePath: process.env.RINGLET_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args,
});
console.log(server.wsEndpoint());
process.stdin.on("end", async () => {
  await server.close();
  process.exit(0);
});
process.stdin.resume();
