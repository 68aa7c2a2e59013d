//! The red team's attacks on issue 11's trust boundaries, each written as the
//! attacker would run it: a stranger on the HTTP port from another uid
//! (`setpriv --reuid=65534`), a hostile agent inside a sandboxed session,
//! a caller with secrets in its environment. Each test failed on the code
//! it was written against; the fix is named in its comment.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::Env;

/// A Python attacker run as `nobody` (uid 65534), killed when dropped. The
/// script prints `ready` once its attack is under way; its later lines
/// come through `lines`.
struct Stranger(Child, std::sync::mpsc::Receiver<String>);

impl Stranger {
    fn start(env: &Env, name: &str, script: &str, args: &[&str]) -> Stranger {
        let path = env.root.join(name);
        std::fs::write(&path, script).unwrap();
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"])
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the attacker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let said = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let stranger = Stranger(child, rx);
        assert_eq!(said.trim(), "ready", "the attacker did not get going");
        stranger
    }

    /// Its next line, within `wait`.
    fn line(&self, wait: Duration) -> String {
        self.1.recv_timeout(wait).unwrap_or_default()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One owner request with the token on a fresh connection, waiting at most
/// `wait`: its status, or 0 when the connection ended (or the wait did)
/// without an answer.
fn owner_status(addr: SocketAddr, token: &str, wait: Duration) -> u16 {
    match TcpStream::connect(addr) {
        Ok(s) => owner_status_on(s, token, wait),
        Err(e) => {
            eprintln!("connect: {e}");
            0
        }
    }
}

/// [`owner_status`] on a connection already open.
fn owner_status_on(mut s: TcpStream, token: &str, wait: Duration) -> u16 {
    let addr = s.peer_addr().unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let head = format!(
        "GET /api/daemon/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    if let Err(e) = s.write_all(head.as_bytes()) {
        eprintln!("write: {e}");
        return 0;
    }
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        eprintln!("read: {e}");
    }
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Connects as fast as it can from several threads and never sends a byte,
/// keeping the last 40 connections of each thread open.
const SILENT_CROWD: &str = r#"
import socket, sys, threading
port, nthreads = int(sys.argv[1]), int(sys.argv[2])
def run():
    held = []
    while True:
        try:
            held.append(socket.create_connection(("127.0.0.1", port)))
            if len(held) > 40:
                held.pop(0).close()
        except OSError:
            pass
for _ in range(nthreads):
    threading.Thread(target=run, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// Item 7, a silent crowd: connections that never send a byte stayed
/// "not yet read" for their whole 10 s head timeout, the class the owner's
/// brand-new connection is in until its thread reads it, so a crowd that
/// reconnects as fast as it can closed owner requests before they were
/// looked at (0.5-1 % of them here, 11 % with curl's slower start).
/// Narrowed first (`src/daemon/http/{mod,slots}.rs`): a connection whose
/// thread finds nothing waiting on its first read may give way at once, and
/// one whose request is waiting unread in its socket, or being read, goes
/// last. That left an owner whose client is descheduled between `connect`
/// and `write` for longer than 32 of the crowd's reconnects closed unread
/// (about 0.2 %; every time for a connection left silent for a second, the
/// second half here): nothing told it from the crowd until it sent. Fix
/// (`src/daemon/http/{slots,peer}.rs`): when a stranger must give way, the
/// front door asks the kernel (`NETLINK_SOCK_DIAG`) who owns the other end
/// of each loopback connection, and one of the daemon's own uid never gives
/// way to another uid's.
#[test]
fn a_silent_crowd_of_another_uid_cannot_close_the_owners_connections() {
    let env = Env::new("atk-silent");
    let (addr, token) = env.http();
    let port = addr.port().to_string();
    let _crowd = Stranger::start(&env, "silent.py", SILENT_CROWD, &[&port, "8"]);
    // For 4 s (the crowd takes a moment to reach full speed), at least 100.
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let mut i = 0;
    while i < 100 || started.elapsed() < Duration::from_secs(4) {
        let status = owner_status(addr, &token, Duration::from_secs(20));
        if status != 200 {
            failed.push((i, status));
        }
        i += 1;
    }
    // An owner's client descheduled between `connect` and `write`, for
    // longer than the crowd takes to reconnect past the whole pool many
    // times over.
    let silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(1));
    for (j, s) in silent.into_iter().enumerate() {
        let status = owner_status_on(s, &token, Duration::from_secs(20));
        if status != 200 {
            failed.push((i + j, status));
        }
    }
    assert!(
        failed.is_empty(),
        "of {} owner requests, these failed (index, status): {failed:?}",
        i + 4
    );
}

/// Opens `count` connections that each pipeline `requests` requests for
/// the web UI's largest file (no token needed) and never read an answer.
const PIPELINER: &str = r#"
import socket, sys, threading
port, count, requests = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET /static/vendor/xterm.mjs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
held = []
for _ in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    try:
        s.send(req * requests)
    except BlockingIOError:
        pass
    held.append(s)
print("ready", flush=True)
threading.Event().wait()
"#;

/// Item 7, pipelining: a stranger (no token needed for the web UI's files)
/// that pipelines requests for the UI's largest file and reads no answer (two
/// connections were enough; the test opens 16, twice the workers and
/// within the stranger pool, so that none is closed for a newcomer) held
/// every REST worker: tiny_http hands each pipelined request to
/// a worker, which then waits to write behind the unread answers. The
/// owner's requests waited as long as the attacker liked (38 s here, until
/// it quit). Fix (`src/daemon/http/mod.rs`, `bridge`): a connection without
/// the token gets one answer and is closed (`Connection: close`), so no
/// stranger ever has more than one request with the workers, and one answer
/// to a stranger fits the socket between the front door and tiny_http.
#[test]
fn a_stranger_pipelining_unread_requests_holds_no_worker() {
    let env = Env::new("atk-pipeline");
    let (addr, token) = env.http();
    let port = addr.port().to_string();
    let _attack = Stranger::start(&env, "pipeline.py", PIPELINER, &[&port, "16", "100"]);
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..5 {
        let status = owner_status(addr, &token, Duration::from_secs(10));
        assert_eq!(status, 200, "owner request {i} unanswered within 10 s");
    }
}

/// POST /api/terminal/sessions for `sh1` running `sh -c script` sandboxed in
/// `work`; the script's findings, which it writes to `work/findings` and
/// ends with `done`.
fn sandboxed_findings(env: &Env, work: &std::path::Path, script: &str) -> String {
    let (addr, token) = env.http();
    let script = format!(
        "out=\"$PWD/findings\"\n{{\n{script}\necho done\n}} > \"$out.tmp\" 2>&1\nmv \"$out.tmp\" \"$out\"\n"
    );
    let body = serde_json::json!({
        "profile": "sh1",
        "sandbox": true,
        "path": env.path_var().to_str().unwrap(),
        "args": ["-c", script],
        "working_dir": work.display().to_string(),
    });
    let answer = crate::util::http::post_session(addr, &token, &body);
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let out = work.join("findings");
    let done = crate::util::wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.ends_with("done\n"))
    });
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(done, "the sandboxed script did not finish: {text:?}");
    text
}

