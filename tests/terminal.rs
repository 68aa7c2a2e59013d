//! Terminal sessions end to end: a real PTY in the daemon, driven over the
//! HTTP API and `/ws/terminal/{id}` with a real WebSocket client: typing and
//! reading, many clients, the scrollback on reconnect, resize, signals, the
//! exit code, and a kill that leaves nothing behind.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::util::http::request;
use crate::util::{Env, pid_alive, wait_until};

/// A world with a `shell` agent: its binary runs `sh` with a known prompt,
/// so a session is a shell in the profile.
pub(crate) fn shell_world(name: &str) -> Env {
    let env = Env::new(name);
    fs::create_dir_all(env.config.join("agents.d")).unwrap();
    fs::create_dir_all(env.config.join("scripts")).unwrap();
    fs::write(
        env.config.join("agents.d/shell.toml"),
        r#"
id = "shell"
name = "Shell"
binary = "shell-agent"
[profile]
strategy = "home-wrapper"
source_home = "~/.shell-profiles/{alias}"
script = "shell.rhai"
provider_types = ["anthropic"]
"#,
    )
    .unwrap();
    fs::write(
        env.config.join("scripts/shell.rhai"),
        "#{ files: #{}, env: #{ PS1: \"$ \" }, args: [] }",
    )
    .unwrap();
    env.fake_agent("shell-agent", "exec /bin/sh \"$@\"");
    env.create_profile("shell", "sh1");
    env
}

fn api(addr: SocketAddr, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let auth = format!("Bearer {token}");
    let answer = request(addr, method, path, &[("Authorization", &auth)], &body);
    (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
}

fn create(env: &Env, addr: SocketAddr, token: &str, extra: Value) -> Value {
    let mut req = json!({"profile": "sh1", "sandbox": false, "path": env.path_var().to_str().unwrap(), "cols": 100, "rows": 30, "working_dir": env.root.display().to_string()});
    if let (Some(o), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    let (status, reply) = api(addr, token, "POST", "/api/terminal/sessions", &req);
    assert_eq!(status, 201, "{reply}");
    reply["data"].clone()
}

pub(crate) struct Term {
    ws: WebSocket<TcpStream>,
    pub(crate) seen: Vec<u8>,
    texts: Vec<Value>,
}

impl Term {
    pub(crate) fn open(addr: SocketAddr, token: &str, id: &str) -> Term {
        let mut req = format!("ws://{addr}/ws/terminal/{id}").into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&format!("bearer, {token}")).unwrap(),
        );
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (ws, _) =
            tungstenite::client(req, stream).unwrap_or_else(|e| panic!("attach {id}: {e}"));
        let mut t = Term { ws, seen: Vec::new(), texts: Vec::new() };
        let connected = t.text("connected");
        assert_eq!(connected["session"]["id"], id);
        t
    }

    pub(crate) fn pump(&mut self) {
        match self.ws.read() {
            Ok(Message::Binary(b)) => self.seen.extend_from_slice(&b),
            Ok(Message::Text(t)) => self.texts.push(serde_json::from_str(&t).unwrap()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }

    pub(crate) fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if String::from_utf8_lossy(&self.seen).contains(needle) {
                return String::from_utf8_lossy(&self.seen).into_owned();
            }
            self.pump();
        }
        panic!("no `{needle}` in:\n{}", String::from_utf8_lossy(&self.seen));
    }

    pub(crate) fn text(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(i) = self.texts.iter().position(|t| t["type"] == kind) {
                return self.texts.remove(i);
            }
            self.pump();
        }
        panic!("no {kind} message; got {:?}", self.texts);
    }

    pub(crate) fn type_in(&mut self, text: &str) {
        self.ws.send(Message::Binary(text.as_bytes().to_vec().into())).unwrap();
    }
}

