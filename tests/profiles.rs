//! Profiles end to end without the real agents (tests/agents.rs has those):
//! create/list/inspect/delete, every kind of bad input, where the key goes
//! and where it never goes, user scripts and their limits, both isolation
//! strategies with fake agents, runs (environment, arguments, exit codes,
//! sessions.jsonl, events), hooks, alias shims, `profiles env`, and the real
//! Secret Service.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::util::{BIN, Env, KEY, TestCommand, mode, read_line_matching, texts_under};

/// A fake agent with a home-wrapper profile and a user script that writes
/// a secret file, a settings file, env and arguments.
fn fake_agent_world(name: &str) -> Env {
    let env = Env::new(name);
    fs::create_dir_all(env.config.join("agents.d")).unwrap();
    fs::create_dir_all(env.config.join("scripts")).unwrap();
    fs::write(
        env.config.join("agents.d/fake.toml"),
        r#"
id = "fake"
name = "Fake Agent"
binary = "fake-agent"
supports_hooks = true
[profile]
strategy = "home-wrapper"
source_home = "~/.fake-profiles/{alias}"
script = "fake.rhai"
provider_types = ["anthropic", "anthropic-compatible"]
[setup_tasks.hello]
description = "Say hello"
command = "echo hello from $RINGLET_PROFILE in $HOME"
"#,
    )
    .unwrap();
    fs::write(
        env.config.join("scripts/fake.rhai"),
        r#"
let settings = #{ model: ctx.profile.model, hooks: ctx.profile.hooks_config, custom: ctx.prefs.custom };
#{
    files: #{
        "conf/settings.json": json_encode_pretty(settings),
        "conf/key.txt": "${API_KEY}",
    },
    env: #{ FAKE_KEY: "${API_KEY}", FAKE_MODEL: ctx.profile.model },
    args: ["--from-script"],
}
"#,
    )
    .unwrap();
    // Prints what it was given; `exit:N` as the last argument sets the code.
    env.fake_agent(
        "fake-agent",
        r#"echo "HOME=$HOME"
echo "PWD=$(pwd)"
for a in "$@"; do echo "ARG=$a"; done
env | sort > "$HOME/env.txt"
last=""; for a in "$@"; do last=$a; done
case $last in exit:*) exit "${last#exit:}";; esac
exit 0"#,
    );
    env
}

fn create_fake(env: &Env, alias: &str) {
    create_fake_cmd(env, alias).ok();
}

/// `profiles create fake <alias> -p anthropic` with [`KEY`] on stdin, not yet run.
fn create_fake_cmd(env: &Env, alias: &str) -> TestCommand {
    env.cmd(&[
        "profiles",
        "create",
        "fake",
        alias,
        "-p",
        "anthropic",
        "--api-key-stdin",
        "--no-alias",
    ])
    .stdin(KEY)
}

