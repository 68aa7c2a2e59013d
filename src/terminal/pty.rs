//! A pseudo-terminal and the agent running on it. `Pty` owns the master side
//! (non-blocking, close-on-exec) and the child: the child runs in a session
//! of its own, with the slave side as its controlling terminal and as its
//! stdin, stdout and stderr, and with exactly the environment the caller
//! built (nothing is inherited from the daemon). Its process group and
//! session ids equal its pid.
//!
//! The child stays a zombie once it has exited, until `terminate` (or
//! `Drop`) reaps it: while the zombie exists its pid cannot be reused, so
//! signals sent to its process group can never reach an unrelated group.
//! Nothing else in the daemon may wait for children it did not start.
//!
//! Sessions run their agent through the session helper (`helper.rs`), as
//! the child itself or below a sandbox ([`Helper`]). Then a client's INT,
//! QUIT, TSTP, CONT, WINCH and STOP go to the terminal's foreground group
//! (the agent's, or a job's), TERM and HUP to the helper, which ends the
//! session, and `terminate` ends every descendant of the child, also those
//! that left its session (`setsid`), before the helper itself.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

#[cfg(target_os = "linux")]
use super::procfs;

/// How long `Drop` lets the agent react to SIGHUP and SIGTERM in total.
const DROP_GRACE: Duration = Duration::from_secs(1);

/// How long `terminate` waits, after SIGKILL, for the killed processes to
/// be gone from the process table (they die asynchronously).
const KILL_SETTLE: Duration = Duration::from_millis(500);

/// Where the session helper runs relative to the started program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// Nowhere: the program is the agent (signals go to its group).
    None,
    /// The program is the helper.
    Leader,
    /// Below the program (a sandbox that forks), running Ringlet's binary.
    Below,
}

/// What to start and how: `env` is the complete environment.
pub struct Spec<'a> {
    pub program: &'a Path,
    pub helper: Helper,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub cols: u16,
    pub rows: u16,
}

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// Signal N killed it.
    Signal(i32),
}

impl Exit {
    /// The exit code a shell would report: the status, or 128+N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }
}

/// The signals a client may send to the agent.
const ALLOWED_SIGNALS: [(&str, Signal); 9] = [
    ("INT", Signal::INT),
    ("TERM", Signal::TERM),
    ("KILL", Signal::KILL),
    ("HUP", Signal::HUP),
    ("QUIT", Signal::QUIT),
    ("WINCH", Signal::WINCH),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
];