#[test]
fn a_shell_session_is_typed_into_watched_and_killed() {
    let env = shell_world("term-basic");
    let (addr, token) = env.http();
    let info = create(&env, addr, &token, Value::Null);
    let id = info["id"].as_str().unwrap().to_string();
    assert_eq!(info["state"], "running");
    assert_eq!(info["sandbox"], "none", "--no-sandbox is recorded");
    let pid = info["pid"].as_u64().unwrap() as u32;

    let mut a = Term::open(addr, &token, &id);
    a.type_in("echo hello-$((6*7))\n");
    a.until("hello-42");
    // The environment was built from scratch: the daemon's own variables
    // (RINGLET_CONFIG_DIR, XDG_RUNTIME_DIR) are not there.
    a.type_in("echo cfg=[$RINGLET_CONFIG_DIR] run=[$XDG_RUNTIME_DIR] prof=[$RINGLET_PROFILE]\n");
    a.until("cfg=[] run=[] prof=[sh1]");

    // 20 more clients: each gets the scrollback, then the same live bytes.
    let mut many: Vec<Term> = (0..20).map(|_| Term::open(addr, &token, &id)).collect();
    for t in &mut many {
        t.until("hello-42");
    }
    a.type_in("echo all-$((20+1))\n");
    for t in &mut many {
        t.until("all-21");
    }
    a.until("all-21");

    // Resize reaches the program and the other clients.
    a.ws.send(Message::text(r#"{"type":"resize","cols":123,"rows":45}"#)).unwrap();
    let resized = many[0].text("resized");
    assert_eq!((resized["cols"].as_u64(), resized["rows"].as_u64()), (Some(123), Some(45)));
    a.type_in("stty size\n");
    a.until("45 123");
    assert_eq!(
        api(addr, &token, "GET", &format!("/api/terminal/sessions/{id}"), &Value::Null).1["data"]["cols"],
        123
    );

    // A signal from a client reaches the shell's process group.
    a.type_in("trap 'echo got-int' INT\n");
    a.ws.send(Message::text(r#"{"type":"signal","signal":"INT"}"#)).unwrap();
    a.until("got-int");

    // The CLI sees the same session.
    let listed = env.cmd(&["terminal", "list", "--json"]).json();
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    drop(many);

    // Kill ends the process group (a background job included).
    a.type_in("sleep 1000 & echo bg=[$!]\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let bg: u32 = loop {
        let text = String::from_utf8_lossy(&a.seen).into_owned();
        // The echoed command line has `bg=[$!]`; the output has the pid.
        if let Some(n) = text.split("bg=[").filter_map(|t| t.split(']').next()?.parse().ok()).next()
        {
            break n;
        }
        assert!(Instant::now() < deadline, "no pid in {text}");
        a.pump();
    };
    let killed = env.cmd(&["terminal", "kill", &id, "--json"]).json();
    assert_eq!(killed["state"], "exited", "{killed}");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid) && !pid_alive(bg)),
        "processes left"
    );
    let (status, _) =
        api(addr, &token, "GET", &format!("/api/terminal/sessions/{id}"), &Value::Null);
    assert_eq!(status, 404);
}

#[test]
fn the_exit_code_arrives_and_a_late_client_gets_the_last_screen() {
    let env = shell_world("term-exit");
    let (addr, token) = env.http();
    let info = create(&env, addr, &token, json!({"args": ["-c", "echo bye-from-sh; exit 7"]}));
    let id = info["id"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(5), || {
        api(addr, &token, "GET", &format!("/api/terminal/sessions/{id}"), &Value::Null).1["data"]["state"]
            == "exited"
    }));
    let info = api(addr, &token, "GET", &format!("/api/terminal/sessions/{id}"), &Value::Null).1;
    assert_eq!(info["data"]["exit_code"], 7, "{info}");
    let mut late = Term::open(addr, &token, &id);
    late.until("bye-from-sh");
    assert_eq!(late.text("state_changed")["exit_code"], 7);
    // Cleanup removes ended sessions.
    let (_, removed) = api(addr, &token, "POST", "/api/terminal/cleanup", &Value::Null);
    assert_eq!(removed["data"]["removed"], json!([id]));
}

