//! Browser sign-in (issue 14, item 6): a `ringlet ui` ticket buys a browser
//! session token, never the daemon's own; the token works for REST and both
//! WebSockets, is revocable (sign out, by id, all, a rotation of the daemon
//! token) and expiring; what is revoked gets 401 and its WebSockets close.
//! Sessions outlive a daemon restart in a 0600 file of hashes. And the port:
//! another uid listening on the daemon's loopback port makes `ringlet ui`
//! refuse to hand out a link (a look-alike page could read the origin's
//! storage).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use crate::util::http::{Answer, request};
use crate::util::{Env, mode};

fn sessions_file(env: &Env) -> std::path::PathBuf {
    env.config.join("browser_sessions.json")
}

fn call(addr: SocketAddr, method: &str, path: &str, token: &str) -> Answer {
    request(addr, method, path, &[("Authorization", &format!("Bearer {token}"))], b"")
}

fn status(addr: SocketAddr, token: &str) -> u16 {
    call(addr, "GET", "/api/agents", token).status
}

/// A fresh ticket from `ringlet ui --no-open --json`.
fn ticket(env: &Env) -> String {
    let json = env.cmd(&["--json", "ui", "--no-open"]).json();
    let url = json["url"].as_str().unwrap_or_else(|| panic!("{json}"));
    url.split_once("#ticket=").unwrap().1.to_string()
}

fn login_with(addr: SocketAddr, ticket: &str) -> Answer {
    let body = json!({"ticket": ticket}).to_string();
    let origin = format!("http://127.0.0.1:{}", addr.port());
    request(
        addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json"), ("Origin", &origin)],
        body.as_bytes(),
    )
}

/// Signs a browser in: its `{"token","id","expires_at"}`.
fn login(env: &Env, addr: SocketAddr) -> Value {
    let answer = login_with(addr, &ticket(env));
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["data"].clone()
}

/// `/ws` or `/ws/terminal/{id}` opened as a browser does: the token as the
/// second subprotocol. `Err(status)` when refused.
fn ws(addr: SocketAddr, path: &str, token: &str) -> Result<WebSocket<TcpStream>, u16> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    let protocols = HeaderValue::from_str(&format!("bearer, {token}")).unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", protocols);
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://127.0.0.1:{}", addr.port())).unwrap(),
    );
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Reads until the close frame (20 s at most); its code, and how long it
/// took to come.
fn closed(ws: &mut WebSocket<TcpStream>) -> (CloseCode, Duration) {
    let start = Instant::now();
    let _ = ws.get_ref().set_read_timeout(Some(Duration::from_secs(20)));
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                return (frame.expect("a close frame with a code").code, start.elapsed());
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// Subscribes `/ws` to every event: the stream answers (events that came
/// meanwhile are skipped), so it is open and served.
fn subscribed(ws: &mut WebSocket<TcpStream>) {
    ws.send(Message::text(r#"{"action":"subscribe","events":[]}"#)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if t.contains("\"subscribed\"") => return,
            Ok(Message::Close(frame)) => panic!("closed: {frame:?}"),
            Ok(other) => eprintln!("skipped {other:?}"),
            Err(e) => panic!("no answer to subscribe: {e}"),
        }
    }
}

/// The terminal session every test that needs `/ws/terminal` uses.
fn sleeper(env: &Env, addr: SocketAddr, token: &str) -> String {
    let session = crate::terminal::create(env, addr, token, json!({"args": ["-c", "sleep 300"]}));
    session["id"].as_str().unwrap().to_string()
}

/// The attack first: before this work `POST /api/login` handed the
/// daemon's own token to the page. Now a browser token, which works where
/// the daemon's does, and the ticket behind it is spent.
#[test]
fn a_ticket_buys_a_browser_token_that_is_not_the_daemons() {
    let env = crate::terminal::shell_world("bs-login");
    let (addr, daemon_token) = env.http();
    let t = ticket(&env);
    let answer = login_with(addr, &t);
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(!body.contains(&daemon_token), "the daemon's token left POST /api/login: {body}");
    let data = answer.json()["data"].clone();
    let token = data["token"].as_str().unwrap().to_string();
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{data}");
    assert!(data["id"].as_str().is_some_and(|id| !id.is_empty() && !token.contains(id)), "{data}");
    assert!(data["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')), "{data}");
    // The ticket is single-use.
    assert_eq!(login_with(addr, &t).status, 401);

    // REST and both WebSockets take it.
    assert_eq!(status(addr, &token), 200);
    let id = sleeper(&env, addr, &token);
    let mut events = ws(addr, "/ws", &token).expect("/ws with a browser token");
    let mut term = ws(addr, &format!("/ws/terminal/{id}"), &token).expect("/ws/terminal");
    let first = term.read().unwrap();
    assert!(first.to_text().is_ok_and(|t| t.contains("connected")), "{first:?}");
    subscribed(&mut events);
    // A made-up token of the same shape does not.
    assert_eq!(status(addr, &"ab".repeat(32)), 401);
    assert_eq!(ws(addr, "/ws", &"ab".repeat(32)).err(), Some(401));

    // Kept hashed in a private file: nothing in it works as a bearer.
    let file = sessions_file(&env);
    assert_eq!(mode(&file), 0o600);
    let text = fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token) && !text.contains(&daemon_token), "{text}");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    let strings = collect_strings(&parsed);
    assert!(!strings.is_empty());
    for s in strings {
        for candidate in [s.as_str(), s.trim_start_matches("sha256:")] {
            assert_eq!(status(addr, candidate), 401, "{candidate} from the file works");
        }
    }
    env.cmd(&["daemon", "stop", "--force"]).ok();
    let log = env.log_text();
    assert!(!log.contains(&token) && !log.contains(&t), "a secret in the log:\n{log}");
}

fn collect_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(collect_strings).collect(),
        Value::Object(o) => o.values().flat_map(collect_strings).collect(),
        _ => Vec::new(),
    }
}

