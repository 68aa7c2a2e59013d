//! `ringlet doctor`: checks what remote terminals, the HTTP API and the
//! profiles' proxies need and says what to fix. Never starts a daemon (it only reports on one).

use anyhow::Result;
use serde_json::json;

use super::{Ctx, Exit, Out};
use crate::client;
use crate::protocol::Request;
use crate::terminal::sandbox;

pub fn run(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let mut checks = Vec::new();
    // The sandbox remote sessions run in by default.
    if cfg!(target_os = "macos") {
        let found = std::path::Path::new(sandbox::SANDBOX_EXEC).is_file();
        let detail = if found {
            format!("{} is there", sandbox::SANDBOX_EXEC)
        } else {
            format!("{} is missing: remote sessions need --no-sandbox", sandbox::SANDBOX_EXEC)
        };
        checks.push(("sandbox", found, detail));
    } else {
        let path = std::env::var_os("PATH");
        match sandbox::check_bwrap(path.as_deref()) {
            Ok(bwrap) => {
                checks.push(("sandbox", true, format!("bwrap works ({})", bwrap.display())))
            }
            Err(e) => checks.push(("sandbox", false, e.to_string())),
        }
    }
    match client::request_if_running(&paths, &Request::Status)? {
        Some(status) => {
            checks.push(("daemon", true, format!("running (pid {})", status["pid"])));
            match status["http"].as_str() {
                Some(addr) => checks.push(("http", true, format!("listening on http://{addr}"))),
                None => checks.push((
                    "http",
                    false,
                    match status["http_error"].as_str() {
                        Some(why) => format!("not listening: {why}"),
                        None => "not listening; the daemon log says why".into(),
                    },
                )),
            }
        }
        None => checks.push(("daemon", true, "not running (any command starts it)".into())),
    }
    // Profiles whose key is gone (the running daemon checked them at start).
    let list = client::request_if_running(&paths, &Request::ProfilesList { agent: None })?;
    if let Some(profiles) = list.as_ref().and_then(|l| l["profiles"].as_array()) {
        let missing: Vec<&str> = profiles
            .iter()
            .filter(|p| p["key_missing"] == true)
            .filter_map(|p| p["alias"].as_str())
            .collect();
        if missing.is_empty() {
            checks.push(("keys", true, format!("{} profile(s), every key stored", profiles.len())));
        } else {
            checks.push((
                "keys",
                false,
                format!(
                    "no API key stored for {}: delete the profile and create it again",
                    missing.join(", ")
                ),
            ));
        }
    }
    // Each proxy's health, as the daemon's supervisor sees it.
    if let Some(proxies) =
        client::request_if_running(&paths, &Request::ProxyStatus { alias: None })?
        && let Some(proxies) = proxies.as_array()
    {
        for p in proxies {
            let alias = p["alias"].as_str().unwrap_or("?");
            let port = p["port"].as_u64().map_or("-".to_string(), |p| p.to_string());
            let state = p["state"].as_str().unwrap_or("?");
            let (ok, detail) = match state {
                "running" => match (p["pid"].as_u64(), p["stats_error"].as_str()) {
                    (Some(pid), None) => {
                        (true, format!("{alias}: running on port {port} (pid {pid})"))
                    }
                    (_, why) => (
                        false,
                        format!(
                            "{alias}: running on port {port} but {}",
                            why.unwrap_or("unhealthy")
                        ),
                    ),
                },
                "failed" => (
                    false,
                    format!(
                        "{alias}: failed: {} (`ringlet proxy start {alias}` tries again)",
                        p["last_error"].as_str().unwrap_or("no reason recorded")
                    ),
                ),
                "starting" => (
                    true,
                    match p["last_error"].as_str() {
                        Some(why) => format!("{alias}: restarting on port {port} after: {why}"),
                        None => format!("{alias}: starting on port {port}"),
                    },
                ),
                other => (true, format!("{alias}: {other} (port {port})")),
            };
            checks.push(("proxy", ok, detail));
        }
    }
    let mut out = Out::new();
    let failed = checks.iter().filter(|(_, ok, _)| !ok).count();
    if ctx.global.json {
        let list: Vec<_> = checks
            .iter()
            .map(|(name, ok, detail)| json!({"check": name, "ok": ok, "detail": detail}))
            .collect();
        out.json(&json!({"checks": list, "ok": failed == 0}))?;
    } else {
        for (name, ok, detail) in &checks {
            out.line(format_args!("{} {name:<8} {detail}", if *ok { "ok  " } else { "FAIL" }))?;
        }
    }
    out.finish()?;
    if failed > 0 {
        return Err(Exit { code: 1, message: None }.into());
    }
    Ok(())
}