/// A hostile agent looks for a way out through what its process inherited:
/// file descriptors the daemon left open across exec (the IPC socket, the
/// log, the HTTP listener, an inotify or SQLite fd), variables that name
/// Ringlet's sockets or token, and the environment of every process it can
/// see. Held: only the terminal's 0, 1 and 2 are open, and no variable
/// names Ringlet's dirs. (Kept: cheap, and any fd opened without CLOEXEC
/// later would show up here.)
#[test]
fn a_sandboxed_agent_inherits_no_descriptor_and_no_variable_of_the_daemon() {
    let env = crate::terminal::shell_world_with_config("atk-inherit", "");
    let work = env.home.join("src/project");
    std::fs::create_dir_all(&work).unwrap();
    // The daemon has a session, a WebSocket and a usage scan behind it.
    let text = sandboxed_findings(
        &env,
        &work,
        r#"for f in /proc/$$/fd/*; do echo "fd $f $(readlink "$f")"; done
        env | sed 's/^/env /'
        for p in /proc/[0-9]*; do echo "environ ${p##*/} $(tr '\0' ' ' < "$p/environ")"; done"#,
    );
    // The shell's own are the terminal, /dev/null, pipes and the findings
    // file; a socket, an anonymous inode (epoll, inotify, eventfd) or a
    // file of the daemon's would be the daemon's, leaked.
    let fds: Vec<&str> = text.lines().filter(|l| l.starts_with("fd ")).collect();
    assert!(fds.len() >= 3, "{text}");
    for line in fds {
        let target = line.splitn(3, ' ').nth(2).unwrap_or("");
        let own = target.starts_with("/dev/pts/")
            || target == "/dev/null"
            || target.starts_with("pipe:")
            || target.is_empty()
            || target.starts_with(&work.display().to_string());
        assert!(own, "an inherited descriptor: {line}\n{text}");
    }
    let config = env.config.display().to_string();
    let run = env.run.display().to_string();
    for line in text.lines().filter(|l| l.starts_with("env ") || l.starts_with("environ ")) {
        assert!(!line.contains(&config) && !line.contains(&run), "{line}");
        let mut ours = line.split(' ').filter(|w| w.starts_with("RINGLET_"));
        assert!(ours.all(|w| w.starts_with("RINGLET_PROFILE=")), "{line}");
    }
}