/// Sign out (`DELETE /api/login`) ends that session only: its REST calls
/// get 401 and both of its WebSockets close (1008) at once; another
/// browser's session and the daemon's token go on working.
#[test]
fn signing_out_ends_the_session_and_closes_its_websockets() {
    let env = crate::terminal::shell_world("bs-signout");
    let (addr, daemon_token) = env.http();
    let a = login(&env, addr)["token"].as_str().unwrap().to_string();
    let b = login(&env, addr)["token"].as_str().unwrap().to_string();
    let id = sleeper(&env, addr, &daemon_token);
    let mut events_a = ws(addr, "/ws", &a).unwrap();
    let mut term_a = ws(addr, &format!("/ws/terminal/{id}"), &a).unwrap();
    let mut events_b = ws(addr, "/ws", &b).unwrap();

    // The daemon's own token has no session to end.
    assert_eq!(call(addr, "DELETE", "/api/login", &daemon_token).status, 400);
    let out = call(addr, "DELETE", "/api/login", &a);
    assert_eq!(out.status, 200, "{}", String::from_utf8_lossy(&out.body));
    assert_eq!(status(addr, &a), 401);
    assert_eq!(call(addr, "DELETE", "/api/login", &a).status, 401, "signed out already");
    for (name, socket) in [("/ws", &mut events_a), ("/ws/terminal", &mut term_a)] {
        let (code, took) = closed(socket);
        assert_eq!(code, CloseCode::Policy, "{name}");
        assert!(took < Duration::from_secs(5), "{name} took {took:?} to close");
    }
    assert_eq!(ws(addr, "/ws", &a).err(), Some(401));
    // The other browser is untouched.
    assert_eq!(status(addr, &b), 200);
    subscribed(&mut events_b);
    assert_eq!(status(addr, &daemon_token), 200);
}

