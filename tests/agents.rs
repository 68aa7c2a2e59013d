//! The real agents end to end: Claude Code, Codex CLI and OpenCode from npm
//! (tests/setup.sh installs them) run through `ringlet profiles run` against
//! the mock providers of util/mock.rs. Each test checks what the agent sent
//! (key, header, model), where it kept its state (inside the profile home,
//! never in the user's HOME, the key only in the secret store), that hooks
//! really fire, that the interactive first run in a terminal (tmux) goes
//! straight to the prompt, and that no agent process outlives its test.

use std::fs;
use std::io::Read as _;
use std::ops::Deref;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::mock::{MockProvider, Seen, ToolCall};
use crate::util::tmux::{Tmux, sh_quote};
use crate::util::{
    BIN, Env, kill, mode, pid_alive, real_agents_dir, regular_files_under, wait_until,
};

/// How long one agent run may take before the test gives up (they take a
/// few seconds; a cold start on a loaded machine more).
const AGENT_LIMIT: Duration = Duration::from_secs(60);

/// The directory with the agents' binaries; fails the test (never skips it)
/// when they are not installed.
fn agents_bin() -> PathBuf {
    let bin = real_agents_dir().join("node_modules").join(".bin");
    for agent in ["claude", "codex", "opencode"] {
        assert!(
            bin.join(agent).is_file(),
            "{} is missing: the real agents are not installed; run tests/setup.sh \
             (`make test` does), or point RINGLET_TEST_AGENTS at an install",
            bin.join(agent).display()
        );
    }
    bin
}

/// An [`Env`] with the real agents on its PATH and a work directory (the
/// agents' cwd). Dropping it first kills every process of the world that is
/// still alive (an agent, its children, a tmux pane), then the `Env` stops
/// its daemon and removes the temp dir.
struct World {
    // Fields drop in order: the reaper before the Env.
    _reaper: Reaper,
    env: Env,
    work: PathBuf,
}

impl World {
    fn new(name: &str) -> World {
        let mut env = Env::new(name);
        env.extra_path.push(agents_bin());
        let work = env.root.join("work");
        fs::create_dir_all(&work).unwrap();
        World { _reaper: Reaper { root: env.root.clone(), log: env.log() }, env, work }
    }

    /// `providers.d/<id>.toml`: a provider at `endpoint` whose key the
    /// agents read from `$<env_key>`, serving only `model`.
    fn provider(&self, id: &str, kind: &str, endpoint: &str, env_key: &str, model: &str) {
        let dir = self.config.join("providers.d");
        fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "id = \"{id}\"\nname = \"Mock {id}\"\ntype = \"{kind}\"\n\n\
             [endpoints]\ndefault = \"{endpoint}\"\n\n\
             [auth]\nenv_key = \"{env_key}\"\n\n\
             [models]\navailable = [\"{model}\"]\ndefault = \"{model}\"\n"
        );
        fs::write(dir.join(format!("{id}.toml")), text).unwrap();
    }

    /// `profiles create <agent> <alias> -p <provider> --api-key-stdin --no-alias`;
    /// returns the profile as `profiles inspect --json` shows it.
    fn create(&self, agent: &str, alias: &str, provider: &str, key: &str) -> Value {
        let (out, err) = self
            .cmd(&[
                "profiles",
                "create",
                agent,
                alias,
                "-p",
                provider,
                "--api-key-stdin",
                "--no-alias",
            ])
            .stdin(key)
            .code(0);
        assert!(out.contains(&format!("Created profile {alias}")), "{out}\n{err}");
        assert!(!out.contains(key) && !err.contains(key), "the key was printed:\n{out}\n{err}");
        let profile = self.cmd(&["profiles", "inspect", alias, "--json"]).json();
        assert_eq!(profile["agent"], agent, "{profile}");
        assert_eq!(profile["provider"], provider, "{profile}");
        profile
    }

    /// `ringlet profiles run <args...>` in the work directory, stdin
    /// /dev/null, with [`AGENT_LIMIT`]; the CLI and the agent run in their own
    /// process group, which is killed if the limit passes.
    fn run(&self, args: &[&str]) -> Ran {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out_path = self.root.join(format!("run-{n}.stdout"));
        let err_path = self.root.join(format!("run-{n}.stderr"));
        let mut full = vec!["profiles", "run"];
        full.extend_from_slice(args);
        let mut tc = self.cmd(&full);
        tc.cmd
            .current_dir(&self.work)
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap())
            .process_group(0);
        let started = Instant::now();
        let mut child = tc.cmd.spawn().expect("spawning ringlet");
        // Killed if the limit passes or this thread panics; after a normal
        // exit whatever the run left behind stays, for `assert_no_strays`.
        let group = Group(child.id());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                std::mem::forget(group);
                break Some(status);
            }
            if started.elapsed() >= AGENT_LIMIT {
                drop(group);
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let took = started.elapsed();
        let ran = Ran {
            args: full.iter().map(|s| s.to_string()).collect(),
            code: status.and_then(|s| s.code()),
            timed_out: status.is_none(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            took,
        };
        assert!(!ran.timed_out, "the agent did not finish within {AGENT_LIMIT:?}\n{ran}");
        eprintln!("ringlet {}: {:?}", args.join(" "), took);
        ran
    }

    /// Top-level names in the user's HOME.
    fn home_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Asserts the user's HOME holds nothing but `profiles_dir` (for example
    /// `.claude-profiles`): no agent wrote its config, cache or state there.
    fn assert_home_only(&self, profiles_dir: &str) {
        let names = self.home_entries();
        let stray: Vec<String> = regular_files_under(&self.home)
            .into_iter()
            .map(|p| p.strip_prefix(&self.home).unwrap().display().to_string())
            .filter(|p| !p.starts_with(&format!("{profiles_dir}/")))
            .collect();
        assert_eq!(
            names,
            [profiles_dir],
            "the agent wrote into the user's HOME {} (files outside {profiles_dir}: {stray:#?})",
            self.home.display()
        );
    }

    /// Asserts that no process of this world but the daemon is alive,
    /// allowing exiting ones some seconds (more than a few: node's teardown
    /// on a loaded machine).
    fn assert_no_strays(&self, what: &str) {
        let mut left = Vec::new();
        let gone = wait_until(Duration::from_secs(15), || {
            left = strays(&self.root, &self.log());
            left.is_empty()
        });
        assert!(gone, "{what}: processes left running: {left:#?}");
    }
}

