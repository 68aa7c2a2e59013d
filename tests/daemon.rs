//! The daemon's lifecycle as the CLI drives it: auto-start, exactly one
//! daemon under a start race, stale sockets, idle exit, signals, status/stop.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{Env, kill, mode, pid_alive, wait_until};

#[test]
fn any_command_starts_the_daemon_detached() {
    let env = Env::new("autostart");
    assert!(env.daemon_pid().is_none());
    env.cmd(&["providers", "list"]).ok();
    let pid = env.daemon_pid().expect("daemon started");
    let socket = env.socket();
    assert!(fs::symlink_metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&socket) & 0o777, 0o600, "socket mode");
    assert_eq!(mode(&env.run.join("ringlet")) & 0o777, 0o700, "runtime dir mode");
    assert!(env.log_text().contains("listening on"), "log: {}", env.log_text());
    assert_eq!(mode(&env.log()) & 0o777, 0o600, "log mode");
    assert_eq!(mode(&env.config) & 0o777, 0o700, "config dir mode");
    assert_eq!(mode(&env.config.join("logs")) & 0o777, 0o700, "logs dir mode");
    // Detached: its own session, not our child's process group.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "daemon leads its own session (sid == pid)");
    // The next command reuses it.
    env.cmd(&["agents", "list"]).ok();
    assert_eq!(env.daemon_pid(), Some(pid));
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], pid);
    assert_eq!(status["protocol"], 1);
}

#[test]
fn status_and_stop_never_start_a_daemon() {
    let env = Env::new("no-start");
    let (out, _) = env.cmd(&["daemon", "status"]).code(3);
    assert!(out.starts_with("daemon is not running"), "{out}");
    let (out, _) = env.cmd(&["daemon", "status", "--json"]).code(3);
    assert!(out.contains("\"running\": false"), "{out}");
    let out = env.cmd(&["daemon", "stop"]).ok();
    assert_eq!(out, "daemon is not running\n");
    assert!(env.daemon_processes().is_empty());
    assert!(!env.socket().exists());
    assert!(!env.log().exists(), "no daemon was ever started");
}

#[test]
fn stop_shuts_down_cleanly() {
    let env = Env::new("stop");
    let pid = env.start_daemon();
    assert_eq!(env.cmd(&["daemon", "stop"]).ok(), "daemon stopped\n");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)), "daemon still alive");
    assert!(!env.socket().exists(), "socket removed on shutdown");
    let log = env.log_text();
    assert!(log.contains("shutting down: shutdown requested"), "{log}");
}

#[test]
fn twenty_clis_at_once_start_one_daemon() {
    let env = Env::new("race");
    let children: Vec<_> =
        (0..20).map(|_| env.cmd(&["agents", "list", "--json"]).spawn()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a racing CLI failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["agents"].as_array().unwrap().len(), 5);
    }
    assert_eq!(env.daemon_processes().len(), 1, "exactly one daemon: {:?}", env.daemon_processes());
    assert_eq!(env.log_text().matches("listening on").count(), 1, "{}", env.log_text());
}

#[test]
fn a_killed_daemons_stale_socket_is_recovered() {
    let env = Env::new("stale");
    let pid = env.start_daemon();
    kill(pid, 9);
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    assert!(env.socket().exists(), "kill -9 leaves the socket behind");
    env.cmd(&["agents", "list"]).ok();
    let new_pid = env.daemon_pid().expect("a new daemon");
    assert_ne!(new_pid, pid);
    assert!(env.log_text().contains("removing stale socket"), "{}", env.log_text());
}

#[test]
fn a_live_daemons_socket_is_never_stolen() {
    let env = Env::new("live");
    let pid = env.start_daemon();
    let (_, err) = env.cmd(&["daemon", "--foreground"]).code(1);
    assert!(err.contains("already running"), "{err}");
    // A background start just reports the running one.
    assert!(env.cmd(&["daemon"]).ok().starts_with("daemon already running"));
    assert_eq!(env.daemon_pid(), Some(pid));
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["pid"], pid);
}

