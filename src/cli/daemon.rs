//! `ringlet daemon [--foreground] [--stay-alive]`, `daemon status` and
//! `daemon stop`. Status and stop only ever dial; they never start a daemon.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::{Ctx, Exit, Invocation, Out, prompt};
use crate::client::{self, Started};
use crate::daemon;
use crate::protocol::{DaemonStatus, Request, TerminalInfo};

/// Exit code of `daemon status` when no daemon runs (as in LSB init scripts).
const NOT_RUNNING: u8 = 3;
/// How long `daemon stop` waits for the daemon to exit (ending sessions
/// takes a 2 s grace, in-flight requests another 2 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn start(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let paths = ctx.paths()?;
    let stay_alive = inv.flag("stay-alive");
    if inv.flag("foreground") {
        let log_file = inv.value("log-file").map(PathBuf::from);
        // Only a daemon meant to stay (the user unit's form): a plain
        // `--foreground` beside a running daemon is refused as ever (the
        // socket of a live daemon is never taken from it), and a detached
        // one (`--log-file`) was spawned by a CLI that found none running.
        if stay_alive && log_file.is_none() {
            take_over(&paths)?;
        }
        return daemon::run(paths, daemon::Options { stay_alive, log_file });
    }
    let started = client::start_daemon(&paths, stay_alive)?;
    let mut out = Out::new();
    // A daemon that was already running (started on demand, so it would
    // idle out) is switched to stay alive, as asked.
    let switched = if stay_alive && started == Started::AlreadyRunning {
        let reply = client::request(&paths, &Request::DaemonStayAlive)?;
        Some(reply["changed"].as_bool().unwrap_or(false))
    } else {
        None
    };
    match started {
        Started::Spawned { pid } if ctx.global.json => {
            out.json(&json!({"started": true, "pid": pid, "socket": paths.socket}))?
        }
        Started::Spawned { pid } => {
            out.line(format_args!("daemon started (pid {pid}) on {}", paths.socket.display()))?
        }
        Started::AlreadyRunning if ctx.global.json => out.json(&json!({
            "started": false,
            "socket": paths.socket,
            "stay_alive_switched": switched == Some(true),
        }))?,
        Started::AlreadyRunning => {
            out.line(format_args!("daemon already running on {}", paths.socket.display()))?;
            match switched {
                Some(true) => out.line("  it now stays alive (no exit when idle)")?,
                Some(false) => out.line("  it already stays alive")?,
                None => {}
            }
        }
    }
    Ok(out.finish()?)
}

/// Before a foreground daemon that stays alive starts (the user unit's
/// `daemon --foreground --stay-alive`): a daemon a CLI started on demand,
/// which would exit when idle, is asked to stop and waited for, so this one
/// takes its place rather than failing on its lock (and the unit stopping
/// after its start limit). One that stays alive was asked to by someone and
/// is left alone, as is one running terminal sessions, which stopping it
/// would end: the daemon then reports the lock as it always did.
fn take_over(paths: &crate::paths::Paths) -> Result<()> {
    let Some(data) = client::request_if_running(paths, &Request::Status)? else { return Ok(()) };
    let running: DaemonStatus = serde_json::from_value(data)?;
    if running.stay_alive {
        return Ok(());
    }
    if running.terminals_running > 0 {
        bail!(
            "a daemon started on demand (pid {}) runs {} terminal session(s), which taking \
             over would end; stop it first (`ringlet daemon stop`), then start this one again",
            running.pid,
            running.terminals_running
        );
    }
    crate::info!("taking over from the daemon started on demand (pid {})", running.pid);
    // Opened before the daemon is told to go, so the pid cannot be reused
    // by another process meanwhile.
    let exited = ExitWatch::new(running.pid);
    if client::request_if_running(paths, &Request::Shutdown)?.is_some() {
        wait_until_gone(paths, exited)?;
    }
    Ok(())
}

pub fn status(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let mut out = Out::new();
    let Some(data) = client::request_if_running(&paths, &Request::Status)? else {
        if ctx.global.json {
            out.json(&json!({"running": false, "socket": paths.socket}))?;
        } else {
            out.line(format_args!(
                "daemon is {} (socket {})",
                super::style::state("not running"),
                paths.socket.display()
            ))?;
        }
        out.finish()?;
        return Err(Exit { code: NOT_RUNNING, message: None }.into());
    };
    if ctx.global.json {
        let mut data = data;
        data["running"] = json!(true);
        out.json(&data)?;
        return Ok(out.finish()?);
    }
    let s: DaemonStatus = serde_json::from_value(data)?;
    out.line(format_args!("daemon is {} (pid {})", super::style::state("running"), s.pid))?;
    out.line(format_args!("  version:   {} (protocol {})", s.version, s.protocol))?;
    out.line(format_args!("  uptime:    {}", human_duration(s.uptime_secs)))?;
    out.line(format_args!("  socket:    {}", s.socket))?;
    out.line(format_args!("  config:    {}", s.config_dir))?;
    let idle = match s.idle_timeout_secs {
        Some(secs) => format!("exits after {secs} s idle"),
        None => "stays alive".into(),
    };
    out.line(format_args!("  lifetime:  {idle}"))?;
    out.line(format_args!("  requests:  {}", s.requests_served))?;
    out.line(format_args!("  profiles:  {}", s.profiles))?;
    out.line(format_args!(
        "  terminals: {} running, {} ended, {} clients",
        s.terminals_running, s.terminals_ended, s.terminal_clients
    ))?;
    match &s.http {
        Some(addr) => out.line(format_args!(
            "  http:      http://{addr} (open connections: {}, event subscribers: {})",
            s.http_connections, s.subscribers
        ))?,
        None => out.line("  http:      not listening (see the daemon log)")?,
    }
    Ok(out.finish()?)
}

