// Live state: the one `/ws` event stream of this page, shared by every
// view. It reconnects by itself (1 s, doubling to 15 s) when the daemon
// stops or the connection drops, tells listeners whether it is connected
// (a stopped daemon shows as disconnected, never as stale data), keeps the
// last events for the dashboard and the events page (seeded on each
// connect from the daemon's own record, `GET /api/events`, so a page opened
// now shows what happened before it), and after a reconnect tells views to
// reload, since events may have been missed.

import { api, socket, token } from "./api.js";

const KEPT = 500;
const recent = [];
const listeners = new Map(); // type or "*" -> Set of fn(event)
const stateListeners = new Set(); // fn(connected, reconnected)
let ws = null;
let connected = false;
let everConnected = false;
let delay = 1000;
let timer = null;
let seedGate = Promise.resolve();

/// Calls `fn(event)` for each event of `type` ("*" for all). Returns the
/// function that stops it; views call it when they unmount.
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type).delete(fn);
}

/// Calls `fn(connected, reconnected)` now and on each change.
export function onConnection(fn) {
  stateListeners.add(fn);
  fn(connected, false);
  return () => stateListeners.delete(fn);
}

/// The last events, oldest first. Listeners of the pseudo-type "@recent"
/// are called when the daemon's record has been merged in.
export function recentEvents() {
  return recent.slice();
}

export function isConnected() {
  return connected;
}

function setConnected(now) {
  const reconnected = now && everConnected;
  connected = now;
  if (now) everConnected = true;
  for (const fn of stateListeners) fn(now, reconnected);
}

function dispatch(event) {
  recent.push(event);
  if (recent.length > KEPT) recent.splice(0, recent.length - KEPT);
  for (const key of [event.type, "*"]) {
    for (const fn of listeners.get(key) || []) {
      try {
        fn(event);
      } catch (e) {
        console.error(e);
      }
    }
  }
}

/// Opens the stream (again); a no-op while one is open.
export function start() {
  if (ws || !token()) return;
  clearTimeout(timer);
  // Each handler checks it still belongs to the current socket: one that
  // stop() closed must not clear or reopen its successor.
  const sock = socket("/ws");
  ws = sock;
  sock.addEventListener("open", () => {
    if (ws !== sock) return;
    delay = 1000;
    setConnected(true);
    seed();
  });
  sock.addEventListener("message", (m) => {
    if (ws !== sock || typeof m.data !== "string") return;
    try {
      dispatch(JSON.parse(m.data));
    } catch {
      // Not an event frame: ignored.
    }
  });
  sock.addEventListener("close", (e) => {
    if (ws !== sock) return;
    ws = null;
    if (connected) setConnected(false);
    if (!token()) return;
    // 1008: this browser's session was signed out, revoked or expired (or
    // the daemon's token rotated). A REST call confirms it, and its 401
    // signs the page out rather than reconnecting with a dead token.
    if (e.code === 1008) api("GET", "/api/daemon/status").catch(() => {});
    timer = setTimeout(start, delay);
    delay = Math.min(delay * 2, 15000);
  });
}

const key = (e) => `${e.timestamp}|${e.type}|${JSON.stringify(e.data)}`;

/// Holds the next merge of the daemon's record until `promise` settles
/// (app.js: until the first page has loaded its own data).
export function seedAfter(promise) {
  seedGate = promise.catch(() => {});
}

/// Merges the daemon's kept events with the ones that arrived here.
async function seed() {
  await seedGate;
  let kept;
  try {
    kept = (await api("GET", `/api/events?limit=${KEPT}`)).events;
  } catch {
    return; // Not fatal: the live stream goes on.
  }
  const seen = new Set(kept.map(key));
  const merged = kept.concat(recent.filter((e) => !seen.has(key(e))));
  merged.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  recent.splice(0, recent.length, ...merged.slice(-KEPT));
  for (const fn of listeners.get("@recent") || []) fn();
}

/// Closes the stream for good (signed out).
export function stop() {
  clearTimeout(timer);
  const old = ws;
  ws = null;
  if (old) old.close();
  if (connected) setConnected(false);
  // A stream stopped on purpose (sign-out, a new sign-in) that starts
  // again is a new one, not a reconnect that should reload the page.
  everConnected = false;
}
