//! Shell completion in the real shells (issue 15 item 6): the scripts
//! `ringlet completions bash|zsh|fish` print, loaded into bash, fish and an
//! interactive zsh (under tmux, with compinit, as a user has it), complete
//! commands, options, option choices and live names: profiles, agents (a
//! user manifest's too), providers and terminal sessions, from a running
//! daemon and, with none, from disk. No completion ever starts a daemon.
//!
//! bash is driven the way readline drives it (`COMP_WORDS`/`COMP_CWORD`,
//! then the registered function); fish answers `complete -C <line>` itself.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::terminal::{create, shell_world};
use crate::util::tmux::{Tmux, sh_quote};
use crate::util::{BIN, Env, wait_until};

/// A world with profiles `sh1` (the `shell` agent of agents.d) and `work`,
/// `ringlet` on its PATH (as a user types it), and the script for `shell`.
fn world(name: &str, shell: &str) -> (Env, PathBuf) {
    let env = shell_world(name);
    env.create_profile("claude", "work");
    symlink(BIN, env.bin.join("ringlet")).unwrap();
    let script = env.root.join(format!("ringlet.{shell}"));
    fs::write(&script, env.cmd(&["completions", shell]).ok()).unwrap();
    (env, script)
}

/// A terminal session of `sh1` that sleeps; its id.
fn session(env: &Env) -> String {
    let (addr, token) = env.http();
    let info = create(env, addr, &token, json!({"args": ["-c", "sleep 60"]}));
    info["id"].as_str().unwrap().to_string()
}

/// Stops the daemon and waits until none of this world is left.
fn stop_daemon(env: &Env) {
    env.cmd(&["daemon", "stop", "--force"]).ok();
    assert!(wait_until(Duration::from_secs(10), || env.daemon_processes().is_empty()));
}

fn assert_no_daemon(env: &Env, shell: &str) {
    assert!(env.daemon_processes().is_empty(), "a {shell} completion started a daemon");
    assert!(!env.socket().exists(), "a {shell} completion left a socket");
}

/// Runs `program args` in the world with `input` on stdin; its stdout.
fn run(env: &Env, program: &str, args: &[&str], input: &str) -> String {
    let mut cmd = env.program(program);
    cmd.cmd.args(args);
    cmd.stdin(input).ok()
}

/// What bash completes for each command line (its words; the last is the
/// one being completed), sorted, all in one bash process.
fn bash(env: &Env, script: &Path, lines: &[&[&str]]) -> Vec<Vec<String>> {
    let mut driver = format!(
        "source {}\ncomplete -p ringlet\n\
         c() {{ COMP_WORDS=(\"$@\"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
         COMP_LINE=\"$*\"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _ringlet; \
         echo \"@@ ${{COMPREPLY[*]}}\"; }}\n",
        sh_quote(&script.display().to_string())
    );
    for words in lines {
        let words: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
        driver.push_str(&format!("c {}\n", words.join(" ")));
    }
    let out = run(env, "bash", &["--norc", "--noprofile", "-s"], &driver);
    assert!(out.starts_with("complete -F _ringlet ringlet\n"), "not registered:\n{out}");
    answers(&out, |line| {
        line.strip_prefix("@@").map(|l| l.split_whitespace().map(String::from).collect())
    })
}

/// What fish completes for each command line (the text before the cursor),
/// names only, sorted, all in one fish process.
fn fish(env: &Env, script: &Path, lines: &[&str]) -> Vec<Vec<String>> {
    let mut driver = format!("source {}\n", sh_quote(&script.display().to_string()));
    for line in lines {
        driver.push_str(&format!("complete -C {}\necho @@\n", sh_quote(line)));
    }
    let out = run(env, "fish", &["--no-config", "-c", &driver], "");
    let mut all = Vec::new();
    let mut current = Vec::new();
    for line in out.lines() {
        if line == "@@" {
            current.sort();
            all.push(std::mem::take(&mut current));
        } else {
            current.push(line.split('\t').next().unwrap_or_default().to_string());
        }
    }
    assert_eq!(all.len(), lines.len(), "{out}");
    all
}

