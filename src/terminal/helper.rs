//! The session helper: Ringlet itself run as `ringlet __session-helper --
//! <program> <args>` (hidden; `main` answers it before parsing anything, and
//! it touches no config, no daemon, no file). Every terminal session starts
//! its agent through it, inside the sandbox when there is one (bwrap gets
//! Ringlet's binary bound read-only at [`super::sandbox::HELPER_PATH`]).
//!
//! Why: agents without job control (Claude Code, Codex, OpenCode) never make
//! a process group of their own, so without the helper the terminal's
//! foreground group is the group of whatever started them, under the sandbox
//! bwrap's, and a SIGINT meant for the agent killed bwrap and so the session.
//! And an agent's `setsid` grandchild left the session's process group and
//! session and survived every kill.
//!
//! What it does: it becomes the child subreaper of everything below it
//! (Linux), starts the program in a process group of its own that owns the
//! terminal (the foreground group), and then only waits:
//! - INT, QUIT, TSTP, CONT and WINCH it receives go to the terminal's
//!   foreground group at that moment (the agent's, or a job's of a shell);
//! - TERM and HUP end the session: the signal (and CONT) goes to the agent's
//!   group and the foreground group, TERM follows after half of [`GRACE`]
//!   if HUP came first, and after [`GRACE`] every descendant gets SIGKILL;
//! - once the agent has exited, whatever it left running gets HUP (and
//!   CONT), and after [`LINGER`] SIGKILL;
//! - it reaps every orphan that lands on it, and when nothing of the
//!   session is left it exits with the agent's status: its exit code, or
//!   the signal that killed it (raised on itself, so its parent sees the
//!   same; 128+N where that cannot be done).
//!
//! The daemon sends the foreground signals to the foreground group itself
//! (`pty.rs`) and TERM and HUP to the helper; its own escalation (HUP, TERM,
//! then SIGKILL for every descendant, the helper last) still holds if the
//! helper is stuck. The daemon never becomes a subreaper: it would reap
//! strangers' orphans and lose its own children's exit statuses.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__session-helper";

/// From TERM or HUP to SIGKILL for everything (TERM at half of it): the
/// daemon's own grace (`session::KILL_GRACE`).
pub const GRACE: Duration = super::session::KILL_GRACE;

/// How long what the agent left running has between HUP and SIGKILL once
/// the agent has exited.
pub const LINGER: Duration = Duration::from_secs(1);

/// The signals the helper acts on (SIGCHLD only wakes it to reap).
const HANDLED: [Signal; 8] = [
    Signal::INT,
    Signal::QUIT,
    Signal::TSTP,
    Signal::CONT,
    Signal::WINCH,
    Signal::TERM,
    Signal::HUP,
    Signal::CHILD,
];

/// Ringlet's own binary, resolved: what a sandbox binds for the helper.
pub fn own_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding Ringlet's own binary")?;
    std::fs::canonicalize(&exe).with_context(|| {
        format!(
            "Ringlet's own binary {} is gone (replaced by an upgrade?); restart the daemon",
            exe.display()
        )
    })
}

