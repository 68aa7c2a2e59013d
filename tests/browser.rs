//! The web UI in a real browser (issue 14): one test world (a temp HOME,
//! config and runtime dir, the file secret store, a real daemon on an
//! ephemeral port, a mock Anthropic provider, the real Claude Code from npm
//! and a `shell` agent running bash), one headless Debian Chromium started
//! once, and `node --test tests/browser/` driving it with playwright-core:
//! sign-in, every page without errors or CSP violations, the profile form,
//! terminals with a real shell and the real Claude Code, usage, keyboard use,
//! axe-core, and revocation. The test files find the world through
//! environment variables (`RINGLET_UI_URL`, `RINGLET_BIN`, `RINGLET_WORLD`,
//! ...; see tests/browser/world.mjs). Screenshots of every page land in
//! `target/ui-shots/`. Everything the tests need is installed by
//! tests/setup.sh; a missing piece fails the test with the fix, never skips
//! it.
//!
//! `RINGLET_BROWSER_DEV_STATIC=1` serves the UI from this checkout's
//! `static/` (debug builds only) instead of what the binary embeds, and
//! `RINGLET_BROWSER_FILTER=<pattern>` runs only the node tests whose names
//! match (`--test-name-pattern`).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::mock::MockProvider;
use crate::util::{Env, pid_alive, real_agents_dir};

/// How long the whole node suite may take before it is killed: a guard
/// against a hang, far above what it takes (about 5 minutes on a 2-core
/// machine loaded 8 times over by parallel builds, much less when idle).
const SUITE_LIMIT: Duration = Duration::from_secs(600);

/// The first line of the mock's reply; 60 numbered list rows follow it, so
/// the conversation is taller than the terminal and must be scrolled.
pub const REPLY_TOP: &str = "BROWSER-MOCK-REPLY-TOP";

/// The key typed into the profile form (tests/browser/02-profiles.test.mjs).
pub const FORM_KEY: &str = "sk-ant-api03-browserform-0123456789abcdefKLMN";

/// Where tests/setup.sh installs playwright-core and axe-core.
pub fn browser_tools() -> PathBuf {
    match std::env::var_os("RINGLET_TEST_BROWSER") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/ringlet-test/browser")
        }
    }
}

/// Fails (never skips) when what the browser tests drive is not installed.
pub fn require_browser() -> PathBuf {
    let tools = browser_tools();
    for package in ["playwright-core", "axe-core"] {
        let path = tools.join("node_modules").join(package).join("package.json");
        assert!(
            path.is_file(),
            "{} is missing: run tests/setup.sh (`make test` does), or point \
             RINGLET_TEST_BROWSER at an install",
            path.display()
        );
    }
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: run tests/setup.sh (Debian: apt-get install chromium)"
    );
    tools
}

/// The mock's reply: a marker line, then numbered list rows.
pub fn mock_reply() -> String {
    let mut reply = format!("{REPLY_TOP}\n\n");
    for i in 1..=60 {
        reply.push_str(&format!("- mock reply row {i:02}\n"));
    }
    reply.push_str("\nBROWSER-MOCK-REPLY-END");
    reply
}

/// A world for the browser: a `shell` agent (bash, prompt `$ `), the mock
/// provider `mockapi`, profiles `sh` (shell) and `cc` (Claude Code on the
/// mock), a work directory under the home, and the daemon running with the
/// file store (so a profile created in the browser keeps its key there).
pub struct World {
    pub env: Env,
    pub work: PathBuf,
    pub url: String,
}

