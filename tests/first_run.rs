//! A new user's first commands, in a real terminal (tmux) where it matters:
//! `profiles create` checks everything before it asks for the key, `init`
//! re-asks on a typo and can be run again, `profiles delete` says what it
//! kept and asks before `--purge`, `daemon --stay-alive` switches a running
//! daemon, and alias shims find `ringlet` after the binary moves.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::tmux::{Tmux, sh_quote};
use crate::util::{BIN, Env, KEY, TestCommand, pid_alive, wait_until};

/// How long a screen may take to show what a step waits for (a loaded
/// 2-core machine starts a daemon and a debug binary slowly).
const LIMIT: Duration = Duration::from_secs(30);

/// A tmux server of the test's own (see `util::tmux`) running `script`
/// (sh) in pane `S`, 120x50.
fn start(env: &Env, script: &str) -> Tmux {
    let file = env.root.join("pane.sh");
    fs::write(&file, script).unwrap();
    let mut tmux = Tmux::new(&env.root, "fr", "");
    tmux.window("S", 120, 50, &format!("sh {}", sh_quote(&file.display().to_string())));
    tmux
}

/// Polls pane `S`, its history included, until `done` holds; panics with
/// it after LIMIT.
fn wait(tmux: &Tmux, what: &str, done: impl Fn(&str) -> bool) -> String {
    tmux.poll(what, LIMIT, || tmux.text_with_history("S"), done)
}

/// The start of a pane's script: the world's environment, as `Env::cmd`
/// sets it, and `$R` the binary.
fn world_script(env: &Env, bin: &Path) -> String {
    let q = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    format!(
        "export HOME={} RINGLET_CONFIG_DIR={} XDG_RUNTIME_DIR={} PATH={} \
         RINGLET_HTTP_PORT=0 RINGLET_SECRET_STORE=file TERM=xterm\nR={}\ncd {}\n",
        q(env.home.as_os_str()),
        q(env.config.as_os_str()),
        q(env.run.as_os_str()),
        q(&env.path_var()),
        q(bin.as_os_str()),
        q(env.root.as_os_str()),
    )
}

fn claude(env: &Env) {
    env.fake_agent(
        "claude",
        "[ \"$1\" = --version ] && { echo '2.1.0 (Claude Code)'; exit 0; }\necho \"ran claude $*\"",
    );
}

/// Each invalid input ends `profiles create` with its error before the key
/// prompt shows (the prompt would sit on the pane, waiting); a valid one
/// then shows the prompt, which proves the check can see it.
#[test]
fn profiles_create_checks_everything_before_asking_for_the_key() {
    let env = Env::new("create-checks");
    claude(&env);
    env.create_profile("claude", "taken");
    let cases: &[(&str, &str, &str)] = &[
        ("name", "claude Work -p anthropic", "invalid profile name `Work`"),
        ("pairing", "codex c1 -p anthropic", "cannot use provider `anthropic`"),
        ("exists", "claude taken -p anthropic", "already exists"),
        ("endpoint", "claude c2 -p anthropic --endpoint nowhere", "no endpoint `nowhere`"),
        ("hooks", "claude c3 -p anthropic --hooks nope", "no hook set `nope`"),
        ("template", "claude c4 -p anthropic --template nope", "nope"),
        ("script", "claude c5 -p anthropic --script nope", "nope.rhai"),
        ("mode", "claude c6 -p anthropic --permission-mode nope", "nope"),
        ("model", "claude c7 -p anthropic --model ' '", "invalid model name"),
        ("proxy", "claude c8 -p anthropic --proxy --endpoint nowhere", "no endpoint `nowhere`"),
        ("provider", "claude c9 -p nope", "nope"),
    ];
    let mut script = world_script(&env, Path::new(BIN));
    script.push_str(
        "try() { n=$1; shift; \"$R\" profiles create \"$@\" >\"$n.out\" 2>\"$n.err\"; \
         echo \"$n rc=$?\" >>cases.log; }\n",
    );
    for (name, args, _) in cases {
        script.push_str(&format!("try {name} {args}\n"));
    }
    // The valid create waits for the test's go: started at once, its prompt
    // could show between the test's last look at the screen and its read of
    // the log, and count as an invalid input's prompt.
    script.push_str(
        "echo DONE >>cases.log\nwhile [ ! -e go ]; do sleep 0.05; done\n\
         try good claude good -p anthropic\nsleep 60\n",
    );
    let tmux = start(&env, &script);
    let log = env.root.join("cases.log");
    let started = Instant::now();
    loop {
        let screen = tmux.text_with_history("S");
        assert!(!screen.contains("API key"), "a key prompt showed:\n{screen}\n{}", read(&log));
        if read(&log).contains("DONE") {
            break;
        }
        assert!(started.elapsed() < LIMIT, "the cases did not finish:\n{}", read(&log));
        thread::sleep(Duration::from_millis(50));
    }
    fs::write(env.root.join("go"), "").unwrap();
    let results = read(&log);
    for (name, args, why) in cases {
        let err = read(&env.root.join(format!("{name}.err")));
        assert!(results.contains(&format!("{name} rc=1\n")), "{name} ({args}):\n{results}\n{err}");
        assert!(err.contains(why), "{name} ({args}): wanted `{why}` in:\n{err}");
    }
    wait(&tmux, "the key prompt of a valid create", |s| s.contains("Anthropic API key:"));
    tmux.line("S", KEY);
    assert!(
        wait_until(LIMIT, || read(&log).contains("good rc=")),
        "{}",
        tmux.text_with_history("S")
    );
    assert!(read(&log).contains("good rc=0"), "{}", read(&env.root.join("good.err")));
}

