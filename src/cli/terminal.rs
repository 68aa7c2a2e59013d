//! `ringlet terminal list|info|kill|signal` and `profiles run --remote`: terminal
//! sessions the daemon runs (`terminal attach` is in attach.rs; browsers and
//! any WebSocket client attach at `/ws/terminal/{id}`).

use std::collections::BTreeMap;

use anyhow::Result;

use super::{Ctx, Invocation, Out, Table, fetch};
use crate::protocol::{Request, TerminalInfo, TerminalRequest};

pub fn list(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let Some(sessions) = fetch::<Vec<TerminalInfo>>(ctx, &Request::TerminalList, &mut out)? else {
        return Ok(out.finish()?);
    };
    if sessions.is_empty() {
        out.line("no terminal sessions")?;
        return Ok(out.finish()?);
    }
    let mut table = Table::new(&[
        "ID", "PROFILE", "STATE", "AGENT", "PID", "SIZE", "CLIENTS", "SANDBOX", "STARTED",
    ]);
    for s in &sessions {
        table.row(vec![
            s.id.clone(),
            s.profile.clone(),
            state(s),
            agent_state(s).into(),
            s.pid.to_string(),
            format!("{}x{}", s.cols, s.rows),
            s.clients.to_string(),
            s.sandbox.clone(),
            s.created_at.clone(),
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

pub fn info(ctx: &Ctx, id: &str) -> Result<()> {
    show(ctx, &Request::TerminalInfo { id: id.into() })
}

pub fn kill(ctx: &Ctx, id: &str) -> Result<()> {
    show(ctx, &Request::TerminalKill { id: id.into() })
}

/// `terminal signal <id> <signal>`: the signal goes to the session's
/// process group, as the WebSocket's `signal` message sends it.
pub fn signal(ctx: &Ctx, id: &str, signal: &str) -> Result<()> {
    let request = Request::TerminalSignal { id: id.into(), signal: signal.into() };
    let mut out = Out::new();
    let Some(sent) = fetch::<serde_json::Value>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    out.line(format_args!("sent signal {} to session {id}", sent["signal"]))?;
    Ok(out.finish()?)
}

/// `profiles run <alias> --remote`: starts the session; in a terminal it
/// then attaches (Ctrl-] detaches, the session keeps running), otherwise
/// (scripts, `--json`) it says where the session is.
pub fn create(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let number = |name: &str, default: u16| -> Result<u16> {
        Ok(inv.parsed(name, "a number")?.unwrap_or(default))
    };
    // What the CLI's own environment would give a local run: the daemon
    // keeps the names the profile passes through.
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let request = Request::TerminalCreate(TerminalRequest {
        profile: inv.arg("alias").unwrap_or_default().into(),
        args: inv.trailing.clone(),
        cols: number("cols", 80)?,
        rows: number("rows", 24)?,
        working_dir: std::env::current_dir().ok().map(|d| d.display().to_string()),
        sandbox: !inv.flag("no-sandbox"),
        bwrap_flags: inv.value("bwrap-flags").map(String::from),
        path: std::env::var("PATH").ok(),
        env,
    });
    if ctx.global.json || !rustix::termios::isatty(std::io::stdin()) {
        return show(ctx, &request);
    }
    let mut out = Out::new();
    let Some(s) = fetch::<TerminalInfo>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    eprintln!("[session {} ({} sandbox); Ctrl-] detaches]", s.id, s.sandbox);
    super::attach::run(ctx, &s.id)
}

fn show(ctx: &Ctx, request: &Request) -> Result<()> {
    let mut out = Out::new();
    let Some(s) = fetch::<TerminalInfo>(ctx, request, &mut out)? else {
        return Ok(out.finish()?);
    };
    out.line(format_args!("session {} ({})", s.id, super::style::state(&state(&s))))?;
    out.line(format_args!("  profile:  {}", s.profile))?;
    out.line(format_args!("  command:  {}", s.command.join(" ")))?;
    out.line(format_args!("  dir:      {}", s.working_dir))?;
    out.line(format_args!("  pid:      {}", s.pid))?;
    out.line(format_args!("  size:     {}x{}", s.cols, s.rows))?;
    out.line(format_args!("  sandbox:  {}", s.sandbox))?;
    if s.agent_state.is_some() {
        out.line(format_args!("  agent:    {}", agent_state(&s)))?;
    }
    out.line(format_args!("  clients:  {}", s.clients))?;
    out.line(format_args!("  attach:   ringlet terminal attach {}", s.id))?;
    Ok(out.finish()?)
}

/// The agent's own state (`OSC 7501`): "working", "waiting for you", or
/// "-" for an agent that never says.
fn agent_state(s: &TerminalInfo) -> &'static str {
    match s.agent_state.as_deref() {
        Some("working") => "working",
        Some("waiting") => "waiting for you",
        _ => "-",
    }
}

fn state(s: &TerminalInfo) -> String {
    match s.exit_code {
        Some(code) => format!("{} ({code})", s.state),
        None => s.state.clone(),
    }
}