/// A session whose working dir holds other profiles' homes (the agent's
/// `~/.claude-profiles`, where `profiles run --remote` from that dir puts
/// it) showed the agent every other profile of that agent: their
/// transcripts and state, the key's last 20 characters Claude keeps, and
/// let it plant files there (commands, memory, skills) that another
/// profile's agent runs with that profile's key. Fix
/// (`src/daemon/dispatch.rs`, `handle_terminal_create`): the other
/// profiles' homes join what the sandbox hides (masked wherever a bind
/// shows them; one of them as the working dir is refused).
#[test]
fn a_sandboxed_agent_cannot_reach_another_profiles_home() {
    let env = crate::terminal::shell_world_with_config("atk-other-home", "");
    env.create_profile("shell", "sh2");
    let homes = env.home.join(".shell-profiles");
    let other = homes.join("sh2");
    std::fs::write(other.join("transcript"), "the other profile's secrets\n").unwrap();
    let text = sandboxed_findings(
        &env,
        &homes,
        r#"if cat sh2/transcript; then echo read=yes; else echo read=no; fi
        if echo planted > sh2/CLAUDE.md; then echo write=yes; else echo write=no; fi
        if test -d sh1; then echo own=yes; else echo own=no; fi"#,
    );
    assert!(text.contains("read=no") && !text.contains("secrets"), "{text}");
    assert!(!other.join("CLAUDE.md").exists(), "{text}");
    // Its own home is still there (bound in its own right).
    assert!(text.contains("own=yes"), "{text}");
    // Another profile's home as the working dir is refused.
    let (addr, token) = env.http();
    let body = serde_json::json!({"profile": "sh1", "sandbox": true,
        "path": env.path_var().to_str().unwrap(), "args": ["-c", "true"],
        "working_dir": other.display().to_string()});
    let answer = crate::util::http::post_session(addr, &token, &body);
    let reply = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status, 400, "{reply}");
    assert!(reply.contains("another profile"), "{reply}");
}

/// Watches every process's command line for a login ticket (`#ticket=`),
/// trades it at `POST /api/login` the moment it appears and prints what the
/// daemon answered.
const TICKET_THIEF: &str = r##"
import glob, json, socket, sys, time
port = int(sys.argv[1])
print("ready", flush=True)
seen = set()
while True:
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            words = open(path, "rb").read().split(b"\0")
        except OSError:
            continue
        for w in words:
            if b"#ticket=" in w:
                ticket = w.split(b"#ticket=")[1].decode()
                if ticket in seen:
                    continue
                seen.add(ticket)
                body = json.dumps({"ticket": ticket}).encode()
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (port, len(body)) + body)
                answer = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    answer += d
                print(answer.decode(errors="replace").replace("\r\n", " "), flush=True)
    time.sleep(0.005)
"##;