impl World {
    pub fn new(name: &str, mock: &MockProvider) -> World {
        let mut env = Env::new(name);
        let agents = real_agents_dir().join("node_modules").join(".bin");
        assert!(
            agents.join("claude").is_file(),
            "{} is missing: run tests/setup.sh",
            agents.join("claude").display()
        );
        env.extra_path.push(agents);
        let work = env.home.join("projects").join("demo");
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(env.config.join("agents.d")).unwrap();
        fs::create_dir_all(env.config.join("scripts")).unwrap();
        fs::create_dir_all(env.config.join("providers.d")).unwrap();
        fs::write(
            env.config.join("agents.d/shell.toml"),
            "id = \"shell\"\nname = \"Shell\"\nbinary = \"shell-agent\"\n[profile]\n\
             strategy = \"home-wrapper\"\nsource_home = \"~/.shell-profiles/{alias}\"\n\
             script = \"shell.rhai\"\nprovider_types = [\"anthropic\"]\n",
        )
        .unwrap();
        fs::write(
            env.config.join("scripts/shell.rhai"),
            "#{ files: #{}, env: #{ PS1: \"$ \" }, args: [] }",
        )
        .unwrap();
        // A real shell, without the user's rc files (there are none in the
        // world, but the prompt must be the profile's).
        env.fake_agent("shell-agent", "exec /bin/bash --norc --noprofile \"$@\"");
        fs::write(
            env.config.join("providers.d/mockapi.toml"),
            format!(
                "id = \"mockapi\"\nname = \"Mock\"\ntype = \"anthropic\"\n\n[endpoints]\n\
                 default = \"{}\"\n\n[auth]\nenv_key = \"MOCK_ANTHROPIC_API_KEY\"\n\n\
                 [models]\navailable = [\"mock-model-1\"]\ndefault = \"mock-model-1\"\n",
                mock.url()
            ),
        )
        .unwrap();
        // Claude Code 2.1.332 draws fullscreen (alternate screen, mouse
        // tracking) for a fresh install or behind a server-side gate; a
        // profile home here has neither, so it would draw inline and the
        // wheel would scroll the browser's own scrollback. The test is about
        // the fullscreen UI, so it asks for it as a user would.
        env.write_config("[agents.claude.settings]\ntui = \"fullscreen\"\n");
        let mut start = env.cmd(&["daemon", "--stay-alive"]).env("RINGLET_SECRET_STORE", "file");
        if std::env::var_os("RINGLET_BROWSER_DEV_STATIC").is_some() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
            start = start.env("RINGLET_DEV_STATIC", dir);
        }
        start.ok();
        env.create_profile("shell", "sh");
        env.cmd(&[
            "profiles",
            "create",
            "claude",
            "cc",
            "-p",
            "mockapi",
            "--api-key-stdin",
            "--no-alias",
        ])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin("sk-ant-api03-browser-0123456789abcdefghijKLMN")
        .ok();
        let (addr, _) = env.http();
        World { env, work, url: format!("http://{addr}/") }
    }

    /// The environment `ringlet` runs with in this world, as JSON.
    pub fn env_json(&self) -> String {
        let env = &self.env;
        serde_json::json!({
            "HOME": env.home,
            "RINGLET_CONFIG_DIR": env.config,
            "XDG_RUNTIME_DIR": env.run,
            "RINGLET_HTTP_PORT": "0",
            "RINGLET_SECRET_STORE": "file",
            "PATH": env.path_var().to_string_lossy(),
        })
        .to_string()
    }

    /// `node <args>` with the world described in its environment, in its
    /// own process group (killed with it), run from the checkout.
    pub fn node(&self, args: &[&str], tools: &Path) -> Command {
        let mut cmd = Command::new("node");
        // A home of its own for Chromium's and node's files, outside the
        // world's HOME (which the UI's directory completion lists).
        let home = self.env.root.join("browser-home");
        fs::create_dir_all(&home).unwrap();
        cmd.args(args)
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("RINGLET_TEST_BROWSER", tools)
            .env("RINGLET_UI_URL", &self.url)
            .env("RINGLET_BIN", crate::util::BIN)
            .env("RINGLET_WORLD", self.env_json())
            .env("RINGLET_SHOTS", shots_dir())
            .env("RINGLET_WORK", &self.work)
            .env("RINGLET_SHELL_PROFILE", "sh")
            .env("RINGLET_CLAUDE_PROFILE", "cc")
            .env("RINGLET_MOCK_PROVIDER", "mockapi")
            .env("RINGLET_MOCK_REPLY", REPLY_TOP)
            .env("RINGLET_FORM_KEY", FORM_KEY)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }
}