/// The number of an allowed signal given by name ("INT", "SIGINT", "int")
/// or by number ("2").
pub fn signal_by_name(name: &str) -> Option<i32> {
    if let Ok(number) = name.parse::<i32>() {
        return ALLOWED_SIGNALS.iter().any(|(_, s)| s.as_raw() == number).then_some(number);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    ALLOWED_SIGNALS.iter().find(|(n, _)| *n == bare).map(|(_, s)| s.as_raw())
}

/// A running (or finished, not yet reaped) agent on its terminal.
pub struct Pty {
    master: OwnedFd,
    /// The child's pid, which is also its process group and session id.
    pid: Pid,
    /// The exit, once seen. Seen without reaping (`WNOWAIT`) until `reaped`.
    exit: Option<Exit>,
    /// Whether the zombie has been reaped; then `pid` may belong to anyone.
    reaped: bool,
    helper: Helper,
}

impl Pty {
    /// Opens a terminal of the given size and starts the program on it.
    pub fn spawn(spec: &Spec) -> Result<Pty> {
        let program = spec.program.display();
        // Checked here because exec's chdir failure reads like a missing
        // program ("No such file or directory").
        match fs::metadata(spec.cwd) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "cannot start {program}: working directory {} is not a directory",
                spec.cwd.display()
            ),
            Err(e) => {
                bail!("cannot start {program}: working directory {}: {e}", spec.cwd.display())
            }
        }
        let opening = || format!("opening a terminal for {program}");
        let (master, slave) = open_pair(spec.cols, spec.rows).with_context(opening)?;
        let stdin = slave.try_clone().with_context(opening)?;
        let stdout = slave.try_clone().with_context(opening)?;
        let mut cmd = Command::new(spec.program);
        cmd.args(spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(spec.cwd)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(slave));
        // With a `pre_exec` closure std forks (no posix_spawn), dup2s the
        // slave onto 0, 1 and 2, clears the signal mask and resets SIGPIPE,
        // then runs the closure, then execs.
        // SAFETY: the closure runs in the forked child between fork and
        // exec, so it must be async-signal-safe: it captures nothing, does
        // not allocate or take locks, and only makes the system calls
        // signal(2), setsid(2) and ioctl(2) (rustix turns their errors into
        // an `io::Error` holding the errno, without allocating).
        unsafe {
            cmd.pre_exec(|| {
                reset_signal_dispositions();
                rustix::process::setsid()?;
                // fd 0 is the slave: make it the new session's controlling
                // terminal.
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| spawn_error(spec.program, e))?;
        // Closes the parent's copies of the slave, so that the master reads
        // EIO once the child side is gone.
        drop(cmd);
        let pid = Pid::from_child(&child);
        Ok(Pty { master, pid, exit: None, reaped: false, helper: spec.helper })
    }

    /// The master side, for registering with a poller and for I/O.
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Reads the agent's output; non-blocking (`WouldBlock` when there is
    /// nothing). `Ok(0)` once every process has closed the terminal.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::io::read(&self.master, &mut *buf) {
                Err(Errno::INTR) => continue,
                // Linux reports a closed slave side as EIO, not as EOF.
                Err(Errno::IO) => return Ok(0),
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// Writes input for the agent; non-blocking (`WouldBlock` when the
    /// terminal's input buffer is full). Once the child side is closed this
    /// fails with `BrokenPipe`: pending input can be dropped.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::io::write(&self.master, buf) {
                Err(Errno::INTR) => continue,
                Err(Errno::IO) => return Err(io::ErrorKind::BrokenPipe.into()),
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// Sets the terminal size; if it changed, the kernel sends SIGWINCH to
    /// the terminal's foreground process group.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        rustix::termios::tcsetwinsize(&self.master, winsize(cols, rows))
            .context("resizing the terminal")
    }

    /// Sends one of the allowed signals (see `signal_by_name`) to the
    /// agent: with a session helper, INT, QUIT, TSTP, CONT, WINCH and STOP
    /// go to the terminal's foreground group, TERM and HUP to the helper
    /// (which ends the session), and KILL ends every process of it at once;
    /// without one, all go to the child's process group.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        let Some(&(_, sig)) = ALLOWED_SIGNALS.iter().find(|(_, s)| s.as_raw() == signal) else {
            bail!(
                "signal {signal} may not be sent to an agent (allowed: INT, TERM, KILL, HUP, \
                 QUIT, WINCH, CONT, STOP, TSTP)"
            );
        };
        if self.reaped {
            bail!("the agent has ended");
        }
        if self.helper != Helper::None {
            return self.signal_through_helper(sig);
        }
        match rustix::process::kill_process_group(self.pid, sig) {
            Err(Errno::SRCH) => bail!("no process of the agent is left"),
            other => other.with_context(|| format!("sending signal {signal} to the agent")),
        }
    }

    fn signal_through_helper(&mut self, sig: Signal) -> Result<()> {
        let to_helper = |sig| match self.helper_pid() {
            Some(helper) => rustix::process::kill_process(helper, sig)
                .with_context(|| format!("sending signal {} to the session", sig.as_raw())),
            None => bail!("the session's helper is not running"),
        };
        match sig {
            Signal::KILL => {
                self.kill_all();
                Ok(())
            }
            Signal::TERM | Signal::HUP => to_helper(sig),
            _ => match self.foreground() {
                Some(group) => match rustix::process::kill_process_group(group, sig) {
                    Err(Errno::SRCH) => bail!("no process of the agent is left"),
                    other => other
                        .with_context(|| format!("sending signal {} to the agent", sig.as_raw())),
                },
                // The agent does not own the terminal (yet, or any more):
                // the helper forwards it to the agent's group. Not STOP,
                // which would stop the helper instead.
                None if sig == Signal::STOP => bail!("the agent does not own the terminal"),
                None => to_helper(sig),
            },
        }
    }

    /// The terminal's foreground group if it is not the child's own (the
    /// helper's or the sandbox's) and (on Linux) a process of the session
    /// is in it: a group number the kernel still reports for a group that
    /// has ended could meanwhile be someone else's.
    fn foreground(&self) -> Option<Pid> {
        let group = rustix::termios::tcgetpgrp(&self.master).ok()?;
        if group == self.pid {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            let raw = group.as_raw_nonzero().get();
            if !procfs::members(self.pid).iter().any(|p| p.pgrp == raw) {
                return None;
            }
        }
        Some(group)
    }

    /// The session helper's pid, if it runs.
    fn helper_pid(&self) -> Option<Pid> {
        self.helper_chain().last().copied()
    }

    /// The processes from the child down to the session helper, both
    /// included; empty if there is no helper or it has ended. A helper below
    /// a sandbox is the shallowest descendant running Ringlet's binary.
    fn helper_chain(&self) -> Vec<Pid> {
        if self.reaped || self.exit.is_some() {
            return Vec::new();
        }
        match self.helper {
            Helper::None => Vec::new(),
            Helper::Leader => vec![self.pid],
            #[cfg(target_os = "linux")]
            Helper::Below => {
                let table = procfs::all();
                let below = procfs::descendants_in(&table, self.pid.as_raw_nonzero().get());
                let Some(helper) = below.iter().find(|p| procfs::runs_this_binary(p.pid)) else {
                    return Vec::new();
                };
                // Up from the helper to the child; bounded, as the table is
                // read a process at a time and could hold a reused pid.
                let mut chain = vec![helper.pid];
                while let Some(node) = below.iter().find(|p| Some(&p.pid) == chain.last()) {
                    if node.ppid == self.pid.as_raw_nonzero().get() || chain.len() > below.len() {
                        break;
                    }
                    chain.push(node.ppid);
                }
                chain.push(self.pid.as_raw_nonzero().get());
                chain.reverse();
                chain.into_iter().filter_map(Pid::from_raw).collect()
            }
            #[cfg(not(target_os = "linux"))]
            Helper::Below => Vec::new(),
        }
    }

    /// SIGKILL for every process of the session: first every descendant of
    /// the child but the chain down to the helper (which, alive, keeps
    /// every orphan below it), again until none is left, then the chain.
    /// Without a helper: the child's group.
    fn kill_all(&mut self) {
        #[cfg(target_os = "linux")]
        if self.helper != Helper::None && !self.reaped {
            let chain: Vec<i32> =
                self.helper_chain().iter().map(|p| p.as_raw_nonzero().get()).collect();
            procfs::kill_descendants(self.pid, &chain, 100);
            for &pid in chain.iter().rev() {
                procfs::signal_if(pid, Signal::KILL, |_| true);
            }
            procfs::kill_descendants(self.pid, &[], 100);
        }
        if !self.reaped {
            let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
        }
    }

    /// The child's pid, also its process group and session id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// The exit, if the agent has exited. Does not reap (see the module
    /// comment); the exit is kept once known.
    pub fn try_wait(&mut self) -> Result<Option<Exit>> {
        if self.exit.is_none() && !self.reaped {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            self.exit = wait(self.pid, options).context("checking on the agent")?;
        }
        Ok(self.exit)
    }

    /// Ends the session and reaps the child: SIGHUP, up to `grace`/2 to
    /// end, SIGTERM, up to `grace`/2 more, then SIGKILL. With a session
    /// helper, HUP and TERM go to the helper, which passes them on and ends
    /// what is left; the session has ended when the child has exited and
    /// (on Linux) no process of its session is alive. Without one, they go
    /// to the child's group, which has ended when the child has exited and
    /// no other process is left in it, such as a child that ignored the
    /// signals. Whatever is left then gets SIGKILL: with a helper every
    /// descendant of the child (also those that left the session), and on
    /// Linux any other process still in the child's session (say a job a
    /// shell moved to its own group). Calling it again returns the same
    /// exit at once.
    pub fn terminate(&mut self, grace: Duration) -> Exit {
        if !self.reaped {
            for sig in [Signal::HUP, Signal::TERM] {
                if self.group_ended() {
                    break;
                }
                match self.helper_pid() {
                    // The helper continues the stopped.
                    Some(helper) => {
                        let _ = rustix::process::kill_process(helper, sig);
                        let _ = rustix::process::kill_process(helper, Signal::CONT);
                    }
                    None => {
                        let _ = rustix::process::kill_process_group(self.pid, sig);
                        // Stopped processes act on HUP and TERM only once
                        // continued.
                        let _ = rustix::process::kill_process_group(self.pid, Signal::CONT);
                    }
                }
                let deadline = Instant::now() + grace / 2;
                while !self.group_ended() && sleep_until(deadline) {}
            }
            self.kill_all();
            #[cfg(target_os = "linux")]
            {
                procfs::kill_session(self.pid);
                let deadline = Instant::now() + KILL_SETTLE;
                while !procfs::members(self.pid).is_empty() && sleep_until(deadline) {}
            }
            self.reap();
        }
        // Only unknown if someone else reaped our child.
        self.exit.unwrap_or(Exit::Code(-1))
    }

    /// Whether the child has exited and no process of its group (with a
    /// helper: of its session) is alive.
    fn group_ended(&mut self) -> bool {
        // An error (ECHILD: someone else reaped it) counts as exited.
        if !matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return false;
        }
        #[cfg(target_os = "linux")]
        {
            let pgid = self.pid.as_raw_nonzero().get();
            let all = self.helper != Helper::None;
            !procfs::members(self.pid).iter().any(|m| all || m.pgrp == pgid)
        }
        #[cfg(not(target_os = "linux"))]
        true
    }

    /// Waits for the agent (after SIGKILL) and reaps it.
    fn reap(&mut self) {
        loop {
            match wait(self.pid, WaitIdOptions::EXITED) {
                Ok(exit) => {
                    self.exit = self.exit.or(exit);
                    break;
                }
                Err(Errno::INTR) => continue,
                // ECHILD: already reaped (by someone else).
                Err(_) => break,
            }
        }
        self.reaped = true;
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if !self.reaped {
            self.terminate(DROP_GRACE);
        }
    }
}