/// What to exec to run the helper outside a sandbox: on Linux the running
/// binary itself (`/proc/self/exe`, right also after an upgrade replaced
/// the file), elsewhere [`own_binary`].
pub fn exec_path() -> anyhow::Result<PathBuf> {
    if cfg!(target_os = "linux") {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    own_binary()
}

/// Runs the helper if the command line asks for it (`argv[1]` is
/// [`SUBCOMMAND`]); `None` otherwise. Called first thing in `main`.
pub fn main_if_asked() -> Option<ExitCode> {
    Some(match parse(std::env::args_os().skip(1))? {
        Some(argv) => run(&argv),
        None => {
            let _ = writeln!(io::stderr(), "usage: ringlet {SUBCOMMAND} -- <program> [args...]");
            ExitCode::from(2)
        }
    })
}

/// The arguments after the binary's name: `None` if they do not ask for
/// the helper, `Some(None)` if they do but wrongly, else the program's argv.
fn parse(mut args: impl Iterator<Item = OsString>) -> Option<Option<Vec<OsString>>> {
    if args.next()? != SUBCOMMAND {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(match rest.split_first() {
        Some((dashes, argv)) if dashes == "--" && !argv.is_empty() => Some(argv.to_vec()),
        _ => None,
    })
}

/// Starts `argv` and serves it until the session is over; never returns if
/// the agent was killed by a signal (the helper dies of the same).
fn run(argv: &[OsString]) -> ExitCode {
    let say = |what: &str| {
        let _ = writeln!(io::stderr(), "ringlet session helper: {what}");
    };
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        say(&format!("cannot become the session's subreaper ({e}); orphans may escape"));
    }
    let wake = match Wake::new() {
        Ok(wake) => wake,
        Err(e) => {
            say(&format!("cannot watch for signals: {e}"));
            return ExitCode::from(126);
        }
    };
    // Background-group terminal writes and reads must never stop the
    // helper: it is not the foreground group once the agent runs.
    for sig in [Signal::TTOU, Signal::TTIN] {
        set_disposition(sig, SIG_IGN);
    }
    let tty = rustix::termios::isatty(rustix::stdio::stdin());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: runs in the forked child before exec, so only async-signal-
    // safe calls: setpgid(2), signal(2), getpid(2) and ioctl(2) through
    // rustix (no allocation, no locks; errors are errno values).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setpgid(None, None)?;
            if tty {
                // The child is still in the background here: taking the
                // terminal would stop it with SIGTTOU, but it still ignores
                // that, as the helper does; reset right after.
                rustix::termios::tcsetpgrp(rustix::stdio::stdin(), rustix::process::getpid())?;
            }
            super::pty::reset_signal_dispositions();
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            // A shell's codes: 127 not found, 126 not executable.
            let code = if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
            say(&format!("{:#}", super::pty::spawn_error(std::path::Path::new(&argv[0]), e)));
            return ExitCode::from(code);
        }
    };
    let agent = Pid::from_child(&child);
    // Also from this side, so that a signal forwarded right away finds the
    // group (EACCES once the child has exec'd: then it did it itself).
    let _ = rustix::process::setpgid(Some(agent), Some(agent));
    drop(child);
    let mut helper = Helper {
        agent,
        own_group: own_group(),
        tty,
        status: None,
        ending: None,
        term_sent: false,
        agent_gone: None,
        killed_rest: false,
    };
    helper.serve(&wake)
}

/// What wakes the helper: one flag per handled signal, and a socket that
/// each of them also writes a byte to.
struct Wake {
    flags: Vec<(Signal, Arc<AtomicBool>)>,
    rx: UnixStream,
}

impl Wake {
    fn new() -> io::Result<Wake> {
        let (rx, tx) = UnixStream::pair()?;
        let mut flags = Vec::new();
        for sig in HANDLED {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig.as_raw(), flag.clone())?;
            signal_hook::low_level::pipe::register(sig.as_raw(), tx.try_clone()?)?;
            flags.push((sig, flag));
        }
        Ok(Wake { flags, rx })
    }

    /// Sleeps until a signal or `timeout`.
    fn wait(&self, timeout: Duration) {
        let mut rx = &self.rx;
        let _ = rx.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut buf = [0u8; 64];
        let _ = rx.read(&mut buf);
    }

    /// The signals that came since the last call.
    fn taken(&self) -> Vec<Signal> {
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}

struct Helper {
    /// The agent's pid, also its process group.
    agent: Pid,
    /// The helper's own process group as this pid namespace sees it (none
    /// inside bwrap's: the group is bwrap's, outside).
    own_group: Option<i32>,
    tty: bool,
    /// The agent's end, once reaped.
    status: Option<WaitStatus>,
    /// When TERM or HUP came.
    ending: Option<Instant>,
    term_sent: bool,
    /// When the agent's end was seen.
    agent_gone: Option<Instant>,
    killed_rest: bool,
}

