//! `ringlet ui`: the web UI's address with a one-time login ticket in its
//! fragment, opened in the user's browser where there is one. The ticket
//! (not a token) is the only secret that ever reaches a browser's URL bar
//! or history, and the page spends it at once for a browser session of its
//! own. `--sessions` lists those sessions, `--revoke <id>|all` ends them.
//!
//! Before a link is handed out, the daemon's port is checked: another
//! user's program listening on it (beside the daemon on another loopback
//! address, or in its place) could serve a look-alike page on the same
//! origin, which can read the session the page keeps there. No link is
//! printed or opened then.

use anyhow::{Result, bail};

use super::{Ctx, Invocation, Out, Table, fetch};
use crate::protocol::{BrowserSession, Request};

pub fn run(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    if inv.flag("sessions") {
        return sessions(ctx);
    }
    if let Some(which) = inv.value("revoke") {
        return revoke(ctx, which);
    }
    let mut out = Out::new();
    let data = crate::client::request(&ctx.paths()?, &Request::UiTicket)?;
    let url = data["url"].as_str().unwrap_or_default();
    check_listener(url)?;
    if ctx.global.json {
        out.json(&data)?;
        return Ok(out.finish()?);
    }
    let secs = data["expires_in_secs"].as_u64().unwrap_or(60);
    let opener = if inv.flag("no-open") { None } else { browser_opener() };
    let opened = opener.is_some_and(|program| open(program, url));
    if opened {
        out.line("Opened the web UI in your browser.")?;
    }
    out.line(format_args!("{url}"))?;
    out.line(format_args!(
        "(the link signs in once, within {secs} s; run `ringlet ui` again for a new one)"
    ))?;
    Ok(out.finish()?)
}

/// Refuses a link to a port where another uid listens (see the module's
/// comment).
fn check_listener(url: &str) -> Result<()> {
    let port = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| host.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok());
    let Some(port) = port else { bail!("the daemon answered with an unexpected address: {url}") };
    let foreign = crate::daemon::http::owner::foreign_listeners(port);
    if let Some((addr, uid)) = foreign.first() {
        bail!(
            "not opening the web UI: {addr} is held by uid {uid}, not by you (uid {}). \
             A page served there has the web UI's origin and could pose as Ringlet's and \
             read its sign-in. Stop that program (or ask who runs it), or move the daemon \
             with [daemon] http_port",
            rustix::process::geteuid().as_raw()
        );
    }
    Ok(())
}

fn sessions(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let request = Request::BrowserSessionsList { current: None };
    let Some(list) = fetch::<Vec<BrowserSession>>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    if list.is_empty() {
        out.line("no browser sessions (`ringlet ui` signs a browser in)")?;
        return Ok(out.finish()?);
    }
    let mut table = Table::new(&["ID", "SIGNED IN", "LAST USED", "EXPIRES"]);
    for s in list {
        table.row(vec![s.id, s.created_at, s.last_used, s.expires_at]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

fn revoke(ctx: &Ctx, which: &str) -> Result<()> {
    let mut out = Out::new();
    let request = match which {
        "all" => Request::BrowserSessionsRevokeAll,
        id => Request::BrowserSessionsRevoke { id: id.into() },
    };
    let Some(data) = fetch::<serde_json::Value>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    let n = data["revoked"].as_u64().unwrap_or(0);
    match which {
        "all" => out.line(format_args!("revoked {n} browser session(s)"))?,
        id => out.line(format_args!("revoked browser session {id}"))?,
    }
    Ok(out.finish()?)
}

/// The program that opens a URL in the desktop's browser, when there is a
/// desktop: none over plain SSH or on a console, where the URL is printed.
fn browser_opener() -> Option<&'static str> {
    if cfg!(target_os = "macos") {
        return Some("open");
    }
    let graphical = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    graphical.then_some("xdg-open")
}

/// Starts `program url` detached from our terminal; false if it cannot run.
/// Not waited for: a browser started by it may live on.
fn open(program: &str, url: &str) -> bool {
    std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}