/// `ringlet ui` hands the login ticket to the browser opener on its command
/// line (`xdg-open http://127.0.0.1:<port>/#ticket=...`), and every local
/// user can read every command line (`/proc/<pid>/cmdline`). Another uid
/// that watches for it traded it for the HTTP token before the browser did
/// (and the owner's own sign-in then failed): with the token, it could open
/// terminal sessions as the owner, keys and all. Fix
/// (`src/daemon/http/{mod,auth}.rs`): a login from a loopback connection
/// is taken only from a socket owned by the daemon's own uid (looked up in
/// `/proc/net/tcp{,6}`), so a ticket seen by someone else is worth nothing,
/// and is not spent by their attempt.
#[test]
fn a_ticket_on_the_openers_command_line_is_worth_nothing_to_another_uid() {
    let env = Env::new("atk-ticket");
    let (addr, token) = env.http();
    let port = addr.port().to_string();
    // A browser opener that takes its time, as a starting browser does.
    env.fake_agent("xdg-open", "sleep 5");
    let thief = Stranger::start(&env, "thief.py", TICKET_THIEF, &[&port]);
    let out = env.cmd(&["ui"]).env("DISPLAY", ":99").ok();
    assert!(out.contains("Opened the web UI"), "{out}");
    let url = out.lines().find(|l| l.contains("#ticket=")).unwrap();
    let ticket = url.split_once("#ticket=").unwrap().1.trim();
    // The thief saw it and tried (its answer is its next line).
    let said = thief.line(Duration::from_secs(20));
    assert!(!said.is_empty(), "the thief never saw the ticket");
    assert!(!said.contains(&token), "another uid got the token: {said}");
    assert!(said.starts_with("HTTP/1.1 403"), "{said}");
    // The owner's browser still signs in with it.
    let body = serde_json::json!({"ticket": ticket}).to_string();
    let answer = crate::util::http::request(
        addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    // A browser session's own token, never the daemon's.
    let browser = answer.json()["data"]["token"].as_str().unwrap().to_string();
    assert!(browser.len() == 64 && browser != token, "{browser}");
}

/// Links and `..` toward Ringlet's config dir: a working dir that is a link
/// to it, or that reaches it through `..`, is refused; a link to it planted
/// in the working dir leads nowhere inside. Held (kept: one session, cheap).
#[test]
fn links_and_dot_dots_to_the_config_dir_lead_nowhere() {
    let env = crate::terminal::shell_world_with_config("atk-links", "");
    let work = env.home.join("src/project");
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(&env.config, work.join("cfg")).unwrap();
    std::os::unix::fs::symlink(&env.config, env.home.join("src/cfg-link")).unwrap();
    let (addr, token) = env.http();
    let dotdot = format!("{}/../../../config", work.display());
    for dir in [env.home.join("src/cfg-link").display().to_string(), dotdot] {
        let body = serde_json::json!({"profile": "sh1", "sandbox": true,
            "path": env.path_var().to_str().unwrap(), "args": ["-c", "true"],
            "working_dir": dir});
        let answer = crate::util::http::post_session(addr, &token, &body);
        let reply = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 400, "{dir}: {reply}");
        assert!(reply.contains("config dir"), "{dir}: {reply}");
    }
    let text = sandboxed_findings(
        &env,
        &work,
        "if ls cfg/ cfg/http_token; then echo seen=yes; else echo seen=no; fi",
    );
    assert!(text.contains("seen=no") && !text.contains("http_token\n"), "{text}");
}

/// A project whose `node_modules/.bin` is on the user's PATH (direnv's
/// `PATH_add node_modules/.bin`, `npm exec` shells) is writable by an agent
/// sandboxed in it: it planted a `bwrap` there, and the next sandboxed
/// session started with that PATH ran the planted program, outside any
/// sandbox, with the whole bwrap command line. Fix
/// (`src/terminal/sandbox.rs`, `wrap`): bwrap is never taken from a PATH
/// dir inside the session's working dir or profile home.
#[test]
fn a_bwrap_planted_in_the_working_dirs_path_entry_is_not_run() {
    let env = crate::terminal::shell_world_with_config("atk-fake-bwrap", "");
    let work = env.home.join("src/project");
    let bin = work.join("node_modules/.bin");
    std::fs::create_dir_all(&bin).unwrap();
    let escaped = env.root.join("escaped");
    let fake = bin.join("bwrap");
    std::fs::write(&fake, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 0\n", escaped.display()))
        .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (addr, token) = env.http();
    let path = format!("{}:{}", bin.display(), env.path_var().to_str().unwrap());
    let script = "echo done > findings";
    let body = serde_json::json!({"profile": "sh1", "sandbox": true, "path": path,
        "args": ["-c", script], "working_dir": work.display().to_string()});
    let answer = crate::util::http::post_session(addr, &token, &body);
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let done = crate::util::wait_until(Duration::from_secs(20), || {
        work.join("findings").exists() || escaped.exists()
    });
    assert!(!escaped.exists(), "the planted bwrap ran: {:?}", std::fs::read_to_string(&escaped));
    assert!(done, "the session did not run under the real bwrap");
}
