//! REST requests, as tiny_http hands them over from the bridge: the Host
//! check, the bearer token, the body limit, then `routes` maps the request to
//! the one `Request` enum and the shared dispatcher serves it, exactly as it
//! serves the CLI. The static UI (`/`, `/app.js`, `/term.js`, `/app.css`)
//! needs no token, and `POST /api/login` takes a one-time ticket instead;
//! nothing else is answered without the token.

use std::io::Read;

use tiny_http::{Header, Response};

use super::HttpInfo;
use super::auth;
use super::routes::{self, envelope_error, envelope_ok, status_of};
use crate::daemon::State;
use crate::daemon::dispatch;
use crate::protocol::{Reply, Request};

/// Request bodies larger than this get 413 from the front door, unread.
pub const MAX_BODY: usize = 1 << 20;

/// The web UI (`static/`), embedded: path, bytes, content type.
const ASSETS: [(&str, &[u8], &str); 4] = [
    ("/", include_bytes!("../../../static/index.html"), "text/html; charset=utf-8"),
    ("/app.js", include_bytes!("../../../static/app.js"), "text/javascript; charset=utf-8"),
    ("/term.js", include_bytes!("../../../static/term.js"), "text/javascript; charset=utf-8"),
    ("/app.css", include_bytes!("../../../static/app.css"), "text/css; charset=utf-8"),
];

fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|&(_, bytes, kind)| (bytes, kind))
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
        if let Some((bytes, content_type)) = asset(path) {
            break 'answer match method.as_str() {
                "GET" | "HEAD" => (200, bytes.to_vec(), content_type),
                _ => {
                    (405, envelope_error(405, "method_not_allowed", "GET only"), "application/json")
                }
            };
        }
        if path == "/api/login" {
            break 'answer login(state, info, &method, header("Origin").as_deref(), &mut request);
        }
        let token = state.http_token();
        let authorization = header("Authorization");
        let given = auth::bearer(authorization.as_deref());
        if !given.is_some_and(|t| auth::same_token(t, &token)) {
            let why = if given.is_some() { "wrong token" } else { "a bearer token is required" };
            break 'answer (401, envelope_error(401, "unauthorized", why), "application/json");
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
            Ok(Request::Shutdown) => {
                // Answered first, then the shutdown starts: otherwise the
                // daemon could exit before the bridge delivers the answer.
                shutdown = true;
                (200, envelope_ok(&serde_json::Value::Null), "application/json")
            }
            Ok(req) => {
                let create = matches!(&req, Request::ProfilesCreate(c) if !c.dry_run)
                    || matches!(&req, Request::TerminalCreate(_));
                state.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reply = dispatch::handle_guarded(state, req);
                let status = status_of(&reply, create);
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
        crate::info!("http: a login with an unknown, spent or expired ticket");
        let why = "the login ticket is unknown, spent or expired: run `ringlet ui` again";
        return (401, envelope_error(401, "unauthorized", why), JSON);
    }
    crate::info!("http: a browser signed in with a login ticket");
    (200, envelope_ok(&serde_json::json!({"token": state.http_token()})), JSON)
}
