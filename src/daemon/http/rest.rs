//! REST requests, as tiny_http hands them over from the bridge: the Host
//! check, the bearer token, the body limit, then `routes` maps the request to
//! the one `Request` enum and the shared dispatcher serves it, exactly as it
//! serves the CLI. The static UI (`/`, `/app.css`)
//! needs no token, and `POST /api/login` takes a one-time ticket instead;
//! nothing else is answered without the token.
//!
//! HTTP never hands out an API key: a page (or a script injected into one)
//! has no use for it, so `GET /api/profiles/{alias}/env` shows the key's
//! variable as `<redacted>` ([`redact_env`]); the CLI's `profiles env`, over
//! IPC, still prints it. Failed logins are summed up in the log, at most
//! one line a minute ([`FailedLogins`]).
//!
//! "The token" is the daemon's or a live browser session's: `POST
//! /api/login` answers with a browser session token, never the daemon's,
//! and `DELETE /api/login` ends the caller's own browser session.

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tiny_http::{Header, Response};

use super::HttpInfo;
use super::auth;
use super::routes::{self, envelope_error, envelope_ok, status_of, success_status};
use crate::daemon::State;
use crate::daemon::dispatch;
use crate::protocol::{ErrorCode, Reply, Request};

/// Request bodies larger than this get 413 from the front door, unread.
pub const MAX_BODY: usize = 1 << 20;

/// The web UI (`static/`), embedded: path, bytes, content type.
const ASSETS: [(&str, &[u8], &str); 2] = [
    ("/", include_bytes!("../../../static/index.html"), "text/html; charset=utf-8"),
    ("/app.css", include_bytes!("../../../static/app.css"), "text/css; charset=utf-8"),
];

fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|&(_, bytes, kind)| (bytes, kind))
}

/// Debug builds only: with `RINGLET_DEV_STATIC=<dir>` in the daemon's
/// environment the UI is read from that directory at each request, so the
/// page can be worked on without rebuilding the binary.
#[cfg(debug_assertions)]
fn dev_asset(path: &str) -> Option<(u16, Vec<u8>, &'static str)> {
    let dir = std::env::var_os("RINGLET_DEV_STATIC")?;
    let rel = if path == "/" { "index.html" } else { path.strip_prefix("/static/")? };
    if rel.split('/').any(|c| c.is_empty() || c.starts_with('.')) {
        return None;
    }
    let kind = match rel.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        _ => return None,
    };
    let bytes = std::fs::read(std::path::Path::new(&dir).join(rel)).ok()?;
    Some((200, bytes, kind))
}

/// Scripts and styles from 'self' only; nothing external. The terminal
/// view sets colours through the CSSOM, which style-src does not govern, so
/// no inline style needs 'unsafe-inline' (design.md kept it for xterm.js,
/// which the UI does not use).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