/// `waitid` for one pid, retrying on EINTR, as an `Exit`.
fn wait(pid: Pid, options: WaitIdOptions) -> rustix::io::Result<Option<Exit>> {
    let status = loop {
        match rustix::process::waitid(WaitId::Pid(pid), options) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    Ok(status.as_ref().and_then(exit_of))
}

fn exit_of(status: &WaitIdStatus) -> Option<Exit> {
    if let Some(code) = status.exit_status() {
        Some(Exit::Code(code))
    } else {
        status.terminating_signal().map(Exit::Signal)
    }
}

/// Sleeps a little, never past `deadline`; false once it has passed.
fn sleep_until(deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    thread::sleep(left.min(Duration::from_millis(10)));
    true
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    // A zero size confuses full-screen programs; one cell is the least.
    Winsize { ws_row: rows.max(1), ws_col: cols.max(1), ws_xpixel: 0, ws_ypixel: 0 }
}

/// A new terminal: the master (non-blocking) and the slave, both
/// close-on-exec, the size set.
fn open_pair(cols: u16, rows: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let slave = open_slave(&master, flags)?;
    rustix::termios::tcsetwinsize(&master, winsize(cols, rows))?;
    rustix::io::ioctl_fionbio(&master, true)?;
    Ok((master, slave))
}

/// Opens the slave through the master (TIOCGPTPEER, Linux 4.13+), which
/// needs no path lookup in /dev/pts, or else by name.
#[cfg(target_os = "linux")]
fn open_slave(master: &OwnedFd, flags: OpenptFlags) -> io::Result<OwnedFd> {
    match rustix::pty::ioctl_tiocgptpeer(master, flags) {
        Err(Errno::NOTTY | Errno::INVAL) => open_slave_by_name(master),
        other => Ok(other?),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_slave(master: &OwnedFd, _flags: OpenptFlags) -> io::Result<OwnedFd> {
    open_slave_by_name(master)
}

fn open_slave_by_name(master: &OwnedFd) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let name = rustix::pty::ptsname(master, Vec::new())?;
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(name.as_c_str(), flags, Mode::empty())?)
}

/// Sets every classic signal back to its default action in the child.
/// Caught signals are reset by exec anyway; this is for the ones the daemon
/// inherited as ignored (a daemon started with `&` from a script ignores
/// SIGINT and SIGQUIT, one started by `nohup` SIGHUP), which exec would pass
/// on to the agent. Async-signal-safe: signal(2) only.
pub(crate) fn reset_signal_dispositions() {
    unsafe extern "C" {
        // `sighandler_t` is a pointer-sized function pointer; SIG_DFL is 0
        // on every Unix.
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIG_DFL: usize = 0;
    for signum in 1..32 {
        // SAFETY: signal(2) with SIG_DFL installs no handler, touches no
        // memory of ours, and is async-signal-safe (POSIX). SIGKILL, SIGSTOP
        // and numbers the platform does not have fail with EINVAL, ignored.
        unsafe {
            signal(signum, SIG_DFL);
        }
    }
}

/// A spawn error that says what is wrong with the program.
pub(super) fn spawn_error(program: &Path, e: io::Error) -> anyhow::Error {
    let program = program.display();
    match e.kind() {
        io::ErrorKind::NotFound => {
            anyhow!("cannot start {program}: not found (or its #! interpreter is missing)")
        }
        io::ErrorKind::PermissionDenied => anyhow!("cannot start {program}: not executable"),
        _ => anyhow::Error::new(e).context(format!("cannot start {program}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Starts `sh -c script` on an 80x24 terminal with only PATH set.
    fn sh(script: &str) -> Pty {
        let args = ["-c".to_string(), script.to_string()];
        let env = env(&[("PATH", PATH)]);
        let spec = Spec {
            program: Path::new("/bin/sh"),
            helper: Helper::None,
            args: &args,
            env: &env,
            cwd: Path::new("/"),
            cols: 80,
            rows: 24,
        };
        Pty::spawn(&spec).unwrap()
    }

    /// Reads until the output contains `needle` (or the terminal closes,
    /// when `needle` is empty); panics after a few seconds.
    fn read_until(pty: &Pty, out: &mut String, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while needle.is_empty() || !out.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {out:?}");
            match pty.read(&mut buf) {
                Ok(0) if needle.is_empty() => return,
                Ok(0) => panic!("terminal closed before {needle:?}; got {out:?}"),
                Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn wait_exit(pty: &mut Pty) -> Exit {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(exit) = pty.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Live processes whose process group is `pgid`, from /proc.
    fn live_in_group(pgid: u32) -> Vec<i32> {
        let pgid = pgid as i32;
        procfs::members(Pid::from_raw(pgid).unwrap())
            .into_iter()
            .filter(|m| m.pgrp == pgid)
            .map(|m| m.pid)
            .collect()
    }

    #[test]
    fn output_and_exit_code() {
        let mut pty = sh("echo hi; exit 3");
        let mut out = String::new();
        read_until(&pty, &mut out, "");
        assert_eq!(out, "hi\r\n");
        assert_eq!(wait_exit(&mut pty), Exit::Code(3));
        assert_eq!(pty.try_wait().unwrap(), Some(Exit::Code(3)), "the exit is kept");
        assert_eq!(pty.terminate(Duration::from_secs(1)), Exit::Code(3));
        assert_eq!(pty.terminate(Duration::from_secs(1)).code(), 3);
    }

    #[test]
    fn input_reaches_the_child() {
        let mut pty = sh("read -r line; echo \"got $line\"");
        pty.write(b"hello\n").unwrap();
        let mut out = String::new();
        read_until(&pty, &mut out, "got hello");
        assert_eq!(wait_exit(&mut pty), Exit::Code(0));
    }

    #[test]
    fn environment_is_exactly_the_given_one() {
        let env = env(&[("HOME", "/nowhere"), ("RINGLET_PTY_TEST", "a b")]);
        let spec = Spec {
            program: Path::new("/usr/bin/env"),
            helper: Helper::None,
            args: &[],
            env: &env,
            cwd: Path::new("/tmp"),
            cols: 80,
            rows: 24,
        };
        let mut pty = Pty::spawn(&spec).unwrap();
        let mut out = String::new();
        read_until(&pty, &mut out, "");
        let mut lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
        lines.sort();
        assert_eq!(lines, ["HOME=/nowhere", "RINGLET_PTY_TEST=a b"]);
        assert_eq!(wait_exit(&mut pty), Exit::Code(0));
    }

    #[test]
    fn working_directory_is_the_given_one() {
        let mut pty = sh("pwd");
        let mut out = String::new();
        read_until(&pty, &mut out, "");
        assert_eq!(out, "/\r\n");
        assert_eq!(wait_exit(&mut pty), Exit::Code(0));
    }

    #[test]
    fn initial_size_and_resize() {
        let mut pty = sh("stty size; trap 'stty size' WINCH; echo ready; \
             while :; do sleep 0.02; done");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        assert!(out.starts_with("24 80\r\n"), "{out:?}");
        pty.resize(100, 30).unwrap();
        read_until(&pty, &mut out, "30 100");
        assert_eq!(pty.terminate(Duration::from_secs(1)), Exit::Signal(Signal::HUP.as_raw()));
    }

    #[test]
    fn child_leads_a_session_on_the_terminal() {
        // pid (comm) state ppid pgrp session tty_nr tpgid; `read` is a
        // builtin, so $$ is the child itself.
        let mut pty = sh("read -r s < /proc/$$/stat; echo \"$s\"; [ -t 0 ] && echo on-a-tty");
        let mut out = String::new();
        read_until(&pty, &mut out, "");
        assert!(out.contains("on-a-tty"), "{out:?}");
        let stat = out.lines().next().unwrap();
        let fields: Vec<&str> =
            stat[stat.rfind(')').unwrap() + 1..].split_ascii_whitespace().collect();
        let pid = pty.pid().to_string();
        assert_eq!(stat.split(' ').next(), Some(pid.as_str()));
        assert_eq!(fields[2], pid, "process group");
        assert_eq!(fields[3], pid, "session");
        assert_ne!(fields[4], "0", "controlling terminal");
        assert_eq!(fields[5], pid, "foreground process group of the terminal");
        assert_eq!(wait_exit(&mut pty), Exit::Code(0));
    }

    #[test]
    fn signals_reach_the_group() {
        let mut pty = sh("trap 'echo got-int; exit 7' INT; echo ready; \
             while :; do sleep 0.02; done");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        pty.signal(Signal::INT.as_raw()).unwrap();
        read_until(&pty, &mut out, "got-int");
        assert_eq!(wait_exit(&mut pty), Exit::Code(7));
    }

    #[test]
    fn only_allowed_signals() {
        let mut pty = sh("sleep 1000");
        let err = pty.signal(Signal::USR1.as_raw()).unwrap_err();
        assert!(err.to_string().contains("may not be sent"), "{err}");
        assert_eq!(signal_by_name("SIGINT"), Some(Signal::INT.as_raw()));
        assert_eq!(signal_by_name("term"), Some(Signal::TERM.as_raw()));
        assert_eq!(signal_by_name("9"), Some(9));
        assert_eq!(signal_by_name("USR1"), None);
        assert_eq!(signal_by_name("10"), None);
    }

    #[test]
    fn terminate_escalates_to_kill() {
        let mut pty = sh("trap '' HUP TERM; echo ready; sleep 1000");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        let pgid = pty.pid();
        assert!(!live_in_group(pgid).is_empty());
        let started = Instant::now();
        let exit = pty.terminate(Duration::from_millis(400));
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(exit, Exit::Signal(Signal::KILL.as_raw()));
        assert_eq!(exit.code(), 137);
        assert_eq!(live_in_group(pgid), Vec::<i32>::new());
    }

    #[test]
    fn terminate_ends_a_child_that_stays_in_the_group() {
        // The shell dies of SIGHUP at once; its child ignores HUP and TERM.
        let mut pty = sh("(trap '' HUP TERM; echo ready; exec sleep 1000) & wait");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        let pgid = pty.pid();
        let exit = pty.terminate(Duration::from_millis(400));
        assert_eq!(exit, Exit::Signal(Signal::HUP.as_raw()));
        assert_eq!(live_in_group(pgid), Vec::<i32>::new());
    }

    #[test]
    fn terminate_gives_a_straggler_its_term() {
        // The shell dies of SIGHUP at once; its child ignores HUP but gets
        // SIGTERM, and the grace to act on it, before any SIGKILL.
        let mut pty = sh("(trap '' HUP; trap 'echo got-term; exit' TERM; echo ready; \
             while :; do sleep 0.02; done) & wait");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        assert_eq!(pty.terminate(Duration::from_secs(2)), Exit::Signal(Signal::HUP.as_raw()));
        read_until(&pty, &mut out, "got-term");
    }

    #[test]
    fn ignored_signals_are_not_inherited() {
        // SAFETY: SIG_IGN for SIGUSR2, which nothing in this test binary
        // uses, installs no handler; the call has no memory effects.
        unsafe {
            unsafe extern "C" {
                fn signal(signum: i32, handler: usize) -> usize;
            }
            signal(Signal::USR2.as_raw(), 1); // SIG_IGN
        }
        let mut pty = sh("grep SigIgn /proc/$$/status");
        let mut out = String::new();
        read_until(&pty, &mut out, "");
        let mask = out.trim().strip_prefix("SigIgn:").unwrap().trim();
        let mask = u64::from_str_radix(mask, 16).unwrap();
        // Signals 32 and up are glibc's own (SIGCANCEL, SIGSETXID): it may
        // ignore them in a fresh child and installs its handlers at start.
        assert_eq!(mask & 0x7fff_ffff, 0, "{out:?}");
        assert_eq!(wait_exit(&mut pty), Exit::Code(0));
    }

    #[test]
    fn terminate_is_quick_when_the_group_obeys() {
        let mut pty = sh("sleep 1000 & echo ready; wait");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        let pgid = pty.pid();
        let started = Instant::now();
        assert_eq!(pty.terminate(Duration::from_secs(4)), Exit::Signal(Signal::HUP.as_raw()));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(live_in_group(pgid), Vec::<i32>::new());
    }

    #[test]
    fn terminate_continues_a_stopped_group() {
        let mut pty = sh("echo ready; sleep 1000");
        let mut out = String::new();
        read_until(&pty, &mut out, "ready");
        pty.signal(Signal::STOP.as_raw()).unwrap();
        let started = Instant::now();
        assert_eq!(pty.terminate(Duration::from_secs(4)), Exit::Signal(Signal::HUP.as_raw()));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }

    #[test]
    fn terminate_kills_other_groups_of_the_session() {
        // With job control on, the shell puts its background job in a group
        // of its own, still in the session; the job ignores HUP and TERM.
        let mut pty = sh("set -m; (trap '' HUP TERM; read -r s < /proc/self/stat; \
             echo \"job $s\"; exec sleep 1000) & wait");
        let mut out = String::new();
        read_until(&pty, &mut out, "job ");
        read_until(&pty, &mut out, "\n");
        let sid = pty.pid();
        let job = out.lines().find_map(|l| l.strip_prefix("job ")).unwrap();
        let job_pgrp = job[job.rfind(')').unwrap() + 1..].split_ascii_whitespace().nth(2).unwrap();
        assert_ne!(job_pgrp, sid.to_string(), "the job has a group of its own");
        pty.terminate(Duration::from_millis(200));
        let left = procfs::members(Pid::from_raw(sid as i32).unwrap());
        assert_eq!(left.iter().map(|m| m.pid).collect::<Vec<_>>(), Vec::<i32>::new());
    }

    #[test]
    fn drop_ends_the_group() {
        let pty = sh("sleep 1000 & echo ready; sleep 1000");
        let pgid = pty.pid();
        drop(pty);
        assert_eq!(live_in_group(pgid), Vec::<i32>::new());
    }

    #[test]
    fn signal_after_the_end_is_an_error() {
        let mut pty = sh("exit 0");
        pty.terminate(Duration::from_secs(1));
        assert!(pty.signal(Signal::INT.as_raw()).is_err());
    }

    #[test]
    fn spawn_errors_name_the_problem() {
        let spec = |program: &'static str, cwd: &'static str| Spec {
            program: Path::new(program),
            helper: Helper::None,
            args: &[],
            env: &[],
            cwd: Path::new(cwd),
            cols: 80,
            rows: 24,
        };
        let err = Pty::spawn(&spec("/nonexistent/agent", "/")).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/agent") && err.contains("not found"), "{err}");
        let err = Pty::spawn(&spec("/bin/sh", "/nonexistent/dir")).err().unwrap().to_string();
        assert!(err.contains("/bin/sh") && err.contains("/nonexistent/dir"), "{err}");
        let err = Pty::spawn(&spec("/etc/passwd", "/")).err().unwrap().to_string();
        assert!(err.contains("/etc/passwd") && err.contains("not executable"), "{err}");
    }
}