/// `ringlet ui --sessions` lists them (`current` marks the caller's own over
/// HTTP), `--revoke <id>` and `--revoke all` end them, and so do the REST
/// routes; unknown ids are a clear error.
#[test]
fn sessions_are_listed_and_revoked_from_the_cli_and_rest() {
    let env = Env::new("bs-cli");
    let (addr, daemon_token) = env.http();
    assert!(env.cmd(&["ui", "--sessions"]).ok().contains("no browser sessions"));
    let a = login(&env, addr);
    let b = login(&env, addr);
    let c = login(&env, addr);
    let (ta, tb, tc) =
        (a["token"].as_str().unwrap(), b["token"].as_str().unwrap(), c["token"].as_str().unwrap());
    let (ia, ib, ic) =
        (a["id"].as_str().unwrap(), b["id"].as_str().unwrap(), c["id"].as_str().unwrap());

    let listed = env.cmd(&["--json", "ui", "--sessions"]).json();
    let ids: Vec<&str> =
        listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{listed}");
    for id in [ia, ib, ic] {
        assert!(ids.contains(&id), "{listed}");
    }
    for s in listed.as_array().unwrap() {
        for key in ["created_at", "last_used", "expires_at"] {
            assert!(s[key].as_str().is_some_and(|t| t.ends_with('Z')), "{s}");
        }
        assert_eq!(s["current"], false, "over IPC no session is the caller's: {s}");
    }
    let table = env.cmd(&["ui", "--sessions"]).ok();
    assert!(table.contains("EXPIRES") && table.contains(ia) && table.contains(ic), "{table}");
    assert!(!table.contains(ta), "{table}");

    // Over HTTP, the caller's own is marked.
    let mine = call(addr, "GET", "/api/browser-sessions", tb).json();
    let rows = mine["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{mine}");
    for row in rows {
        assert_eq!(row["current"], row["id"] == ib, "{row}");
        assert!(row.get("token").is_none() && row.get("hash").is_none(), "{row}");
    }

    // By id, from the CLI.
    let said = env.cmd(&["ui", "--revoke", ia]).ok();
    assert!(said.contains(ia), "{said}");
    assert_eq!(status(addr, ta), 401);
    assert_eq!(status(addr, tb), 200);
    let (_, err) = env.cmd(&["ui", "--revoke", ia]).code(1);
    assert!(err.contains("no browser session"), "{err}");
    // By id, over REST (a browser may end another's).
    let gone = call(addr, "DELETE", &format!("/api/browser-sessions/{ib}"), tc);
    assert_eq!(gone.status, 200, "{}", String::from_utf8_lossy(&gone.body));
    assert_eq!(status(addr, tb), 401);
    assert_eq!(call(addr, "DELETE", "/api/browser-sessions/nope", tc).status, 404);
    // All, from the CLI.
    let d = login(&env, addr)["token"].as_str().unwrap().to_string();
    let said = env.cmd(&["ui", "--revoke", "all"]).ok();
    assert!(said.contains("2 browser session"), "{said}");
    assert_eq!(status(addr, tc), 401);
    assert_eq!(status(addr, &d), 401);
    assert!(env.cmd(&["ui", "--sessions"]).ok().contains("no browser sessions"));
    // All, over REST.
    let e = login(&env, addr)["token"].as_str().unwrap().to_string();
    let all = call(addr, "DELETE", "/api/browser-sessions", &daemon_token);
    assert_eq!(all.status, 200, "{}", String::from_utf8_lossy(&all.body));
    assert_eq!(all.json()["data"]["revoked"], 1);
    assert_eq!(status(addr, &e), 401);
    assert_eq!(status(addr, &daemon_token), 200);
    // A revocation survives a restart.
    env.cmd(&["daemon", "stop"]).ok();
    let (addr, _) = env.http();
    for t in [ta, tb, tc, d.as_str(), e.as_str()] {
        assert_eq!(status(addr, t), 401);
    }
}

/// Rotating the daemon's token revokes every browser session, and closes
/// their WebSockets.
#[test]
fn rotating_the_daemon_token_revokes_every_browser_session() {
    let env = Env::new("bs-rotate");
    let (addr, _) = env.http();
    let a = login(&env, addr)["token"].as_str().unwrap().to_string();
    let b = login(&env, addr)["token"].as_str().unwrap().to_string();
    let mut events = ws(addr, "/ws", &a).unwrap();
    let new = env.cmd(&["daemon", "token", "--rotate"]).ok().trim().to_string();
    assert_eq!(closed(&mut events).0, CloseCode::Policy);
    assert_eq!(status(addr, &a), 401);
    assert_eq!(status(addr, &b), 401);
    assert_eq!(status(addr, &new), 200);
    assert_eq!(env.cmd(&["--json", "ui", "--sessions"]).json(), json!([]));
}

