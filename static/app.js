// ringlet's web UI: signs in with the one-time ticket `ringlet ui` puts in
// the URL fragment, keeps the token in sessionStorage (never in a URL, a
// cookie or localStorage), shows profiles, terminal sessions and usage from
// the REST API, follows the /ws event stream, and shows a terminal session
// in the page (term.js is the emulator; the view below draws its grid and
// sends the keys). Everything is rendered with textContent and DOM calls:
// nothing the daemon or an agent sends is ever parsed as HTML.
"use strict";

const KEY = "ringlet-token";
const $ = (id) => document.getElementById(id);

// The ticket leaves the address bar before anything else happens, so only a
// spent ticket can end up in the browser's history.
async function signIn() {
  const match = /^#ticket=([0-9a-f]{64})$/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", location.pathname);
  const reply = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ticket: match[1] }),
  });
  const body = await reply.json().catch(() => ({}));
  if (reply.ok && body.success) {
    sessionStorage.setItem(KEY, body.data.token);
  } else {
    $("signin-error").textContent = (body.error && body.error.message) || `login failed (${reply.status})`;
  }
}

async function api(method, path) {
  const reply = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
  });
  const body = await reply.json().catch(() => ({}));
  if (reply.status === 401) {
    signedOut("The token was refused (rotated?): sign in again.");
    throw new Error("unauthorized");
  }
  if (!body.success) throw new Error((body.error && body.error.message) || `${method} ${path}: ${reply.status}`);
  return body.data;
}

function signedOut(why) {
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("signin").hidden = false;
  $("status").textContent = "";
  if (why) $("signin-error").textContent = why;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  return td;
}

function fill(table, empty, items, render) {
  const body = $(table).tBodies[0];
  body.replaceChildren();
  for (const item of items) render(body.insertRow(), item);
  $(empty).hidden = items.length > 0;
}

function when(stamp) {
  return stamp ? new Date(stamp).toLocaleString() : "never";
}

async function refreshStatus() {
  const s = await api("GET", "/api/daemon/status");
  $("status").textContent = `daemon ${s.version}, pid ${s.pid}, up ${s.uptime_secs} s, ${s.requests_served} requests`;
}

async function refreshProfiles() {
  const data = await api("GET", "/api/profiles");
  fill("profiles", "profiles-empty", data.profiles, (row, p) => {
    for (const v of [p.alias, p.agent, p.provider, p.model, p.runs]) cell(row, v);
    cell(row, when(p.last_used));
  });
}

async function refreshSessions() {
  const sessions = await api("GET", "/api/terminal/sessions");
  fill("sessions", "sessions-empty", sessions, (row, t) => {
    cell(row, t.id);
    cell(row, t.profile);
    cell(row, t.state === "exited" ? `exited (${t.exit_code})` : t.state);
    cell(row, t.clients);
    cell(row, t.sandbox);
    cell(row, when(t.created_at));
    const actions = row.insertCell();
    const open = document.createElement("button");
    open.textContent = "Open";
    open.addEventListener("click", () => openTerminal(t.id));
    actions.append(open);
    if (t.state === "running") {
      const kill = document.createElement("button");
      kill.textContent = "Kill";
      kill.addEventListener("click", () => api("DELETE", `/api/terminal/sessions/${encodeURIComponent(t.id)}`).catch(showError));
      actions.append(kill);
    }
  });
}

async function refreshUsage() {
  const u = await api("GET", "/api/usage?period=7d");
  const t = u.totals;
  const cost = typeof t.cost_usd === "number" ? `$${t.cost_usd.toFixed(2)}` : "n/a";
  $("usage").textContent = `${t.messages} messages, ${t.total_tokens.toLocaleString()} tokens, ${cost}` +
    (u.unpriced_models && u.unpriced_models.length ? ` (unpriced: ${u.unpriced_models.join(", ")})` : "");
}

function showError(e) {
  if (e.message !== "unauthorized") $("status").textContent = `error: ${e.message}`;
}

function refreshAll() {
  return Promise.all([refreshStatus(), refreshProfiles(), refreshSessions(), refreshUsage()]).catch(showError);
}