#[test]
fn bad_terminal_requests_get_clear_errors() {
    let env = shell_world("term-bad");
    let (addr, token) = env.http();
    let (status, reply) = api(
        addr,
        &token,
        "POST",
        "/api/terminal/sessions",
        &json!({"profile": "ghost", "sandbox": false}),
    );
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = api(
        addr,
        &token,
        "POST",
        "/api/terminal/sessions",
        &json!({"profile": "sh1", "sandbox": false, "working_dir": "relative"}),
    );
    assert_eq!(status, 400, "{reply}");
    let (status, _) =
        api(addr, &token, "POST", "/api/terminal/sessions", &json!({"profile": "sh1", "cols": 0}));
    assert_eq!(status, 400);
    let (status, _) = api(addr, &token, "DELETE", "/api/terminal/sessions/t999", &Value::Null);
    assert_eq!(status, 404);
    let mut req = format!("ws://{addr}/ws/terminal/t999").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("bearer, {token}")).unwrap(),
    );
    let err = tungstenite::client(req, TcpStream::connect(addr).unwrap()).err().unwrap();
    assert!(
        matches!(err, tungstenite::HandshakeError::Failure(tungstenite::Error::Http(ref r)) if r.status() == 404),
        "{err:?}"
    );
    // Shutdown ends every session's process group.
    let info = create(&env, addr, &token, Value::Null);
    let pid = info["pid"].as_u64().unwrap() as u32;
    env.cmd(&["daemon", "stop"]).ok();
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    // ...and the run it ended is recorded before the daemon goes.
    let runs = fs::read_to_string(env.config.join("telemetry/sessions.jsonl")).unwrap();
    let last: Value = serde_json::from_str(runs.lines().last().unwrap()).unwrap();
    assert_eq!(last["profile"], "sh1", "{runs}");
    assert_eq!(last["signal"], 1, "SIGHUP ended the shell: {runs}");
}

#[test]
fn a_sandboxed_session_sees_only_what_it_should() {
    let env = shell_world("term-sandbox");
    let (addr, token) = env.http();
    let secret = env.home.join("secret.txt");
    fs::write(&secret, "top secret").unwrap();
    fs::write(env.home.join(".gitconfig"), "[user]\n\tname = T\n").unwrap();
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let profile_home = env.home.join(".shell-profiles/sh1");
    let info = create(
        &env,
        addr,
        &token,
        json!({"sandbox": true, "working_dir": work.display().to_string()}),
    );
    assert_eq!(info["sandbox"], "bwrap", "{info}");
    let id = info["id"].as_str().unwrap().to_string();
    let mut t = Term::open(addr, &token, &id);
    let check = |t: &mut Term, what: &str, cmd: &str| {
        t.type_in(&format!(
            "if {cmd} 2>/dev/null; then echo {what}=yes; else echo {what}=no; fi\n"
        ));
        t.until(&format!("{what}=")); // the echoed command
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&t.seen).into_owned();
            if text.contains(&format!("{what}=yes\r\n")) {
                return true;
            }
            if text.contains(&format!("{what}=no\r\n")) {
                return false;
            }
            assert!(Instant::now() < deadline, "{what}: {text}");
            t.pump();
        }
    };
    assert!(check(&mut t, "workw", "touch ./w1"), "the working dir is writable");
    assert!(
        check(&mut t, "profw", &format!("touch {}/p1", profile_home.display())),
        "the profile home is writable"
    );
    assert!(
        !check(&mut t, "secretr", &format!("cat {}", secret.display())),
        "the real home is hidden"
    );
    // The home inside is a throwaway tmpfs: writes there never reach the real one.
    check(
        &mut t,
        "homew",
        &format!("touch {}/x && echo pwned > {}", env.home.display(), secret.display()),
    );
    assert!(
        check(&mut t, "gitr", &format!("cat {}/.gitconfig", env.home.display())),
        "the allowlist is readable"
    );
    assert!(
        !check(&mut t, "gitw", &format!("touch {}/.gitconfig", env.home.display())),
        "...but read-only"
    );
    assert!(!check(&mut t, "usrw", "touch /usr/ringlet-test"), "/usr is read-only");
    assert!(
        check(
            &mut t,
            "net",
            &format!(
                "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 5)'"
            )
        ),
        "loopback reachable"
    );
    assert!(work.join("w1").exists() && profile_home.join("p1").exists());
    assert!(!env.home.join("x").exists(), "a write to the real home's path stayed inside");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "top secret");
    env.cmd(&["terminal", "kill", &id]).ok();

    // From the CLI (over IPC, whose connection thread ends right after the
    // reply): the sandbox is tied to the session's thread, so it lives on.
    let out = env.cmd(&["profiles", "run", "sh1", "--remote", "--json"]).json();
    assert_eq!(out["sandbox"], "bwrap", "{out}");
    let id = out["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let info = env.cmd(&["terminal", "info", &id, "--json"]).json();
    assert_eq!(info["state"], "running", "{info}");
    let mut t = Term::open(addr, &token, &id);
    t.type_in("echo alive-$((1+1))\n");
    t.until("alive-2");
    env.cmd(&["terminal", "kill", &id]).ok();
}

