//! Usage from the proxy's request logs: an agent that writes no usage log
//! of its own (Grok CLI) is counted from its profile's
//! `<config>/proxy/<alias>/requests.jsonl`, across the log's rotation, and
//! an agent with its own logs (Claude Code) never from its proxy's.
//!
//! The logs are written here in the documented shape (PROXY.md, the child's
//! `Record`), as the proxy child appends them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::{Env, KEY};

fn usage(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json", "usage"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timezone", "UTC"]);
    env.cmd(&all).json()
}

fn t(report: &Value, field: &str) -> u64 {
    report["totals"][field].as_u64().unwrap_or_else(|| panic!("no totals.{field} in {report}"))
}

/// A priced entry of the embedded snapshot.
fn price(model: &str, field: &str) -> f64 {
    let table: Value = serde_json::from_str(include_str!("../manifests/pricing.json")).unwrap();
    table[model][field].as_f64().unwrap_or_else(|| panic!("{model}.{field} not in the snapshot"))
}

fn create(env: &Env, agent: &str, alias: &str, provider: &str) {
    env.cmd(&["profiles", "create", agent, alias, "-p", provider, "--api-key-stdin", "--no-alias"])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(KEY)
        .ok();
}

fn log_dir(env: &Env, alias: &str) -> PathBuf {
    env.config.join("proxy").join(alias)
}

/// One request-log line as the proxy child writes it.
fn record(ts: &str, status: u16, target: Option<&str>, tokens: Option<[u64; 4]>) -> String {
    let tokens = tokens
        .map(|[i, o, r, w]| json!({"input": i, "output": o, "cache_read": r, "cache_write": w}));
    json!({
        "ts": ts,
        "rule": "default",
        "model": "grok-4-requested",
        "attempts": [{"target": target.unwrap_or("xai/grok-4"), "status": status, "error": null, "ms": 12.5}],
        "status": status,
        "target": target,
        "ttfb_ms": 3.25,
        "ms": 12.5,
        "tokens": tokens,
        "cost_usd": 123.0,
        "stream": true,
    })
    .to_string()
}

fn append(path: &Path, lines: &[String]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
}

#[test]
fn grok_is_counted_from_its_proxy_log_across_rotation_and_claude_never() {
    let env = Env::new("usage-proxy");
    create(&env, "grok", "g1", "openai");
    create(&env, "claude", "c1", "anthropic");
    let log = log_dir(&env, "g1").join("requests.jsonl");
    let a = record("2026-11-02T10:00:00.125Z", 200, Some("xai/grok-4"), Some([1000, 200, 3000, 0]));
    let b = record("2026-11-02T10:01:00Z", 200, Some("xai/grok-4"), Some([500, 100, 0, 0]));
    append(
        &log,
        &[
            a.clone(),
            // Not billed: a failed request, a 2xx without usage.
            record("2026-11-02T10:00:30Z", 429, None, None),
            record("2026-11-02T10:00:40Z", 502, Some("xai/grok-4"), Some([9, 9, 0, 0])),
            record("2026-11-02T10:00:50Z", 200, Some("xai/grok-4"), None),
            b.clone(),
        ],
    );
    // A line being written.
    let c =
        record("2026-11-03T08:00:00Z", 200, Some("openrouter/z-ai/glm-5.1"), Some([40, 4, 0, 0]));
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&c.as_bytes()[..c.len() / 2]).unwrap();
    // Claude Code behind its proxy is counted from its own transcripts only.
    append(
        &log_dir(&env, "c1").join("requests.jsonl"),
        &[record(
            "2026-11-02T11:00:00Z",
            200,
            Some("anthropic/claude-sonnet-4-5"),
            Some([7, 7, 7, 7]),
        )],
    );

    let r = usage(&env, &[]);
    assert_eq!(t(&r, "messages"), 2, "{r}");
    assert_eq!(t(&r, "input_tokens"), 1500, "{r}");
    assert_eq!(t(&r, "output_tokens"), 300, "{r}");
    assert_eq!(t(&r, "cache_read_tokens"), 3000, "{r}");
    assert_eq!(r["skipped"]["lines"], 0, "an incomplete last line is not an error: {r}");
    // Our pricing of the model that answered, not the log's cost_usd.
    let expected = 1500.0 * price("xai/grok-4", "input_cost_per_token")
        + 300.0 * price("xai/grok-4", "output_cost_per_token")
        + 3000.0 * price("xai/grok-4", "cache_read_input_token_cost");
    let cost = r["totals"]["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    assert_eq!(usage(&env, &["--agent", "grok"])["totals"], r["totals"]);
    assert_eq!(t(&usage(&env, &["--agent", "claude"]), "messages"), 0);
    let profiles = usage(&env, &["profiles"]);
    let rows = profiles["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{profiles}");
    assert_eq!(rows[0]["profile"], "g1");
    let models = usage(&env, &["models"]);
    assert_eq!(models["rows"][0]["model"], "grok-4", "the model that answered: {models}");

    // The line completes; then the proxy rotates its log: the old file
    // becomes requests.jsonl.1 and a new one starts.
    f.write_all(&c.as_bytes()[c.len() / 2..]).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    fs::rename(&log, log.with_extension("jsonl.1")).unwrap();
    let d = record("2026-11-03T09:00:00Z", 201, Some("xai@eu/grok-4"), Some([10, 1, 0, 0]));
    append(&log, &[d]);
    let r = usage(&env, &["--agent", "grok"]);
    assert_eq!(t(&r, "messages"), 4, "rotated lines count once: {r}");
    assert_eq!(t(&r, "input_tokens"), 1500 + 40 + 10, "{r}");
    let daily = usage(&env, &["daily", "--agent", "grok"]);
    let days: Vec<(&str, u64)> = daily["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["date"].as_str().unwrap(), r["messages"].as_u64().unwrap()))
        .collect();
    assert_eq!(days, [("2026-11-02", 2), ("2026-11-03", 2)], "{daily}");
    let models = usage(&env, &["models"]);
    let names: Vec<&str> =
        models["rows"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["grok-4", "z-ai/glm-5.1"], "{models}");

    // The rotated file read again from the start (a new index) counts nothing twice.
    env.cmd(&["daemon", "stop"]).ok();
    fs::remove_file(env.config.join("telemetry/scan-index.json")).unwrap();
    assert_eq!(usage(&env, &[])["totals"], r["totals"]);

    // Droid (whose logs Ringlet does not read) is counted the same way.
    create(&env, "droid", "d1", "anthropic");
    let e =
        record("2026-11-04T09:00:00Z", 200, Some("anthropic/claude-sonnet-5"), Some([5, 6, 7, 8]));
    append(&log_dir(&env, "d1").join("requests.jsonl"), &[e]);
    let droid = usage(&env, &["--agent", "droid"]);
    assert_eq!((t(&droid, "messages"), t(&droid, "total_tokens")), (1, 26), "{droid}");
    assert_eq!(usage(&env, &["--agent", "grok"])["totals"], r["totals"]);
}
