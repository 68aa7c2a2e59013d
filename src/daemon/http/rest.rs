//! REST requests, as tiny_http hands them over from the front door: the Host
//! check, the bearer token, the body limit, then `routes` maps the request to
//! the one `Request` enum and the shared dispatcher serves it, exactly as it
//! serves the CLI. The static UI (`/`, `/favicon.ico`, `/static/...`: see
//! `assets`) needs no token and is answered by the front door itself
//! ([`file`]), and `POST /api/login` takes a one-time ticket instead;
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

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tiny_http::{Header, Response};

use super::assets;
use super::auth;
use super::routes::{self, envelope_error, envelope_ok, status_of, success_status};
use super::{Head, HttpInfo};
use crate::daemon::State;
use crate::daemon::dispatch;
use crate::protocol::{ErrorCode, Reply, Request};

/// Request bodies larger than this get 413 from the front door, unread.
pub const MAX_BODY: usize = 1 << 20;

/// Scripts and styles from 'self' only; nothing external, no inline
/// script. Inline styles are allowed (design.md §5): xterm.js's DOM
/// renderer writes `<style>` elements and `style` attributes for its
/// cells and colours.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// What the front door writes back itself: a file of the UI.
pub struct Answer {
    pub status: u16,
    /// Content-Type, Cache-Control and the rest; [`CSP`] and `nosniff` are
    /// added to every answer when it is written.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Cow<'static, [u8]>,
    /// A file (or its 304): a connection without the token may stay open
    /// after it (a browser fetches the page's files, then calls the API
    /// with the token on the same connections).
    pub file: bool,
}

/// The front door's own answer to a request for the UI's files (`/`,
/// `/index.html`, `/favicon.ico`, `/static/...`), after the same Host check
/// as every request: no hop to tiny_http for what needs no token and no
/// dispatcher. `None` for every other path (tiny_http serves those).
pub fn file(info: &HttpInfo, head: &Head) -> Option<Answer> {
    let path = head.path();
    if !assets::is_ui_path(path) {
        return None;
    }
    let header = |name: &str| head.header(&name.to_ascii_lowercase()).map(str::to_string);
    if !auth::host_allowed(header("Host").as_deref(), &info.bind, info.addr.port()) {
        let why = "the Host header does not name this daemon";
        return Some(Answer {
            status: 403,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: envelope_error(403, "forbidden", why).into(),
            file: false,
        });
    }
    let answer = assets::serve(path, &head.method, &header)?;
    let file = matches!(answer.status, 200 | 304);
    Some(Answer { status: answer.status, headers: answer.headers, body: answer.body, file })
}