#[test]
fn create_list_inspect_delete_and_where_the_key_goes() {
    let env = Env::new("crud");
    let (out, err) = env
        .cmd(&["profiles", "create", "claude", "work", "-p", "anthropic"])
        .env("ANTHROPIC_API_KEY", KEY)
        .code(0);
    assert!(out.contains("Created profile work"), "{out}");
    assert!(err.contains("using the key in $ANTHROPIC_API_KEY"), "{err}");
    assert!(err.contains("no keychain reachable"), "the file-store fallback is announced: {err}");
    let list = env.cmd(&["profiles", "list", "--json"]).json();
    assert_eq!(list["profiles"][0]["alias"], "work");
    assert_eq!(list["profiles"][0]["api_key"], "<redacted>");
    let inspect = env.cmd(&["profiles", "inspect", "work", "--json"]).json();
    assert_eq!(inspect["agent"], "claude");
    assert_eq!(inspect["model"], "claude-opus-4-8");
    assert_eq!(inspect["endpoint"], "https://api.anthropic.com");
    assert_eq!(inspect["secret"], "file");
    let text = env.cmd(&["profiles", "inspect", "work"]).ok();
    assert!(text.contains("<redacted>") && !text.contains(KEY), "{text}");

    // The key is in the 0600 file store and nowhere else under config or home.
    let secret = env.config.join("secrets/work");
    assert_eq!(fs::read_to_string(&secret).unwrap(), KEY);
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&env.config.join("secrets")), 0o700);
    for (path, content) in texts_under(&env.config).into_iter().chain(texts_under(&env.home)) {
        if path != secret {
            assert!(!content.contains(KEY), "the key leaked into {}", path.display());
        }
    }
    let home = env.home.join(".claude-profiles/work");
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(home.join(".claude/.claude.json")).unwrap())
            .unwrap();
    assert_eq!(state["hasCompletedOnboarding"], true);
    assert_eq!(state["customApiKeyResponses"]["approved"][0], &KEY[KEY.len() - 20..]);
    assert_eq!(mode(&home.join(".claude/.claude.json")), 0o600, "holds part of the key");
    assert_eq!(mode(&home), 0o700);
    // The alias shim.
    let shim = env.home.join(".local/bin/work");
    assert!(fs::read_to_string(&shim).unwrap().contains("profiles run work"));

    env.cmd(&["profiles", "create", "claude", "work", "-p", "anthropic"])
        .env("ANTHROPIC_API_KEY", KEY)
        .code(1);
    let (_, err) = env
        .cmd(&["profiles", "create", "claude", "work", "-p", "anthropic"])
        .env("ANTHROPIC_API_KEY", KEY)
        .code(1);
    assert!(err.contains("already exists"), "{err}");

    env.cmd(&["profiles", "delete", "work"]).ok();
    assert!(!secret.exists() && !shim.exists());
    assert!(!env.config.join("profiles/work.json").exists());
    assert!(home.exists(), "without --purge the home stays");
    env.cmd(&["profiles", "inspect", "work"]).code(1);
    env.cmd(&["profiles", "create", "claude", "work", "-p", "anthropic", "--no-alias"])
        .env("ANTHROPIC_API_KEY", KEY)
        .ok();
    env.cmd(&["profiles", "delete", "work", "--purge"]).ok();
    assert!(!home.exists(), "--purge removes the home");
}

#[test]
fn every_invalid_alias_class_is_refused_and_leaves_nothing() {
    let env = Env::new("aliases-bad");
    let long = "a".repeat(65);
    for bad in [
        "",
        "_lead",
        "Upper",
        "sp ace",
        "a/b",
        "..",
        ".hidden",
        "dot.ted",
        "é",
        &long,
        "semi;colon",
        "$(x)",
    ] {
        let (_, err) = env
            .cmd(&["profiles", "create", "claude", bad, "-p", "anthropic", "--api-key-stdin"])
            .stdin(KEY)
            .code(1);
        assert!(err.contains("[a-z0-9][a-z0-9_-]{0,63}"), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(texts_under(&env.config.join("profiles")).is_empty());
    assert!(!env.home.join(".claude-profiles").exists());
}

#[test]
fn unknown_names_and_incompatible_pairs() {
    let env = Env::new("unknown");
    let (_, err) = env
        .cmd(&["profiles", "create", "nope", "a", "-p", "anthropic", "--api-key-stdin"])
        .stdin(KEY)
        .code(1);
    assert!(err.contains("unknown agent `nope`") && err.contains("claude"), "{err}");
    let (_, err) = env.cmd(&["profiles", "create", "claude", "a", "-p", "nope"]).code(1);
    assert!(err.contains("no provider `nope`"), "{err}");
    let (_, err) = env
        .cmd(&["profiles", "create", "codex", "a", "-p", "anthropic", "--api-key-stdin"])
        .stdin(KEY)
        .code(1);
    assert!(err.contains("cannot use provider `anthropic`"), "{err}");
    let (_, err) = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "a",
            "-p",
            "minimax",
            "--endpoint",
            "mars",
            "--api-key-stdin",
        ])
        .stdin(KEY)
        .code(1);
    assert!(err.contains("no endpoint `mars`"), "{err}");
    let (_, err) = env.cmd(&["profiles", "create", "claude", "a", "-p", "anthropic"]).code(1);
    assert!(
        err.contains("--api-key-stdin") && err.contains("ANTHROPIC_API_KEY"),
        "no key, no terminal: {err}"
    );
    let (_, err) = env
        .cmd(&["profiles", "create", "claude", "a", "-p", "anthropic", "--api-key-stdin"])
        .stdin("bad key\n")
        .code(1);
    assert!(err.contains("space or control character"), "{err}");
    let (_, err) = env
        .cmd(&["profiles", "create", "claude", "a", "-p", "self", "--api-key-stdin"])
        .stdin(KEY)
        .code(1);
    assert!(err.contains("takes no API key"), "{err}");
    for cmd in [
        &["profiles", "inspect", "ghost"][..],
        &["profiles", "run", "ghost"],
        &["profiles", "delete", "ghost"],
        &["profiles", "env", "ghost"],
    ] {
        let (_, err) = env.cmd(cmd).code(1);
        assert!(err.contains("no profile `ghost`"), "{cmd:?}: {err}");
    }
    assert!(
        !env.home.join(".claude-profiles").exists() && !env.home.join(".codex-profiles").exists()
    );
    assert!(texts_under(&env.config.join("secrets")).is_empty());
}

