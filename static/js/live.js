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
/// Until the first merge of the daemon's record: app.js opens the stream
/// after the first page has its data, so events may have happened in
/// between that this page never received.
let firstSeed = true;

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

/// Merges the daemon's kept events with the ones that arrived here. The
/// first time, if the record holds events from since this page started
/// that did not arrive here, listeners of the pseudo-type "@missed" are
/// called (app.js reloads the page's data, as after a reconnect).
async function seed() {
  let kept;
  try {
    kept = (await api("GET", `/api/events?limit=${KEPT}`)).events;
  } catch {
    return; // Not fatal: the live stream goes on.
  }
  const seen = new Set(kept.map(key));
  const arrived = new Set(recent.map(key));
  const missed = firstSeed && kept.some((e) => !arrived.has(key(e)) && Date.parse(e.timestamp) >= performance.timeOrigin);
  firstSeed = false;
  const merged = kept.concat(recent.filter((e) => !seen.has(key(e))));
  merged.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  recent.splice(0, recent.length, ...merged.slice(-KEPT));
  for (const fn of listeners.get("@recent") || []) fn();
  if (missed) for (const fn of listeners.get("@missed") || []) fn();
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
