//! The integration-test harness: every test gets its own [`Env`] (a temp dir
//! holding HOME, the config dir, a 0700 runtime dir and a `bin/` for fake
//! agents), runs the real `ringlet` binary through [`TestCommand`] (whose
//! failures print the command, stdout and stderr), and leaves no daemon
//! behind: dropping the `Env` stops its daemon and kills it if it must.

#![allow(dead_code)]

pub mod claude_gen;
pub mod http;
pub mod mock;
pub mod registry;
pub mod tmux;
pub mod upstream;
pub mod xterm;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringlet");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The API key test profiles get.
pub const KEY: &str = "sk-test-0123456789abcdefghijklmnopqrstuv";

/// One isolated world for one test.
pub struct Env {
    pub root: PathBuf,
    pub home: PathBuf,
    pub config: PathBuf,
    pub run: PathBuf,
    pub bin: PathBuf,
    /// Extra directories put on PATH before `bin/`.
    pub extra_path: Vec<PathBuf>,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("ringlet-it-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let env = Env {
            home: root.join("home"),
            config: root.join("config"),
            run: root.join("run"),
            bin: root.join("bin"),
            extra_path: Vec::new(),
            root,
        };
        for dir in [&env.home, &env.run, &env.bin] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::set_permissions(&env.run, fs::Permissions::from_mode(0o700)).unwrap();
        env
    }

    pub fn socket(&self) -> PathBuf {
        self.run.join("ringlet").join("ringlet.sock")
    }

    pub fn log(&self) -> PathBuf {
        self.config.join("logs").join("daemon.log")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub fn path_var(&self) -> OsString {
        let mut dirs: Vec<PathBuf> = self.extra_path.clone();
        dirs.push(self.bin.clone());
        dirs.push("/usr/bin".into());
        dirs.push("/bin".into());
        std::env::join_paths(dirs).unwrap()
    }

    /// A `ringlet` command in this world, with nothing inherited.
    pub fn cmd(&self, args: &[&str]) -> TestCommand {
        let mut command = self.program(BIN);
        command.cmd.args(args);
        command
    }

    /// Any program in this world: the same cleared environment as [`Env::cmd`].
    pub fn program(&self, program: impl AsRef<std::ffi::OsStr>) -> TestCommand {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("RINGLET_CONFIG_DIR", &self.config)
            .env("XDG_RUNTIME_DIR", &self.run)
            // Every test daemon on its own ephemeral HTTP port, never 8765.
            .env("RINGLET_HTTP_PORT", "0")
            .env("PATH", self.path_var())
            .current_dir(&self.root)
            .stdin(Stdio::null());
        TestCommand { cmd, input: None }
    }

    /// `profiles create <agent> <alias> -p anthropic` with [`KEY`] on stdin,
    /// kept in the 0600 file store (no keychain in a test world).
    pub fn create_profile(&self, agent: &str, alias: &str) {
        self.create_profile_cmd(agent, alias).ok();
    }

    /// The command [`Env::create_profile`] runs, not yet run: a test adds
    /// its own environment (a later `RINGLET_SECRET_STORE` wins) and checks
    /// the outcome it expects.
    pub fn create_profile_cmd(&self, agent: &str, alias: &str) -> TestCommand {
        self.cmd(&[
            "profiles",
            "create",
            agent,
            alias,
            "-p",
            "anthropic",
            "--api-key-stdin",
            "--no-alias",
        ])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(KEY)
    }

    /// The daemon's HTTP address and token (starting the daemon if needed).
    pub fn http(&self) -> (std::net::SocketAddr, String) {
        let token = self.cmd(&["daemon", "token"]).ok().trim().to_string();
        let status = self.cmd(&["daemon", "status", "--json"]).json();
        let addr = status["http"].as_str().unwrap_or_else(|| panic!("no HTTP API: {status}"));
        (addr.parse().unwrap(), token)
    }

    pub fn write_config(&self, text: &str) {
        fs::create_dir_all(&self.config).unwrap();
        fs::write(self.config.join("config.toml"), text).unwrap();
    }

    /// Writes an executable shell script `bin/<name>`.
    pub fn fake_agent(&self, name: &str, script: &str) -> PathBuf {
        let path = self.bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The pid of the running daemon, from its lock file, if it is alive.
    pub fn daemon_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.run.join("ringlet").join("ringlet.sock.lock")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        pid_alive(pid).then_some(pid)
    }

    /// Pids of live daemon processes of this world (matched by their log
    /// path on the command line, which is unique to the world).
    pub fn daemon_processes(&self) -> Vec<u32> {
        let needle = self.log().display().to_string();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) && cmdline.contains("daemon") && pid_alive(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Sends one raw line to the daemon socket and reads the reply line.
    pub fn raw_request(&self, line: &[u8]) -> String {
        let mut stream = UnixStream::connect(self.socket()).expect("daemon socket");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.write_all(line);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = BufReader::new(stream).read_line(&mut reply);
        reply
    }

    /// Starts the daemon through the CLI and returns its pid.
    pub fn start_daemon(&self) -> u32 {
        self.cmd(&["daemon"]).ok();
        self.daemon_pid().expect("daemon running after `ringlet daemon`")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.daemon_pid().is_some() || !self.daemon_processes().is_empty() {
            let _ = self.cmd(&["daemon", "stop", "--force"]).output();
        }
        for pid in self.daemon_processes() {
            kill(pid, 9);
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A `Command` whose failures explain themselves.
pub struct TestCommand {
    pub cmd: Command,
    /// Written to the command's stdin, when set.
    pub input: Option<Vec<u8>>,
}

impl TestCommand {
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// Feeds `text` to the command's stdin.
    /// Runs it in `dir` instead of the world's root.
    pub fn current_dir(mut self, dir: &Path) -> TestCommand {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, text: &str) -> TestCommand {
        self.input = Some(text.as_bytes().to_vec());
        self
    }

    pub fn output(mut self) -> Output {
        self.run()
    }

    fn run(&mut self) -> Output {
        let Some(input) = self.input.take() else {
            return self.cmd.output().expect("running ringlet");
        };
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ringlet");
        let mut stdin = child.stdin.take().unwrap();
        // A command that does not read stdin may close it early.
        let _ = stdin.write_all(&input);
        drop(stdin);
        child.wait_with_output().expect("running ringlet")
    }

    pub fn spawn(mut self) -> Child {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning ringlet")
    }

    fn describe(&self, out: &Output) -> String {
        format!(
            "command: {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Runs, requires success, returns stdout.
    pub fn ok(mut self) -> String {
        let out = self.run();
        assert!(out.status.success(), "expected success\n{}", self.describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, requires exit code `code`, returns (stdout, stderr).
    pub fn code(mut self, code: i32) -> (String, String) {
        let out = self.run();
        assert_eq!(out.status.code(), Some(code), "unexpected exit code\n{}", self.describe(&out));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    }

    /// Runs with `--json`-style output parsed from stdout; requires success.
    pub fn json(self) -> serde_json::Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"))
    }
}

pub fn pid_alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not collected it yet. But a
    // killed multi-threaded process shows its main thread as a zombie while
    // the other threads are still exiting, and until the last one has, its
    // sockets are open: alive while any of its threads is not a zombie.
    let alive = |stat: &str| stat.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z'));
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks
        .flatten()
        .any(|task| fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| alive(&stat)))
}

/// The names of `pid`'s threads (each one's `comm`), none if it is gone.
pub fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

pub fn kill(pid: u32, signal: i32) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// The session bus of the real Secret Service (gnome-keyring in
/// `tests/with-keyring.sh`, which `make test` uses). Outside it `None`, after
/// a note, so the keychain test skips; unless REQUIRE_KEYCHAIN is set, when
/// a missing bus fails the test instead.
pub fn keychain_bus() -> Option<OsString> {
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
    if bus.is_none() {
        assert!(
            std::env::var_os("REQUIRE_KEYCHAIN").is_none(),
            "REQUIRE_KEYCHAIN is set but there is no session bus"
        );
        eprintln!("skipped: no DBUS_SESSION_BUS_ADDRESS (run under tests/with-keyring.sh)");
    }
    bus
}

/// The key the Secret Service on `bus` holds for Ringlet's `alias` ("" for none).
pub fn keychain_lookup(bus: &std::ffi::OsStr, alias: &str) -> String {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "ringlet", "username", alias])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads lines from a stream until one satisfies `pred` or `limit` passes.
pub fn read_line_matching(
    reader: &mut BufReader<UnixStream>,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + limit;
    // Bytes, kept across timeouts: the daemon writes an event and its
    // newline separately, and a read that times out between them has
    // already taken the first part from the socket (as a String, a
    // character split across a timeout would be dropped as invalid UTF-8).
    let mut line = Vec::new();
    while Instant::now() < deadline {
        reader.get_ref().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                let text = String::from_utf8_lossy(&line).into_owned();
                if pred(&text) {
                    return Some(text);
                }
                line.clear();
            }
            // The end of the stream after a partial line: the next read says 0.
            Ok(_) => {}
            // Timed out: what arrived of the line so far stays in `line`.
            Err(_) => {}
        }
    }
    None
}

/// Where tests/setup.sh installs the real agents from npm.
pub fn real_agents_dir() -> PathBuf {
    match std::env::var_os("RINGLET_TEST_AGENTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/ringlet-test/agents"),
    }
}

/// The version npm installed for `package`, from its package.json.
pub fn installed_version(package: &str) -> String {
    let path = real_agents_dir().join("node_modules").join(package).join("package.json");
    let mut text = String::new();
    fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run tests/setup.sh (make test does)", path.display()))
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["version"].as_str().unwrap().to_string()
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Everything under `dir` that is not a directory, recursively: files,
/// and links and other entries as themselves (links are not followed).
/// Nothing when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The regular files under `dir` (see [`files_under`]: no links).
pub fn regular_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = files_under(dir);
    files.retain(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
    files
}

/// The regular files under `dir` with their contents (lossy UTF-8): where
/// a test looks for a key that must not be there.
pub fn texts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    regular_files_under(dir)
        .into_iter()
        .map(|p| {
            let text = String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned();
            (p, text)
        })
        .collect()
}