/// `daemon stop [--force]`: returns once the daemon process has exited, so
/// its socket, HTTP port and lock are all free for the next one. Running
/// terminal sessions end with it: they are named, and on a terminal the
/// user is asked; elsewhere `--force` is required.
pub fn stop(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let paths = ctx.paths()?;
    let mut out = Out::new();
    let Some(status) = client::request_if_running(&paths, &Request::Status)? else {
        return not_running(ctx, out);
    };
    let pid = status["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    let sessions = if status["terminals_running"].as_u64().unwrap_or(0) > 0 {
        match client::request_if_running(&paths, &Request::TerminalList)? {
            Some(list) => serde_json::from_value::<Vec<TerminalInfo>>(list)?
                .into_iter()
                .filter(|s| s.state == "running")
                .collect(),
            None => return not_running(ctx, out),
        }
    } else {
        Vec::new()
    };
    if !sessions.is_empty() && !inv.flag("force") {
        confirm_ending(&sessions)?;
    }
    // Opened before the daemon is told to go, so the pid cannot be reused
    // by another process meanwhile.
    let exited = pid.and_then(ExitWatch::new);
    if client::request_if_running(&paths, &Request::Shutdown)?.is_none() {
        return not_running(ctx, out);
    }
    wait_until_gone(&paths, exited)?;
    let ended: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    if ctx.global.json {
        out.json(&json!({"stopped": true, "sessions_ended": ended}))?;
    } else {
        for s in &sessions {
            out.line(format_args!("ended session {} (profile {})", s.id, s.profile))?;
        }
        out.line(format_args!("daemon {}", super::style::state("stopped")))?;
    }
    Ok(out.finish()?)
}

fn not_running(ctx: &Ctx, mut out: Out) -> Result<()> {
    if ctx.global.json {
        out.json(&json!({"stopped": false, "running": false}))?;
    } else {
        out.line(format_args!("daemon is {}", super::style::state("not running")))?;
    }
    Ok(out.finish()?)
}

/// Asks on the terminal whether to end `sessions`; without one, refuses and
/// says how to go on.
fn confirm_ending(sessions: &[TerminalInfo]) -> Result<()> {
    let names: Vec<String> =
        sessions.iter().map(|s| format!("{} (profile {})", s.id, s.profile)).collect();
    let what = format!(
        "{} terminal session{} running: {}",
        sessions.len(),
        if sessions.len() == 1 { " is" } else { "s are" },
        names.join(", ")
    );
    if !rustix::termios::isatty(std::io::stdin()) {
        bail!("{what}; stopping the daemon ends them: run `ringlet daemon stop --force`");
    }
    let answer = prompt::ask(&format!("{what}. Stop the daemon and end them? (yes/no)"), "no")?;
    if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        return Err(Exit { code: 1, message: Some("daemon stop: not stopped".into()) }.into());
    }
    Ok(())
}

/// Notices the daemon's exit: a pidfd (Linux), which becomes readable when
/// the process has ended and so has closed every descriptor it held (its
/// socket, HTTP port and lock), even while it waits to be reaped.
struct ExitWatch(std::os::fd::OwnedFd);

impl ExitWatch {
    fn new(pid: u32) -> Option<ExitWatch> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                .ok()
                .map(ExitWatch)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = pid;
            None
        }
    }

    fn exited(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        rustix::event::poll(&mut fds, Some(&now)).is_ok_and(|n| n > 0)
    }
}

/// Waits until the daemon process has exited (where a pidfd is available:
/// an exited process holds nothing, its lock included), else until its lock
/// is free. Not both: a command racing the stop may start the next daemon,
/// which takes the lock again the moment the old one lets go.
fn wait_until_gone(paths: &crate::paths::Paths, exited: Option<ExitWatch>) -> Result<()> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let gone = match &exited {
            Some(watch) => watch.exited(),
            None => match OpenOptions::new().read(true).write(true).open(paths.daemon_lock()) {
                Ok(f) => fd_lock::RwLock::new(f).try_write().is_ok(),
                Err(_) => true,
            },
        };
        if gone {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the daemon accepted the stop request but still runs after {} s",
                STOP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// `daemon token [--rotate]`: the HTTP API's bearer token, for scripts
/// (`curl -H "Authorization: Bearer $(ringlet daemon token)"`).
pub fn token(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let request = Request::DaemonToken { rotate: inv.flag("rotate") };
    let mut out = Out::new();
    let Some(data) = super::fetch::<serde_json::Value>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    out.line(data["token"].as_str().unwrap_or_default())?;
    Ok(out.finish()?)
}

/// `daemon events`: what the daemon kept of its recent events, oldest first,
/// one line each (time, type, data); `--json` gives the frames.
pub fn events(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let limit = inv.parsed("limit", "a number")?;
    let events = inv.value("type").map(|t| t.split(',').map(str::to_owned).collect());
    let request = Request::EventsRecent { limit, events: events.unwrap_or_default() };
    let mut out = Out::new();
    let Some(data) = super::fetch::<serde_json::Value>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    // A table, so the time reads as a person's ("3 minutes ago"); `--json`
    // keeps the RFC 3339 instant.
    let mut table = super::Table::new(&["TIME", "EVENT", "DATA"]);
    for e in data["events"].as_array().into_iter().flatten() {
        let stamp = e["timestamp"].as_str().unwrap_or_default();
        let kind = e["type"].as_str().unwrap_or_default();
        table.row(vec![stamp.to_string(), kind.to_string(), e["data"].to_string()]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}
