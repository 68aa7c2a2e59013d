// The browser figures of `make bench` (tests/bench_browser.rs runs this):
//   - page load to interactive, cold, loopback: a fresh browser context (no
//     cache) per run, signed in, from navigation start to the dashboard's
//     data shown (its h1 there and nothing left "Loading…", then the frame
//     that draws it), read from the page's own clock (performance.now()
//     counts from navigation start). The page watches itself: a few lines
//     added before any of its scripts (a MutationObserver) note the moment
//     and report it on the console. Polling from outside
//     (page.waitForFunction) would run Playwright's own injected script in
//     the page while it loads, 40-60 ms of the renderer's time on this
//     2-core machine (seen in Chromium's traces), counted as ours;
//     Each run is paired with one loading a bare page (an `h1`, nothing
//     else) from a node server on loopback in a fresh context too: what the
//     browser itself costs before any page of ours runs (its renderer, its
//     own start-up pages), the floor under the figure on this machine;
//   - `seq 1 300000` rendered in the browser terminal: from pressing Enter
//     on the typed command to the row "300000" on the screen.
// Prints one JSON line: {"page_load_ms": [...], "bare_ms": [...], "seq_ms": [...]}.
// Environment: RINGLET_TEST_BROWSER, RINGLET_UI_URL, RINGLET_TICKET_URL (a
// fresh sign-in link), RINGLET_BENCH_PROFILE (a profile whose sessions run
// a shell with the prompt "$ "), RINGLET_PAGE_RUNS, RINGLET_SEQ_RUNS.

import { createServer } from "node:http";
import { join } from "node:path";

const modules = join(process.env.RINGLET_TEST_BROWSER, "node_modules");
const { chromium } = await import(join(modules, "playwright-core", "index.mjs"));
const BASE = process.env.RINGLET_UI_URL;
const pageRuns = Number(process.env.RINGLET_PAGE_RUNS || 20);
const seqRuns = Number(process.env.RINGLET_SEQ_RUNS || 5);

const browser = await chromium.launch({
  executablePath: process.env.RINGLET_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: process.getuid() === 0 ? ["--no-sandbox"] : [],
});

const bare = createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end("<!doctype html><title>bare</title><main><h1>Dashboard</h1></main>");
});
await new Promise((ok) => bare.listen(0, "127.0.0.1", ok));
const BARE = `http://127.0.0.1:${bare.address().port}/`;

try {
  // One sign-in; the cold runs start from its browser session token.
  const first = await browser.newContext();
  const page = await first.newPage();
  await page.goto(process.env.RINGLET_TICKET_URL);
  await page.waitForFunction(() => localStorage.getItem("ringlet.session"), null, { timeout: 30_000 });
  const token = await page.evaluate(() => localStorage.getItem("ringlet.session"));
  await first.close();

  // Runs in the page before its own scripts: once the dashboard's data is
  // in the DOM, waits for the next frame to be drawn (a task after the
  // animation frame callbacks), then reports the time.
  const watch = () => {
    const ready = () => {
      const h1 = document.querySelector("main h1");
      return h1 && /^Dashboard/.test(h1.textContent) && !document.querySelector("main .loading");
    };
    const seen = new MutationObserver(() => {
      if (!ready()) return;
      seen.disconnect();
      requestAnimationFrame(() => setTimeout(() => console.debug(`ringlet-shown ${performance.now()}`)));
    });
    seen.observe(document, { childList: true, subtree: true, characterData: true });
  };
  const coldLoad = async (url) => {
    const context = await browser.newContext();
    await context.addInitScript((t) => localStorage.setItem("ringlet.session", t), token);
    await context.addInitScript(watch);
    const p = await context.newPage();
    const shown = p.waitForEvent("console", { predicate: (m) => m.text().startsWith("ringlet-shown "), timeout: 30_000 });
    await p.goto(url, { waitUntil: "commit" });
    const at = Number((await shown).text().split(" ")[1]);
    await context.close();
    return at;
  };
  const pageLoad = [];
  const bareLoad = [];
  for (let i = 0; i < pageRuns + 1; i++) {
    const at = await coldLoad(`${BASE}#/dashboard`);
    const floor = await coldLoad(BARE);
    // The first run warms the daemon and the browser: not counted.
    if (i > 0) {
      pageLoad.push(at);
      bareLoad.push(floor);
    }
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript((t) => localStorage.setItem("ringlet.session", t), token);
  const p = await context.newPage();
  const reply = await p.request.post(`${BASE}api/terminal/sessions`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { profile: process.env.RINGLET_BENCH_PROFILE, sandbox: false, cols: 120, rows: 40 },
  });
  const created = await reply.json();
  if (!created.success) throw new Error(`creating the session: ${JSON.stringify(created)}`);
  const id = created.data.id;
  await p.goto(`${BASE}#/terminals/${id}?solo=1`);
  const rows = (want) => {
    const r = [...document.querySelectorAll(".xterm-rows")].find((x) => x.offsetParent !== null);
    if (!r) return false;
    const lines = [...r.children].map((c) => c.textContent.replace(/\u00a0/g, " ").trimEnd());
    return want === "prompt" ? lines.some((l) => /^\$$/.test(l)) && !lines.includes("300000") : lines.includes("300000");
  };
  await p.waitForFunction(rows, "prompt", { timeout: 30_000 });
  await p.locator(".xterm").first().click();
  const seq = [];
  for (let i = 0; i < seqRuns; i++) {
    await p.keyboard.type("seq 1 300000");
    const t0 = performance.now();
    await p.keyboard.press("Enter");
    await p.waitForFunction(rows, "done", { polling: "raf", timeout: 120_000 });
    seq.push(performance.now() - t0);
    await p.keyboard.type("clear");
    await p.keyboard.press("Enter");
    await p.waitForFunction(rows, "prompt", { timeout: 30_000 });
  }
  await p.request.delete(`${BASE}api/terminal/sessions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  await context.close();
  console.log(JSON.stringify({ page_load_ms: pageLoad, bare_ms: bareLoad, seq_ms: seq }));
} finally {
  await browser.close();
  bare.close();
}
