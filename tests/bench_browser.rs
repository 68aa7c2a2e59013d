//! The browser figures (issue 14), measured in Debian's headless Chromium
//! driven by playwright-core (tests/browser/bench.mjs; tests/setup.sh
//! installs both) against the sandbox's daemon on loopback:
//!   - page load to interactive, cold: a fresh browser context (empty cache)
//!     per run, already signed in, from navigation start to the dashboard's
//!     data shown and drawn, on the page's own clock, as the page itself
//!     notes it (not polled from outside, which would add Playwright's own
//!     script to the load); the median of 20 runs after one
//!     untimed warm-up; beside it, for reference, the same browser loading a
//!     bare page (an `h1`) from a node server in runs paired with ours: what
//!     Chromium costs before any page runs, the floor under the figure;
//!   - `seq 1 300000` rendered in the browser terminal: a shell session
//!     shown alone (`#/terminals/<id>?solo=1`), from pressing Enter on the
//!     typed command to the row `300000` on the screen; the median of 5.
//!
//! The UI is what this release binary embeds. Without Chromium or the node
//! packages the rows are skipped, not errors.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{RINGLET, Result, Row, Sandbox, Timings};

pub const PAGE_LOAD: &str = "27. page load to interactive, cold, loopback";
pub const PAGE_FLOOR: &str = "    a bare page in the same browser, reference";
pub const SEQ: &str = "28. `seq 1 300000` rendered in the browser terminal";

const PAGE_RUNS: usize = 20;
const SEQ_RUNS: usize = 5;

/// Where tests/setup.sh installs playwright-core and axe-core.
fn browser_tools() -> Option<PathBuf> {
    let dir = match std::env::var_os("RINGLET_TEST_BROWSER") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/ringlet-test/browser"),
    };
    let ok = dir.join("node_modules/playwright-core/package.json").is_file()
        && std::path::Path::new("/usr/bin/chromium").is_file();
    ok.then_some(dir)
}

/// Both browser figures; an error costs only these rows.
pub fn figures(sb: &Sandbox) -> Vec<Row> {
    let Some(tools) = browser_tools() else {
        let why = "no Chromium or playwright-core (tests/setup.sh installs them)";
        return vec![Row::skipped(PAGE_LOAD, why), Row::skipped(SEQ, why)];
    };
    eprintln!("figures: {PAGE_LOAD}; {SEQ}");
    match measure(sb, &tools) {
        Ok((load, bare, seq)) => {
            let floor = Row::timed(PAGE_FLOOR, &bare, None);
            vec![
                Row::timed(PAGE_LOAD, &load, Some(300.0)),
                floor,
                Row::timed(SEQ, &seq, Some(2000.0)),
            ]
        }
        Err(e) => vec![Row::error(PAGE_LOAD, e.clone()), Row::error(SEQ, e)],
    }
}

/// A `bshell` agent (sh with the prompt `$ `) and its profile, then the
/// node script; its three sets of samples.
fn measure(sb: &Sandbox, tools: &std::path::Path) -> Result<(Timings, Timings, Timings)> {
    let dir = sb.config_dir();
    let io = |e: std::io::Error| e.to_string();
    fs::create_dir_all(dir.join("agents.d")).map_err(io)?;
    fs::create_dir_all(dir.join("scripts")).map_err(io)?;
    fs::write(
        dir.join("agents.d/bshell.toml"),
        "id = \"bshell\"\nname = \"Bench shell\"\nbinary = \"sh\"\n[profile]\n\
         strategy = \"home-wrapper\"\nsource_home = \"~/.bshell-profiles/{alias}\"\n\
         script = \"bshell.rhai\"\nprovider_types = [\"anthropic\"]\n",
    )
    .map_err(io)?;
    fs::write(dir.join("scripts/bshell.rhai"), "#{ files: #{}, env: #{ PS1: \"$ \" }, args: [] }")
        .map_err(io)?;
    let exists = sb.run_ringlet(&["profiles", "inspect", "bsh"]).is_ok();
    if !exists {
        let mut cmd = sb.command(
            RINGLET,
            &["profiles", "create", "bshell", "bsh", "-p", "anthropic", "--no-alias"],
        );
        cmd.env("ANTHROPIC_API_KEY", "sk-bench-0123456789abcdefghij");
        let status = cmd.status().map_err(io)?;
        if !status.success() {
            return Err(format!("creating the bench shell profile: {status}"));
        }
    }
    let ui = sb.run_ringlet(&["ui", "--no-open"])?;
    let ui = String::from_utf8_lossy(&ui.stdout);
    let ticket = ui.lines().find(|l| l.contains("#ticket=")).ok_or(format!("no link in {ui}"))?;
    let base = ticket.split('#').next().unwrap_or_default();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/bench.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .env("RINGLET_TEST_BROWSER", tools)
        .env("RINGLET_UI_URL", base)
        .env("RINGLET_TICKET_URL", ticket.trim())
        .env("RINGLET_BENCH_PROFILE", "bsh")
        .env("RINGLET_PAGE_RUNS", PAGE_RUNS.to_string())
        .env("RINGLET_SEQ_RUNS", SEQ_RUNS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning node: {e}"))?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).map_err(io)?;
    let status = child.wait().map_err(io)?;
    if !status.success() {
        return Err(format!("tests/browser/bench.mjs failed ({status})"));
    }
    let v: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .map_err(|e| format!("{e}: {out}"))?;
    let samples = |key: &str| -> Timings {
        let ms = v[key].as_array().cloned().unwrap_or_default();
        Timings::new(
            ms.iter()
                .filter_map(|m| m.as_f64())
                .map(|m| Duration::from_secs_f64(m / 1000.0))
                .collect(),
        )
    };
    Ok((samples("page_load_ms"), samples("bare_ms"), samples("seq_ms")))
}
