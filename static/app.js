// ringlet's web UI: signs in with the one-time ticket `ringlet ui` puts in
// the URL fragment, keeps the token in sessionStorage (never in a URL, a
// cookie or localStorage), shows profiles, terminal sessions and usage from
// the REST API, and follows the /ws event stream. Everything is rendered
// with textContent: nothing the daemon returns is ever parsed as HTML.
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

async function main() {
  await signIn().catch((e) => { $("signin-error").textContent = e.message; });
  if (!sessionStorage.getItem(KEY)) return signedOut();
  $("signin").hidden = true;
  $("app").hidden = false;
  await refreshAll();
  if (sessionStorage.getItem(KEY)) follow();
}

main();