// Events: each one is listed; the ones that change a table refresh it.
function follow() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const ws = new WebSocket(url, ["bearer", sessionStorage.getItem(KEY)]);
  ws.addEventListener("message", (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    if (!ev.type || ev.type === "subscribed") return;
    const li = document.createElement("li");
    li.textContent = `${new Date(ev.timestamp || Date.now()).toLocaleTimeString()} ${ev.type} ${JSON.stringify(ev.data || {})}`;
    $("events").prepend(li);
    while ($("events").children.length > 100) $("events").lastChild.remove();
    if (ev.type.startsWith("Profile")) refreshProfiles().catch(showError);
    if (ev.type.startsWith("Terminal") || ev.type.startsWith("ProfileSt")) refreshSessions().catch(showError);
    if (ev.type.startsWith("Usage")) refreshUsage().catch(showError);
  });
  // Reconnect after the daemon restarts (it idles out without clients).
  ws.addEventListener("close", () => {
    if (sessionStorage.getItem(KEY)) setTimeout(() => refreshAll().then(follow), 3000);
  });
}

// The terminal view: one session at a time, in a panel over the page.
// Output frames go to the emulator and a redraw is scheduled for the next
// animation frame; only the rows whose line changed are rebuilt, so a
// selection elsewhere on the screen survives. Closing the view only
// disconnects: the session runs on.
const view = {
  id: null, ws: null, term: null, state: "", replaying: false,
  rows: [], drawn: [], raf: 0, syncSince: 0, offset: 0, scrolled: 0,
};
const encoder = new TextEncoder();
const MAC = /Mac|iPhone|iPad/.test(navigator.platform || "");

function openTerminal(id) {
  closeTerminal();
  view.id = id;
  view.offset = 0;
  $("term").hidden = false;
  $("term-title").textContent = id;
  $("term-state").textContent = "connecting…";
  $("term-message").textContent = "";
  newEmulator(80, 24);
  connect();
  $("term-input").focus();
}

function closeTerminal() {
  const ws = view.ws;
  view.ws = null;
  view.id = null;
  if (ws) ws.close();
  $("term").hidden = true;
}

function newEmulator(cols, rows) {
  view.term = new RingletTerm.Terminal(cols, rows, {
    scrollback: 2000,
    onReply: (s) => { if (!view.replaying) send(s); },
    onTitle: (t) => { $("term-title").textContent = t ? `${view.id}: ${t}` : view.id; },
  });
  view.scrolled = 0;
  $("term-rows").replaceChildren();
  view.rows = [];
  view.drawn = [];
}

