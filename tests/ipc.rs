//! The IPC socket under abuse: oversized, truncated, malformed and
//! foreign-version frames, silent clients, another uid, and subscriptions.
//! After each, the daemon must still serve.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::Duration;
use std::{fs, thread};

use serde_json::Value;

use crate::util::{Env, pid_alive, read_line_matching, wait_until};

fn error_code(reply: &str) -> String {
    let v: Value = serde_json::from_str(reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"));
    assert_eq!(v["version"], 2, "{reply}");
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {reply}")).to_string()
}

fn still_serves(env: &Env, pid: u32) {
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["pid"], pid, "the daemon was replaced");
}

#[test]
fn oversized_request_is_refused_and_the_daemon_stays_up() {
    let env = Env::new("oversized");
    let pid = env.start_daemon();
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = vec![b'x'; 2 << 20];
    // The daemon stops reading at the cap, so our write may fail: fine.
    let _ = stream.write_all(&big);
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    assert_eq!(error_code(&reply), "too_large");
    still_serves(&env, pid);

    // Exactly at the cap with a valid-looking prefix: still too large.
    let mut line = br#"{"version":2,"request":{"type":"status"}}"#.to_vec();
    line.resize(1 << 20, b' ');
    line.push(b'\n');
    assert_eq!(error_code(&env.raw_request(&line)), "too_large");
    still_serves(&env, pid);
}

