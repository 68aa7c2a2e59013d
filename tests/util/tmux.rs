//! A tmux server of the test's own, the real terminal the tests run
//! `ringlet terminal attach`, `profiles run` and the agents' TUIs in: its
//! socket, config and temporary files under the world's root, a clean
//! environment (PATH and HOME only), killed on drop. Tests that need more
//! (terminal_screen.rs compares panes cell by cell) add methods of their own
//! in an `impl Tmux` of their module.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{kill, pid_alive, wait_until};

/// A tmux server of its own; see the module docs.
pub struct Tmux {
    socket: String,
    dir: PathBuf,
    conf: PathBuf,
    server: Option<u32>,
}

impl Tmux {
    /// A server (started by the first [`Tmux::window`]) with its files under
    /// `dir` and `conf` as its configuration (`""`: tmux's defaults, a
    /// status line included, so a pane is a row shorter than its window).
    /// `tag` names the socket, so a stray server says which test left it.
    pub fn new(dir: &Path, tag: &str, conf: &str) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let conf_file = dir.join(format!("{socket}.conf"));
        fs::write(&conf_file, conf).unwrap();
        Tmux { socket, dir: dir.to_path_buf(), conf: conf_file, server: None }
    }

    /// `tmux <args>` against this server, whatever its outcome.
    pub fn command(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.dir)
            .env("TMUX_TMPDIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("tmux: {e}; run tests/setup.sh (it installs tmux)"))
    }

    /// `tmux <args>`, which must succeed: its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A session `name` of a `cols` x `rows` window running `shell_command`
    /// (in `cwd`, when given).
    pub fn window_in(
        &mut self,
        name: &str,
        (cols, rows): (u16, u16),
        cwd: Option<&Path>,
        shell_command: &str,
    ) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let mut args = vec!["new-session", "-d", "-s", name, "-x", &cols, "-y", &rows];
        let cwd = cwd.map(|c| c.display().to_string());
        if let Some(cwd) = &cwd {
            args.extend(["-c", cwd]);
        }
        args.push(shell_command);
        self.ok(&args);
        if self.server.is_none() {
            self.server = self.ok(&["display-message", "-p", "#{pid}"]).trim().parse().ok();
        }
    }

    /// A session `name` of a `cols` x `rows` window running `shell_command`.
    pub fn window(&mut self, name: &str, cols: u16, rows: u16, shell_command: &str) {
        self.window_in(name, (cols, rows), None, shell_command);
    }

    /// `format` expanded for pane `name` (`display-message -p`), trimmed.
    pub fn display(&self, name: &str, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", name, format]).trim().to_string()
    }

    /// The pane's screen as text, one line per row.
    pub fn text(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", name])
    }

    /// The pane's history and screen as text, oldest line first.
    pub fn text_with_history(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-S", "-", "-t", name])
    }

    /// `send-keys` to pane `name`: key names (`Enter`, `C-]`), or text
    /// after `-l`.
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Types `text` (literally) into pane `name`, then Enter.
    pub fn line(&self, name: &str, text: &str) {
        if !text.is_empty() {
            self.keys(name, &["-l", text]);
        }
        self.keys(name, &["Enter"]);
    }

    /// Polls pane `name` until `done` holds; panics with the screen after `limit`.
    pub fn wait(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        self.poll(&format!("{what} in pane {name}"), limit, || self.text(name), done)
    }

    /// Polls `capture` (a pane's text: [`Tmux::text_with_history`] where
    /// what a step waits for may have scrolled off) until `done` holds of
    /// it; panics with the last capture after `limit`.
    pub fn poll(
        &self,
        what: &str,
        limit: Duration,
        capture: impl Fn() -> String,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = capture();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "waited {limit:?} for {what}:\n{text}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
        if let Some(pid) = self.server
            && !wait_until(Duration::from_secs(3), || !pid_alive(pid))
        {
            kill(pid, 9);
        }
    }
}

/// Single-quoted for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