#[test]
fn doctor_names_what_is_missing_and_the_fix() {
    let env = Env::new("doctor");
    let ok = env.cmd(&["doctor", "--json"]).json();
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(!env.socket().exists(), "doctor never starts a daemon");
    // No bwrap on PATH.
    let (out, _) = env.cmd(&["doctor"]).env("PATH", &env.bin).code(1);
    assert!(out.contains("FAIL sandbox"), "{out}");
    assert!(out.contains("bubblewrap"), "the fix names the package: {out}");
    // With a daemon: its HTTP address.
    let (addr, _) = env.http();
    let out = env.cmd(&["doctor"]).ok();
    assert!(out.contains(&format!("http://{addr}")), "{out}");
}

/// `ringlet terminal attach` in a real terminal (tmux): typing reaches the
/// session, the size follows the terminal, Ctrl-] detaches and leaves the
/// session running and the terminal as it was.
#[test]
fn attach_from_a_real_terminal_and_detach() {
    let env = shell_world("term-attach");
    let (addr, token) = env.http();
    let id = create(&env, addr, &token, Value::Null)["id"].as_str().unwrap().to_string();
    // A tmux server of its own per use: a killed server's socket name is not
    // reused at once.
    let sock = std::cell::Cell::new(0u32);
    let tmux = |args: &[&str]| {
        let name = format!("ringlet-attach-{}-{}", std::process::id(), sock.get());
        std::process::Command::new("tmux").arg("-L").arg(name).args(args).output().expect("tmux")
    };
    let command = format!(
        "env -i HOME={} PATH={} RINGLET_CONFIG_DIR={} XDG_RUNTIME_DIR={} RINGLET_HTTP_PORT=0 TERM=xterm {} terminal attach {id}; echo ATTACH-EXIT=$?; sleep 60",
        env.home.display(),
        env.path_var().to_str().unwrap(),
        env.config.display(),
        env.run.display(),
        crate::util::BIN,
    );
    assert!(
        tmux(&["new-session", "-d", "-s", "a", "-x", "100", "-y", "30", &command]).status.success()
    );
    let screen =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "a"]).stdout).into_owned();
    let wait = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "no `{what}` on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    tmux(&["send-keys", "-t", "a", "echo hi-$((2+3))", "Enter"]);
    wait("hi-5");
    let pane = String::from_utf8_lossy(
        &tmux(&["display", "-p", "-t", "a", "#{pane_height} #{pane_width}"]).stdout,
    )
    .trim()
    .to_string();
    tmux(&["send-keys", "-t", "a", "stty size", "Enter"]);
    wait(&pane);
    tmux(&["send-keys", "-t", "a", "C-]"]);
    let s = wait("ATTACH-EXIT=0");
    assert!(s.contains(&format!("[detached from {id}")), "{s}");
    tmux(&["kill-server"]);

    // `profiles run --remote` in a terminal attaches at once.
    sock.set(1);
    let command =
        command.replace(&format!("terminal attach {id}"), "profiles run sh1 --remote --no-sandbox");
    assert!(
        tmux(&["new-session", "-d", "-s", "a", "-x", "100", "-y", "30", &command]).status.success()
    );
    wait("Ctrl-] detaches");
    tmux(&["send-keys", "-t", "a", "echo remote-$((3+4))", "Enter"]);
    wait("remote-7");
    tmux(&["send-keys", "-t", "a", "C-]"]);
    wait("ATTACH-EXIT=0");
    tmux(&["kill-server"]);
    let info = env.cmd(&["terminal", "info", &id, "--json"]).json();
    assert_eq!(info["state"], "running", "detaching leaves the session running: {info}");
    // Without a terminal, attach says so.
    let (_, err) = env.cmd(&["terminal", "attach", &id]).code(1);
    assert!(err.contains("needs a terminal"), "{err}");
}