#[test]
fn malformed_frames_get_errors() {
    let env = Env::new("malformed");
    let pid = env.start_daemon();
    let cases: [(&[u8], &str); 7] = [
        (b"{not json\n", "bad_request"),
        (b"\xff\xfe\xfd\n", "bad_request"),
        (br#"{"version":2,"request":{"type":"launch_missiles"}}"#, "bad_request"),
        (br#"{"version":2,"request":{"type":"agents_inspect"}}"#, "bad_request"),
        (br#"{"request":{"type":"status"}}"#, "bad_request"),
        (br#"{"version":99,"request":{"type":"status"}}"#, "version_mismatch"),
        // Truncated: the client half-closes mid-frame.
        (br#"{"version":2,"request":{"ty"#, "bad_request"),
    ];
    for (line, code) in cases {
        let reply = env.raw_request(line);
        assert_eq!(error_code(&reply), code, "for {:?}", String::from_utf8_lossy(line));
    }
    // Connect and hang up without a byte: nothing to answer, nothing breaks.
    drop(UnixStream::connect(env.socket()).unwrap());
    let v: Value = serde_json::from_str(
        &env.raw_request(b"{\"version\":2,\"request\":{\"type\":\"status\"}}\n"),
    )
    .unwrap();
    assert_eq!(v["data"]["pid"], pid);
    let reply =
        env.raw_request(br#"{"version":2,"request":{"type":"agents_inspect","id":"nope"}}"#);
    assert_eq!(error_code(&reply), "not_found");
    still_serves(&env, pid);
}

/// A panic is a bug, and the release build aborts on one (`panic = "abort"`,
/// and a hook makes this debug build do the same): the daemon must leave no
/// half-served request, log what panicked and where, and the next command
/// must simply get a fresh daemon.
#[test]
fn a_panic_is_logged_ends_the_daemon_and_the_next_command_starts_a_fresh_one() {
    let env = Env::new("panic");
    let pid = env.start_daemon();
    let reply = env.raw_request(b"{\"version\":2,\"request\":{\"type\":\"debug_panic\"}}\n");
    assert_eq!(reply, "", "no reply, not half of one");
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "the daemon outlived its panic"
    );
    let log = env.log_text();
    assert!(log.contains("panicked") && log.contains("debug_panic requested"), "{log}");
    assert!(log.contains("src/daemon/dispatch.rs"), "the place is logged: {log}");
    env.cmd(&["agents", "list"]).ok();
    let fresh = env.daemon_pid().expect("a new daemon");
    assert_ne!(fresh, pid);
}

#[test]
fn a_silent_client_does_not_block_others() {
    let env = Env::new("silent");
    let pid = env.start_daemon();
    let silent: Vec<UnixStream> =
        (0..5).map(|_| UnixStream::connect(env.socket()).unwrap()).collect();
    // Served while five connections sit there saying nothing: none of them
    // has been timed out yet (5 s), so no reply waited for them. (Not a
    // stopwatch on the CLI, which a loaded machine can make slow.)
    still_serves(&env, pid);
    for (i, s) in silent.iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        // Reads a byte only when there is one, and then the test fails.
        let read = (&*s).read(&mut [0u8; 1]);
        assert!(
            read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "silent client {i} was answered ({read:?}) before the status request was"
        );
        s.set_nonblocking(false).unwrap();
    }
    // The silent ones are timed out with an error, not left hanging.
    let mut reply = String::new();
    let mut first = &silent[0];
    first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    first.read_to_string(&mut reply).unwrap();
    assert_eq!(error_code(&reply), "bad_request");
    assert!(reply.contains("no complete request line"), "{reply}");
}

/// The daemon's threads named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    crate::util::thread_names(pid).iter().filter(|n| *n == name).count()
}

#[test]
fn a_burst_of_connections_is_served_by_kept_threads_that_leave_no_crowd() {
    let env = Env::new("burst");
    let pid = env.start_daemon();
    // Twenty connections held open at once: each has a thread of its own
    // (none waits for another to finish), and one more is waiting to accept.
    let held: Vec<UnixStream> =
        (0..20).map(|_| UnixStream::connect(env.socket()).unwrap()).collect();
    assert!(
        wait_until(Duration::from_secs(10), || threads_named(pid, "ipc-accept") > 20),
        "{} IPC threads for 20 open connections",
        threads_named(pid, "ipc-accept")
    );
    still_serves(&env, pid);
    // They hang up: their threads go back to waiting, and all but a few end.
    drop(held);
    assert!(
        wait_until(Duration::from_secs(10), || threads_named(pid, "ipc-accept") <= 4),
        "{} IPC threads left after the burst",
        threads_named(pid, "ipc-accept")
    );
    // Kept threads serve one request after another.
    for _ in 0..5 {
        still_serves(&env, pid);
    }
    let left = threads_named(pid, "ipc-accept");
    assert!((1..=4).contains(&left), "{left} IPC threads after serving");
}

#[test]
fn a_daemon_of_another_protocol_version_is_named() {
    let env = Env::new("mismatch");
    let socket = env.root.join("fake.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream).write_all(b"{\"version\":99,\"data\":null}\n").unwrap();
    });
    let (_, err) = env.cmd(&["agents", "list"]).env("RINGLET_DAEMON_ENDPOINT", &socket).code(1);
    server.join().unwrap();
    assert!(err.contains("speaks protocol 99") && err.contains("ringlet daemon stop"), "{err}");
}

#[test]
fn subscribers_receive_events_and_the_shutdown() {
    let env = Env::new("subscribe");
    env.fake_agent("claude", "echo '9.8.7 (Claude Code)'");
    env.start_daemon();
    let stream = UnixStream::connect(env.socket()).unwrap();
    (&stream)
        .write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"AgentDetected\",\"DaemonShuttingDown\"]}}\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let ack = read_line_matching(&mut reader, Duration::from_secs(5), |_| true).unwrap();
    assert_eq!(ack.trim(), r#"{"version":2,"data":null}"#);
    assert_eq!(env.cmd(&["daemon", "status", "--json"]).json()["subscribers"], 1);

    env.cmd(&["agents", "list"]).ok();
    let event =
        read_line_matching(&mut reader, Duration::from_secs(5), |l| l.contains("AgentDetected"))
            .expect("AgentDetected event");
    let v: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(v["data"]["id"], "claude");
    assert_eq!(v["data"]["version"], "9.8.7");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));

    env.cmd(&["daemon", "stop"]).ok();
    let bye = read_line_matching(&mut reader, Duration::from_secs(5), |l| {
        l.contains("DaemonShuttingDown")
    });
    assert!(bye.is_some(), "no DaemonShuttingDown event");
}

#[test]
fn unknown_event_names_are_refused() {
    let env = Env::new("subscribe-bad");
    env.start_daemon();
    let reply = env.raw_request(
        b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"Nonsense\"]}}\n",
    );
    assert_eq!(error_code(&reply), "bad_request");
    assert!(reply.contains("Nonsense"), "{reply}");
}

/// A peer of another uid is refused. Needs root (to run the daemon as
/// `nobody` and connect as root) and `setpriv` from util-linux.
#[test]
fn a_peer_of_another_uid_is_refused() {
    let is_root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: needs root and setpriv");
        return;
    }
    let env = Env::new("foreign-uid");
    // Hand the whole world to nobody (uid 65534).
    let status = Command::new("chown").args(["-R", "65534:65534"]).arg(&env.root).status().unwrap();
    assert!(status.success());
    fs::set_permissions(&env.root, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        crate::util::BIN,
        "daemon",
        "--foreground",
    ])
    .env_clear()
    .env("HOME", &env.home)
    .env("RINGLET_CONFIG_DIR", &env.config)
    .env("XDG_RUNTIME_DIR", &env.run)
    .env("PATH", "/usr/bin:/bin")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let mut daemon = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    // We are root, so the 0600 socket of uid 65534 lets us connect; the
    // daemon must still refuse to serve us.
    let reply = env.raw_request(b"{\"version\":2,\"request\":{\"type\":\"status\"}}\n");
    assert_eq!(error_code(&reply), "forbidden", "{reply}");
    let shutdown = env.raw_request(b"{\"version\":2,\"request\":{\"type\":\"shutdown\"}}\n");
    assert_eq!(error_code(&shutdown), "forbidden");
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Item 7: 300 connections that each send a byte a second and never a whole
/// request (and reconnect when cut off) do not lock out the CLI: a request
/// must arrive whole within a total deadline, and at the cap the oldest
/// unfinished request gives way.
#[test]
fn trickling_connections_do_not_lock_out_the_cli() {
    let env = Env::new("ipc-trickle");
    let pid = env.start_daemon();
    let socket = env.socket().display().to_string();
    let _attack = crate::http::Trickler::start(&env, 0, &["unix", &socket, "300"]);
    for _ in 0..5 {
        still_serves(&env, pid);
        env.cmd(&["profiles", "list"]).ok();
    }
}