#[test]
fn idle_daemon_exits_and_stay_alive_does_not() {
    let env = Env::new("idle");
    // Timed from when the daemon is up, with the request made from here
    // rather than by a CLI, so that neither a slow start nor a slow CLI eats
    // into the margins (with a 2 s timeout and a CLI request at 1.5 s, a
    // loaded machine's request came late and found the daemon gone).
    env.write_config("[daemon]\nidle_timeout_secs = 8\n");
    let pid = env.start_daemon();
    // The daemon's idle clock started before this.
    let up = Instant::now();
    // Activity resets the clock: a request at 4 s, and at 10 s, past the
    // timeout counted from the start, the daemon is still up (it is due to
    // go at 12 s). 2 s to spare either way.
    thread::sleep(Duration::from_secs(4));
    let reply = env.raw_request(b"{\"version\":1,\"request\":{\"type\":\"providers_list\"}}\n");
    assert!(reply.contains("\"data\""), "{reply}");
    thread::sleep((up + Duration::from_secs(10)).saturating_duration_since(Instant::now()));
    assert!(pid_alive(pid), "activity 6 s ago must keep it alive");
    assert!(wait_until(Duration::from_secs(15), || !pid_alive(pid)), "idle daemon did not exit");
    assert!(!env.socket().exists());
    assert!(env.log_text().contains("shutting down: idle for 8 s"), "{}", env.log_text());

    // Past a short timeout: --stay-alive is what keeps this one up.
    env.write_config("[daemon]\nidle_timeout_secs = 1\n");
    env.cmd(&["daemon", "--stay-alive"]).ok();
    let pid = env.daemon_pid().unwrap();
    thread::sleep(Duration::from_millis(2500));
    assert!(pid_alive(pid), "--stay-alive daemon exited");
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["stay_alive"], true);
    assert_eq!(status["idle_timeout_secs"], serde_json::Value::Null);
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    let env = Env::new("signals");
    for (signal, name) in [(15, "SIGTERM"), (2, "SIGINT")] {
        let pid = env.start_daemon();
        kill(pid, signal);
        assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)), "{name} ignored");
        assert!(!env.socket().exists(), "socket left after {name}");
        assert!(env.log_text().contains(&format!("received {name}")), "{}", env.log_text());
        // The lock is free: a new daemon starts without recovering anything.
        let log_len = env.log_text().len();
        env.cmd(&["providers", "list"]).ok();
        assert!(!env.log_text()[log_len..].contains("stale"));
        env.cmd(&["daemon", "stop"]).ok();
    }
}

#[test]
fn a_foreground_daemon_prints_where_it_listens() {
    let env = Env::new("foreground");
    let mut child = env.cmd(&["daemon", "--foreground", "--stay-alive"]).spawn();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.contains(&format!("listening on {}", env.socket().display())), "{line}");
    env.cmd(&["daemon", "stop"]).ok();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(stderr.contains("INFO"), "foreground logs to stderr: {stderr}");
}

#[test]
fn an_open_subscription_counts_as_activity() {
    let env = Env::new("idle-subscribed");
    // 3 s, not 1: the subscription must reach the daemon before it idles
    // out, and a loaded machine can take a second to get there.
    env.write_config("[daemon]\nidle_timeout_secs = 3\n");
    let pid = env.start_daemon();
    let stream = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    std::io::Write::write_all(
        &mut &stream,
        b"{\"version\":1,\"request\":{\"type\":\"subscribe\"}}\n",
    )
    .unwrap();
    thread::sleep(Duration::from_millis(4500));
    assert!(pid_alive(pid), "a daemon with a subscriber is not idle");
    drop(stream);
    assert!(
        wait_until(Duration::from_secs(15), || !pid_alive(pid)),
        "idle after the subscriber left"
    );
}

#[test]
fn the_runtime_dir_must_be_private_and_ours() {
    let env = Env::new("runtime-dir");
    // Ours but too open: tightened.
    let dir = env.run.join("ringlet");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    env.cmd(&["providers", "list"]).ok();
    assert_eq!(mode(&dir) & 0o777, 0o700);
    env.cmd(&["daemon", "stop"]).ok();

    // A symlink planted in its place is refused, not followed.
    fs::remove_dir_all(&dir).unwrap();
    let elsewhere = env.root.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    let (_, err) = env.cmd(&["providers", "list"]).code(1);
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the symlink");
}

#[test]
fn the_socket_path_can_be_overridden() {
    let env = Env::new("endpoint");
    let socket = env.root.join("custom").join("d.sock");
    let out = env.cmd(&["agents", "list"]).env("RINGLET_DAEMON_ENDPOINT", &socket).ok();
    assert!(out.starts_with("ID "), "{out}");
    assert!(fs::symlink_metadata(&socket).unwrap().file_type().is_socket());
    assert!(socket.with_file_name("d.sock.lock").exists());
    assert!(!env.socket().exists(), "the default socket is not used");
    let status =
        env.cmd(&["daemon", "status", "--json"]).env("RINGLET_DAEMON_ENDPOINT", &socket).json();
    assert_eq!(status["socket"], socket.display().to_string());
    env.cmd(&["daemon", "stop"]).env("RINGLET_DAEMON_ENDPOINT", &socket).ok();
    assert!(!socket.exists());
    let (_, err) =
        env.cmd(&["agents", "list"]).env("RINGLET_DAEMON_ENDPOINT", "relative.sock").code(1);
    assert!(err.contains("RINGLET_DAEMON_ENDPOINT must be an absolute path"), "{err}");
}

#[test]
fn a_full_log_is_rotated() {
    let env = Env::new("log-rotate");
    fs::create_dir_all(env.log().parent().unwrap()).unwrap();
    fs::write(env.log(), vec![b'x'; (1 << 20) + 10]).unwrap();
    env.start_daemon();
    let rotated = env.log().with_extension("log.1");
    assert_eq!(fs::metadata(&rotated).unwrap().len(), (1 << 20) + 10);
    let log = env.log_text();
    assert!(log.len() < 4096 && log.contains("listening on"), "{log}");
}