/// The `@@` lines of a driver's output, each parsed by `parse`, sorted.
fn answers(out: &str, parse: impl Fn(&str) -> Option<Vec<String>>) -> Vec<Vec<String>> {
    out.lines()
        .filter_map(parse)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn bash_completes_commands_options_choices_and_live_names() {
    let (env, script) = world("complete-bash", "bash");
    let id = session(&env);
    let got = bash(
        &env,
        &script,
        &[
            &["ringlet", "prof"],
            &["ringlet", "profiles", ""],
            &["ringlet", "profiles", "create", "--pro"],
            &["ringlet", "usage", "--period", ""],
            &["ringlet", "usage", "--period", "=", "y"],
            &["ringlet", "--json", "profiles", "run", "--remote", ""],
            &["ringlet", "profiles", "create", "-p", "anthro"],
            &["ringlet", "agents", "inspect", "sh"],
            &["ringlet", "terminal", "attach", ""],
            &["ringlet", "completions", ""],
            &["ringlet", "proxy", "route", "add", "work", ""],
        ],
    );
    assert_eq!(got[0], names(&["profiles"]));
    assert_eq!(got[1], names(&["create", "list", "templates", "inspect", "delete", "run", "env"]));
    assert_eq!(got[2], names(&["--provider", "--proxy"]));
    assert_eq!(got[3], names(&["today", "yesterday", "week", "month", "7d", "30d", "all"]));
    assert_eq!(got[4], names(&["yesterday"]));
    assert_eq!(got[5], names(&["sh1", "work"]), "profile names from the daemon");
    assert_eq!(got[6], names(&["anthropic"]));
    assert_eq!(got[7], names(&["shell"]), "agents.d's agent");
    assert_eq!(got[8], [id], "the session");
    assert_eq!(got[9], names(&["bash", "zsh", "fish"]));
    assert!(got[10].is_empty(), "a rule name is free text: {:?}", got[10]);

    // Without a daemon: profiles from their files, no session, no daemon.
    stop_daemon(&env);
    let got = bash(
        &env,
        &script,
        &[
            &["ringlet", "profiles", "run", ""],
            &["ringlet", "profiles", "inspect", "w"],
            &["ringlet", "terminal", "attach", ""],
            &["ringlet", "agents", "inspect", "sh"],
        ],
    );
    assert_eq!(got[0], names(&["sh1", "work"]), "profile names from disk");
    assert_eq!(got[1], names(&["work"]));
    assert!(got[2].is_empty());
    assert_eq!(got[3], names(&["shell"]));
    assert_no_daemon(&env, "bash");
}

#[test]
fn fish_completes_commands_options_choices_and_live_names() {
    let (env, script) = world("complete-fish", "fish");
    let id = session(&env);
    let got = fish(
        &env,
        &script,
        &[
            "ringlet prof",
            "ringlet profiles ",
            "ringlet profiles create --pro",
            "ringlet usage --period=y",
            "ringlet --json profiles run --remote ",
            "ringlet profiles create -p anthro",
            "ringlet terminal kill ",
            "ringlet hooks import sh1 ",
        ],
    );
    assert_eq!(got[0], names(&["profiles"]));
    assert_eq!(got[1], names(&["create", "list", "templates", "inspect", "delete", "run", "env"]));
    assert_eq!(got[2], names(&["--provider", "--proxy"]));
    assert_eq!(got[3], names(&["--period=yesterday"]));
    assert_eq!(got[4], names(&["sh1", "work"]), "profile names from the daemon");
    assert_eq!(got[5], names(&["anthropic"]));
    assert_eq!(got[6], [id], "the session");
    assert!(got[7].iter().any(|f| f.starts_with("ringlet.")), "files: {:?}", got[7]);

    stop_daemon(&env);
    let got = fish(&env, &script, &["ringlet profiles run ", "ringlet terminal kill "]);
    assert_eq!(got[0], names(&["sh1", "work"]), "profile names from disk");
    assert!(got[1].is_empty());
    assert_no_daemon(&env, "fish");
}

#[test]
fn live_names_need_no_daemon_and_touch_nothing() {
    // A new user's first TAB: no config dir, no daemon, nothing created.
    let env = Env::new("complete-fresh");
    let agents = env.cmd(&["__complete", "agents"]).ok();
    assert!(agents.lines().any(|l| l.starts_with("claude\t")), "{agents}");
    let providers = env.cmd(&["__complete", "providers"]).ok();
    assert!(providers.lines().any(|l| l.starts_with("anthropic\t")), "{providers}");
    for kind in ["profiles", "sessions"] {
        assert_eq!(env.cmd(&["__complete", kind]).ok(), "", "{kind}");
    }
    // A shell without a script is a usage error (its exit code is the
    // CLI's for usage errors).
    let out = env.cmd(&["completions", "tcsh", "--json"]).output();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "usage", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("bash, zsh, fish"), "{v}");
    assert!(!env.config.exists(), "a completion created the config dir");
    assert!(!env.run.join("ringlet").exists(), "a completion created the runtime dir");
    assert!(env.daemon_processes().is_empty());
}

