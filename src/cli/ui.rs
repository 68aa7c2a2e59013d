//! `ringlet ui`: the web UI's address with a one-time login ticket in its
//! fragment, opened in the user's browser where there is one. The ticket
//! (not the token) is the only secret that ever reaches a browser's URL bar
//! or history, and the page spends it at once.

use anyhow::Result;

use super::{Ctx, Invocation, Out};
use crate::protocol::Request;

pub fn run(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let mut out = Out::new();
    let Some(data) = super::fetch::<serde_json::Value>(ctx, &Request::UiTicket, &mut out)? else {
        return Ok(out.finish()?);
    };
    let url = data["url"].as_str().unwrap_or_default();
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