impl Deref for World {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

/// What one `profiles run` did.
struct Ran {
    args: Vec<String>,
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn assert_ok(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "the run failed\n{self}");
        self
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ringlet {}\nexit code: {:?} after {:?}{}\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.code,
            self.took,
            if self.timed_out { " (timed out, killed)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Kills a process group when dropped.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Kills every process of a world except its daemon (the `Env` stops that).
struct Reaper {
    root: PathBuf,
    log: PathBuf,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, _) in strays(&self.root, &self.log) {
            kill(pid, 9);
        }
    }
}

/// Live processes whose environment or command line mentions `root` (every
/// process a run starts gets HOME and the profile's directories from it),
/// except the world's daemon (matched like `Env::daemon_processes`): pid and
/// command line.
fn strays(root: &Path, log: &Path) -> Vec<(u32, String)> {
    let needle = format!("{}/", root.display());
    let log = log.display().to_string();
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&log) && cmdline.contains("daemon") {
            continue;
        }
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        if (environ.contains(&needle) || cmdline.contains(&needle)) && pid_alive(pid) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Files under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    regular_files_under(dir)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix))
        .collect()
}

/// Files under `dir` that contain `needle` anywhere (binary files too).
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    regular_files_under(dir)
        .into_iter()
        .filter(|p| {
            let mut bytes = Vec::new();
            fs::File::open(p).and_then(|mut f| f.read_to_end(&mut bytes)).is_ok()
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// The model calls among what a mock saw (Claude Code also sends `HEAD /`,
/// Codex may probe with GETs).
fn model_calls(seen: &[Seen], suffix: &str) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.method == "POST" && s.path.split('?').next().unwrap().ends_with(suffix))
        .cloned()
        .collect()
}

/// A compact list of the requests, for assertion messages.
fn summary(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| {
            format!(
                "{} {} auth={:?} x-api-key={:?} model={:?} user={:?}\n",
                s.method, s.path, s.authorization, s.x_api_key, s.model, s.last_user_text
            )
        })
        .collect()
}

/// Waits until the mock has seen a model call whose prompt is `prompt`.
fn wait_for_prompt(mock: &MockProvider, suffix: &str, prompt: &str) -> Vec<Seen> {
    let mut seen = Vec::new();
    wait_until(AGENT_LIMIT, || {
        seen = mock.requests();
        model_calls(&seen, suffix).iter().any(|s| s.last_user_text.as_deref() == Some(prompt))
    });
    seen
}

// ---------------------------------------------------------------------------
// Claude Code
// ---------------------------------------------------------------------------

