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
    assert_eq!(status["protocol"], 2);
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
    let reply = env.raw_request(b"{\"version\":2,\"request\":{\"type\":\"providers_list\"}}\n");
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
        b"{\"version\":2,\"request\":{\"type\":\"subscribe\"}}\n",
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

/// The daemon's environment variables, read from /proc (the tests run as
/// root, so this works on a non-dumpable daemon too).
fn environ_of(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// A limit's soft and hard values from /proc/<pid>/limits.
fn limit_of(pid: u32, name: &str) -> String {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{limits}"));
    line[name.len()..].split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

const SECRET: &str = "sk-test-daemon-environ-0123456789";

/// `ANTHROPIC_API_KEY=... ringlet profiles create` is a documented way to
/// pass a key: the daemon it starts must not keep the key (or anything else
/// of the caller's shell beyond its allowlist) in its environment, nor hand
/// it to the agents' `--version` probes, which get a minimal environment.
#[test]
fn keys_in_the_callers_environment_stay_out_of_the_daemon() {
    let env = Env::new("environ");
    let probe_env = env.root.join("probe-env");
    env.fake_agent(
        "claude",
        &format!("env > '{}'; echo '2.1.0 (Claude Code)'", probe_env.display()),
    );
    env.cmd(&["profiles", "create", "claude", "work", "-p", "anthropic", "--no-alias"])
        .env("ANTHROPIC_API_KEY", SECRET)
        .env("SHELL_ONLY_TOKEN", "shell-only-value")
        .env("LC_TIME", "C")
        .env("RINGLET_SECRET_STORE", "file")
        .ok();
    let pid = env.daemon_pid().expect("the create started a daemon");
    let vars = environ_of(pid);
    let text = vars.join("\n");
    assert!(!text.contains(SECRET) && !text.contains("ANTHROPIC_API_KEY"), "{text}");
    assert!(!text.contains("SHELL_ONLY_TOKEN"), "outside the allowlist: {text}");
    for kept in ["HOME=", "PATH=", "RINGLET_CONFIG_DIR=", "XDG_RUNTIME_DIR=", "LC_TIME=C"] {
        assert!(vars.iter().any(|v| v.starts_with(kept)), "{kept} is allowed: {text}");
    }
    // The profile still got its key.
    assert!(env.cmd(&["profiles", "env", "work"]).ok().contains(SECRET));

    // The probe: only the minimal environment.
    env.cmd(&["agents", "list"]).ok();
    assert!(wait_until(Duration::from_secs(10), || probe_env.exists()), "no probe ran");
    let probe = fs::read_to_string(&probe_env).unwrap();
    assert!(!probe.contains(SECRET), "{probe}");
    let names: Vec<&str> =
        probe.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
    for name in &names {
        assert!(
            [
                "PATH",
                "HOME",
                "LANG",
                "TMPDIR",
                "NO_COLOR",
                "DISABLE_AUTOUPDATER",
                "PWD",
                "SHLVL",
                "_"
            ]
            .contains(name),
            "the probe got {name}: {probe}"
        );
    }
    assert!(names.contains(&"PATH") && names.contains(&"HOME"), "{probe}");

    // No core dump, and not dumpable.
    assert_eq!(limit_of(pid, "Max core file size"), "0 0");
}

/// A daemon started directly (`daemon --foreground`, a service unit) cleans
/// its own environment the same way before it serves.
#[test]
fn a_foreground_daemon_drops_secrets_from_its_environment() {
    let env = Env::new("environ-fg");
    let mut child = env
        .cmd(&["daemon", "--foreground", "--stay-alive"])
        .env("ANTHROPIC_API_KEY", SECRET)
        .env("OPENAI_API_KEY", SECRET)
        .env("TZ", "UTC")
        .spawn();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    let pid = child.id();
    assert_eq!(env.daemon_pid(), Some(pid), "the same process, re-executed");
    let text = environ_of(pid).join("\n");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("TZ=UTC") && text.contains("RINGLET_HTTP_PORT=0"), "{text}");
    assert_eq!(limit_of(pid, "Max core file size"), "0 0");
    env.cmd(&["daemon", "stop"]).ok();
    assert!(child.wait().unwrap().success());
}

/// Not dumpable: a same-uid process can neither read the daemon's memory
/// nor attach to it, and the files in /proc/<pid> belong to root. Seen from outside by
/// running the daemon as an unprivileged user (nobody) and checking the
/// owner of its /proc files.
#[test]
fn the_daemon_is_not_dumpable() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new("dumpable");
    let nobody = 65534;
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{nobody}:{nobody}")])
        .arg(&env.root)
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = env
        .program("setpriv")
        .env("RINGLET_SECRET_STORE", "file")
        .cmd
        .args([
            &format!("--reuid={nobody}"),
            &format!("--regid={nobody}"),
            "--clear-groups",
            crate::util::BIN,
            "daemon",
            "--foreground",
            "--stay-alive",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ended however the test ends (`Env` cannot stop a daemon of another uid).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let child = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    for entry in ["environ", "mem", "maps"] {
        let meta = fs::metadata(format!("/proc/{pid}/{entry}")).unwrap();
        assert_eq!(meta.uid(), 0, "/proc/{pid}/{entry} of a non-dumpable process belongs to root");
    }
    assert_eq!(limit_of(pid, "Max core file size"), "0 0");
    // Its own status still works (it reads nothing of its own /proc).
    let mut status = env.program("setpriv").cmd;
    status.args([
        &format!("--reuid={nobody}"),
        &format!("--regid={nobody}"),
        "--clear-groups",
        crate::util::BIN,
        "daemon",
        "status",
        "--json",
    ]);
    let out = status.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    kill(pid, 15);
    let mut child = child;
    assert!(child.0.wait().unwrap().success());
}

/// A free TCP port on the loopback (free when this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `daemon stop` returns only when the old daemon has released everything,
/// so the next command's daemon always gets the HTTP port.
#[test]
fn after_stop_the_next_daemon_always_has_its_http_port() {
    let env = Env::new("restart-port");
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    for round in 0..20 {
        env.cmd(&["daemon", "stop"]).env("RINGLET_HTTP_PORT", &port).ok();
        env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &port).ok();
        let status =
            env.cmd(&["daemon", "status", "--json"]).env("RINGLET_HTTP_PORT", &port).json();
        assert_eq!(status["http"], addr.as_str(), "round {round}: {status}\n{}", env.log_text());
        let answer = crate::util::http::request(addr.parse().unwrap(), "GET", "/", &[], b"");
        assert_eq!(answer.status, 200, "round {round}");
    }
    env.cmd(&["daemon", "stop"]).env("RINGLET_HTTP_PORT", &port).ok();
}

/// A busy HTTP port is retried for a few seconds, then reported clearly: in
/// the log and by `doctor`, which names the port held by another process.
#[test]
fn a_busy_http_port_is_retried_then_named() {
    let env = Env::new("busy-port");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    // Released while the daemon retries: it gets the port.
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        drop(holder);
    });
    env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &port).ok();
    releaser.join().unwrap();
    let status = env.cmd(&["daemon", "status", "--json"]).env("RINGLET_HTTP_PORT", &port).json();
    assert_eq!(status["http"], format!("127.0.0.1:{port}"), "{status}\n{}", env.log_text());
    env.cmd(&["daemon", "stop"]).ok();

    // Held for good: the daemon serves IPC, and says why HTTP is off.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    env.cmd(&["providers", "list"]).env("RINGLET_HTTP_PORT", &port).ok();
    let log = env.log_text();
    assert!(log.contains(&format!("127.0.0.1:{port} is held by another process")), "{log}");
    let out = env.cmd(&["doctor"]).env("RINGLET_HTTP_PORT", &port).output();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("held by another process"), "{out}");
    drop(holder);
}