/// The head of `answer` to a `version` request: the status line, its
/// headers, the Content-Security-Policy, `nosniff`, `Date`, the length
/// (of the body a GET would get, for a HEAD) and what becomes of the
/// connection (`close`, or `keep-alive` for an HTTP/1.0 client that
/// asked for it).
pub fn head_of(answer: &Answer, version: &str, close: bool) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    let fixed = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff")];
    for (name, value) in answer.headers.iter().map(|(n, v)| (*n, v.as_ref())).chain(fixed) {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .unwrap_or_default();
    text.push_str(&format!("Date: {date}\r\n"));
    if answer.status != 304 {
        text.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    }
    if close {
        text.push_str("Connection: close\r\n");
    } else if version == "HTTP/1.0" {
        text.push_str("Connection: keep-alive\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// The reason phrase of a status.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

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
        if let Some(file) = assets::serve(path, &method, &header) {
            return send(request, file.status, file.body, &file.headers);
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
        if path == DASHBOARD {
            break 'answer dashboard(state, &method, query);
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
    let headers = [("Content-Type", content_type.into()), ("Cache-Control", "no-store".into())];
    send(request, status, body.into(), &headers);
    if shutdown {
        // Still busy (so the shutdown waits for us): give the bridge a moment
        // to carry the answer to the client.
        std::thread::sleep(std::time::Duration::from_millis(100));
        state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.request_shutdown("shutdown requested over HTTP");
    }
}

/// Answers `request` with `headers`, the Content-Security-Policy and
/// `nosniff`.
fn send(
    request: tiny_http::Request,
    status: u16,
    body: Cow<'static, [u8]>,
    headers: &[(&str, Cow<'static, str>)],
) {
    let length = body.len();
    // Always a Content-Length, never chunked: the front door reads each
    // answer off a kept-alive connection by its length.
    let mut response =
        Response::new(status.into(), Vec::new(), Cursor::new(body), Some(length), None)
            .with_chunked_threshold(usize::MAX);
    let fixed = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff")];
    for (name, value) in headers.iter().map(|(n, v)| (*n, v.as_ref())).chain(fixed) {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        crate::debug!("http: writing a response: {e}");
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

/// `GET /api/dashboard`: what the web UI's first page shows, in one
/// answer instead of one call per card (a cold page paid for each: the
/// browser opens at most six connections to a host, so its eight calls
/// took two rounds, each behind a new connection).
const DASHBOARD: &str = "/api/dashboard";

/// The routes `GET /api/dashboard` is made of, each served exactly as its own
/// route serves it, through the one dispatcher: `(field, path, query)`.
const DASHBOARD_PARTS: [(&str, &str, &str); 7] = [
    ("status", "/api/daemon/status", ""),
    ("stats", "/api/stats", ""),
    ("usage_today", "/api/usage", "period=today"),
    ("usage_month", "/api/usage", "period=month"),
    ("agents", "/api/agents", ""),
    ("sessions", "/api/terminal/sessions", ""),
    ("proxies", "/api/proxy/status", ""),
];

/// `GET /api/dashboard`: `{"<part>": data, ...}` for each of
/// [`DASHBOARD_PARTS`]; a part whose request fails is left out of the data
/// and named in `errors` (`{"<part>": message}`) instead, so that one
/// failing card leaves the others working. No query: a page that wants
/// something else calls the part's own route.
fn dashboard(state: &State, method: &str, query: &str) -> (u16, Vec<u8>, &'static str) {
    const JSON: &str = "application/json";
    if method != "GET" {
        let why = format!("{DASHBOARD} takes GET, not {method}");
        return (405, envelope_error(405, "method_not_allowed", &why), JSON);
    }
    if !query.is_empty() {
        let why = format!("{DASHBOARD} takes no query parameters");
        return (400, envelope_error(400, "bad_request", &why), JSON);
    }
    let mut data = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    for (field, path, query) in DASHBOARD_PARTS {
        let reply = match routes::route("GET", path, query, b"") {
            Ok(req) => {
                state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                dispatch::handle(state, req)
            }
            Err(e) => Reply::error(ErrorCode::Internal, e.message),
        };
        match reply {
            Reply::Ok { data: part } => {
                data.insert(field.into(), part);
            }
            Reply::Err { error } => {
                errors.insert(field.into(), error.message.into());
            }
        }
    }
    data.insert("errors".into(), errors.into());
    (200, envelope_ok(&data.into()), JSON)
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
    fn answer_heads_say_the_length_and_what_becomes_of_the_connection() {
        let answer = |status| Answer {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: Cow::Borrowed(b"{}"),
            file: false,
        };
        let text =
            |a: &Answer, version, close| String::from_utf8(head_of(a, version, close)).unwrap();
        let ok = text(&answer(200), "HTTP/1.1", false);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"), "{ok}");
        assert!(ok.contains("\r\nContent-Length: 2\r\n") && ok.ends_with("\r\n\r\n"), "{ok}");
        assert!(ok.contains(&format!("\r\nContent-Security-Policy: {CSP}\r\n")), "{ok}");
        assert!(ok.contains("\r\nDate: ") && ok.contains(" GMT\r\n"), "{ok}");
        assert!(!ok.contains("Connection:"), "{ok}");
        assert!(text(&answer(401), "HTTP/1.1", true).contains("\r\nConnection: close\r\n"));
        let old = text(&answer(200), "HTTP/1.0", false);
        assert!(old.contains("\r\nConnection: keep-alive\r\n"), "{old}");
        let not_modified = text(&answer(304), "HTTP/1.1", false);
        assert!(not_modified.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{not_modified}");
        assert!(!not_modified.contains("Content-Length"), "{not_modified}");
    }

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
