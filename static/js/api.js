// The REST client and the browser session. `ringlet ui` opens the page with
// a one-time ticket in the fragment; the page trades it at POST /api/login
// for a browser session token (random, revocable, expiring, never the
// daemon's own token) kept in localStorage: an origin includes the port, so
// other tabs of this daemon share it and a server on another loopback port
// cannot read it. The token goes as the bearer on REST and as the WebSocket
// subprotocol; it never appears in a URL.

const KEY = "ringlet.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return localStorage.getItem(KEY);
}

const signedOutListeners = new Set();

/// `fn(reason)` runs when the session ends (refused token, sign-out).
export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

function forget(reason) {
  localStorage.removeItem(KEY);
  for (const fn of signedOutListeners) fn(reason);
}

// Another tab signing in or out changes the stored token: follow it.
window.addEventListener("storage", (e) => {
  if (e.key === KEY && !e.newValue) forget("Signed out in another tab.");
  if (e.key === KEY && e.newValue) location.reload();
});

/// Takes a `#ticket=` fragment out of the address bar (so only a spent
/// ticket can reach the browser's history) and trades it for a session.
/// Returns true when a ticket was there and worked.
export async function redeemTicket() {
  const match = /^#ticket=([0-9a-f]{64})$/.exec(location.hash);
  if (!match) return false;
  history.replaceState(null, "", location.pathname + "#/dashboard");
  const reply = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ticket: match[1] }),
  });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok || !body.success) {
    throw new ApiError(reply.status, body.error?.code, body.error?.message || `sign-in failed (${reply.status})`);
  }
  // A ticket pasted into a tab already signed in replaces its session:
  // the old one is ended on the daemon rather than left to expire.
  const previous = token();
  localStorage.setItem(KEY, body.data.token);
  if (previous && previous !== body.data.token) {
    fetch("/api/login", { method: "DELETE", headers: { Authorization: `Bearer ${previous}` } }).catch(() => {});
  }
  return true;
}

/// Ends this browser's session on the daemon, then here.
export async function signOut() {
  try {
    await api("DELETE", "/api/login");
  } finally {
    forget("Signed out.");
  }
}

/// One REST call. Resolves to the envelope's `data`; rejects with an
/// ApiError carrying the daemon's own message, which pages show as is.
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable", "the daemon is not reachable (stopped?)");
  }
  const text = await reply.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // An export (CSV) or another non-JSON answer: handed back as text.
  }
  if (reply.status === 401) {
    forget("This browser's session was ended (signed out, expired or revoked): run `ringlet ui` again.");
    throw new ApiError(401, "unauthorized", parsed?.error?.message || "not signed in");
  }
  if (parsed && typeof parsed === "object" && "success" in parsed) {
    if (parsed.success) return parsed.data;
    throw new ApiError(reply.status, parsed.error?.code, parsed.error?.message || `${method} ${path}: ${reply.status}`);
  }
  if (!reply.ok) throw new ApiError(reply.status, "http", `${method} ${path}: ${reply.status}`);
  return text;
}

/// A WebSocket on this daemon with the session token as its subprotocol.
export function socket(path) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  return new WebSocket(url, ["bearer", token()]);
}

/// `/api/...` with query parameters; empty values are left out.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