/// Sessions outlive a restart (a daemon that idled out keeps the browser
/// signed in); one past its idle or absolute limit is refused; a damaged
/// file costs the sessions, never the daemon.
#[test]
fn sessions_outlive_a_restart_and_expire() {
    let env = Env::new("bs-expire");
    let (addr, _) = env.http();
    let idle = login(&env, addr);
    let old = login(&env, addr);
    let fresh = login(&env, addr);
    let token = |v: &Value| v["token"].as_str().unwrap().to_string();
    env.cmd(&["daemon", "stop"]).ok();
    let (addr, _) = env.http();
    for s in [&idle, &old, &fresh] {
        assert_eq!(status(addr, &token(s)), 200, "a restart signed the browser out");
    }
    env.cmd(&["daemon", "stop"]).ok();

    // Aged by hand: 8 days unused; 31 days old though used just now.
    let file = sessions_file(&env);
    let mut stored: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for s in stored["sessions"].as_array_mut().unwrap() {
        if s["id"] == idle["id"] {
            s["created"] = json!(now - 8 * 86_400);
            s["last_used"] = json!(now - 8 * 86_400);
        } else if s["id"] == old["id"] {
            s["created"] = json!(now - 31 * 86_400);
            s["last_used"] = json!(now - 60);
        }
    }
    fs::write(&file, stored.to_string()).unwrap();
    let (addr, _) = env.http();
    assert_eq!(status(addr, &token(&idle)), 401, "idle for 8 days");
    assert_eq!(status(addr, &token(&old)), 401, "31 days old");
    assert_eq!(status(addr, &token(&fresh)), 200);
    let listed = env.cmd(&["--json", "ui", "--sessions"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    env.cmd(&["daemon", "stop"]).ok();

    // Damaged: the daemon starts, says so, and signs browsers in again.
    fs::write(&file, "{not json").unwrap();
    let (addr, _) = env.http();
    assert_eq!(status(addr, &token(&fresh)), 401);
    let again = login(&env, addr);
    assert_eq!(status(addr, &token(&again)), 200);
    assert!(env.log_text().contains("browser sessions"), "{}", env.log_text());
    assert_eq!(mode(&file), 0o600);
}

/// A session that expires while its WebSocket is open: the socket closes
/// then (1008), not at its next use. The session is planted in the file
/// with a token the test chose (the file holds its SHA-256), due to end
/// [`SOON`] after the daemon starts.
#[test]
fn a_websocket_closes_when_its_session_expires() {
    use sha2::Digest;
    const SOON: u64 = 8;
    let env = Env::new("bs-expire-ws");
    env.http();
    env.cmd(&["daemon", "stop"]).ok();
    let token = "5e".repeat(32);
    let digest = sha2::Sha256::digest(token.as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Signed in 30 days ago but SOON seconds (use, which opening the
    // WebSocket is, pushes back the idle limit, never this one).
    let created = now - 30 * 86_400 + SOON;
    let file = json!({"version": 1, "sessions": [
        {"id": "00112233445566aa", "hash": format!("sha256:{hash}"), "created": created, "last_used": now}
    ]});
    fs::write(sessions_file(&env), file.to_string()).unwrap();
    let (addr, _) = env.http();
    let mut events = ws(addr, "/ws", &token).expect("the planted session works until it expires");
    subscribed(&mut events);
    let (code, took) = closed(&mut events);
    assert_eq!(code, CloseCode::Policy);
    assert!(took <= Duration::from_secs(SOON + 5), "closed {took:?} after opening");
    assert_eq!(status(addr, &token), 401);
}

/// At most 64 browser sessions live at once: signing in a 65th ends the
/// least recently used, not the oldest, and no other. The 64 are planted
/// in the file with tokens the test chose (the file holds their SHA-256):
/// session 0 was signed in last but used least recently, session 1 signed
/// in first but used recently.
#[test]
fn signing_in_a_65th_browser_ends_the_least_recently_used() {
    use sha2::Digest;
    let env = Env::new("bs-cap");
    env.http();
    env.cmd(&["daemon", "stop"]).ok();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = |i: usize| format!("{i:02x}").repeat(32);
    let sessions: Vec<Value> = (0..64)
        .map(|i| {
            let digest = sha2::Sha256::digest(token(i).as_bytes());
            let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let (created, last_used) = match i {
                0 => (now - 3600, now - 3000),
                1 => (now - 86_400, now - 10),
                _ => (now - 7200, now - 2000 + i as u64),
            };
            json!({"id": format!("{i:016x}"), "hash": format!("sha256:{hash}"),
                   "created": created, "last_used": last_used})
        })
        .collect();
    let file = json!({"version": 1, "sessions": sessions});
    fs::write(sessions_file(&env), file.to_string()).unwrap();
    let (addr, _) = env.http();
    let listed = |env: &Env| env.cmd(&["--json", "ui", "--sessions"]).json();
    assert_eq!(listed(&env).as_array().unwrap().len(), 64);

    let new = login(&env, addr);
    assert_eq!(status(addr, &token(0)), 401, "the least recently used is ended");
    let ids: Vec<String> = listed(&env)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 64, "{ids:?}");
    assert!(!ids.contains(&format!("{:016x}", 0)), "{ids:?}");
    assert!(ids.contains(&new["id"].as_str().unwrap().to_string()), "{ids:?}");
    assert_eq!(status(addr, new["token"].as_str().unwrap()), 200);
    for i in 1..64 {
        assert_eq!(status(addr, &token(i)), 200, "session {i} was ended too");
    }
}

/// A listener run as `nobody` (uid 65534), killed when dropped.
struct Foreign(Child);

impl Foreign {
    /// Listens on `host:port` as uid 65534; waits until it does.
    fn listen(env: &Env, host: &str, port: u16) -> Foreign {
        let script = env.root.join("listen.py");
        fs::write(
            &script,
            "import socket, sys, time\n\
             host, port = sys.argv[1], int(sys.argv[2])\n\
             s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n\
             s.bind((host, port)); s.listen()\n\
             print('ready', flush=True)\n\
             time.sleep(300)\n",
        )
        .unwrap();
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"])
            .arg(&script)
            .args([host, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the foreign listener");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the foreign listener did not start");
        Foreign(child)
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Another local user on the daemon's port could serve a look-alike page
/// on the same origin, which reads the session from the page's storage:
/// the daemon names the uid holding its port, and `ringlet ui` hands out
/// no link while another uid listens there.
#[test]
fn a_listener_of_another_uid_on_the_port_is_refused() {
    let env = Env::new("bs-port");
    let port = free_port();
    let p = port.to_string();

    // Beside the daemon, on the other loopback address of its port: where a
    // browser opening `localhost:<port>` may well land.
    env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &p).ok();
    let status = env.cmd(&["daemon", "status", "--json"]).env("RINGLET_HTTP_PORT", &p).json();
    assert_eq!(status["http"], format!("127.0.0.1:{port}"), "{status}");
    let ok = env.cmd(&["ui", "--no-open"]).env("RINGLET_HTTP_PORT", &p).ok();
    assert!(ok.contains("#ticket="), "{ok}");
    let beside = Foreign::listen(&env, "::1", port);
    let out = env.cmd(&["ui", "--no-open"]).env("RINGLET_HTTP_PORT", &p).output();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(!stdout.contains("#ticket=") && !stderr.contains("#ticket="), "{stdout}{stderr}");
    assert!(stderr.contains("uid 65534"), "{stderr}");
    // So does `doctor` (the daemon's own check of its port).
    let doctor = env.cmd(&["doctor", "--json"]).env("RINGLET_HTTP_PORT", &p).output();
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let http = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "http").cloned();
    let http = http.unwrap_or_default();
    assert_eq!(http["status"], "fail", "{report}");
    assert!(http["detail"].as_str().unwrap_or_default().contains("uid 65534"), "{report}");
    // A daemon that starts beside it says so in its log.
    env.cmd(&["daemon", "stop"]).ok();
    env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &p).ok();
    let log = env.log_text();
    assert!(log.contains(&format!("HTTP port: [::1]:{port} is held by uid 65534")), "{log}");
    drop(beside);
    assert!(env.cmd(&["ui", "--no-open"]).env("RINGLET_HTTP_PORT", &p).ok().contains("#ticket="));
    env.cmd(&["daemon", "stop"]).ok();

    // Before the daemon: it cannot listen, and says who holds the port.
    let _holder = Foreign::listen(&env, "127.0.0.1", port);
    env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &p).ok();
    let out = env.cmd(&["ui", "--no-open"]).env("RINGLET_HTTP_PORT", &p).output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("uid 65534"), "{stderr}");
    let status = env.cmd(&["daemon", "status", "--json"]).env("RINGLET_HTTP_PORT", &p).json();
    let why = status["http_error"].as_str().unwrap_or_default();
    assert!(why.contains("held by another process") && why.contains("uid 65534"), "{status}");
    let log = env.log_text();
    assert!(log.contains("is held by another process (uid 65534"), "{log}");
}