/// How long zsh may take to show what a step waits for.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn zsh_completes_interactively_with_and_without_a_daemon() {
    let (env, script) = world("complete-zsh", "zsh");
    // As installed: `_ringlet` in a directory of $fpath, found by compinit.
    let functions = env.root.join("zsh-functions");
    fs::create_dir_all(&functions).unwrap();
    fs::copy(&script, functions.join("_ringlet")).unwrap();
    let zdot = env.root.join("zdot");
    fs::create_dir_all(&zdot).unwrap();
    fs::write(
        zdot.join(".zshrc"),
        format!(
            "fpath=({} $fpath)\nautoload -Uz compinit && compinit -u -d {}/.zcompdump\n\
             PS1='READY%% '\n",
            functions.display(),
            zdot.display()
        ),
    )
    .unwrap();
    let command = format!(
        "env -i HOME={home} PATH={path} ZDOTDIR={zdot} RINGLET_CONFIG_DIR={config} \
         XDG_RUNTIME_DIR={run} RINGLET_HTTP_PORT=0 TERM=xterm-256color zsh -i",
        home = env.home.display(),
        path = env.path_var().to_str().unwrap(),
        zdot = zdot.display(),
        config = env.config.display(),
        run = env.run.display(),
    );
    let mut tmux = Tmux::new(&env.root, "complete", "");
    tmux.window("S", 150, 40, &command);
    // capture-pane drops trailing spaces: no `done` below looks for them.
    let wait = |what: &str, done: &dyn Fn(&str) -> bool| tmux.wait("S", what, LIMIT, done);
    let keys = |keys: &[&str]| tmux.keys("S", keys);
    wait("zsh's prompt", &|s| s.contains("READY%"));

    // A command, then a profile name from the running daemon (a list).
    keys(&["ringlet prof", "Tab"]);
    wait("`profiles` completed", &|s| s.contains("ringlet profiles"));
    keys(&["ru", "Tab"]);
    wait("`run` completed", &|s| s.contains("ringlet profiles run"));
    keys(&["Tab"]);
    wait("the profiles listed", &|s| s.contains("sh1") && s.contains("work"));
    keys(&["C-u", "C-l"]);
    wait("a clear line", &|s| !s.contains("sh1"));

    // Without a daemon: from the profile files; and option choices.
    stop_daemon(&env);
    keys(&["ringlet profiles inspect wo", "Tab"]);
    wait("`work` completed from disk", &|s| s.contains("ringlet profiles inspect work"));
    keys(&["C-u", "ringlet usage --period ye", "Tab"]);
    wait("a choice completed", &|s| s.contains("--period yesterday"));
    assert_no_daemon(&env, "zsh");
}