/// Commands issued while a daemon shuts down wait for it to go and start a
/// new one: none fails with "a daemon is already running".
#[test]
fn commands_during_a_shutdown_start_the_next_daemon() {
    let env = Env::new("shutdown-race");
    let pid = env.start_daemon();
    // An idle connection holds the shutdown in its grace period (it counts
    // as a request in flight), so the commands below meet a daemon that has
    // removed its socket but still holds its lock.
    let idle = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    let stop = env.cmd(&["daemon", "stop"]).spawn();
    assert!(wait_until(Duration::from_secs(10), || !env.socket().exists()));
    let racers: Vec<_> = (0..10)
        .map(|i| {
            thread::sleep(Duration::from_millis(50));
            let args: &[&str] =
                if i % 2 == 0 { &["agents", "list"] } else { &["profiles", "list"] };
            env.cmd(args).spawn()
        })
        .collect();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a command during shutdown failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = stop.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(idle);
    assert!(!pid_alive(pid));
    assert_eq!(env.daemon_processes().len(), 1, "{:?}", env.daemon_processes());
}

/// A shell world (tests/terminal.rs) with one session running `sleep 600`,
/// started over HTTP: the world and the session's info.
fn world_with_a_session(name: &str) -> (Env, serde_json::Value) {
    let env = crate::terminal::shell_world(name);
    let (addr, token) = env.http();
    let info = crate::terminal::create(
        &env,
        addr,
        &token,
        serde_json::json!({"args": ["-c", "sleep 600"]}),
    );
    (env, info)
}