#[test]
fn dry_run_shows_everything_and_changes_nothing() {
    let env = Env::new("dry");
    let out = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "d",
            "-p",
            "minimax",
            "--endpoint",
            "china",
            "--dry-run",
        ])
        .ok();
    assert!(out.contains("Dry run: nothing was written."), "{out}");
    assert!(
        out.contains(".claude/settings.json") && out.contains("disableDeepLinkRegistration"),
        "{out}"
    );
    assert!(out.contains("ANTHROPIC_BASE_URL=https://api.minimaxi.com/anthropic"), "{out}");
    assert!(out.contains("ANTHROPIC_AUTH_TOKEN=<redacted>"), "{out}");
    let json = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "d",
            "-p",
            "minimax",
            "--dry-run",
            "--api-key-stdin",
            "--json",
        ])
        .stdin(KEY)
        .json();
    assert_eq!(json["dry_run"], true);
    assert!(!json.to_string().contains(KEY), "dry runs redact the key");
    assert!(!env.home.join(".claude-profiles").exists());
    assert!(!env.config.join("profiles/d.json").exists());
    assert!(texts_under(&env.config.join("secrets")).is_empty());
    assert!(!env.home.join(".local/bin/d").exists());
}

#[test]
fn bad_scripts_fail_before_anything_is_written_and_the_daemon_keeps_serving() {
    let env = fake_agent_world("bad-scripts");
    let script = env.config.join("scripts/fake.rhai");
    let cases = [
        (r#"#{ files: #{ "../escape.json": "{}" } }"#, "contains `..`"),
        (r#"#{ files: #{ "/etc/evil": "x" } }"#, "is absolute"),
        ("let x = 1;\nloop { x += 1; }\n", "fake.rhai:2"),
        ("let s = \"0123456789\";\nwhile true { s += s; }\n", "fake.rhai:2"),
        ("let x = ;\n", "fake.rhai:1: syntax error"),
        ("42", "must end with a map"),
        ("#{ files: #{ \"a.json\": #{} } }", "json_encode_pretty"),
    ];
    for (text, expected) in cases {
        fs::write(&script, text).unwrap();
        let (_, err) = create_fake_cmd(&env, "f").code(1);
        assert!(err.contains(expected), "{text}: {err}");
        assert!(!env.home.join(".fake-profiles").exists(), "{text}: home left behind");
        assert!(!env.config.join("profiles/f.json").exists(), "{text}: profile left behind");
        assert!(texts_under(&env.config.join("secrets")).is_empty(), "{text}: secret left behind");
        assert!(!env.root.join("escape.json").exists() && !env.home.join("escape.json").exists());
    }
    env.cmd(&["daemon", "status"]).ok();
    // A symlink in the home pointing outside is never written through.
    fs::write(&script, r#"#{ files: #{ "link/x.json": "{}" } }"#).unwrap();
    fs::create_dir_all(env.home.join(".fake-profiles/f")).unwrap();
    let outside = env.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.home.join(".fake-profiles/f/link")).unwrap();
    let (_, err) = create_fake_cmd(&env, "f").code(1);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(env.home.join(".fake-profiles/f").exists(), "a home that was there before stays");
}

#[test]
fn a_corrupt_profile_is_reported_and_the_others_still_list() {
    let env = fake_agent_world("corrupt");
    create_fake(&env, "good");
    fs::write(env.config.join("profiles/bad.json"), "{ not json").unwrap();
    let out = env.cmd(&["profiles", "list"]).output();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("good"), "{stdout}");
    assert!(stderr.contains("bad.json") && stderr.contains("corrupt"), "{stderr}");
    let (_, err) = env.cmd(&["profiles", "run", "bad"]).code(1);
    assert!(err.contains("bad.json is corrupt"), "{err}");
}

#[test]
fn home_wrapper_run_gets_a_clean_env_the_arguments_and_the_exit_code() {
    let env = fake_agent_world("run");
    env.write_config("[run]\nenv_passthrough = [\"KEEP_ME\"]\n[custom]\nteam = \"core\"\n");
    create_fake(&env, "f");
    let home = env.home.join(".fake-profiles/f");
    let work = env.root.join("work dir");
    fs::create_dir_all(&work).unwrap();
    let out = env
        .cmd(&["profiles", "run", "f", "--", "--x", "a b", "", "exit:7"])
        .env("SECRET_OF_THE_SHELL", "leak")
        .env("KEEP_ME", "kept")
        .env("LC_TIME", "C")
        .env("TERM", "xterm")
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("HOME={}", home.display())), "{stdout}");
    assert!(stdout.contains(&format!("PWD={}", env.root.display())), "{stdout}");
    let args: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("ARG=")).collect();
    assert_eq!(args, ["--from-script", "--x", "a b", "", "exit:7"]);
    let agent_env = fs::read_to_string(home.join("env.txt")).unwrap();
    assert!(agent_env.contains(&format!("FAKE_KEY={KEY}")), "{agent_env}");
    assert!(agent_env.contains("FAKE_MODEL=claude-opus-4-8"));
    assert!(
        agent_env.contains("KEEP_ME=kept")
            && agent_env.contains("LC_TIME=C")
            && agent_env.contains("TERM=xterm")
    );
    assert!(agent_env.contains("RINGLET_PROFILE=f"));
    assert!(!agent_env.contains("SECRET_OF_THE_SHELL"), "the shell's env does not leak in");
    assert!(!agent_env.contains("RINGLET_CONFIG_DIR"), "{agent_env}");
    assert_eq!(fs::read_to_string(home.join("conf/key.txt")).unwrap(), KEY);
    assert_eq!(mode(&home.join("conf/key.txt")), 0o600);
    assert_eq!(mode(&home.join("conf/settings.json")), 0o644);
    let settings = fs::read_to_string(home.join("conf/settings.json")).unwrap();
    assert!(settings.contains("\"team\": \"core\""), "prefs reach the script: {settings}");

    let sessions = fs::read_to_string(env.config.join("telemetry/sessions.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(sessions.lines().last().unwrap()).unwrap();
    assert_eq!(line["profile"], "f");
    assert_eq!(line["agent"], "fake");
    assert_eq!(line["provider"], "anthropic");
    assert_eq!(line["model"], "claude-opus-4-8");
    assert_eq!(line["exit_code"], 7);
    assert!(line["start"].is_string() && line["end"].is_string() && line["duration_ms"].is_u64());
    let inspect = env.cmd(&["profiles", "inspect", "f", "--json"]).json();
    assert_eq!(inspect["runs"], 1);
    assert!(inspect["last_used"].is_string());
    let stats = env.cmd(&["stats", "--json"]).json();
    assert_eq!(stats["total_runs"], 1);

    // Killed by a signal: 128 + N.
    env.fake_agent("fake-agent", "kill -TERM $$");
    env.cmd(&["profiles", "run", "f"]).code(143);
    // The agent's binary is gone: one line, nothing started.
    fs::remove_file(env.bin.join("fake-agent")).unwrap();
    let (_, err) = env.cmd(&["profiles", "run", "f"]).code(1);
    assert!(err.contains("Fake Agent is not installed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn config_dir_strategy_keeps_the_users_home() {
    let env = Env::new("config-dir");
    env.fake_agent("claude", "echo \"HOME=$HOME\"; echo \"CCD=$CLAUDE_CONFIG_DIR\"; echo \"TOKEN=$ANTHROPIC_AUTH_TOKEN\"; echo \"UPD=$DISABLE_AUTOUPDATER\"");
    env.cmd(&["profiles", "create", "claude", "c", "-p", "zai", "--api-key-stdin", "--no-alias"])
        .stdin(KEY)
        .ok();
    let out = env.cmd(&["profiles", "run", "c"]).ok();
    assert!(out.contains(&format!("HOME={}\n", env.home.display())), "{out}");
    assert!(
        out.contains(&format!("CCD={}", env.home.join(".claude-profiles/c/.claude").display())),
        "{out}"
    );
    assert!(out.contains(&format!("TOKEN={KEY}")) && out.contains("UPD=1"), "{out}");
    // `profiles env` gives the same variables, shell-quoted, without HOME.
    let exports = env.cmd(&["profiles", "env", "c"]).ok();
    assert!(!exports.contains("export HOME="), "{exports}");
    let script = format!(
        "eval \"$({BIN} profiles env c)\"; echo \"$CLAUDE_CONFIG_DIR|$ANTHROPIC_AUTH_TOKEN|$ANTHROPIC_MODEL\""
    );
    let mut sh = env.program("sh");
    sh.cmd.arg("-c").arg(script);
    let shown = sh.ok();
    assert_eq!(
        shown.trim(),
        format!("{}|{KEY}|glm-5.1", env.home.join(".claude-profiles/c/.claude").display())
    );
}

#[test]
fn a_deleted_home_is_recreated_on_the_next_run() {
    let env = fake_agent_world("rehome");
    create_fake(&env, "f");
    let home = env.home.join(".fake-profiles/f");
    fs::remove_dir_all(&home).unwrap();
    let inspect = env.cmd(&["profiles", "inspect", "f", "--json"]).json();
    assert_eq!(inspect["home_exists"], false);
    let out = env.cmd(&["profiles", "run", "f"]).output();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was missing and has been created again"), "{err}");
    assert!(home.join("conf/settings.json").exists());
}

#[test]
fn alias_shims_run_the_profile_and_never_touch_foreign_files() {
    let env = fake_agent_world("shims");
    env.cmd(&["profiles", "create", "fake", "mine", "-p", "anthropic", "--api-key-stdin"])
        .stdin(KEY)
        .ok();
    let shim = env.home.join(".local/bin/mine");
    let mut run_shim = env.program(&shim);
    run_shim.cmd.args(["hello", "exit:3"]);
    let out = run_shim.output();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ARG=hello"));
    let list = env.cmd(&["aliases", "list", "--json"]).json();
    assert_eq!(list[0]["alias"], "mine");
    // A file we did not write is never overwritten or removed.
    let foreign = env.home.join(".local/bin/other");
    fs::write(&foreign, "#!/bin/sh\necho mine\n").unwrap();
    create_fake(&env, "other");
    let (_, err) = env.cmd(&["aliases", "install", "other"]).code(1);
    assert!(err.contains("not written by ringlet"), "{err}");
    let (_, err) = env.cmd(&["aliases", "uninstall", "other"]).code(1);
    assert!(err.contains("not written by ringlet"), "{err}");
    assert_eq!(fs::read_to_string(&foreign).unwrap(), "#!/bin/sh\necho mine\n");
    env.cmd(&["profiles", "delete", "other"]).ok();
    assert!(foreign.exists(), "delete leaves a foreign file alone");
    // A name that is already a command gets no shim, but the profile is made.
    let (_, err) = env
        .cmd(&["profiles", "create", "fake", "sh", "-p", "anthropic", "--api-key-stdin"])
        .stdin(KEY)
        .code(0);
    assert!(err.contains("already a command"), "{err}");
    assert!(!env.home.join(".local/bin/sh").exists());
    env.cmd(&["aliases", "uninstall", "mine"]).ok();
    assert!(!shim.exists());
    env.cmd(&["aliases", "install", "mine"]).ok();
    assert!(shim.exists());
}

#[test]
fn hooks_add_list_remove_import_export_and_concurrent_writers() {
    let env = fake_agent_world("hooks");
    create_fake(&env, "h");
    env.cmd(&["hooks", "add", "h", "Stop", "echo done"]).ok();
    env.cmd(&["hooks", "add", "h", "PostToolUse", "cargo fmt", "--matcher", "Edit|Write"]).ok();
    let (_, err) = env.cmd(&["hooks", "add", "h", "stop", "x"]).code(1);
    assert!(err.contains("unknown hook event `stop`"), "{err}");
    let list = env.cmd(&["hooks", "list", "h", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let export = env.cmd(&["hooks", "export", "h"]).ok();
    let exported: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(exported["hooks"]["PostToolUse"][0]["matcher"], "Edit|Write");
    assert_eq!(exported["hooks"]["Stop"][0]["hooks"][0]["command"], "echo done");
    // The next run writes them where the agent reads them.
    env.cmd(&["profiles", "run", "h"]).ok();
    let settings =
        fs::read_to_string(env.home.join(".fake-profiles/h/conf/settings.json")).unwrap();
    assert!(settings.contains("echo done") && settings.contains("Edit|Write"), "{settings}");

    env.cmd(&["hooks", "remove", "h", "Stop", "1"]).ok();
    env.cmd(&["hooks", "remove", "h", "Stop", "1"]).code(1);
    let flat = env.root.join("flat.json");
    fs::write(&flat, r#"{"Stop": [{"type": "command", "command": "x"}]}"#).unwrap();
    let (_, err) = env.cmd(&["hooks", "import", "h", flat.to_str().unwrap()]).code(1);
    assert!(err.contains("flat form"), "{err}");
    let file = env.root.join("hooks.json");
    fs::write(&file, &export).unwrap();
    env.cmd(&["hooks", "import", "h", file.to_str().unwrap()]).ok();
    assert_eq!(env.cmd(&["hooks", "list", "h", "--json"]).json().as_array().unwrap().len(), 2);

    // Sixteen writers at once: no update is lost.
    let children: Vec<_> = (0..16)
        .map(|i| env.cmd(&["hooks", "add", "h", "SessionStart", &format!("echo {i}")]).spawn())
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let list = env.cmd(&["hooks", "list", "h", "--json"]).json();
    let starts = list.as_array().unwrap().iter().filter(|r| r["event"] == "SessionStart").count();
    assert_eq!(starts, 16);
    // Agents without hooks say so.
    env.fake_agent("codex", "true");
    env.cmd(&[
        "profiles",
        "create",
        "codex",
        "cx",
        "-p",
        "openai",
        "--api-key-stdin",
        "--no-alias",
    ])
    .stdin(KEY)
    .ok();
    let (_, err) = env.cmd(&["hooks", "add", "cx", "Stop", "x"]).code(1);
    assert!(err.contains("has no hooks"), "{err}");
}

#[test]
fn hook_sets_and_mcp_servers_from_config_reach_claude_code_files() {
    let env = Env::new("prefs");
    env.write_config(
        r#"
[hooks.bell]
event = "Stop"
command = "printf '\\a'"
[hooks.fmt]
event = "PostToolUse"
matcher = "Edit"
command = "cargo fmt"
[mcp_servers.mini]
command = "python3"
args = ["mini.py"]
[mcp_servers.web]
url = "http://127.0.0.1:9/mcp"
"#,
    );
    let create = |alias: &str, extra: &[&str]| {
        let mut args = vec![
            "profiles",
            "create",
            "claude",
            alias,
            "-p",
            "zai",
            "--api-key-stdin",
            "--no-alias",
        ];
        args.extend_from_slice(extra);
        env.cmd(&args).stdin(KEY).ok();
        let dir = env.home.join(".claude-profiles").join(alias).join(".claude");
        let settings: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("settings.json")).unwrap()).unwrap();
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(".claude.json")).unwrap()).unwrap();
        (settings, state)
    };
    let (settings, state) = create("all", &[]);
    assert_eq!(settings["hooks"]["Stop"][0]["hooks"][0]["command"], "printf '\\a'");
    assert_eq!(settings["hooks"]["PostToolUse"][0]["matcher"], "Edit");
    assert_eq!(
        state["mcpServers"]["mini"],
        serde_json::json!({"type": "stdio", "command": "python3", "args": ["mini.py"]})
    );
    assert_eq!(state["mcpServers"]["web"]["type"], "http");
    let (settings, state) = create("some", &["--hooks", "bell", "--mcp", "web"]);
    assert!(settings["hooks"].get("PostToolUse").is_none());
    assert!(state["mcpServers"].get("mini").is_none());
    let (settings, state) = create("bare", &["--bare"]);
    assert_eq!(settings["hooks"], serde_json::json!({}));
    assert_eq!(state["mcpServers"], serde_json::json!({}));
    let (_, err) = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "x",
            "-p",
            "zai",
            "--hooks",
            "nope",
            "--api-key-stdin",
        ])
        .stdin(KEY)
        .code(1);
    assert!(err.contains("no hook set `nope`"), "{err}");
}