impl Helper {
    fn serve(&mut self, wake: &Wake) -> ExitCode {
        loop {
            let children = self.reap();
            for sig in wake.taken() {
                self.on_signal(sig);
            }
            let now = Instant::now();
            let mut next = now + Duration::from_secs(1);
            if let Some(status) = self.status {
                // As the subreaper, every live descendant has a live
                // ancestor among the helper's children.
                if !children && !group_alive(self.agent) {
                    return exit_with(status);
                }
                let gone = *self.agent_gone.get_or_insert_with(|| {
                    signal_rest(self.agent, Signal::HUP);
                    signal_rest(self.agent, Signal::CONT);
                    now
                });
                if now >= gone + LINGER {
                    self.kill_rest();
                }
                next = next.min(gone + LINGER);
            }
            if let Some(since) = self.ending {
                if !self.term_sent && now >= since + GRACE / 2 {
                    self.end_signal(Signal::TERM);
                }
                if now >= since + GRACE {
                    self.kill_rest();
                }
                next = next.min(if self.term_sent { since + GRACE } else { since + GRACE / 2 });
            }
            if self.killed_rest {
                // Waiting only for the kernel to finish the killed off.
                next = next.min(now + Duration::from_millis(10));
            }
            wake.wait(next.saturating_duration_since(now));
        }
    }

    /// Reaps every child that has ended: the agent (its status is kept)
    /// and every orphan that was reparented here. Returns whether any
    /// child is left.
    fn reap(&mut self) -> bool {
        loop {
            // Any child (`waitpid(None)` would be only those of our group).
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    if pid == self.agent {
                        self.status = Some(status);
                    }
                }
                Err(Errno::INTR) => continue,
                Ok(None) => return true,
                // ECHILD: no child left at all.
                Err(_) => return false,
            }
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        match sig {
            Signal::TERM | Signal::HUP => self.end_signal(sig),
            Signal::CHILD => {}
            _ => self.signal_group(self.foreground(), sig),
        }
    }

    /// Sends `sig` to process group `group` if it is still the session's:
    /// the agent's while the agent is not reaped (its pid, so its group
    /// number, cannot be reused until then), else one a descendant of the
    /// helper is in. Once reaped, the agent's pid is free and may be a
    /// stranger's group by now.
    fn signal_group(&self, group: Pid, sig: Signal) {
        if (group == self.agent && self.status.is_none()) || group_below_helper(group) {
            let _ = rustix::process::kill_process_group(group, sig);
        }
    }

    /// TERM or HUP: to the agent's group and the foreground group, with
    /// CONT for stopped ones; the session is ending from now on.
    fn end_signal(&mut self, sig: Signal) {
        self.ending.get_or_insert_with(Instant::now);
        self.term_sent |= sig == Signal::TERM;
        let fg = self.foreground();
        for group in [self.agent, fg] {
            self.signal_group(group, sig);
            self.signal_group(group, Signal::CONT);
        }
    }

    /// The terminal's foreground group, unless that is the helper's own
    /// (or one this namespace cannot see) or no descendant of the helper is
    /// in it: then the agent's group. The terminal keeps reporting a group
    /// after its last process has exited, and that number may since have
    /// become a stranger's group outside the session (an agent can leave
    /// the terminal to a child's group and let the child exit).
    fn foreground(&self) -> Pid {
        if self.tty
            && let Ok(group) = rustix::termios::tcgetpgrp(rustix::stdio::stdin())
            && Some(group.as_raw_nonzero().get()) != self.own_group
            && group_below_helper(group)
        {
            return group;
        }
        self.agent
    }

    fn kill_rest(&mut self) {
        self.killed_rest = true;
        kill_rest(self.agent);
    }
}

/// Whether a live descendant of the helper is in process group `group`
/// (where there is no `/proc` to tell: assumed).
fn group_below_helper(group: Pid) -> bool {
    #[cfg(target_os = "linux")]
    {
        let raw = group.as_raw_nonzero().get();
        super::procfs::descendants(rustix::process::getpid()).iter().any(|p| p.pgrp == raw)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = group;
        true
    }
}