/// With sessions running, `daemon stop` names them and needs `--force`
/// when it cannot ask (not a terminal); `--force` ends them.
#[test]
fn stop_with_running_sessions_needs_force() {
    let (env, info) = world_with_a_session("stop-sessions");
    let id = info["id"].as_str().unwrap().to_string();
    let session_pid = info["pid"].as_u64().unwrap() as u32;
    let daemon = env.daemon_pid().unwrap();
    let (out, err) = env.cmd(&["daemon", "stop"]).code(1);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&id) && err.contains("sh1") && err.contains("--force"), "{err}");
    assert!(pid_alive(daemon) && pid_alive(session_pid), "nothing was stopped");
    let (out, _) = env.cmd(&["daemon", "stop", "--json"]).code(1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["success"], false, "{v}");

    let out = env.cmd(&["daemon", "stop", "--force"]).ok();
    assert!(out.contains(&id), "says which sessions it ended: {out}");
    assert!(out.ends_with("daemon stopped\n"), "{out}");
    assert!(!pid_alive(daemon), "stop returns once the daemon is gone");
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(session_pid)));
}

/// On a terminal, `daemon stop` asks before it ends sessions: "no" keeps
/// everything running, "yes" stops. (`script` gives the CLI a terminal.)
#[test]
fn stop_on_a_terminal_asks_before_ending_sessions() {
    let (env, info) = world_with_a_session("stop-asks");
    let id = info["id"].as_str().unwrap().to_string();
    let daemon = env.daemon_pid().unwrap();
    let on_a_terminal = |answer: &str| {
        let command = format!("{} daemon stop", crate::util::BIN);
        env.program("script")
            .cmd
            .args(["-qec", &command, "/dev/null"])
            // Plain words to look for (states are coloured on a terminal).
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map(|mut child| {
                use std::io::Write;
                let mut stdin = child.stdin.take().unwrap();
                let _ = stdin.write_all(format!("{answer}\n").as_bytes());
                // Kept open until the answer is read: `script` ends when
                // its input does.
                let out = child.wait_with_output().unwrap();
                drop(stdin);
                out
            })
            .unwrap()
    };
    let out = on_a_terminal("no");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains(&id) && text.contains("Stop the daemon and end them?"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(pid_alive(daemon), "answered no: {text}");
    let out = on_a_terminal("yes");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("daemon stopped"), "{text}");
    assert!(!pid_alive(daemon));
}

/// The user unit's `daemon --foreground --stay-alive` while a daemon started
/// on demand runs (the user ran a command before the unit started): the
/// foreground daemon asks it to stop, waits for it, and takes its place,
/// instead of failing on the lock. A daemon that stays alive on purpose is
/// not taken over.
#[test]
fn a_foreground_daemon_takes_over_from_one_started_on_demand() {
    let env = Env::new("take-over");
    let on_demand = env.start_daemon();
    let mut child = env.cmd(&["daemon", "--foreground", "--stay-alive"]).spawn();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(on_demand)),
        "the old one still runs"
    );
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["pid"], child.id(), "{status}");
    assert_eq!(status["stay_alive"], true, "{status}");

    // A second foreground daemon does not take over from this one.
    let (_, err) = env.cmd(&["daemon", "--foreground"]).code(1);
    assert!(err.contains("already running"), "{err}");
    assert!(pid_alive(child.id()));

    env.cmd(&["daemon", "stop"]).ok();
    assert!(child.wait().unwrap().success());
}
