//! `ringlet daemon [--foreground] [--stay-alive]`, `daemon status` and
//! `daemon stop`. Status and stop only ever dial; they never start a daemon.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::{Ctx, Exit, Invocation, Out};
use crate::client::{self, Started};
use crate::daemon;
use crate::protocol::{DaemonStatus, Request};

/// Exit code of `daemon status` when no daemon runs (as in LSB init scripts).
const NOT_RUNNING: u8 = 3;
/// How long `daemon stop` waits for the daemon to release its lock.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn start(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let paths = ctx.paths()?;
    let stay_alive = inv.flag("stay-alive");
    if inv.flag("foreground") {
        let log_file = inv.value("log-file").map(PathBuf::from);
        return daemon::run(paths, daemon::Options { stay_alive, log_file });
    }
    let started = client::start_daemon(&paths, stay_alive)?;
    let mut out = Out::new();
    match started {
        Started::Spawned { pid } if ctx.global.json => {
            out.json(&json!({"started": true, "pid": pid, "socket": paths.socket}))?
        }
        Started::Spawned { pid } => {
            out.line(format_args!("daemon started (pid {pid}) on {}", paths.socket.display()))?
        }
        Started::AlreadyRunning if ctx.global.json => {
            out.json(&json!({"started": false, "socket": paths.socket}))?
        }
        Started::AlreadyRunning => {
            out.line(format_args!("daemon already running on {}", paths.socket.display()))?
        }
    }
    Ok(out.finish()?)
}

pub fn status(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let mut out = Out::new();
    let Some(data) = client::request_if_running(&paths, &Request::Status)? else {
        if ctx.global.json {
            out.json(&json!({"running": false, "socket": paths.socket}))?;
        } else {
            out.line(format_args!("daemon is not running (socket {})", paths.socket.display()))?;
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
    out.line(format_args!("daemon is running (pid {})", s.pid))?;
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

pub fn stop(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let mut out = Out::new();
    if client::request_if_running(&paths, &Request::Shutdown)?.is_none() {
        if ctx.global.json {
            out.json(&json!({"stopped": false, "running": false}))?;
        } else {
            out.line("daemon is not running")?;
        }
        return Ok(out.finish()?);
    }
    // The daemon holds its lock until the very end of its shutdown, so
    // taking the lock proves it is gone (and its socket removed).
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let file = OpenOptions::new().read(true).write(true).open(paths.daemon_lock());
        let released = match file {
            Ok(f) => fd_lock::RwLock::new(f).try_write().is_ok(),
            Err(_) => true,
        };
        if released {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the daemon accepted the stop request but still runs after {} s",
                STOP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
    if ctx.global.json {
        out.json(&json!({"stopped": true}))?;
    } else {
        out.line("daemon stopped")?;
    }
    Ok(out.finish()?)
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

fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}
