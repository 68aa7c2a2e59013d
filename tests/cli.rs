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
fn pending_commands_exit_2_without_starting_a_daemon() {
    let env = Env::new("pending");
    let (out, err) = env.cmd(&["proxy", "start", "work"]).code(2);
    assert_eq!(out, "");
    assert_eq!(err, "ringlet: proxy start: not implemented yet\n");
    let (out, _) = env.cmd(&["registry", "inspect", "--json"]).code(2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "not_implemented");
    assert!(env.daemon_processes().is_empty());
}

#[test]
fn usage_errors_are_one_line_exit_1() {
    let env = Env::new("usage-errors");
    let (_, err) = env.cmd(&["profiles", "create", "claude", "work"]).code(1);
    assert_eq!(err, "ringlet: profiles create: missing required option --provider\n");
    let (_, err) = env.cmd(&["agents", "frob"]).code(1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ringlet: agents: unknown command `frob`"), "{err}");
    let (out, err) = env.cmd(&["agents", "list", "--bogus", "--json"]).code(1);
    assert_eq!(err, "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], "usage");
}

#[test]
fn closed_stdout_is_not_a_crash() {
    let env = Env::new("pipe");
    for args in [&["--help"][..], &["agents", "list"], &["providers", "list", "--json"]] {
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
