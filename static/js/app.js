// The web UI's entry point: signs in, routes `#/<page>[/<arg>...][?query]`
// to one module per page (js/pages/<page>.js), and shows whether the live
// event stream is connected. Each page module exports `title` and
// `mount(view, ctx)`, which fills `view` and may return a cleanup function
// called when the user leaves the page. `ctx`: `args` (path segments after
// the page), `query` (URLSearchParams), `navigate(hash)`.

import { redeemTicket, token, onSignedOut, ApiError } from "./api.js";
import * as live from "./live.js";
import { h, toast } from "./ui.js";
// The page `ringlet ui` opens comes with the rest (index.html preloads
// it), not one more round trip after it; the others load when visited.
import * as dashboard from "./pages/dashboard.js";

export const PAGES = ["dashboard", "profiles", "terminals", "usage", "proxies", "agents", "registry", "events", "doctor", "settings"];

const $ = (id) => document.getElementById(id);
let cleanup = null;
let routeSeq = 0;
let pageStyles = null;

/// Links static/pages.css, the other pages' rules, once; resolves when it
/// is in (or failed: a page without its own rules still works). The
/// dashboard's rules come inside index.html (app.css), so a cold load of
/// the page `ringlet ui` opens parses those alone.
function loadPageStyles() {
  pageStyles ??= new Promise((done) => {
    const href = new URL("../pages.css", import.meta.url).href;
    document.head.append(h("link", { rel: "stylesheet", href, onload: done, onerror: done }));
  });
  return pageStyles;
}

applySettings();

function applySettings() {
  const s = document.documentElement.dataset;
  const theme = localStorage.getItem("ringlet.theme");
  if (theme === "light" || theme === "dark") s.theme = theme;
  else delete s.theme;
}
window.addEventListener("storage", (e) => e.key === "ringlet.theme" && applySettings());
export { applySettings };

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, q] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = PAGES.includes(parts[0]) ? parts[0] : "dashboard";
  return { page, args: parts.slice(1), query: new URLSearchParams(q || "") };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (location.hash.startsWith("#ticket=")) {
    await signIn();
    return;
  }
  if (!token()) {
    showSignIn();
    return;
  }
  const seq = ++routeSeq;
  const { page, args, query } = parseHash();
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  closeNav();
  const view = $("view");
  view.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  $("signin").hidden = true;
  document.body.classList.remove("signed-out");
  let mod;
  try {
    mod = page === "dashboard" ? dashboard : (await Promise.all([import(`./pages/${page}.js`), loadPageStyles()]))[0];
  } catch (e) {
    view.replaceChildren(h("p", { class: "error" }, `This page failed to load: ${e.message}`));
    return;
  }
  if (seq !== routeSeq) return;
  document.title = `${mod.title} · ringlet`;
  view.replaceChildren();
  try {
    const done = await mod.mount(view, { args, query, navigate });
    if (seq !== routeSeq) {
      if (typeof done === "function") done();
      return;
    }
    cleanup = typeof done === "function" ? done : null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    view.append(h("p", { class: "error", role: "alert" }, e.message || String(e)));
  }
}

async function signIn() {
  try {
    await redeemTicket();
    $("signin-error").textContent = "";
    // The stream may be open with the session the ticket replaced.
    live.stop();
    live.start();
  } catch (e) {
    $("signin-error").textContent = e.message;
  }
  route();
}

function showSignIn(why) {
  live.stop();
  if (cleanup) cleanup();
  cleanup = null;
  $("view").replaceChildren();
  $("signin").hidden = false;
  document.body.classList.add("signed-out");
  document.title = "Sign in · ringlet";
  if (why) $("signin-error").textContent = why;
}

function closeNav() {
  $("nav").classList.remove("open");
  $("nav-toggle").setAttribute("aria-expanded", "false");
}

$("nav-toggle").addEventListener("click", () => {
  const open = $("nav").classList.toggle("open");
  $("nav-toggle").setAttribute("aria-expanded", String(open));
});

onSignedOut((why) => showSignIn(why));

live.onConnection((connected, reconnected) => {
  const el = $("conn");
  el.textContent = connected ? "Live" : token() ? "Disconnected: retrying…" : "";
  el.className = `conn ${connected ? "up" : "down"}`;
  if (reconnected) {
    toast("Reconnected to the daemon.");
    route();
  }
});

window.addEventListener("hashchange", route);
// Events that happened while the page loaded, before its stream opened.
live.on("@missed", () => route());
// The first page's own calls go first: the event stream (a socket, then
// the daemon's record of up to 500 events) opens once the page has its
// data and has drawn it (or half a second later in a tab not shown, where
// frames wait), and does not compete with it while it loads; so do the
// other pages' styles. With a ticket in the address, the stream starts
// once it is traded.
const ticketed = location.hash.startsWith("#ticket=");
route()
  .catch((e) => console.error(e))
  .then(() => {
    if (!token() || ticketed) return;
    const open = () => {
      live.start(); // a no-op once the stream is open
      loadPageStyles();
    };
    requestAnimationFrame(() => setTimeout(open));
    setTimeout(open, 500);
  });