#[test]
fn claude_print_mode_runs_against_the_provider_and_stays_in_its_profile() {
    let reply = "pong from the claude mock";
    let key = "sk-e2e-claude-bearer-0123456789abcdefghij";
    let mock = MockProvider::anthropic(reply);
    let w = World::new("claude-p");
    w.provider("mock", "anthropic-compatible", &mock.url(), "MOCK_KEY", "mock-model-1");
    let profile = w.create("claude", "p1", "mock", key);
    let home = w.home.join(".claude-profiles/p1");
    assert_eq!(profile["home"], home.display().to_string(), "{profile}");
    assert_eq!(profile["model"], "mock-model-1", "{profile}");

    // No keychain in the test world: the key went to the 0600 file store.
    let stored = fs::read_to_string(w.config.join("secrets/p1")).unwrap();
    assert_eq!(stored, key);

    let ran = w.run(&["p1", "--", "-p", "say pong"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "the mock's reply is not on stdout\n{ran}");

    let seen = mock.requests();
    let calls = model_calls(&seen, "/v1/messages");
    assert!(
        calls.iter().any(|s| s.last_user_text.as_deref() == Some("say pong")),
        "no model call carried the prompt:\n{}",
        summary(&seen)
    );
    for call in &calls {
        // anthropic-compatible: ANTHROPIC_AUTH_TOKEN, so a Bearer token and no x-api-key.
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {stored}").as_str()));
        assert_eq!(call.x_api_key, None, "{}", summary(&seen));
        // Background requests too ask for the profile's model, not Anthropic's small one.
        assert_eq!(call.model.as_deref(), Some("mock-model-1"), "{}", summary(&seen));
    }

    // The transcript is in the profile's CLAUDE_CONFIG_DIR.
    let transcripts = files_ending(&home.join(".claude/projects"), ".jsonl");
    assert!(
        transcripts.iter().any(|t| fs::read_to_string(t).unwrap().contains(reply)),
        "no transcript with the reply under {}/.claude/projects: {transcripts:?}",
        home.display()
    );
    // Onboarding and settings were rendered into the profile, not HOME.
    let state: Value =
        serde_json::from_str(&fs::read_to_string(home.join(".claude/.claude.json")).unwrap())
            .unwrap();
    assert_eq!(state["hasCompletedOnboarding"], true, "{state}");
    assert!(!w.home.join(".claude").exists() && !w.home.join(".claude.json").exists());
    w.assert_home_only(".claude-profiles");
    w.assert_no_strays("after claude -p");
}

#[test]
fn claude_runs_the_stop_and_post_tool_use_hooks_added_with_ringlet() {
    let w = World::new("claude-hooks");
    let file = w.work.join("hello.txt");
    fs::write(&file, "hello file\n").unwrap();
    let reply = "done reading, pong";
    let tool = ToolCall { name: "Read".into(), input: json!({"file_path": file}) };
    let mock = MockProvider::anthropic_with_tool(reply, tool);
    w.provider("mock", "anthropic-compatible", &mock.url(), "MOCK_KEY", "mock-model-1");
    w.create("claude", "hooked", "mock", "sk-e2e-claude-hooks-0123456789abcdefghij");

    let stop = w.root.join("stop.json");
    let post = w.root.join("posttool.json");
    w.cmd(&["hooks", "add", "hooked", "Stop", &format!("cat > {}", stop.display())]).ok();
    w.cmd(&[
        "hooks",
        "add",
        "hooked",
        "PostToolUse",
        &format!("cat > {}", post.display()),
        "--matcher",
        "Read",
    ])
    .ok();
    let listed = w.cmd(&["hooks", "list", "hooked"]).ok();
    assert!(listed.contains("Stop") && listed.contains("PostToolUse"), "{listed}");

    let ran = w.run(&["hooked", "--", "-p", "read hello.txt"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "{ran}");
    // The tool really ran: its result went back to the model.
    let seen = mock.requests();
    assert!(
        model_calls(&seen, "/v1/messages").iter().any(|s| {
            let body = s.body.to_string();
            body.contains("tool_result") && body.contains("hello file")
        }),
        "the Read result never reached the model:\n{}",
        summary(&seen)
    );

    assert!(
        wait_until(Duration::from_secs(5), || stop.is_file() && post.is_file()),
        "hooks did not fire: Stop {} PostToolUse {}\nsettings.json:\n{}\n{ran}",
        stop.is_file(),
        post.is_file(),
        fs::read_to_string(w.home.join(".claude-profiles/hooked/.claude/settings.json"))
            .unwrap_or_default()
    );
    let payload = |path: &Path| -> Value {
        let mut v = Value::Null;
        // The hook may still be writing; the payload is one JSON document.
        wait_until(Duration::from_secs(5), || {
            v = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap_or(Value::Null);
            !v.is_null()
        });
        v
    };
    let post = payload(&post);
    assert_eq!(post["hook_event_name"], "PostToolUse", "{post}");
    assert_eq!(post["tool_name"], "Read", "{post}");
    assert_eq!(post["tool_input"]["file_path"], file.display().to_string(), "{post}");
    let stop = payload(&stop);
    assert_eq!(stop["hook_event_name"], "Stop", "{stop}");
    assert_eq!(stop["last_assistant_message"], reply, "{stop}");
    // The transcript the hooks were told about is the profile's.
    let transcript = stop["transcript_path"].as_str().unwrap_or_default();
    assert!(
        transcript.starts_with(
            &w.home.join(".claude-profiles/hooked/.claude/projects/").display().to_string()
        ),
        "{stop}"
    );
    w.assert_home_only(".claude-profiles");
    w.assert_no_strays("after the hooked run");
}

/// The tmux pane the tests run Claude Code in.
const PANE: &str = "S";

impl Tmux {
    /// Polls pane [`PANE`] until `done` holds, checking every screen with
    /// `check`; panics with the last screen after [`AGENT_LIMIT`].
    fn wait_checked(
        &self,
        what: &str,
        check: impl Fn(&str),
        done: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let screen = self.text(PANE);
            check(&screen);
            if done(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < AGENT_LIMIT,
                "waited {AGENT_LIMIT:?} for {what}; the screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A key the tests press in Claude Code's dialogs.
#[derive(Clone, Copy, Debug)]
enum Key {
    Down,
    Enter,
}

/// A terminal with Claude Code in it: a tmux pane or a remote session.
trait Screen {
    /// The screen as text, one line per row.
    fn screen(&mut self) -> String;
    fn press(&mut self, key: Key);
}

impl Screen for Tmux {
    fn screen(&mut self) -> String {
        self.text(PANE)
    }
    fn press(&mut self, key: Key) {
        self.keys(
            PANE,
            &[match key {
                Key::Down => "Down",
                Key::Enter => "Enter",
            }],
        );
    }
}

/// The line of Claude Code's selection list the cursor (`❯`) is on.
fn selected(screen: &str) -> Option<&str> {
    screen.lines().map(str::trim_start).find(|l| l.starts_with('❯'))
}

/// Answers Claude Code's folder-trust dialog with "Yes" on purpose. Since
/// 2.1.332 the dialog selects `❯ No, exit` first and drops keys for a moment
/// after it appears (an Enter 0.5 s after it showed was lost; a later one
/// chose "No" and Claude exited), so a blind Enter is a coin toss. This waits
/// for the dialog, lets it settle, moves the selection down until the screen
/// shows it on "Yes", and confirms only then; a key the dialog dropped (the
/// screen did not change) is pressed again. Returns the screen after the
/// dialog closed; `check` sees every screen on the way.
fn trust_this_folder(term: &mut impl Screen, check: impl Fn(&str)) -> String {
    const YES: &str = "Yes, I trust this folder";
    let started = Instant::now();
    let deadline = started + AGENT_LIMIT;
    let mut screen = term.screen();
    while !screen.contains(YES) {
        check(&screen);
        assert!(Instant::now() < deadline, "no folder-trust question; the screen:\n{screen}");
        thread::sleep(Duration::from_millis(100));
        screen = term.screen();
    }
    eprintln!("claude: the folder-trust question after {:?}", started.elapsed());
    // The dialog ignores keys at first: give it a moment before the first one.
    thread::sleep(Duration::from_millis(1500));
    loop {
        screen = term.screen();
        check(&screen);
        assert!(
            !screen.contains("isn't trusted"),
            "Claude Code took the answer as No; the screen:\n{screen}"
        );
        if !screen.contains(YES) {
            return screen;
        }
        assert!(Instant::now() < deadline, "the trust dialog did not close; the screen:\n{screen}");
        let key = match selected(&screen) {
            Some(line) if line.contains(YES) => Key::Enter,
            _ => Key::Down,
        };
        term.press(key);
        // Until the screen shows the key's effect; a dropped key shows
        // nothing within a few seconds and is pressed again. The screen must
        // then hold still, so a slow key is never taken for a dropped one
        // before the next decision.
        let pressed = Instant::now();
        let mut last = term.screen();
        while last == screen && pressed.elapsed() < Duration::from_secs(3) {
            thread::sleep(Duration::from_millis(100));
            last = term.screen();
        }
        loop {
            thread::sleep(Duration::from_millis(300));
            let now = term.screen();
            // (An animation never holds still: the outer deadline ends it.)
            if now == last || Instant::now() >= deadline {
                break;
            }
            last = now;
        }
    }
}

#[test]
fn claude_interactive_first_run_in_a_terminal_asks_only_about_trust() {
    let reply = "pong from the tmux mock";
    // Type "anthropic": ANTHROPIC_API_KEY, which Claude Code would ask about
    // unless the profile pre-approved it.
    let key = "sk-ant-api03-e2e-tmux-0123456789abcdefghijKLMN";
    let mock = MockProvider::anthropic(reply);
    let w = World::new("claude-tmux");
    w.provider("mockapi", "anthropic", &mock.url(), "MOCK_ANTHROPIC_API_KEY", "mock-model-1");
    w.create("claude", "tty", "mockapi", key);
    let home = w.home.join(".claude-profiles/tty");

    let env = [
        ("PATH", w.path_var().into_string().unwrap()),
        ("TERM", "xterm-256color".to_string()),
        ("HOME", w.home.display().to_string()),
        ("RINGLET_CONFIG_DIR", w.config.display().to_string()),
        ("XDG_RUNTIME_DIR", w.run.display().to_string()),
    ];
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", sh_quote(v))).collect();
    let shell = format!(
        "env -i {} {} profiles run tty; echo RINGLET-EXITED rc=$?; sleep 600",
        env.join(" "),
        sh_quote(BIN)
    );
    // tmux's defaults: a status line, so the pane is 120x39.
    let mut tmux = Tmux::new(&w.root, "e2e", "");
    let started = Instant::now();
    tmux.window_in(PANE, (120, 40), Some(&w.work), &shell);

    let unwanted = |screen: &str| {
        for bad in [
            "Choose the text style",
            "Not logged in",
            "/login",
            "Detected a custom API key",
            "Unable to connect",
            "Make auto mode your default",
            "RINGLET-EXITED",
        ] {
            assert!(!screen.contains(bad), "unexpected `{bad}` on the screen:\n{screen}");
        }
    };
    // The folder-trust question stays: it is the user's decision.
    trust_this_folder(&mut tmux, unwanted);
    // The prompt, whatever the footer says.
    let prompt_ready = |s: &str| !s.contains("trust this folder") && s.contains('❯');
    tmux.wait_checked("the prompt", unwanted, prompt_ready);
    // The profile's permission mode (ask: Claude Code's "default", shown as
    // manual mode), not the auto mode 2.1.332 gives an API key by itself.
    let screen = tmux.wait_checked("the pinned mode", unwanted, |s| {
        s.contains("manual mode on") || s.contains("auto mode on")
    });
    assert!(screen.contains("manual mode on"), "not the pinned mode:\n{screen}");
    // Nothing else pops up after the prompt appeared (the key question came
    // after the trust question when it did).
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(1500) {
        unwanted(&tmux.text(PANE));
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!("claude tmux: prompt after {:?}", started.elapsed());

    tmux.keys(PANE, &["-l", "say pong"]);
    tmux.wait_checked("the typed prompt", unwanted, |s| s.contains("say pong"));
    tmux.keys(PANE, &["Enter"]);
    tmux.wait_checked("the mock's reply", unwanted, |s| s.contains(reply));
    eprintln!("claude tmux: reply after {:?}", started.elapsed());
    let seen = wait_for_prompt(&mock, "/v1/messages", "say pong");
    let calls = model_calls(&seen, "/v1/messages");
    assert!(!calls.is_empty(), "{}", summary(&seen));
    for call in &calls {
        // anthropic: ANTHROPIC_API_KEY, so x-api-key.
        assert_eq!(call.x_api_key.as_deref(), Some(key), "{}", summary(&seen));
    }
    assert!(calls.iter().any(|s| s.model.as_deref() == Some("mock-model-1")), "{}", summary(&seen));

    // The stray detector sees the running agent (so its empty answer
    // after the session means something).
    let running = strays(&w.root, &w.log());
    assert!(
        running.iter().any(|(_, cmd)| cmd.contains("claude")),
        "claude is running but not found among {running:#?}"
    );

    // Claude Code exits on a second Ctrl-C within 800 ms of the first as it
    // reads them; two presses 300 ms apart could drift past that on a loaded
    // machine, so both go in one send-keys (it reads them as two presses).
    tmux.keys(PANE, &["C-c", "C-c"]);
    let screen = tmux.wait_checked("claude to exit", |_| {}, |s| s.contains("RINGLET-EXITED rc="));
    assert!(screen.contains("RINGLET-EXITED rc=0"), "{screen}");
    eprintln!("claude tmux: exited after {:?}", started.elapsed());

    // The answer to the trust question was kept next to what ringlet writes;
    // the approval holds the key's last 20 characters, so the file is 0600.
    let state_path = home.join(".claude/.claude.json");
    let state: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    let work = w.work.display().to_string();
    assert_eq!(state["projects"][&work]["hasTrustDialogAccepted"], true, "{state}");
    assert_eq!(state["customApiKeyResponses"]["approved"], json!([&key[key.len() - 20..]]));
    assert_eq!(mode(&state_path) & 0o777, 0o600);
    // Interactive mode registers a deep-link handler in HOME unless told not to.
    w.assert_home_only(".claude-profiles");
    drop(tmux);
    w.assert_no_strays("after the tmux session");

    // A second run renders the files again and keeps the trust answer.
    let ran = w.run(&["tty", "--", "-p", "say pong"]);
    ran.assert_ok();
    let state: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["projects"][&work]["hasTrustDialogAccepted"], true, "{state}");
    assert_eq!(state["hasCompletedOnboarding"], true, "{state}");
}

#[test]
fn two_claude_profiles_keep_their_keys_and_transcripts_apart() {
    let keys = ["sk-e2e-alpha-9f3Kq2Lm7Xw4Zt8Rb1Vc6Nd0", "sk-e2e-bravo-4Hj8Pw2Qe6Ty1Ui5Oa9Sd3Fg7"];
    let replies = ["pong from alpha", "pong from bravo"];
    let mocks = [MockProvider::anthropic(replies[0]), MockProvider::anthropic(replies[1])];
    let w = World::new("claude-two");
    let aliases = ["alpha", "bravo"];
    for i in 0..2 {
        let provider = format!("mock{i}");
        w.provider(&provider, "anthropic-compatible", &mocks[i].url(), "MOCK_KEY", "mock-model-1");
        w.create("claude", aliases[i], &provider, keys[i]);
    }
    for i in 0..2 {
        let ran = w.run(&[aliases[i], "--", "-p", "say pong"]);
        ran.assert_ok();
        assert!(ran.stdout.contains(replies[i]), "{ran}");
    }
    for i in 0..2 {
        let seen = mocks[i].requests();
        let calls = model_calls(&seen, "/v1/messages");
        assert!(!calls.is_empty(), "mock {i} saw no model call:\n{}", summary(&seen));
        for s in &seen {
            let headers = format!("{:?}", s.headers);
            assert!(!headers.contains(keys[1 - i]), "mock {i} saw the other key: {headers}");
        }
        for call in &calls {
            let bearer = format!("Bearer {}", keys[i]);
            assert_eq!(call.authorization.as_deref(), Some(bearer.as_str()));
        }
    }
    let homes = aliases.map(|a| w.home.join(".claude-profiles").join(a));
    for i in 0..2 {
        let transcripts = files_ending(&homes[i].join(".claude/projects"), ".jsonl");
        let text: String = transcripts.iter().map(|t| fs::read_to_string(t).unwrap()).collect();
        assert!(text.contains(replies[i]), "{}: {transcripts:?}", aliases[i]);
        assert!(
            !text.contains(replies[1 - i]),
            "{} has the other profile's transcript",
            aliases[i]
        );
    }
    // Each key only in its file in the secret store: not in a profile home
    // (settings, .claude.json, transcripts, telemetry), not in profiles/*.json,
    // not in the daemon log.
    assert!(w.log().is_file(), "no daemon log at {}", w.log().display());
    for i in 0..2 {
        let secret = w.config.join("secrets").join(aliases[i]);
        assert_eq!(fs::read_to_string(&secret).unwrap(), keys[i]);
        assert_eq!(mode(&secret) & 0o777, 0o600);
        let mut holders = files_containing(&w.home, keys[i]);
        holders.extend(files_containing(&w.config, keys[i]));
        assert_eq!(holders, [secret], "where key {i} is stored");
        // Not even the tail (the approval list's form) for these Bearer profiles.
        let tail = &keys[i][keys[i].len() - 20..];
        assert!(files_containing(&w.home, tail).is_empty(), "key {i}'s last 20 characters");
    }
    w.assert_home_only(".claude-profiles");
    w.assert_no_strays("after two claude runs");
}

// ---------------------------------------------------------------------------
// Codex CLI
// ---------------------------------------------------------------------------

#[test]
fn codex_exec_runs_against_a_responses_provider_inside_its_profile() {
    let reply = "pong from the codex mock";
    let key = "sk-e2e-codex-0123456789abcdefghijklmn";
    let mock = MockProvider::openai_responses(reply);
    let w = World::new("codex");
    let endpoint = format!("{}/v1", mock.url());
    w.provider("mockoai", "openai-compatible", &endpoint, "MOCK_OPENAI_KEY", "mock-codex-1");
    let profile = w.create("codex", "c", "mockoai", key);
    let home = w.home.join(".codex-profiles/c");
    assert_eq!(profile["home"], home.display().to_string(), "{profile}");

    let ran = w.run(&["c", "--", "exec", "--skip-git-repo-check", "say pong"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "{ran}");

    let seen = mock.requests();
    let calls = model_calls(&seen, "/v1/responses");
    assert!(
        calls.iter().any(|s| s.last_user_text.as_deref() == Some("say pong")),
        "no Responses call with the prompt:\n{}",
        summary(&seen)
    );
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {key}").as_str()));
        assert_eq!(call.model.as_deref(), Some("mock-codex-1"), "{}", summary(&seen));
    }
    let rollouts = files_ending(&home.join(".codex/sessions"), ".jsonl");
    assert!(
        rollouts.iter().any(|r| fs::read_to_string(r).unwrap().contains(reply)),
        "no rollout with the reply under {}/.codex/sessions: {rollouts:?}",
        home.display()
    );
    assert!(!home.join(".codex/packages").exists(), "Codex installed its app-server daemon");
    w.assert_home_only(".codex-profiles");
    w.assert_no_strays("after codex exec (a `codex app-server` would show here)");
    let app_servers: Vec<(u32, String)> = strays(&w.root, &w.log())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("app-server"))
        .collect();
    assert!(app_servers.is_empty(), "{app_servers:?}");

    // The rollout Codex really wrote is counted: the mock's usage, with the
    // cached tokens moved out of input (OpenAI's cached is a subset).
    let (input, cached, output, reasoning) = crate::util::mock::OPENAI_USAGE;
    let r = w.cmd(&["--json", "usage", "--profile", "c"]).json();
    let n = r["totals"]["messages"].as_u64().unwrap();
    assert!(n >= 1, "{r}");
    assert_eq!(r["totals"]["input_tokens"], n * (input - cached), "{r}");
    assert_eq!(r["totals"]["cache_read_tokens"], n * cached, "{r}");
    assert_eq!(r["totals"]["output_tokens"], n * output, "{r}");
    assert_eq!(r["totals"]["reasoning_tokens"], n * reasoning, "{r}");
}

// ---------------------------------------------------------------------------
// OpenCode
// ---------------------------------------------------------------------------

#[test]
fn opencode_run_uses_the_provider_and_keeps_everything_in_its_profile() {
    let reply = "pong from the opencode mock";
    let key = "sk-e2e-opencode-0123456789abcdefghij";
    let mock = MockProvider::anthropic(reply);
    let w = World::new("opencode");
    w.provider("mockant", "anthropic-compatible", &mock.url(), "MOCK_KEY", "mock-model-1");
    let profile = w.create("opencode", "o", "mockant", key);
    let home = w.home.join(".opencode-profiles/o");
    assert_eq!(profile["home"], home.display().to_string(), "{profile}");

    // Separate words: one argument with a space reaches the model quoted.
    let ran = w.run(&["o", "--", "run", "say", "pong"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "{ran}");

    let seen = mock.requests();
    let calls = model_calls(&seen, "/v1/messages");
    assert!(
        calls.iter().any(|s| s.last_user_text.as_deref() == Some("say pong")),
        "no model call with the prompt:\n{}",
        summary(&seen)
    );
    for call in &calls {
        assert_eq!(call.x_api_key.as_deref(), Some(key), "{}", summary(&seen));
        assert_eq!(call.model.as_deref(), Some("mock-model-1"), "{}", summary(&seen));
    }
    let db = home.join(".local/share/opencode/opencode.db");
    assert!(db.is_file(), "no session database at {}", db.display());
    assert!(
        !files_containing(&home.join(".local/share/opencode"), reply).is_empty(),
        "the session with the reply is not in the profile's database"
    );
    // Bun unpacks a native library into TMPDIR on every run: the profile's.
    let libs = files_ending(&home.join("tmp"), ".so");
    assert!(!libs.is_empty(), "no Bun .so in the profile's TMPDIR {}/tmp", home.display());
    w.assert_home_only(".opencode-profiles");
    w.assert_no_strays("after opencode run");

    // The message OpenCode really stored in its SQLite database is counted;
    // the mock model has no price and OpenCode's own cost is 0: unpriced.
    let (input, output) = crate::util::mock::ANTHROPIC_USAGE;
    let r = w.cmd(&["--json", "usage", "--profile", "o"]).json();
    let n = r["totals"]["messages"].as_u64().unwrap();
    assert!(n >= 1, "{r}");
    assert_eq!(r["totals"]["input_tokens"], n * input, "{r}");
    assert_eq!(r["totals"]["output_tokens"], n * output, "{r}");
    assert_eq!(r["unpriced_models"], json!(["mock-model-1"]), "{r}");
    assert_eq!(r["totals"]["unpriced_tokens"], n * (input + output), "{r}");
}

/// Issue 4's end-to-end proof: a real Claude Code run through a profile
/// shows up in `ringlet usage` with exactly the mock's token counts and the
/// price of the model it used, and the daemon announces it.
#[test]
fn a_real_claude_run_is_counted_priced_and_announced() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;

    let mock = MockProvider::anthropic("pong for the usage test");
    let w = World::new("claude-usage");
    // A real model name, so the run has a price (the mock echoes the model).
    w.provider("mock", "anthropic-compatible", &mock.url(), "MOCK_KEY", "claude-sonnet-4-5");
    w.create("claude", "u1", "mock", "sk-e2e-usage-0123456789abcdefghijklmn");

    let mut events = {
        let mut stream = UnixStream::connect(w.socket()).unwrap();
        stream
            .write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"UsageUpdated\"]}}\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut ack = String::new();
        reader.read_line(&mut ack).unwrap();
        reader
    };
    w.run(&["u1", "--", "-p", "say pong"]).assert_ok();

    let event = crate::util::read_line_matching(&mut events, Duration::from_secs(10), |l| {
        l.contains("UsageUpdated") && l.contains("\"u1\"")
    })
    .expect("a UsageUpdated event for the run");
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["data"]["model"], "claude-sonnet-4-5", "{event}");
    assert_eq!(event["data"]["input_tokens"], 123, "{event}");

    let r = w.cmd(&["--json", "usage", "--profile", "u1"]).json();
    let n = r["totals"]["messages"].as_u64().unwrap();
    assert!(n >= 1, "{r}");
    let (input, output) = crate::util::mock::ANTHROPIC_USAGE;
    assert_eq!(r["totals"]["input_tokens"], n * input, "{r}");
    assert_eq!(r["totals"]["output_tokens"], n * output, "{r}");
    assert_eq!(r["totals"]["cache_read_tokens"], 0, "{r}");
    assert_eq!(r["unpriced_models"], json!([]), "{r}");
    let table: Value = serde_json::from_str(include_str!("../manifests/pricing.json")).unwrap();
    let price = &table["claude-sonnet-4-5"];
    let expected = n as f64
        * (input as f64 * price["input_cost_per_token"].as_f64().unwrap()
            + output as f64 * price["output_cost_per_token"].as_f64().unwrap());
    let cost = r["totals"]["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-12, "cost {cost} != {expected}: {r}");
    // The run itself is a session with a runtime.
    assert_eq!(r["totals"]["runs"], 1, "{r}");
    // Nothing of it is counted for anyone else.
    let all = w.cmd(&["--json", "usage"]).json();
    assert_eq!(all["totals"]["messages"], n, "{all}");
}

/// A remote session's terminal as the web UI's emulator shows it.
struct Remote(crate::terminal::Term);

impl Screen for Remote {
    fn screen(&mut self) -> String {
        // What arrives within a moment, then the emulator's screen of it all.
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            self.0.pump();
        }
        // 2.1.332 puts a no-break space after the prompt's `❯`.
        crate::util::xterm::screen_lines(&self.0.seen, 120, 40).join("\n").replace('\u{a0}', " ")
    }
    fn press(&mut self, key: Key) {
        self.0.type_in(match key {
            Key::Down => "\x1b[B",
            Key::Enter => "\r",
        });
    }
}

/// Issue 5's proof with a real agent: Claude Code in a remote session,
/// sandboxed by the real bwrap, driven over `/ws/terminal/{id}` like the
/// web UI drives it: it asks the folder-trust question, reaches its prompt,
/// and answers a typed prompt with the mock's reply, reached over loopback
/// from inside the sandbox. Killing the session leaves nothing behind.
#[test]
fn claude_in_a_sandboxed_remote_session_reaches_its_prompt_and_the_mock() {
    use crate::terminal::Term;
    use crate::util::http::{post_session, request};

    let reply = "pong from the remote mock";
    let key = "sk-ant-api03-e2e-remote-0123456789abcdefghijKLMN";
    let mock = MockProvider::anthropic(reply);
    let w = World::new("claude-remote");
    w.provider("mockapi", "anthropic", &mock.url(), "MOCK_ANTHROPIC_API_KEY", "mock-model-1");
    w.create("claude", "rem", "mockapi", key);
    let (addr, token) = w.http();
    let auth = format!("Bearer {token}");
    let body = json!({"profile": "rem", "cols": 120, "rows": 40,
                      "working_dir": w.work, "path": w.path_var().to_str().unwrap()});
    let answer = post_session(addr, &token, &body);
    let info: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer.status, 201, "{info}");
    assert_eq!(info["data"]["sandbox"], "bwrap", "{info}");
    let id = info["data"]["id"].as_str().unwrap().to_string();

    let started = Instant::now();
    let mut remote = Remote(Term::open(addr, &token, &id));
    let unwanted = |screen: &str| {
        for bad in [
            "Not logged in",
            "/login",
            "Detected a custom API key",
            "Unable to connect",
            "Make auto mode your default",
        ] {
            assert!(!screen.contains(bad), "unexpected `{bad}` on the screen:\n{screen}");
        }
    };
    // Waits until the screen shows what `done` looks for.
    let wait = |remote: &mut Remote, what: &str, done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + AGENT_LIMIT;
        loop {
            let screen = remote.screen();
            unwanted(&screen);
            if done(&screen) {
                eprintln!("claude remote: {what} after {:?}", started.elapsed());
                return;
            }
            assert!(Instant::now() < deadline, "no {what}; the screen:\n{screen}");
        }
    };
    trust_this_folder(&mut remote, unwanted);
    // The prompt, whatever the footer says (auto or manual mode).
    wait(&mut remote, "the prompt", &|s| {
        !s.contains("trust this folder") && s.lines().any(|l| l.starts_with('❯'))
    });
    thread::sleep(Duration::from_millis(500));
    remote.0.type_in("say pong");
    wait(&mut remote, "the typed prompt", &|s| s.contains("❯ say pong"));
    remote.0.type_in("\r");
    wait(&mut remote, "the mock's reply", &|s| s.contains(reply));
    let mut term = remote.0;
    // The web UI's emulator draws the same stream as Claude laid it out: the
    // prompt and the reply on lines of their own, no escape left as text.
    let screen: Vec<String> = crate::util::xterm::screen_lines(&term.seen, 120, 40)
        .into_iter()
        .map(|l| l.replace('\u{a0}', " "))
        .collect();
    assert!(screen.iter().any(|l| l == "❯ say pong"), "{screen:#?}");
    assert!(screen.iter().any(|l| *l == format!("● {reply}")), "{screen:#?}");
    assert!(screen.iter().all(|l| !l.contains('\x1b') && !l.contains("[?")), "{screen:#?}");

    let seen = wait_for_prompt(&mock, "/v1/messages", "say pong");
    let calls = model_calls(&seen, "/v1/messages");
    assert!(!calls.is_empty(), "{}", summary(&seen));
    for call in &calls {
        assert_eq!(call.x_api_key.as_deref(), Some(key), "{}", summary(&seen));
    }
    // Kill over the API: the sandbox and everything in it is gone.
    let answer = request(
        addr,
        "DELETE",
        &format!("/api/terminal/sessions/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let ended = term.text("state_changed");
    assert_eq!(ended["state"], "exited", "{ended}");
    drop(term);
    w.assert_no_strays("after the remote session was killed");
    // The trust answer was kept in the profile, as in a local run.
    let state_path = w.home.join(".claude-profiles/rem/.claude/.claude.json");
    let state: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    let work = w.work.display().to_string();
    assert_eq!(state["projects"][&work]["hasTrustDialogAccepted"], true, "{state}");
}

// ---------------------------------------------------------------------------
// Through the routing proxy (issue 12)
// ---------------------------------------------------------------------------

/// A loopback port nothing listens on: bound, then released.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Real Claude Code through a proxied profile: the first rule's target is a
/// dead port, so the proxy falls back to the second rule's provider before
/// any byte reached Claude; `--model fast` reaches the alias's target; the
/// agent holds only the local token, and each upstream sees its own key.
#[test]
fn claude_through_its_proxy_falls_back_to_a_second_provider_and_follows_an_alias() {
    let reply = "pong through the proxy";
    let profile_key = "sk-e2e-proxy-profile-0123456789abcdef";
    let mock_key = "sk-e2e-proxy-mock-provider-0123456789";
    let mock = MockProvider::anthropic(reply);
    let w = World::new("claude-proxy");
    let dead = format!("http://127.0.0.1:{}", dead_port());
    w.provider("gone", "anthropic-compatible", &dead, "GONE_KEY", "gone-model");
    w.provider("mock", "anthropic-compatible", &mock.url(), "MOCK_KEY", "mock-model-1");
    let (out, err) = w
        .cmd(&["profiles", "create", "claude", "px", "-p", "gone", "--proxy", "--api-key-stdin"])
        .stdin(profile_key)
        .code(0);
    assert!(out.contains("Created profile px"), "{out}\n{err}");
    w.cmd(&["providers", "key", "set", "mock", "--api-key-stdin"]).stdin(mock_key).ok();
    w.cmd(&[
        "proxy",
        "route",
        "add",
        "px",
        "first",
        "always",
        "gone/gone-model",
        "--priority",
        "10",
    ])
    .ok();
    w.cmd(&["proxy", "route", "add", "px", "second", "always", "mock/mock-model-1"]).ok();
    w.cmd(&["proxy", "alias", "set", "px", "fast", "mock/mock-fast"]).ok();

    let env = w.cmd(&["profiles", "env", "px"]).ok();
    assert!(!env.contains(profile_key) && !env.contains(mock_key), "an upstream key: {env}");
    assert!(env.contains("ANTHROPIC_BASE_URL") && env.contains("127.0.0.1:"), "{env}");
    let home = w.home.join(".claude-profiles/px");
    for file in regular_files_under(&home) {
        let text = fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains(profile_key) && !text.contains(mock_key), "{}", file.display());
    }

    let ran = w.run(&["px", "--", "-p", "say pong"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "the mock's reply is not on stdout\n{ran}");
    let seen = mock.requests();
    let calls = model_calls(&seen, "/v1/messages");
    assert!(
        calls.iter().any(|s| s.last_user_text.as_deref() == Some("say pong")),
        "{}",
        summary(&seen)
    );
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {mock_key}").as_str()));
        assert_eq!(call.x_api_key, None, "{}", summary(&seen));
        assert_eq!(call.model.as_deref(), Some("mock-model-1"), "{}", summary(&seen));
    }

    let ran = w.run(&["px", "--", "-p", "say fast", "--model", "fast"]);
    ran.assert_ok();
    let seen = wait_for_prompt(&mock, "/v1/messages", "say fast");
    assert!(
        model_calls(&seen, "/v1/messages").iter().any(|s| {
            s.last_user_text.as_deref() == Some("say fast")
                && s.model.as_deref() == Some("mock-fast")
        }),
        "the alias did not reach its target:\n{}",
        summary(&seen)
    );

    // The request log shows the fallback: the dead target tried, the mock answering.
    let logs = w.cmd(&["--json", "proxy", "logs", "px", "--lines", "100"]).ok();
    assert!(logs.contains("gone/gone-model") && logs.contains("mock/mock-model-1"), "{logs}");
    // The proxy is the daemon's child and outlives the run; stopped, nothing is left.
    w.cmd(&["proxy", "stop-all"]).ok();
    w.assert_no_strays("after claude through the proxy");
}

/// Real Codex through a proxied profile against the mock Responses server:
/// the proxy relays `/v1/responses` to the provider's `/v1` with the
/// profile's own key; Codex only ever had the local token.
#[test]
fn codex_through_its_proxy_reaches_the_responses_provider() {
    let reply = "pong from codex through the proxy";
    let key = "sk-e2e-codex-proxy-0123456789abcdefghij";
    let mock = MockProvider::openai_responses(reply);
    let w = World::new("codex-proxy");
    let endpoint = format!("{}/v1", mock.url());
    w.provider("mockoai", "openai-compatible", &endpoint, "MOCK_OPENAI_KEY", "mock-codex-1");
    w.cmd(&["profiles", "create", "codex", "cx", "-p", "mockoai", "--proxy", "--api-key-stdin"])
        .stdin(key)
        .ok();
    let env = w.cmd(&["profiles", "env", "cx"]).ok();
    assert!(!env.contains(key), "{env}");

    let ran = w.run(&["cx", "--", "exec", "--skip-git-repo-check", "say pong"]);
    ran.assert_ok();
    assert!(ran.stdout.contains(reply), "{ran}");
    let seen = mock.requests();
    let calls = model_calls(&seen, "/v1/responses");
    assert!(
        calls.iter().any(|s| s.last_user_text.as_deref() == Some("say pong")),
        "{}",
        summary(&seen)
    );
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {key}").as_str()));
        assert_eq!(call.model.as_deref(), Some("mock-codex-1"), "{}", summary(&seen));
    }
    let home = w.home.join(".codex-profiles/cx");
    for file in regular_files_under(&home) {
        let text = fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&text).contains(key), "{}", file.display());
    }
    // The request log has the Responses call with the mock's usage.
    let (input, cached, output, _) = crate::util::mock::OPENAI_USAGE;
    let logs = w.cmd(&["--json", "proxy", "logs", "cx", "--lines", "100"]).ok();
    let records: Vec<Value> = logs
        .lines()
        .flat_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| match v {
            Value::Array(items) => items,
            Value::Object(ref o) if o.contains_key("lines") => {
                o["lines"].as_array().cloned().unwrap_or_default()
            }
            other => vec![other],
        })
        .map(|v| match v {
            Value::String(line) => serde_json::from_str(&line).unwrap_or(Value::Null),
            other => other,
        })
        .collect();
    assert!(
        records.iter().any(|r| r["path"] == "/v1/responses"
            && r["status"] == 200
            && r["tokens"]["input"] == input - cached
            && r["tokens"]["cache_read"] == cached
            && r["tokens"]["output"] == output),
        "no logged Responses call with the mock's usage:\n{logs}"
    );
    w.cmd(&["proxy", "stop-all"]).ok();
    w.assert_no_strays("after codex through the proxy");
}