pub fn serve(state: &State, info: &HttpInfo, mut request: tiny_http::Request) {
    let _busy = state.activity.busy();
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let mut shutdown = false;
    let (status, body, content_type) = 'answer: {
        if !auth::host_allowed(header("Host").as_deref(), &info.bind, info.addr.port()) {
            break 'answer (
                403,
                envelope_error(403, "forbidden", "the Host header does not name this daemon"),
                "application/json",
            );
        }
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let method = request.method().as_str().to_string();
        #[cfg(debug_assertions)]
        if let Some(answer) = dev_asset(path) {
            break 'answer answer;
        }
        if let Some((bytes, content_type)) = asset(path) {
            break 'answer match method.as_str() {
                "GET" | "HEAD" => (200, bytes.to_vec(), content_type),
                _ => {
                    (405, envelope_error(405, "method_not_allowed", "GET only"), "application/json")
                }
            };
        }
        if path == "/api/login" && method != "DELETE" {
            break 'answer login(state, info, &method, header("Origin").as_deref(), &mut request);
        }
        let authorization = header("Authorization");
        let given = auth::bearer(authorization.as_deref());
        let Some(bearer) = given.and_then(|t| auth::authorize(state, t)) else {
            let why = if given.is_some() {
                "wrong token, or a browser session that was signed out, revoked or expired"
            } else {
                "a bearer token is required"
            };
            break 'answer (401, envelope_error(401, "unauthorized", why), "application/json");
        };
        if path == "/api/login" {
            break 'answer sign_out(state, &bearer);
        }
        // The front door has read the whole body already and refused any
        // over MAX_BODY (413), so this read neither waits nor grows.
        let mut body = Vec::new();
        if request.as_reader().take(MAX_BODY as u64).read_to_end(&mut body).is_err() {
            break 'answer (
                400,
                envelope_error(400, "bad_request", "reading the body"),
                "application/json",
            );
        }
        match routes::route(&method, path, query, &body) {
            Err(e) => (e.status, envelope_error(e.status, e.code, &e.message), "application/json"),
            // Which session is the caller's own is known here only.
            Ok(Request::BrowserSessionsList { .. }) => dispatched(
                state,
                Request::BrowserSessionsList { current: bearer.session().map(String::from) },
            ),
            Ok(Request::Shutdown) => {
                // Answered first, then the shutdown starts: otherwise the
                // daemon could exit before the bridge delivers the answer.
                shutdown = true;
                (200, envelope_ok(&serde_json::Value::Null), "application/json")
            }
            Ok(req) => {
                let success = success_status(&req);
                state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let env_of = match &req {
                    Request::ProfilesEnv { alias } => Some(alias.clone()),
                    _ => None,
                };
                let shows_profiles = matches!(
                    req,
                    Request::ProfilesInspect { .. }
                        | Request::ProfilesCreate(_)
                        | Request::ProfilesList { .. }
                );
                let mut reply = dispatch::handle(state, req);
                if let Some(alias) = env_of {
                    reply = redact_env(state, &alias, reply);
                }
                if let (true, Reply::Ok { data }) = (shows_profiles, &mut reply) {
                    redact_mcp(data);
                }
                let status = status_of(&reply, success);
                let body = match &reply {
                    Reply::Ok { data } => envelope_ok(data),
                    Reply::Err { error } => {
                        envelope_error(status, error.code.as_str(), &error.message)
                    }
                };
                (status, body, "application/json")
            }
        }
    };
    let mut response = Response::from_data(body).with_status_code(status);
    for (name, value) in [
        ("Content-Type", content_type),
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ] {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        crate::debug!("http: writing a response: {e}");
    }
    if shutdown {
        // Still busy (so the shutdown waits for us): give the bridge a moment
        // to carry the answer to the client.
        std::thread::sleep(std::time::Duration::from_millis(100));
        state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.request_shutdown("shutdown requested over HTTP");
    }
}

/// `POST /api/login`: a live ticket from `ringlet ui` buys the token, once.
/// No bearer token here (the page has none yet); the Host check has run,
/// and a browser's Origin must be ours, so no other page can trade one.
/// The token is a browser session's (`{"token","id","expires_at"}`), never
/// the daemon's.
fn login(
    state: &State,
    info: &HttpInfo,
    method: &str,
    origin: Option<&str>,
    request: &mut tiny_http::Request,
) -> (u16, Vec<u8>, &'static str) {
    const JSON: &str = "application/json";
    if !auth::origin_allowed(origin, &info.bind, info.addr.port()) {
        return (403, envelope_error(403, "forbidden", "a foreign Origin"), JSON);
    }
    let mut body = Vec::new();
    // A ticket is 64 bytes: anything much longer is not a login.
    if request.as_reader().take(4096).read_to_end(&mut body).is_err() {
        return (400, envelope_error(400, "bad_request", "reading the body"), JSON);
    }
    let ticket = match routes::login_ticket(method, &body) {
        Ok(ticket) => ticket,
        Err(e) => return (e.status, envelope_error(e.status, e.code, &e.message), JSON),
    };
    if !state.tickets.redeem(&ticket) {
        FAILED_LOGINS.failed();
        let why = "the login ticket is unknown, spent or expired: run `ringlet ui` again";
        return (401, envelope_error(401, "unauthorized", why), JSON);
    }
    FAILED_LOGINS.report();
    match state.browser.create() {
        Ok(session) => {
            crate::info!(
                "http: a browser signed in with a login ticket (browser session {})",
                session.id
            );
            if session.evicted > 0 {
                // The least recently used session(s) ended to make room:
                // their WebSockets close.
                info.slots.revoke();
            }
            (200, envelope_ok(&serde_json::json!(session)), JSON)
        }
        Err(e) => {
            let why = format!("cannot start a browser session: {e:#}");
            (500, envelope_error(500, "internal", &why), JSON)
        }
    }
}

/// `DELETE /api/login`: the caller's own browser session ends (the page's
/// "sign out"). The daemon's token has no session to end.
fn sign_out(state: &State, bearer: &auth::Bearer) -> (u16, Vec<u8>, &'static str) {
    let Some(id) = bearer.session() else {
        let why = "DELETE /api/login ends a browser session; this is the daemon's own token \
                   (`ringlet daemon token --rotate` replaces it)";
        return (400, envelope_error(400, "bad_request", why), "application/json");
    };
    dispatched(state, Request::BrowserSessionsRevoke { id: id.to_string() })
}