function connect() {
  const id = view.id;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/terminal/${encodeURIComponent(id)}`;
  const ws = new WebSocket(url, ["bearer", sessionStorage.getItem(KEY)]);
  ws.binaryType = "arraybuffer";
  view.ws = ws;
  $("term-reconnect").hidden = true;
  let first = false, oldSession = false;
  ws.addEventListener("message", (m) => {
    if (view.ws !== ws) return;
    if (typeof m.data !== "string") {
      // The first frame after `connected` is the scrollback (when there is
      // any): its queries were answered long ago, so they get no answer now
      // (it would reach the program as typed text). A session started a
      // moment ago may be waiting for one, though.
      view.replaying = first && oldSession;
      first = false;
      view.term.write(new Uint8Array(m.data));
      view.replaying = false;
      schedule();
      return;
    }
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg.type === "connected") {
      const s = msg.session || {};
      first = true;
      oldSession = s.state !== "running" || !(Date.now() - Date.parse(s.created_at) < 3000);
      newEmulator(s.cols, s.rows);
      sessionState(s.state, s.exit_code);
      fit(true);
    } else if (msg.type === "resized") {
      view.term.resize(msg.cols, msg.rows);
      sessionState();
      schedule();
    } else if (msg.type === "state_changed") {
      sessionState(msg.state, msg.exit_code);
    } else if (msg.type === "error") {
      $("term-message").textContent = `error: ${msg.message}`;
    }
  });
  ws.addEventListener("close", (e) => {
    if (view.ws !== ws) return;
    view.ws = null;
    // 1013: the daemon dropped this client for falling behind; the
    // scrollback on reconnecting fills the gap.
    if (e.code === 1013) return setTimeout(() => { if (view.id === id && !view.ws) connect(); }, 500);
    $("term-message").textContent = `disconnected${e.reason ? `: ${e.reason}` : ""}`;
    $("term-reconnect").hidden = false;
  });
}

function sessionState(state, code) {
  if (state) view.state = state === "exited" ? `exited with code ${code}` : state;
  $("term-state").textContent = `${view.state || ""}, ${view.term.cols}×${view.term.rows}`;
}

function send(data) {
  if (view.ws && view.ws.readyState === WebSocket.OPEN) {
    view.ws.send(typeof data === "string" ? encoder.encode(data) : data);
  }
}

function typed(s) {
  view.offset = 0;
  send(s);
  schedule();
}

// Columns and rows that fit the panel, from the size of one character.
function fit(force) {
  const box = $("term-screen");
  const probe = $("term-probe");
  const cell = probe.getBoundingClientRect();
  const cw = cell.width / probe.textContent.length, ch = cell.height;
  if (!cw || !ch) return;
  const style = getComputedStyle(box);
  const width = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const height = box.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const cols = Math.max(2, Math.min(1000, Math.floor(width / cw)));
  const rows = Math.max(1, Math.min(1000, Math.floor(height / ch)));
  if (force || cols !== view.term.cols || rows !== view.term.rows) {
    view.term.resize(cols, rows);
    if (view.ws && view.ws.readyState === WebSocket.OPEN) {
      view.ws.send(JSON.stringify({ type: "resize", cols, rows }));
    }
    sessionState();
    schedule();
  }
}

function schedule() {
  if (!view.raf) view.raf = requestAnimationFrame(draw);
}

// 16 colours by class (app.css), the others through the CSSOM, which the
// CSP allows whatever style-src says (it governs style attributes and
// elements, not element.style).
const CUBE = [0, 95, 135, 175, 215, 255];
function cssColor(c) {
  if (c >= RingletTerm.RGB) return `#${(c & 0xffffff).toString(16).padStart(6, "0")}`;
  if (c >= 232) return `rgb(${8 + 10 * (c - 232)},${8 + 10 * (c - 232)},${8 + 10 * (c - 232)})`;
  c -= 16;
  return `rgb(${CUBE[Math.floor(c / 36)]},${CUBE[Math.floor(c / 6) % 6]},${CUBE[c % 6]})`;
}

function paint(span, prop, c, prefix) {
  if (c < 16) span.classList.add(prefix + c);
  else span.style[prop] = cssColor(c);
}

function drawRun(r) {
  const T = RingletTerm;
  let fg = r.fg, bg = r.bg;
  if (r.fl & T.INVERSE) [fg, bg] = [bg < 0 ? "bg" : bg, fg < 0 ? "fg" : fg];
  if (fg === -1 && bg === -1 && !r.fl && !r.wide && !r.cursor) return document.createTextNode(r.text);
  const span = document.createElement("span");
  span.textContent = r.text;
  if (fg === "bg") span.classList.add("t-fbg");
  else if (fg !== -1) paint(span, "color", fg, "t-f");
  if (bg === "fg") span.classList.add("t-bfg");
  else if (bg !== -1) paint(span, "backgroundColor", bg, "t-b");
  const flags = [[T.BOLD, "t-bold"], [T.DIM, "t-dim"], [T.ITALIC, "t-it"], [T.UNDERLINE, "t-ul"],
    [T.STRIKE, "t-st"], [T.HIDDEN, "t-hid"], [T.BLINK, "t-blink"]];
  for (const [bit, name] of flags) if (r.fl & bit) span.classList.add(name);
  if (r.wide) span.classList.add("t-wide");
  if (r.cursor) span.classList.add("t-cursor");
  return span;
}

