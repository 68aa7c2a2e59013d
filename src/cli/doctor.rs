//! `ringlet doctor`: checks what remote terminals, the HTTP API and the
//! profiles' proxies need and says what to fix. The CLI's own checks (the
//! sandbox as found on the user's PATH, which `profiles run --remote` and
//! `terminal` sessions started here use) come first, then the daemon's
//! (`crate::doctor`, the same the web UI's Doctor page shows) when one
//! runs. Never starts a daemon (it only reports on one). Exits 1 when a
//! check fails; a warning does not.

use anyhow::Result;
use serde_json::json;

use super::{Ctx, Exit, Out};
use crate::client;
use crate::doctor::{Check, Status};
use crate::protocol::Request;
use crate::terminal::sandbox;

pub fn run(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let mut checks = vec![local_sandbox()];
    match client::request_if_running(&paths, &Request::Status)? {
        Some(status) => {
            checks.push(Check::new(
                "daemon",
                Status::Ok,
                format!("running (pid {})", status["pid"]),
            ));
            match client::request_if_running(&paths, &Request::Doctor) {
                Ok(Some(reply)) => {
                    let theirs: Vec<Check> =
                        serde_json::from_value(reply["checks"].clone()).unwrap_or_default();
                    // The daemon's own line says the same as ours, and more.
                    checks.pop();
                    checks.extend(theirs);
                }
                Ok(None) => {}
                Err(e) => checks.push(
                    Check::new("daemon", Status::Warn, format!("its own checks: {e:#}"))
                        .fix("ringlet daemon stop (the next command starts this version)"),
                ),
            }
        }
        None => {
            checks.push(Check::new("daemon", Status::Ok, "not running (any command starts it)"))
        }
    }
    let mut out = Out::new();
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if ctx.global.json {
        out.json(&json!({"checks": checks, "ok": failed == 0}))?;
    } else {
        for c in &checks {
            out.line(format_args!("{} {:<8} {}", c.status.label(), c.name, c.detail))?;
            if let Some(fix) = c.fix.as_deref().filter(|_| c.status != Status::Ok) {
                out.line(format_args!("              fix: {fix}"))?;
            }
        }
    }
    out.finish()?;
    if failed > 0 {
        return Err(Exit { code: 1, message: None }.into());
    }
    Ok(())
}

/// The sandbox sessions started from this shell get: bwrap on the user's
/// PATH (the CLI sends its PATH with the session), proved to work.
fn local_sandbox() -> Check {
    if cfg!(target_os = "macos") {
        let found = std::path::Path::new(sandbox::SANDBOX_EXEC).is_file();
        return if found {
            Check::new("sandbox", Status::Ok, format!("{} is there", sandbox::SANDBOX_EXEC))
        } else {
            Check::new(
                "sandbox",
                Status::Fail,
                format!("{} is missing: remote sessions need --no-sandbox", sandbox::SANDBOX_EXEC),
            )
        };
    }
    let path = std::env::var_os("PATH");
    match sandbox::check_bwrap(path.as_deref()) {
        Ok(bwrap) => {
            Check::new("sandbox", Status::Ok, format!("bwrap works ({})", bwrap.display()))
        }
        Err(e) => Check::new("sandbox", Status::Fail, e.to_string())
            .fix("or start sessions without the sandbox (--no-sandbox)"),
    }
}
