//! The command line as a user meets it: help, version, errors and exit codes.

use std::process::Stdio;

use crate::util::Env;

#[test]
fn version_and_help_touch_nothing() {
    let env = Env::new("version");
    assert_eq!(env.cmd(&["-V"]).ok(), format!("ringlet {}\n", env!("CARGO_PKG_VERSION")));
    assert!(env.cmd(&["--version"]).ok().starts_with("ringlet "));
    let help = env.cmd(&["--help"]).ok();
    for group in ["agents", "providers", "profiles", "usage", "terminal", "daemon", "proxy"] {
        assert!(help.contains(group), "{group} missing from help:\n{help}");
    }
    let help = env.cmd(&["profiles", "run", "-h"]).ok();
    assert!(help.contains("[-- AGENT_ARGS...]"), "{help}");
    assert!(!env.config.exists(), "--help/--version must not create the config dir");
    assert!(!env.run.join("ringlet").exists(), "--help/--version must not create the runtime dir");
}

#[test]
fn registry_pin_needs_a_ref_or_clear_and_starts_no_daemon_to_say_so() {
    // The registry commands were the last ones pending (exit 2); none is now.
    let env = Env::new("pin-usage");
    let (out, err) = env.cmd(&["registry", "pin"]).code(2);
    assert_eq!(out, "");
    assert_eq!(err, "ringlet: registry pin: give a ref to pin, or --clear (not both)\n");
    let (out, _) = env.cmd(&["registry", "pin", "v1", "--clear", "--json"]).code(2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "usage");
    assert!(env.daemon_processes().is_empty());
}