function draw() {
  view.raf = 0;
  const t = view.term;
  if (!t || $("term").hidden) return;
  // ?2026: the program is drawing a frame; wait for its end (a while).
  const now = performance.now();
  if (t.synced) {
    view.syncSince = view.syncSince || now;
    if (now - view.syncSince < 200) return schedule();
  }
  view.syncSince = 0;
  const box = $("term-rows");
  while (view.rows.length < t.rows) {
    const div = document.createElement("div");
    box.append(div);
    view.rows.push(div);
  }
  while (view.rows.length > t.rows) view.rows.pop().remove();
  view.drawn.length = t.rows;
  // Scrolled back: keep showing the same lines while output goes on.
  const gone = t.scrolledOff - view.scrolled;
  view.scrolled = t.scrolledOff;
  if (view.offset) view.offset += gone;
  view.offset = t.alt ? 0 : Math.min(view.offset, t.scrollback.length);
  const base = t.scrollback.length - view.offset;
  for (let y = 0; y < t.rows; y++) {
    const line = t.alt ? t.lines[y] : t.lineAt(base + y);
    const cursor = !view.offset && t.cursorVisible && y === t.y ? t.x : -1;
    const was = view.drawn[y];
    if (was && was.line === line && was.v === line.v && was.cursor === cursor) continue;
    view.drawn[y] = { line, v: line.v, cursor };
    view.rows[y].replaceChildren(...t.runs(line, cursor).map(drawRun));
  }
  $("term-screen").classList.toggle("t-reverse", t.reverseVideo);
  $("term-scrolled").textContent = view.offset ? `scrolled back ${view.offset} lines (Shift+PgDn)` : "";
}

function termKeys() {
  const input = $("term-input");
  input.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229) return;
    const t = view.term;
    if (e.shiftKey && !e.ctrlKey && (e.key === "PageUp" || e.key === "PageDown")) {
      view.offset = Math.max(0, view.offset + (e.key === "PageUp" ? 1 : -1) * (t.rows - 1));
      e.preventDefault();
      return schedule();
    }
    // AltGr, and Option on a Mac, make characters (@ [ | on many layouts):
    // those are typed as they are, not as Alt (ESC) combinations.
    const composed = MAC && e.altKey && [...e.key].length === 1;
    const key = {
      key: e.key, code: e.code, ctrlKey: e.ctrlKey, altKey: e.altKey, shiftKey: e.shiftKey,
      metaKey: e.metaKey, altGraph: composed || (e.getModifierState && e.getModifierState("AltGraph")),
    };
    const bytes = RingletTerm.encodeKey(key, t.appCursor);
    if (bytes === null) return;
    e.preventDefault();
    typed(bytes);
  });
  // Text from an input method, or a keyboard that names no key.
  input.addEventListener("compositionend", (e) => { if (e.data) typed(e.data); input.value = ""; });
  input.addEventListener("input", (e) => {
    if (!e.isComposing && e.inputType === "insertText" && e.data) typed(e.data);
    if (!e.isComposing) input.value = "";
  });
  input.addEventListener("paste", (e) => {
    e.preventDefault();
    const text = e.clipboardData.getData("text/plain");
    if (text) typed(RingletTerm.encodePaste(text, view.term.bracketedPaste));
  });
  input.addEventListener("focus", () => $("term-screen").classList.add("t-focus"));
  input.addEventListener("blur", () => $("term-screen").classList.remove("t-focus"));
  // A click focuses the input, unless it ends a selection (to copy).
  $("term-screen").addEventListener("mouseup", () => {
    if (String(getSelection()).length === 0) input.focus();
  });
  $("term-screen").addEventListener("wheel", (e) => {
    if (view.term.alt || !e.deltaY) return;
    e.preventDefault();
    view.offset = Math.max(0, view.offset - Math.sign(e.deltaY) * 3);
    schedule();
  }, { passive: false });
  $("term-close").addEventListener("click", closeTerminal);
  $("term-reconnect").addEventListener("click", () => { if (view.id) openTerminal(view.id); });
  $("term-ctrlc").addEventListener("click", () => { typed("\x03"); input.focus(); });
  $("term-signal").addEventListener("change", (e) => {
    const signal = Number(e.target.value);
    e.target.value = "";
    if (!signal) return;
    if (signal === 9 && !confirm(`Send SIGKILL to ${view.id}?`)) return;
    if (view.ws && view.ws.readyState === WebSocket.OPEN) view.ws.send(JSON.stringify({ type: "signal", signal }));
    input.focus();
  });
  let timer = 0;
  addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { if (!$("term").hidden) fit(false); }, 150);
  });
}

async function main() {
  termKeys();
  await signIn().catch((e) => { $("signin-error").textContent = e.message; });
  if (!sessionStorage.getItem(KEY)) return signedOut();
  $("signin").hidden = true;
  $("app").hidden = false;
  await refreshAll();
  if (sessionStorage.getItem(KEY)) follow();
}

main();
