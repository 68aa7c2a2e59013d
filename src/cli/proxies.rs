//! `ringlet proxy start|stop|restart|stop-all|status|logs`: the lifecycle of
//! the profiles' routing proxies, which the daemon runs and supervises
//! (`proxy/supervisor.rs`). A thin client: every command is one request;
//! `logs --follow` asks again for what was written since, twice a second.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::{Ctx, Invocation, Out, Table, fetch};
use crate::protocol::{ProxyInfo, ProxyLog, Request};
use crate::proxy::supervisor::ProxyState;

/// How often `logs --follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub fn start(ctx: &Ctx, alias: &str) -> Result<()> {
    one(ctx, &Request::ProxyStart { alias: alias.into() })
}

pub fn stop(ctx: &Ctx, alias: &str) -> Result<()> {
    one(ctx, &Request::ProxyStop { alias: alias.into() })
}

pub fn restart(ctx: &Ctx, alias: &str) -> Result<()> {
    one(ctx, &Request::ProxyRestart { alias: alias.into() })
}

pub fn stop_all(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let Some(reply) = fetch::<Value>(ctx, &Request::ProxyStopAll, &mut out)? else {
        return Ok(out.finish()?);
    };
    let stopped: Vec<&str> =
        reply["stopped"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if stopped.is_empty() {
        out.line("no proxy was running")?;
    } else {
        out.line(format_args!("stopped: {}", stopped.join(", ")))?;
    }
    Ok(out.finish()?)
}

/// One proxy's new state, in a line.
fn one(ctx: &Ctx, request: &Request) -> Result<()> {
    let mut out = Out::new();
    let Some(p) = fetch::<ProxyInfo>(ctx, request, &mut out)? else {
        return Ok(out.finish()?);
    };
    let port = p.port.map_or("-".to_string(), |p| p.to_string());
    match p.state {
        ProxyState::Running => {
            let healthy = p
                .spawn_to_healthy_ms
                .map(|ms| format!(", healthy {ms:.0} ms after its start"))
                .unwrap_or_default();
            out.line(format_args!(
                "proxy {}: {} on 127.0.0.1:{port} (pid {}{healthy})",
                p.alias,
                super::style::state("running"),
                p.pid.map_or("-".into(), |p| p.to_string())
            ))?;
        }
        ProxyState::Stopped => out.line(format_args!(
            "proxy {}: {}; port {port} is free",
            p.alias,
            super::style::state("stopped")
        ))?,
        state => out.line(format_args!(
            "proxy {}: {}{}",
            p.alias,
            super::style::state(state.as_str()),
            p.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ))?,
    }
    Ok(out.finish()?)
}

pub fn status(ctx: &Ctx, alias: Option<&str>) -> Result<()> {
    let mut out = Out::new();
    let request = Request::ProxyStatus { alias: alias.map(str::to_string) };
    let Some(proxies) = fetch::<Vec<ProxyInfo>>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    if proxies.is_empty() {
        out.line("no profile routes through a proxy (`ringlet proxy enable <alias>`)")?;
        return Ok(out.finish()?);
    }
    let mut table = Table::new(&[
        "ALIAS",
        "STATE",
        "PORT",
        "PID",
        "UPTIME",
        "RESTARTS",
        "REQUESTS",
        "TODAY",
        "LAST ERROR",
    ]);
    for p in &proxies {
        let s = p.stats.as_ref();
        table.row(vec![
            p.alias.clone(),
            p.state.as_str().into(),
            p.port.map(|p| p.to_string()).unwrap_or_default(),
            p.pid.map(|p| p.to_string()).unwrap_or_default(),
            p.uptime_secs.map(duration).unwrap_or_default(),
            p.restarts.to_string(),
            s.and_then(|s| s["requests"].as_u64()).map(|n| n.to_string()).unwrap_or_default(),
            s.map(|s| spend(s, "spend_today_usd", "daily_usd")).unwrap_or_default(),
            p.last_error.clone().unwrap_or_default(),
        ]);
    }
    table.write(&mut out)?;
    for p in &proxies {
        if let Some(why) = &p.stats_error {
            out.line(format_args!("\n{}: no stats ({why})", p.alias))?;
        }
        let Some(s) = &p.stats else { continue };
        let targets = s["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut summary = format!(
            "\n{}: {} requests, {} in flight; today {}, this month {}",
            p.alias,
            s["requests"].as_u64().unwrap_or(0),
            s["in_flight"].as_u64().unwrap_or(0),
            spend(s, "spend_today_usd", "daily_usd"),
            spend(s, "spend_month_usd", "monthly_usd"),
        );
        if let Some(n) = s["unpriced_requests"].as_u64().filter(|n| *n > 0) {
            summary.push_str(&format!("; {n} unpriced request(s) (tokens only)"));
        }
        out.line(summary)?;
        if targets.is_empty() {
            continue;
        }
        let mut table =
            Table::new(&["  TARGET", "REQUESTS", "ERRORS", "FALLBACKS", "P50", "P99", "TODAY"]);
        for t in targets {
            let ms = |k: &str| t[k].as_f64().map(|v| format!("{v:.0} ms")).unwrap_or_default();
            let n = |k: &str| t[k].as_u64().unwrap_or(0).to_string();
            table.row(vec![
                format!("  {}", t["target"].as_str().unwrap_or("?")),
                n("requests"),
                n("errors"),
                n("fallbacks"),
                ms("p50_ms"),
                ms("p99_ms"),
                t["spend_today_usd"].as_f64().map(|v| format!("${v:.2}")).unwrap_or_default(),
            ]);
        }
        table.write(&mut out)?;
    }
    Ok(out.finish()?)
}

/// `$1.20`, or `$1.20 of $20.00` against a budget.
fn spend(stats: &Value, spent: &str, budget: &str) -> String {
    let spent = stats[spent].as_f64().unwrap_or(0.0);
    match stats["budget"][budget].as_f64() {
        Some(b) => format!("${spent:.2} of ${b:.2}"),
        None => format!("${spent:.2}"),
    }
}

/// `42s`, `5m 3s`, `2h 5m`, `3d 4h`.
fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// `proxy logs <alias> [--lines N] [--follow]`: readable lines, or the raw
/// JSON lines with `--json`.
pub fn logs(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let alias = inv.arg("alias").unwrap_or_default().to_string();
    let lines: Option<usize> = inv.parsed("lines", "a whole number")?;
    let paths = ctx.paths()?;
    let mut from = None;
    loop {
        let request = Request::ProxyLogs { alias: alias.clone(), lines, from };
        let data = crate::client::request(&paths, &request)?;
        let log: ProxyLog = serde_json::from_value(data)?;
        let mut out = Out::new();
        for line in &log.lines {
            if ctx.global.json {
                out.line(line)?;
            } else {
                out.line(readable(line))?;
            }
        }
        out.finish()?;
        if !inv.flag("follow") {
            return Ok(());
        }
        from = Some(log.next);
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// One request-log record as a line: time, status, model and where it
/// went, timings, tokens, cost, and the attempts that fell through.
fn readable(line: &str) -> String {
    let Ok(r) = serde_json::from_slice::<Value>(line.as_bytes()) else { return line.to_string() };
    let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let mut s = format!("{}  {}  {}", text("ts"), r["status"].as_u64().unwrap_or(0), text("model"));
    if let Some(target) = r["target"].as_str() {
        s.push_str(&format!(" -> {target}"));
    }
    if let Some(rule) = r["rule"].as_str() {
        s.push_str(&format!(" [{rule}]"));
    }
    if r["stream"] == true {
        s.push_str(" stream");
    }
    if let Some(t) = r["ttfb_ms"].as_f64() {
        s.push_str(&format!("  ttfb {t:.0} ms"));
    }
    if let Some(ms) = r["ms"].as_f64() {
        s.push_str(&format!("  {ms:.0} ms"));
    }
    let tokens = &r["tokens"];
    if tokens.is_object() {
        s.push_str(&format!(
            "  in {} out {}",
            tokens["input"].as_u64().unwrap_or(0),
            tokens["output"].as_u64().unwrap_or(0)
        ));
        let cached = tokens["cache_read"].as_u64().unwrap_or(0);
        if cached > 0 {
            s.push_str(&format!(" cache {cached}"));
        }
    }
    match r["cost_usd"].as_f64() {
        Some(c) => s.push_str(&format!("  ${c:.4}")),
        None if tokens.is_object() => s.push_str("  unpriced"),
        None => {}
    }
    let failed: Vec<String> = r["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["target"] != r["target"] || a["error"].is_string())
        .map(|a| {
            let why = match (a["status"].as_u64(), a["error"].as_str()) {
                (_, Some(e)) => e.to_string(),
                (Some(code), None) => code.to_string(),
                _ => "?".into(),
            };
            format!("{} {why}", a["target"].as_str().unwrap_or("?"))
        })
        .collect();
    if !failed.is_empty() {
        s.push_str(&format!("  (fell through: {})", failed.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_one_line() {
        let line = r#"{"ts":"2026-12-07T08:00:00Z","rule":"long","model":"m","attempts":[
            {"target":"a/x","status":529,"error":null,"ms":3.0},
            {"target":"b/y","status":200,"error":null,"ms":40.0}],
            "status":200,"target":"b/y","ttfb_ms":12.4,"ms":40.2,
            "tokens":{"input":10,"output":5,"cache_read":0,"cache_write":0},
            "cost_usd":0.00123,"stream":true}"#
            .replace('\n', "");
        assert_eq!(
            readable(&line),
            "2026-12-07T08:00:00Z  200  m -> b/y [long] stream  ttfb 12 ms  40 ms  in 10 out 5  \
             $0.0012  (fell through: a/x 529)"
        );
        assert_eq!(readable("not json"), "not json");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(7500), "2h 5m");
        assert_eq!(duration(90000), "1d 1h");
    }
}
