//! The shell figures (issue 15): `ringlet --help`, and a TAB that completes
//! profile names with a warm daemon.
//!
//! The completion figure is taken where the user feels it: inside one bash
//! with the generated script loaded, each TAB (the `_ringlet` function,
//! which runs `ringlet __complete profiles`, which asks the daemon) timed
//! with bash's own `$EPOCHREALTIME` around the call, so bash's start is not
//! in it. The hidden command alone, spawned and waited for like the other
//! CLI figures, is in the note.

use std::process::Stdio;
use std::time::Duration;

use super::{QUICK_RUNS, RINGLET, Result, Row, Sandbox, Timings, time_quick};

pub const HELP: &str = "31. ringlet --help";
pub const COMPLETE: &str = "32. TAB: profile names, warm daemon (bash)";

/// Profiles the completion lists.
const PROFILES: &[&str] = &["shell-a", "shell-b", "shell-c", "shell-d", "shell-e"];

pub fn figures(sb: &Sandbox) -> Vec<Row> {
    let help = time_quick(sb, RINGLET, &["--help"], HELP, Some(2.0));
    let complete = completion(sb).unwrap_or_else(|e| Row::error(COMPLETE, e));
    vec![help, complete]
}

fn completion(sb: &Sandbox) -> Result<Row> {
    for alias in PROFILES {
        let mut cmd = sb
            .command(RINGLET, &["profiles", "create", "claude", alias, "-p", "zai", "--no-alias"]);
        cmd.env("ZAI_API_KEY", "sk-bench-0123456789abcdefghij");
        let status = cmd.status().map_err(|e| format!("creating profile {alias}: {e}"))?;
        if !status.success() {
            return Err(format!("creating profile {alias} failed ({status})"));
        }
    }
    let listed = sb.run_ringlet(&["__complete", "profiles"])?;
    let listed = String::from_utf8_lossy(&listed.stdout).lines().count();
    if listed < PROFILES.len() {
        return Err(format!("`__complete profiles` listed {listed} profiles"));
    }
    let alone = time_quick(sb, RINGLET, &["__complete", "profiles"], COMPLETE, None);

    eprintln!("figures: {COMPLETE} ({QUICK_RUNS} TABs in one bash)");
    let script = sb.run_ringlet(&["completions", "bash"])?;
    let script = String::from_utf8_lossy(&script.stdout).into_owned();
    let driver = format!(
        "{script}\nCOMP_WORDS=('{RINGLET}' profiles run ''); COMP_CWORD=3\n\
         for ((n = 0; n < {QUICK_RUNS}; n++)); do\n\
           t0=$EPOCHREALTIME; _ringlet; t1=$EPOCHREALTIME\n\
           [[ ${{#COMPREPLY[@]}} -ge {count} ]] || {{ echo \"only ${{COMPREPLY[*]}}\" >&2; exit 1; }}\n\
           echo \"$t0 $t1\"\n\
         done\n",
        count = PROFILES.len()
    );
    let out = sb
        .command("bash", &["--norc", "--noprofile", "-c", &driver])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running bash: {e}"))?;
    if !out.status.success() {
        return Err(format!("bash: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut samples = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let secs: Vec<f64> = line.split(' ').filter_map(|t| t.parse().ok()).collect();
        if let [t0, t1] = secs[..] {
            samples.push(Duration::from_secs_f64((t1 - t0).max(0.0)));
        }
    }
    if samples.len() != QUICK_RUNS {
        return Err(format!("bash timed {} TABs of {QUICK_RUNS}", samples.len()));
    }
    let mut row = Row::timed(COMPLETE, &Timings::new(samples), Some(10.0));
    row.measured.push_str(&format!(" (`__complete profiles` alone {})", alone.measured));
    Ok(row)
}