#[test]
fn events_follow_the_profile_and_never_carry_the_key() {
    let env = fake_agent_world("events");
    env.start_daemon();
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    stream
        .write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[]}}\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    create_fake(&env, "e");
    env.cmd(&["hooks", "add", "e", "Stop", "true"]).ok();
    env.cmd(&["profiles", "run", "e"]).ok();
    env.cmd(&["profiles", "delete", "e"]).ok();
    let mut seen = Vec::new();
    for kind in
        ["ProfileCreated", "ProfileUpdated", "ProfileStarted", "ProfileStopped", "ProfileDeleted"]
    {
        let line = read_line_matching(&mut reader, Duration::from_secs(5), |l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} event after {seen:?}"));
        assert!(!line.contains(KEY), "{line}");
        assert!(line.contains("\"alias\":\"e\""), "{line}");
        seen.push(line);
    }
    assert!(seen[3].contains("\"exit_code\":0"), "{}", seen[3]);
    assert!(!env.log_text().contains(KEY), "the key is never logged");
}

#[test]
fn env_setup_runs_the_task_in_the_profile() {
    let env = fake_agent_world("setup-task");
    create_fake(&env, "s");
    let out = env.cmd(&["env", "setup", "s", "hello"]).ok();
    assert_eq!(
        out.trim(),
        format!("hello from s in {}", env.home.join(".fake-profiles/s").display())
    );
    let (_, err) = env.cmd(&["env", "setup", "s", "nope"]).code(1);
    assert!(err.contains("no setup task `nope`") && err.contains("hello"), "{err}");
}