/// A request the dispatcher serves, in the envelope.
fn dispatched(state: &State, req: Request) -> (u16, Vec<u8>, &'static str) {
    let success = success_status(&req);
    state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reply = dispatch::handle(state, req);
    let status = status_of(&reply, success);
    let body = match &reply {
        Reply::Ok { data } => envelope_ok(data),
        Reply::Err { error } => envelope_error(status, error.code.as_str(), &error.message),
    };
    (status, body, "application/json")
}

/// How often at most a line about failed logins reaches the log.
const FAILED_LOGIN_INTERVAL: Duration = Duration::from_secs(60);

/// Failed logins, counted: anyone who reaches the port may try tickets
/// (no token needed), and a line for each would let any local user flush
/// the kept log in seconds. No attempt limit: a 256-bit ticket cannot be
/// guessed, and a limit would let a stranger lock out the owner's good one.
static FAILED_LOGINS: FailedLogins = FailedLogins(Mutex::new((0, None)));

/// Failures not yet logged, and when the last line about them was written.
struct FailedLogins(Mutex<(u64, Option<Instant>)>);

impl FailedLogins {
    /// One more failure: logged at once if no line was written within the
    /// interval, else counted for the next line.
    fn failed(&self) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.0 += 1;
        if guard.1.is_none_or(|at| at.elapsed() >= FAILED_LOGIN_INTERVAL) {
            Self::write(&mut guard);
        }
    }

    /// Logs what is counted, before a successful login (only the owner's
    /// live ticket gets here, so this cannot flood the log either).
    fn report(&self) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 > 0 {
            Self::write(&mut guard);
        }
    }

    fn write(guard: &mut (u64, Option<Instant>)) {
        let since = match guard.1 {
            Some(at) => format!("in the last {} s", at.elapsed().as_secs()),
            None => "since the daemon started".to_string(),
        };
        crate::info!(
            "http: {} failed login(s) with an unknown, spent or expired ticket {since} \
             (at most one such line a minute)",
            guard.0
        );
        *guard = (0, Some(Instant::now()));
    }
}

/// `ProfilesEnv`'s reply with every variable that holds the profile's key
/// (or its last 20 characters, which scripts may use) shown as
/// `<redacted>`. Checked against the key itself, wherever a script put it;
/// a key that cannot be read to check turns the reply into an error.
fn redact_env(state: &State, alias: &str, reply: Reply) -> Reply {
    let Reply::Ok { mut data } = reply else { return reply };
    let catalog = state.catalog();
    let key = state.profiles.get(alias).and_then(|p| state.services(&catalog).agent_key(&p));
    let key = match key {
        Ok(Some(key)) if !key.is_empty() => key,
        Ok(_) => return Reply::Ok { data },
        Err(e) => {
            let why = format!("cannot check the environment for the key: {e:#}");
            return Reply::error(ErrorCode::Internal, why);
        }
    };
    if let Some(env) = data.get_mut("env").and_then(serde_json::Value::as_object_mut) {
        for value in env.values_mut() {
            if value.as_str().is_some_and(|v| holds_key(v, &key)) {
                *value = serde_json::Value::String(crate::profiles::render::REDACTED.into());
            }
        }
    }
    Reply::Ok { data }
}

/// MCP servers' `env` and `headers` values become `<redacted>` wherever a
/// profile reply carries `mcp_servers`: they come from config.toml or a
/// template and often hold tokens (`GITHUB_TOKEN`, `Authorization`), which
/// no HTTP reply hands out. The names stay, so a page can show what is set.
fn redact_mcp(data: &mut serde_json::Value) {
    use serde_json::Value;
    match data {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                if name == "mcp_servers" {
                    for server in value.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                        for field in ["env", "headers"] {
                            let Some(vars) = server.get_mut(field).and_then(Value::as_object_mut)
                            else {
                                continue;
                            };
                            for v in vars.values_mut() {
                                *v = Value::String(crate::profiles::render::REDACTED.into());
                            }
                        }
                    }
                } else {
                    redact_mcp(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_mcp),
        _ => {}
    }
}

/// Whether `value` holds `key` or its last 20 characters (which scripts
/// may use as `${API_KEY_LAST20}`). An empty key is in nothing.
pub(crate) fn holds_key(value: &str, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    let start = key.char_indices().rev().nth(19).map_or(0, |(i, _)| i);
    value.contains(key) || value.contains(&key[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_and_its_tail_are_found() {
        let key = "sk-test-0123456789abcdefghijklmnopqrstuv";
        assert!(holds_key(key, key));
        assert!(holds_key(&format!("Bearer {key}"), key));
        assert!(holds_key(&key[key.len() - 20..], key));
        assert!(!holds_key(&key[..20], key));
        assert!(!holds_key("anything", ""));
        assert!(holds_key("short", "short"));
    }
}