/// `target/ui-shots`, beside cargo's other outputs.
pub fn shots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("ui-shots")
}

/// A process group killed when dropped (a browser, a node run).
pub struct Group {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Closing stdin asks the browser server to close Chromium itself.
        drop(self.stdin.take());
        let pid = self.child.id();
        let ended = crate::util::wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !ended {
            // SIGTERM first: playwright closes the browser it started.
            let _ = Command::new("kill").arg("-TERM").arg(format!("-{pid}")).status();
            crate::util::wait_until(Duration::from_secs(5), || !pid_alive(pid));
            let _ = Command::new("kill").arg("-KILL").arg(format!("-{pid}")).status();
            let _ = self.child.wait();
        }
    }
}

/// Starts the suite's Chromium (tests/browser/server.mjs); its endpoint.
pub fn start_browser(world: &World, tools: &Path) -> (Group, String) {
    let mut child = world
        .node(&["tests/browser/server.mjs"], tools)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning node (tests/setup.sh installs it)");
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let group = Group { child, stdin };
    let mut line = String::new();
    let _ = stdout.read_line(&mut line);
    let endpoint = line.trim().to_string();
    assert!(endpoint.starts_with("ws://"), "the browser did not start: {line:?}");
    (group, endpoint)
}

#[test]
fn the_web_ui_in_a_real_browser() {
    let tools = require_browser();
    let mock = MockProvider::anthropic(&mock_reply());
    let world = World::new("browser", &mock);
    let started = Instant::now();
    let (browser, endpoint) = start_browser(&world, &tools);
    eprintln!("browser: Chromium up after {:?}", started.elapsed());
    let mut args = vec!["--test", "--test-concurrency=1", "--test-reporter=spec"];
    let filter = std::env::var("RINGLET_BROWSER_FILTER").ok();
    if let Some(filter) = &filter {
        args.push("--test-name-pattern");
        args.push(filter);
    }
    args.push("tests/browser/");
    let out_path = world.env.root.join("node-test.out");
    let mut cmd = world.node(&args, &tools);
    cmd.env("RINGLET_BROWSER_WS", &endpoint)
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit());
    let child = cmd.spawn().expect("spawning node --test");
    let mut run = Group { child, stdin: None };
    let deadline = Instant::now() + SUITE_LIMIT;
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(run);
    drop(browser);
    let mut report = String::new();
    fs::File::open(&out_path).unwrap().read_to_string(&mut report).unwrap();
    eprintln!("{report}");
    eprintln!(
        "browser: the suite took {:?}; screenshots in {}",
        started.elapsed(),
        shots_dir().display()
    );
    let status = status.unwrap_or_else(|| panic!("the browser tests took over {SUITE_LIMIT:?}"));
    assert!(status.success(), "browser tests failed ({status}); the report is above");
    // The spec reporter's summary: "ℹ pass <n>".
    let passed = report
        .lines()
        .find_map(|l| l.trim_start_matches(['ℹ', '#', ' ']).strip_prefix("pass "))
        .and_then(|n| n.trim().parse::<u32>().ok());
    assert!(passed.is_some_and(|n| n > 0), "no browser test passed:\n{report}");
    if filter.is_none() {
        // The profile made in the browser ran with the key typed there.
        let seen = mock.requests();
        assert!(
            seen.iter().any(|r| r.x_api_key.as_deref() == Some(FORM_KEY)),
            "the mock never saw the key typed into the form ({} requests)",
            seen.len()
        );
    }
}