/// The real Secret Service (gnome-keyring in `tests/with-keyring.sh`, which
/// `make test` uses). Skipped with a note outside it, unless REQUIRE_KEYCHAIN.
#[test]
fn keys_go_to_the_real_secret_service() {
    let Some(bus) = crate::util::keychain_bus() else { return };
    let env = fake_agent_world("keychain");
    let alias = format!("kc{}", std::process::id());
    let lookup = || crate::util::keychain_lookup(&bus, &alias);
    let (_, err) = env
        .cmd(&[
            "profiles",
            "create",
            "fake",
            &alias,
            "-p",
            "anthropic",
            "--api-key-stdin",
            "--no-alias",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("RINGLET_SECRET_STORE", "keyring")
        .stdin(KEY)
        .code(0);
    assert!(!err.contains("file store"), "{err}");
    assert_eq!(lookup(), KEY);
    assert!(texts_under(&env.config.join("secrets")).is_empty(), "nothing in the file store");
    let inspect = env.cmd(&["profiles", "inspect", &alias, "--json"]).json();
    assert_eq!(inspect["secret"], "keyring");
    env.cmd(&["profiles", "run", &alias]).ok();
    let agent_env =
        fs::read_to_string(env.home.join(format!(".fake-profiles/{alias}/env.txt"))).unwrap();
    assert!(agent_env.contains(&format!("FAKE_KEY={KEY}")));
    env.cmd(&["profiles", "delete", &alias]).ok();
    assert_eq!(lookup(), "", "delete removes the keychain item");
}

#[test]
fn forced_keyring_without_a_keychain_is_a_clear_error() {
    let env = fake_agent_world("no-keychain");
    let (_, err) = env
        .cmd(&[
            "profiles",
            "create",
            "fake",
            "k",
            "-p",
            "anthropic",
            "--api-key-stdin",
            "--no-alias",
        ])
        .env("RINGLET_SECRET_STORE", "keyring")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(KEY)
        .code(1);
    assert!(
        err.to_lowercase().contains("keychain") || err.contains("D-Bus") || err.contains("DBus"),
        "{err}"
    );
    assert!(!env.home.join(".fake-profiles/k").exists());
    let other = Env::new("bad-store-var");
    let (_, err) = other.cmd(&["agents", "list"]).env("RINGLET_SECRET_STORE", "vault").code(1);
    assert!(err.contains("RINGLET_SECRET_STORE"), "{err}");
}