/// Whether a process of the agent's group is alive where orphans do not
/// come to the helper (no subreaper but on Linux).
fn group_alive(agent: Pid) -> bool {
    !cfg!(target_os = "linux") && rustix::process::test_kill_process_group(agent).is_ok()
}

/// Sends `sig` to every descendant (elsewhere than Linux: the agent's group).
fn signal_rest(agent: Pid, sig: Signal) {
    #[cfg(target_os = "linux")]
    {
        let _ = agent;
        super::procfs::signal_descendants(rustix::process::getpid(), sig, &[]);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = rustix::process::kill_process_group(agent, sig);
    }
}

/// SIGKILL for every descendant until none is left.
fn kill_rest(agent: Pid) {
    #[cfg(target_os = "linux")]
    {
        let _ = agent;
        super::procfs::kill_descendants(rustix::process::getpid(), &[], 100);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = rustix::process::kill_process_group(agent, Signal::KILL);
    }
}

/// The helper's process group as its pid namespace shows it; none when
/// that is 0 (the group is outside the namespace).
fn own_group() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        super::procfs::own_group()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some(rustix::process::getpgrp().as_raw_nonzero().get())
    }
}

/// Ends the helper the way the agent ended: the same exit code, or death by
/// the same signal (no core file), else 128+N.
fn exit_with(status: WaitStatus) -> ExitCode {
    if let Some(code) = status.exit_status() {
        return ExitCode::from(code as u8);
    }
    let Some(signal) = status.terminating_signal() else { return ExitCode::from(1) };
    if let Some(sig) = Signal::from_named_raw(signal) {
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Core,
            rustix::process::Rlimit { current: Some(0), maximum: core.maximum },
        );
        set_disposition(sig, SIG_DFL);
        let _ = rustix::process::kill_process(rustix::process::getpid(), sig);
        // Delivered before kill(2) returns unless it cannot kill us here.
        std::thread::sleep(Duration::from_millis(100));
    }
    ExitCode::from((128 + signal).clamp(0, 255) as u8)
}

const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;

/// signal(2) with SIG_DFL or SIG_IGN.
fn set_disposition(sig: Signal, handler: usize) {
    unsafe extern "C" {
        // `sighandler_t` is pointer-sized; SIG_DFL is 0 and SIG_IGN 1 on
        // every Unix.
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: SIG_DFL or SIG_IGN install no handler and touch no memory of
    // ours; signal(2) is async-signal-safe.
    unsafe {
        signal(sig.as_raw(), handler);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_subcommand_first_then_dashes_is_the_helper() {
        let parse = |args: &[&str]| parse(args.iter().map(OsString::from));
        let argv = |args: &[&str]| Some(Some(args.iter().map(OsString::from).collect()));
        assert_eq!(parse(&[SUBCOMMAND, "--", "sh", "-c", "x"]), argv(&["sh", "-c", "x"]));
        assert_eq!(parse(&[SUBCOMMAND, "--", "--", "-x"]), argv(&["--", "-x"]));
        assert_eq!(parse(&[SUBCOMMAND, "sh"]), Some(None));
        assert_eq!(parse(&[SUBCOMMAND, "--"]), Some(None));
        assert_eq!(parse(&[SUBCOMMAND]), Some(None));
        assert_eq!(parse(&["agents", "list"]), None);
        assert_eq!(parse(&["--json", SUBCOMMAND, "--", "sh"]), None);
        assert_eq!(parse(&[]), None);
        // The test binary's own command line is not the helper's.
        assert!(main_if_asked().is_none());
    }

    #[test]
    fn an_exit_code_is_passed_on() {
        let mut child = Command::new("/bin/sh").args(["-c", "exit 3"]).spawn().unwrap();
        let pid = Pid::from_child(&child);
        // Waited for here with the raw status word; `child` is never
        // waited for again.
        let (_, status) =
            rustix::process::waitpid(Some(pid), WaitOptions::empty()).unwrap().unwrap();
        assert_eq!(exit_with(status), ExitCode::from(3));
        assert!(child.try_wait().is_err(), "already reaped");
    }
}