/// `command` with `list` added to its arguments.
fn args(mut command: TestCommand, list: &[&str]) -> TestCommand {
    command.cmd.args(list);
    command
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// `init` on a terminal: a typo is answered with the choices and the
/// question again; a custom provider is made from a URL and an API type;
/// then `init -y` twice: the second keeps what the first made.
#[test]
fn init_re_asks_on_a_typo_and_a_second_init_y_keeps_what_exists() {
    let env = Env::new("init");
    claude(&env);
    let mut script = world_script(&env, Path::new(BIN));
    script.push_str("\"$R\" init; echo \"INIT-rc=$?\"\nsleep 60\n");
    let tmux = start(&env, &script);
    let count = |s: &str, what: &str| s.matches(what).count();
    wait(&tmux, "the agent question", |s| s.contains("Agent (1) claude) [claude]:"));
    tmux.line("S", "cluade");
    wait(&tmux, "the agent question again", |s| {
        s.contains("did you mean `claude`") && count(s, "Agent (1) claude)") == 2
    });
    tmux.line("S", "");
    let s = wait(&tmux, "the provider question", |s| s.contains("Provider ("));
    assert!(s.contains("anthropic") && s.contains(") custom)"), "{s}");
    tmux.line("S", "anthropc");
    wait(&tmux, "the provider question again", |s| {
        s.contains("did you mean `anthropic`") && count(s, "Provider (") == 2
    });
    tmux.line("S", "custom");
    wait(&tmux, "the provider's name", |s| s.contains("Name of the new provider"));
    tmux.line("S", "");
    wait(&tmux, "the URL", |s| s.contains("Its base URL"));
    tmux.line("S", "htp://typo");
    wait(&tmux, "the URL again", |s| count(s, "Its base URL") == 2);
    tmux.line("S", "http://127.0.0.1:9/v1");
    wait(&tmux, "the API type", |s| s.contains("Its API type (1) anthropic-compatible)"));
    tmux.line("S", "");
    wait(&tmux, "the model", |s| s.contains("Its model"));
    tmux.line("S", "m1");
    wait(&tmux, "the profile name", |s| {
        s.contains("Profile name") && s.contains("[claude-custom]")
    });
    tmux.line("S", "Bad Name");
    wait(&tmux, "the profile name again", |s| count(s, "Profile name") == 2);
    tmux.line("S", "");
    wait(&tmux, "the key prompt", |s| s.contains("custom API key:"));
    tmux.line("S", KEY);
    let s = wait(&tmux, "init to end", |s| s.contains("INIT-rc="));
    assert!(s.contains("INIT-rc=0"), "{s}");
    assert!(s.contains("Created profile claude-custom"), "{s}");
    let manifest = read(&env.config.join("providers.d/custom.toml"));
    assert!(manifest.contains("\"http://127.0.0.1:9/v1\""), "{manifest}");
    let p = env.cmd(&["profiles", "inspect", "claude-custom", "--json"]).json();
    assert_eq!((p["provider"].as_str(), p["model"].as_str()), (Some("custom"), Some("m1")), "{p}");

    // No terminal: -y, the key on stdin; again: kept, not an error.
    let first = env.cmd(&["init", "-y", "--api-key-stdin"]).env("RINGLET_SECRET_STORE", "file");
    let out = first.stdin(KEY).ok();
    assert!(out.contains("Created profile claude-anthropic"), "{out}");
    let out = env.cmd(&["init", "-y", "--api-key-stdin"]).stdin(KEY).ok();
    assert!(out.contains("profile claude-anthropic exists already: kept"), "{out}");
}

/// `profiles delete` names the home it kept; `--purge` asks on a terminal
/// (no: nothing deleted; yes: the home goes), and not without one.
#[test]
fn profiles_delete_says_what_it_kept_and_purge_asks_on_a_terminal() {
    let env = Env::new("delete");
    claude(&env);
    for alias in ["keep", "asked", "piped"] {
        env.create_profile("claude", alias);
    }
    let home = |alias: &str| env.home.join(".claude-profiles").join(alias);
    let out = env.cmd(&["profiles", "delete", "keep"]).ok();
    assert!(out.contains(&format!("kept its home {}", home("keep").display())), "{out}");
    assert!(home("keep").is_dir());

    let mut script = world_script(&env, Path::new(BIN));
    script.push_str(
        "\"$R\" profiles delete asked --purge; echo \"NO-rc=$?\"\n\
         \"$R\" profiles delete asked --purge; echo \"YES-rc=$?\"\nsleep 60\n",
    );
    let tmux = start(&env, &script);
    wait(&tmux, "the question", |s| s.contains("Delete profile asked and everything in its home"));
    tmux.line("S", "no");
    let s = wait(&tmux, "the refusal", |s| s.contains("NO-rc="));
    assert!(s.contains("NO-rc=1") && s.contains("nothing deleted"), "{s}");
    assert!(home("asked").is_dir() && env.config.join("profiles/asked.json").exists());
    wait(&tmux, "the question again", |s| s.matches("Delete profile asked").count() == 2);
    tmux.line("S", "yes");
    let s = wait(&tmux, "the delete", |s| s.contains("YES-rc="));
    assert!(s.contains("YES-rc=0"), "{s}");
    assert!(!home("asked").exists() && !env.config.join("profiles/asked.json").exists());

    // No terminal: no question; --purge is done as given.
    let out = env.cmd(&["profiles", "delete", "piped", "--purge"]).ok();
    assert!(out.contains(&format!("removed {}", home("piped").display())), "{out}");
    assert!(!home("piped").exists());
}

/// `daemon --stay-alive` while an on-demand daemon runs switches it: it
/// outlives its idle timeout.
#[test]
fn daemon_stay_alive_switches_a_running_daemon() {
    let env = Env::new("stay-alive");
    env.write_config("[daemon]\nidle_timeout_secs = 3\n");
    let pid = env.start_daemon();
    let out = env.cmd(&["daemon", "--stay-alive"]).ok();
    assert!(out.contains("already running") && out.contains("now stays alive"), "{out}");
    let status = env.cmd(&["daemon", "status", "--json"]).json();
    assert_eq!(status["stay_alive"], true, "{status}");
    assert_eq!(status["idle_timeout_secs"], serde_json::Value::Null, "{status}");
    thread::sleep(Duration::from_millis(4500));
    assert!(pid_alive(pid), "the daemon idled out:\n{}", env.log_text());
    let out = env.cmd(&["daemon", "--stay-alive"]).ok();
    assert!(out.contains("already stays alive"), "{out}");
    assert_eq!(env.daemon_pid(), Some(pid));
}

/// A shim finds `ringlet` on PATH first, then where it was, and says so
/// when neither works; so a moved binary breaks no shim.
#[test]
fn a_shim_keeps_working_after_the_binary_moves() {
    let mut env = Env::new("shim-move");
    claude(&env);
    let (old, new) = (env.root.join("old"), env.root.join("new"));
    fs::create_dir_all(&old).unwrap();
    fs::create_dir_all(&new).unwrap();
    // A hard link: the same binary under a path of its own, which moves.
    fs::hard_link(BIN, old.join("ringlet")).unwrap();
    let shims = env.home.join(".local/bin");
    env.extra_path.push(shims.clone());
    let out = args(
        env.program(old.join("ringlet")),
        &["profiles", "create", "claude", "work", "-p", "anthropic", "--api-key-stdin"],
    )
    .env("RINGLET_SECRET_STORE", "file")
    .stdin(KEY)
    .output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shim = shims.join("work");
    let text = read(&shim);
    assert!(text.contains("command -v ringlet"), "{text}");

    // Not on PATH, at the recorded path: found there.
    let out = args(env.program(&shim), &["hi"]).ok();
    assert!(out.contains("ran claude") && out.contains("hi"), "{out}");
    // Moved: found on PATH.
    fs::rename(old.join("ringlet"), new.join("ringlet")).unwrap();
    env.extra_path.push(new.clone());
    let out = args(env.program(&shim), &["there"]).ok();
    assert!(out.contains("ran claude") && out.contains("there"), "{out}");
    // Neither: a clear error.
    env.extra_path.pop();
    let (_, err) = env.program(&shim).code(127);
    assert!(err.contains("ringlet is not on PATH and no longer at"), "{err}");
}

/// Creating a profile for an agent that is not installed warns, and so
/// does a shim in a dir that is not on PATH; neither stops the create.
#[test]
fn create_warns_about_a_missing_agent_and_a_shim_dir_off_path() {
    let env = Env::new("create-warns");
    let out = env
        .cmd(&["profiles", "create", "claude", "w1", "-p", "anthropic", "--api-key-stdin"])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(KEY)
        .output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: Claude Code is not installed"), "{err}");
    assert!(err.contains(".local/bin is not on your PATH"), "{err}");
    assert!(env.home.join(".local/bin/w1").exists());
    // `aliases install` says the same of a shim it writes.
    env.cmd(&["aliases", "uninstall", "w1"]).ok();
    let out = env.cmd(&["aliases", "install", "w1"]).output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(".local/bin is not on your PATH"), "{err}");
}