/// A daily budget the first run overspends stops the second real Claude
/// Code run at the proxy: Claude prints the budget message, does not retry
/// (402 is not retried by Claude Code, unlike 429 and 5xx), and no request
/// reaches the provider.
#[test]
fn a_budget_stops_a_real_claude_run_with_the_budget_message() {
    let mock = MockProvider::anthropic("pong under budget");
    let w = World::new("claude-budget");
    // A real model name, so each request has a price.
    w.provider("mock", "anthropic-compatible", &mock.url(), "MOCK_KEY", "claude-sonnet-4-5");
    w.cmd(&["profiles", "create", "claude", "bx", "-p", "mock", "--proxy", "--api-key-stdin"])
        .stdin("sk-e2e-budget-0123456789abcdefghijklmn")
        .ok();
    w.cmd(&["proxy", "budget", "set", "bx", "--daily", "0.0001"]).ok();
    w.run(&["bx", "--", "-p", "say pong"]).assert_ok();
    let before = model_calls(&mock.requests(), "/v1/messages").len();
    assert!(before >= 1);

    let ran = w.run(&["bx", "--", "-p", "say more"]);
    assert_ne!(ran.code, Some(0), "{ran}");
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        all.contains("ringlet: profile bx has spent $") && all.contains("daily budget"),
        "no budget message:\n{ran}"
    );
    assert_eq!(model_calls(&mock.requests(), "/v1/messages").len(), before, "a request went out");
    let status = w.cmd(&["--json", "proxy", "status", "bx"]).ok();
    assert!(status.contains("exceeded"), "{status}");
}