#[test]
fn usage_errors_are_one_line_exit_2() {
    let env = Env::new("usage-errors");
    let (_, err) = env.cmd(&["profiles", "create", "claude", "work"]).code(2);
    assert_eq!(
        err,
        "ringlet: profiles create: missing required option --provider (or --template)\n"
    );
    let (_, err) = env.cmd(&["agents", "frob"]).code(2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ringlet: agents: unknown command `frob`"), "{err}");
    let (out, err) = env.cmd(&["agents", "list", "--bogus", "--json"]).code(2);
    assert_eq!(err, "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], "usage");
}

#[test]
fn closed_stdout_is_not_a_crash() {
    let env = Env::new("pipe");
    for args in
        [&["--help"][..], &["--version"], &["agents", "list"], &["providers", "list", "--json"]]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // Like `| head` that has already exited.
        let mut cmd = env.cmd(args).cmd;
        let out = cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {}: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn broken_config_is_reported_with_file_line_and_key() {
    let env = Env::new("bad-config");
    env.write_config("[daemon]\nidle_timeout_sec = 5\n");
    let (_, err) = env.cmd(&["agents", "list"]).code(1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ringlet: agents list: the daemon could not start: loading config: "),
        "{err}"
    );
    assert!(err.contains("config.toml:2:1:"), "{err}");
    assert!(err.contains("idle_timeout_sec"), "{err}");
    assert!(env.daemon_processes().is_empty(), "a daemon with a broken config must not stay up");

    env.write_config("[daemon]\nidle_timeout_secs = \"soon\"\n");
    let (_, err) = env.cmd(&["daemon", "--foreground"]).code(1);
    assert!(err.contains("config.toml:2:") && err.contains("\"soon\""), "{err}");

    // Fixed config: everything works again.
    env.write_config("[daemon]\nidle_timeout_secs = 60\n");
    env.cmd(&["agents", "list"]).ok();
}

/// Holds IPC connections until the daemon refuses one: subscriptions, which
/// the daemon keeps open (an idle connection would time out). Returns them
/// (dropping them frees the slots) once a raw connection is answered
/// "too many connections".
fn fill_ipc_cap(env: &Env) -> Vec<std::os::unix::net::UnixStream> {
    use std::io::{BufRead, BufReader, Write};
    let mut held = Vec::new();
    for _ in 0..4096 {
        let stream = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let _ = (&stream).write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\"}}\n");
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        if line.contains("too many connections") {
            return held;
        }
        assert_eq!(line.trim(), r#"{"version":2,"data":null}"#, "subscription refused otherwise");
        held.push(stream);
    }
    panic!("no connection cap met after {} connections", held.len());
}

/// At the IPC connection cap the daemon answers "too many connections" and
/// closes. That is never a silent success: the CLI retries for a few
/// seconds, then says so (exit 1, one line, the `--json` envelope), and a
/// refused `profiles delete` leaves the profile in place and says it failed.
#[test]
fn a_refused_connection_is_an_error_not_a_quiet_success() {
    let env = Env::new("refused");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    env.create_profile("claude", "keep");
    let held = fill_ipc_cap(&env);

    // All together: each retries for its few seconds before giving up.
    let commands: [&[&str]; 4] = [
        &["profiles", "delete", "keep"],
        &["profiles", "list"],
        &["agents", "list", "--json"],
        &["daemon", "status"],
    ];
    let children: Vec<_> = commands.iter().map(|args| (args, env.cmd(args).spawn())).collect();
    for (args, child) in children {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}\n{stdout}\n{stderr}", out.status);
        if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["success"], false, "{v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains("connection limit"), "{message}");
        } else {
            assert_eq!(stdout, "", "{args:?}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.starts_with("ringlet: "), "{args:?}: {stderr}");
            assert!(stderr.contains("connection limit"), "{args:?}: {stderr}");
        }
    }
    // The refused delete did nothing.
    assert!(env.config.join("profiles").join("keep.json").exists(), "the profile must stay");

    // Released while a command retries: it goes through.
    let child = env.cmd(&["profiles", "delete", "keep"]).spawn();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Deleted profile keep\n"));
    assert!(!env.config.join("profiles").join("keep.json").exists());
    env.cmd(&["profiles", "list", "--json"]).ok();
}

/// A broken daemon connection is not a closed stdout: a server that accepts
/// and closes without a word makes every command fail with one line.
#[test]
fn a_daemon_that_hangs_up_is_an_error() {
    let env = Env::new("hangup");
    let socket = env.root.join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        // Reads the request, then hangs up without a reply, twice.
        for conn in listener.incoming().take(2) {
            let mut conn = conn.unwrap();
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut conn), &mut line);
        }
    });
    // A change: not retried, since it may have been carried out.
    let (out, err) =
        env.cmd(&["profiles", "delete", "x"]).env("RINGLET_DAEMON_ENDPOINT", &socket).code(1);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ringlet: profiles delete: the daemon closed the connection"), "{err}");
    let (out, _) = env
        .cmd(&["profiles", "delete", "x", "--json"])
        .env("RINGLET_DAEMON_ENDPOINT", &socket)
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["success"], false);
    assert!(v["error"]["message"].as_str().unwrap().contains("without replying"), "{v}");
    drop(server);
}

/// A TAB completing profile names reads the profile files and never dials
/// the daemon (whose full profile views cost most of a TAB): a listener
/// standing in for the daemon sees no connection, and the names are there.
#[test]
fn profile_names_complete_from_their_files_without_dialing_the_daemon() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let env = Env::new("complete-files");
    env.create_profile("claude", "work");
    env.cmd(&["daemon", "stop"]).ok();
    let socket = env.root.join("watch.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Counts each connection, then hangs up at once: a CLI that dialed
    // falls back to the files at once, after the count went up.
    let dialed = Arc::new(AtomicUsize::new(0));
    let counter = dialed.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let out = env.cmd(&["__complete", "profiles"]).env("RINGLET_DAEMON_ENDPOINT", &socket).ok();
    assert!(out.lines().any(|l| l.starts_with("work\tclaude, ")), "{out}");
    assert_eq!(dialed.load(Ordering::SeqCst), 0, "`__complete profiles` dialed the daemon");
    // Sessions live only in the daemon: those are still asked for.
    env.cmd(&["__complete", "sessions"]).env("RINGLET_DAEMON_ENDPOINT", &socket).ok();
    assert_eq!(dialed.load(Ordering::SeqCst), 1, "`__complete sessions` did not ask the daemon");
}
