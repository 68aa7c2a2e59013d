//! The CLI's conventions (issue 15, item 1): one `ringlet: <what>: <why>`
//! prefix, "did you mean" suggestions, the `--` hint, exit codes (2 for a
//! usage error, 1 for a failure, 3 for `daemon status` with no daemon),
//! colour on a terminal only, relative times in tables, and `usage` and
//! `stats` agreeing on runtimes.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::{BIN, Env};

/// Runs `ringlet <args>` on a terminal (`script` gives it a pty; stdout and
/// stderr both arrive on it) with `env` added; returns (exit code, output).
fn on_a_terminal(env: &Env, args: &str, vars: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = env.program("script");
    cmd.cmd.args(["-qec", &format!("{BIN} {args}"), "/dev/null"]);
    for (k, v) in vars {
        cmd.cmd.env(k, v);
    }
    let out = cmd.output();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `text` without its SGR sequences (`ESC [ ... m`).
fn strip_sgr(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn usage_errors_exit_2_with_one_prefix_and_a_suggestion() {
    let env = Env::new("conv-usage");
    // The top level: one `ringlet: `, never two.
    let (out, err) = env.cmd(&["profile", "list"]).code(2);
    assert_eq!(out, "");
    assert_eq!(err, "ringlet: unknown command `profile`; did you mean `profiles`?\n");
    let (_, err) = env.cmd(&["agents", "lst"]).code(2);
    assert_eq!(err, "ringlet: agents: unknown command `lst`; did you mean `list`?\n");
    // Nothing close: the choices instead.
    let (_, err) = env.cmd(&["frobnicate"]).code(2);
    assert!(
        err.starts_with("ringlet: unknown command `frobnicate` (one of: init, agents,"),
        "{err}"
    );
    // Options and option values.
    let (_, err) = env.cmd(&["daemon", "stop", "--forse"]).code(2);
    assert!(
        err.starts_with("ringlet: daemon stop: unknown option --forse; did you mean `--force`?"),
        "{err}"
    );
    let (_, err) = env.cmd(&["usage", "daily", "--period", "weak"]).code(2);
    assert!(err.ends_with("not `weak`; did you mean `week`?\n"), "{err}");
    let (_, err) = env.cmd(&["agents", "list", "--jsno"]).code(2);
    assert!(err.contains("did you mean `--json`?"), "{err}");
    // A usage error found by a command itself is exit 2 too.
    let (_, err) = env.cmd(&["registry", "pin"]).code(2);
    assert_eq!(err, "ringlet: registry pin: give a ref to pin, or --clear (not both)\n");
    // --json: the error object, code `usage`.
    let (out, err) = env.cmd(&["profile", "--json"]).code(2);
    assert_eq!(err, "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], "usage");
    assert_eq!(v["error"]["message"], "unknown command `profile`; did you mean `profiles`?");
    assert!(env.daemon_processes().is_empty(), "a usage error starts no daemon");
}

#[test]
fn agent_arguments_before_double_dash_get_a_hint() {
    let env = Env::new("conv-dashdash");
    let (_, err) = env.cmd(&["profiles", "run", "work", "-p", "hi there"]).code(2);
    assert_eq!(
        err,
        "ringlet: profiles run: unknown option -p; the agent's own arguments go after `--`: \
         `ringlet profiles run work -- -p hi there`\n"
    );
    let (_, err) = env.cmd(&["profiles", "run", "work", "--model=x", "y"]).code(2);
    assert!(err.contains("`ringlet profiles run work -- --model=x y`"), "{err}");
    assert!(env.daemon_processes().is_empty());
}

#[test]
fn failures_exit_1_no_daemon_exits_3_and_profile_names_are_suggested() {
    let env = Env::new("conv-exit");
    let (out, _) = env.cmd(&["daemon", "status"]).code(3);
    assert!(out.contains("not running"), "{out}");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    env.create_profile("claude", "work");
    let (_, err) = env.cmd(&["profiles", "inspect", "wrok"]).code(1);
    assert_eq!(err, "ringlet: profiles inspect: no profile `wrok`; did you mean `work`?\n");
    let (_, err) = env.cmd(&["profiles", "inspect", "zzzzzz"]).code(1);
    assert_eq!(
        err,
        "ringlet: profiles inspect: no profile `zzzzzz` (see `ringlet profiles list`)\n"
    );
    let (out, _) = env.cmd(&["profiles", "inspect", "wrok", "--json"]).code(1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    // `usage --profile` with no such profile says so; a real one without
    // usage is "no usage".
    let (_, err) = env.cmd(&["usage", "--profile", "nope"]).code(1);
    assert_eq!(err, "ringlet: usage: no profile `nope` (see `ringlet profiles list`)\n");
    let (_, err) = env.cmd(&["usage", "daily", "--profile", "wokr"]).code(1);
    assert!(err.contains("did you mean `work`?"), "{err}");
    let out = env.cmd(&["usage", "--profile", "work"]).ok();
    assert!(out.contains("no usage"), "{out}");
}

/// The runs `sessions.jsonl` remembers, written as `record_end` does.
fn plant_runs(env: &Env, runs: &[(&str, u64)]) {
    let dir = env.config.join("telemetry");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let mut text = String::new();
    for (i, (profile, ms)) in runs.iter().enumerate() {
        text.push_str(&format!(
            "{{\"profile\":\"{profile}\",\"agent\":\"claude\",\"provider\":\"anthropic\",\
             \"model\":\"m\",\"start\":\"2026-11-2{i}T10:00:00.000Z\",\
             \"end\":\"2026-11-2{i}T10:00:01.500Z\",\"duration_ms\":{ms},\"exit_code\":0,\
             \"signal\":null}}\n"
        ));
    }
    let path = dir.join("sessions.jsonl");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn usage_and_stats_agree_on_runtimes() {
    let env = Env::new("conv-runtime");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    env.create_profile("claude", "one");
    env.create_profile("claude", "two");
    // 1.5 s each: whole seconds per profile (1 + 1) would say 2 s; 3 s it is.
    plant_runs(&env, &[("one", 1500), ("two", 1500)]);
    let stats = env.cmd(&["stats", "--json"]).json();
    let usage = env.cmd(&["usage", "--json"]).json();
    assert_eq!(usage["totals"]["runtime_secs"], 3, "{usage}");
    assert_eq!(stats["total_run_secs"], usage["totals"]["runtime_secs"], "{stats}\n{usage}");
    assert_eq!(stats["total_runs"], usage["totals"]["runs"]);
    let text = env.cmd(&["stats"]).ok();
    assert!(text.contains("2 runs, 3s in all"), "{text}");
    let text = env.cmd(&["usage"]).ok();
    assert!(text.contains("runtime:        3s"), "{text}");
}

#[test]
fn tables_show_relative_times_and_json_keeps_rfc_3339() {
    let env = Env::new("conv-times");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    env.create_profile("claude", "work");
    // Last used three minutes ago, as the profile file records it.
    let path = env.config.join("profiles").join("work.json");
    let mut profile: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(181);
    let secs = then.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let stamp = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S.000Z"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    profile["last_used"] = stamp.trim().into();
    fs::write(&path, serde_json::to_string_pretty(&profile).unwrap()).unwrap();

    let table = env.cmd(&["profiles", "list"]).ok();
    assert!(table.contains("3 minutes ago"), "{table}");
    assert!(!table.contains(stamp.trim()), "{table}");
    let json = env.cmd(&["profiles", "list", "--json"]).ok();
    assert!(json.contains(stamp.trim()), "{json}");
    let stats = env.cmd(&["stats"]).ok();
    assert!(stats.contains("3 minutes ago"), "{stats}");
}

#[test]
fn colour_on_a_terminal_none_in_a_pipe_or_with_no_color() {
    let env = Env::new("conv-colour");
    const BOLD: &str = "\x1b[1m";
    const RED: &str = "\x1b[1;31m";
    // A pipe: plain.
    let help = env.cmd(&["--help"]).ok();
    assert!(!help.contains('\x1b'), "{help}");
    let (_, err) = env.cmd(&["profile"]).code(2);
    assert!(!err.contains('\x1b'), "{err}");
    // A terminal: section titles and the error prefix coloured.
    let (code, text) = on_a_terminal(&env, "--help", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{BOLD}Usage:\x1b[0m")), "{text:?}");
    let (code, text) = on_a_terminal(&env, "profile", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with(&format!("{RED}ringlet:\x1b[0m unknown command")), "{text:?}");
    // NO_COLOR (non-empty), --color never, TERM=dumb: none on a terminal.
    for (args, vars) in [
        ("--help", &[("NO_COLOR", "1")][..]),
        ("--help --color never", &[][..]),
        ("--help", &[("TERM", "dumb")][..]),
        ("profile", &[("NO_COLOR", "1")][..]),
    ] {
        let (_, text) = on_a_terminal(&env, args, vars);
        assert!(!text.contains('\x1b'), "{args} {vars:?}: {text:?}");
    }
    // An empty NO_COLOR is no choice: colour.
    let (_, text) = on_a_terminal(&env, "--help", &[("NO_COLOR", "")]);
    assert!(text.contains(BOLD), "{text:?}");
    // Forced in a pipe: CLICOLOR_FORCE, or --color always (which also beats
    // NO_COLOR); a table's header row.
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    let table = env.cmd(&["agents", "list"]).env("CLICOLOR_FORCE", "1").ok();
    assert!(table.starts_with(&format!("{BOLD}ID ")), "{table:?}");
    // States in their tone: installed green, not installed dimmed; the
    // columns line up as in the plain table.
    assert!(
        table.contains("\x1b[32myes\x1b[0m") && table.contains("\x1b[2mno\x1b[0m"),
        "{table:?}"
    );
    let plain = env.cmd(&["agents", "list"]).ok();
    assert_eq!(strip_sgr(&table), plain);
    let table = env.cmd(&["agents", "list", "--color=always"]).env("NO_COLOR", "1").ok();
    assert!(table.starts_with(BOLD), "{table:?}");
    let table = env.cmd(&["agents", "list"]).env("CLICOLOR_FORCE", "0").ok();
    assert!(!table.contains('\x1b'), "{table:?}");
    // --json never gets colour, even forced.
    let json = env.cmd(&["agents", "list", "--json", "--color", "always"]).ok();
    assert!(!json.contains('\x1b'), "{json}");
    // A bad --color value is a usage error.
    let (_, err) = env.cmd(&["agents", "list", "--color", "sometimes"]).code(2);
    assert!(err.contains("--color must be one of auto, always, never"), "{err}");
}

/// Option values a command parses itself (numbers, ports, amounts, a hook's
/// index) are usage errors like the parser's own: exit 2, one line, the
/// command named, and no daemon started to say so.
#[test]
fn bad_option_values_found_after_parsing_exit_2() {
    let env = Env::new("conv-values");
    for (args, said) in [
        (
            &["daemon", "events", "--limit", "many"][..],
            "daemon events: --limit takes a number, not `many`",
        ),
        (
            &["proxy", "logs", "w", "--lines", "lots"][..],
            "proxy logs: --lines takes a whole number",
        ),
        (
            &["proxy", "enable", "w", "--port", "99999"][..],
            "proxy enable: --port takes a port (1-65535)",
        ),
        (
            &["proxy", "route", "add", "w", "r", "always", "t", "--priority", "hi"][..],
            "--priority takes a whole number",
        ),
        (&["proxy", "budget", "set", "w", "--daily", "lots"][..], "--daily takes an amount in USD"),
        (
            &["proxy", "budget", "set", "w"][..],
            "proxy budget set: give --daily USD, --monthly USD or both",
        ),
        (
            &["hooks", "remove", "w", "Stop", "first"][..],
            "hooks remove: <INDEX> takes a hook number",
        ),
        (
            &["profiles", "run", "w", "--remote", "--cols", "wide"][..],
            "--cols takes a number, not `wide`",
        ),
    ] {
        let (out, err) = env.cmd(args).code(2);
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ringlet: ") && err.contains(said), "{args:?}: {err}");
        let (out, _) = env.cmd(&[args, &["--json"]].concat()).code(2);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "usage", "{args:?}: {v}");
    }
    assert!(env.daemon_processes().is_empty(), "a usage error started a daemon");
}

/// `daemon events` is a table whose times read as a person's; `--json`
/// keeps RFC 3339. States printed outside tables (`daemon status`, `agents
/// inspect`) are in their tone when stdout takes colour, as table cells are.
#[test]
fn event_times_are_relative_and_states_outside_tables_are_coloured() {
    let env = Env::new("conv-events");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    env.create_profile("claude", "work");
    let table = env.cmd(&["daemon", "events", "--type", "ProfileCreated"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("TIME ") && lines[0].contains("EVENT"), "{table}");
    assert!(lines[1].starts_with("just now ") && lines[1].contains("ProfileCreated"), "{table}");
    let json = env.cmd(&["daemon", "events", "--json", "--type", "ProfileCreated"]).json();
    let stamp = json["events"][0]["timestamp"].as_str().unwrap();
    assert!(stamp.len() >= 20 && stamp.as_bytes()[10] == b'T', "{json}");

    const GREEN: &str = "\x1b[32m";
    let status = env.cmd(&["daemon", "status"]).env("CLICOLOR_FORCE", "1").ok();
    assert!(status.starts_with(&format!("daemon is {GREEN}running\x1b[0m (pid ")), "{status:?}");
    let agent = env.cmd(&["agents", "inspect", "claude"]).env("CLICOLOR_FORCE", "1").ok();
    assert!(agent.contains(&format!("installed:       {GREEN}yes\x1b[0m")), "{agent:?}");
    let plain = env.cmd(&["daemon", "status"]).ok();
    assert!(plain.starts_with("daemon is running (pid ") && !plain.contains('\x1b'), "{plain}");
    env.cmd(&["daemon", "stop"]).ok();
    let (stopped, _) = env.cmd(&["daemon", "status"]).env("CLICOLOR_FORCE", "1").code(3);
    assert!(stopped.starts_with("daemon is \x1b[2mnot running\x1b[0m"), "{stopped:?}");
}
