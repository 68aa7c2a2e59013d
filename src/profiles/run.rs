//! Run preparation and records. The daemon prepares a run (profile, key,
//! rendered files, environment, the agent's binary); the CLI spawns the
//! agent on the user's own terminal, because only it owns that terminal, and
//! reports the end. Each finished run becomes one line of
//! `telemetry/sessions.jsonl`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::render::{self, KeyValue};
use super::{Profile, Services};
use crate::fsutil::{Access, create_private_dir, open_private, open_private_read};

/// Variables a run takes from the caller's environment; everything else is
/// left behind (design: a clean environment). `LC_*` is a prefix.
pub const PASSTHROUGH: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LC_*",
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "TZ",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "SSH_AUTH_SOCK",
    "HOME",
];

/// Everything the CLI needs to start the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub run_id: String,
    pub alias: String,
    /// Absolute path of the agent's binary.
    pub program: String,
    pub args: Vec<String>,
    /// Names (and `PREFIX*` patterns) the CLI copies from its own environment.
    pub passthrough: Vec<String>,
    /// Set on top of the passthrough variables (wins over them).
    pub env: BTreeMap<String, String>,
    pub started_at: String,
    pub notices: Vec<String>,
}

impl RunPlan {
    /// The environment for the agent: `self.passthrough` names (a trailing `*`
    /// is a prefix) taken from `ours`, then `plan.env` on top.
    pub fn environment(
        &self,
        ours: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> BTreeMap<std::ffi::OsString, std::ffi::OsString> {
        let mut env = BTreeMap::new();
        for (name, value) in ours {
            let Some(n) = name.to_str() else { continue };
            let pass = self.passthrough.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => n.starts_with(prefix),
                None => n == p,
            });
            if pass {
                env.insert(name, value);
            }
        }
        for (k, v) in &self.env {
            env.insert(k.into(), v.into());
        }
        env
    }
}

/// What the CLI reports when the agent has exited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunEnded {
    pub alias: String,
    pub run_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// The agent's exit code, or `None` when a signal killed it.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// Prepares a run: renders and writes the profile's files with the key,
/// builds the environment, and finds the agent's binary on the caller's
/// PATH. Any failure here is one line, before anything starts.
pub fn prepare(
    s: &Services<'_>,
    alias: &str,
    path_var: Option<&str>,
    user_args: &[String],
) -> Result<RunPlan> {
    let profile = s.store.get(alias)?;
    let (agent, provider) = s.manifests(&profile)?;
    let mut notices = Vec::new();
    let program = find_agent(&agent.commands(), path_var).with_context(|| {
        format!("{} is not installed (`{}` not found on PATH)", agent.name, agent.binary)
    })?;
    let key = s.agent_key(&profile)?;
    let rendered = render::render(s.paths, &profile, agent, provider, s.config)?;
    if !profile.home.is_dir() {
        notices.push(format!(
            "the profile home {} was missing and has been created again (earlier history is gone)",
            profile.home.display()
        ));
        crate::warn!("profile {alias}: home {} was missing; recreated", profile.home.display());
    }
    let home = render::ensure_home(&profile, agent)?;
    render::write_files_in(&home, &rendered, key.as_deref())?;
    let (script_env, script_args) =
        render::substitute_all(&rendered.env, &rendered.args, KeyValue::Key(key.as_deref()))?;
    let mut env = render::isolation_env(&profile, agent);
    env.extend(script_env);
    let mut passthrough: Vec<String> = PASSTHROUGH.iter().map(|s| s.to_string()).collect();
    passthrough.extend(s.config.run.env_passthrough.iter().cloned());
    let mut args = script_args;
    args.extend(user_args.iter().cloned());
    let started_at = crate::time::now_rfc3339();
    Ok(RunPlan {
        run_id: format!("{alias}-{}-{}", std::process::id(), next_id()),
        alias: alias.to_string(),
        program: program.display().to_string(),
        args,
        passthrough,
        env,
        started_at,
        notices,
    })
}

/// Only what `profiles env` prints: the variables, with the key. It also
/// writes the files, so the exported variables find a ready home.
pub fn env_only(s: &Services<'_>, alias: &str) -> Result<(Profile, BTreeMap<String, String>, f64)> {
    let profile = s.store.get(alias)?;
    let started = std::time::Instant::now();
    let (agent, provider) = s.manifests(&profile)?;
    let key = s.agent_key(&profile)?;
    let rendered = render::render(s.paths, &profile, agent, provider, s.config)?;
    let home = render::ensure_home(&profile, agent)?;
    render::write_files_in(&home, &rendered, key.as_deref())?;
    let (script_env, _) =
        render::substitute_all(&rendered.env, &rendered.args, KeyValue::Key(key.as_deref()))?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let mut env = render::isolation_env(&profile, agent);
    env.extend(script_env);
    Ok((profile, env, took))
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The agent's binary on `path_var`, skipping our own shims (a shim named
/// like the agent would make the run call itself).
pub fn find_agent(commands: &[&str], path_var: Option<&str>) -> Option<PathBuf> {
    crate::detect::find_binary(commands, path_var.map(OsStr::new)).map(|(path, _, _)| path)
}

/// One line of `sessions.jsonl`.
#[derive(Debug, Serialize)]
struct SessionLine<'a> {
    profile: &'a str,
    agent: &'a str,
    provider: &'a str,
    model: &'a str,
    start: &'a str,
    end: String,
    duration_ms: u64,
    exit_code: Option<i32>,
    signal: Option<i32>,
}

/// Appends the run to `telemetry/sessions.jsonl` and bumps the profile's
/// `last_used` and run count.
pub fn record_end(s: &Services<'_>, ended: &RunEnded) -> Result<Profile> {
    let (profile, ()) = s.store.update(&ended.alias, |p| {
        p.last_used = Some(crate::time::now_rfc3339());
        p.runs += 1;
        Ok(())
    })?;
    let line = SessionLine {
        profile: &profile.alias,
        agent: &profile.agent,
        provider: &profile.provider,
        model: &profile.model,
        start: &ended.started_at,
        end: crate::time::now_rfc3339(),
        duration_ms: ended.duration_ms,
        exit_code: ended.exit_code,
        signal: ended.signal,
    };
    let mut text = serde_json::to_string(&line)?;
    text.push('\n');
    append(&s.paths.config_dir.join("telemetry").join("sessions.jsonl"), text.as_bytes())?;
    Ok(profile)
}

/// One `write` with O_APPEND: concurrent appenders never interleave lines.
fn append(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut file = open_private(path, Access::Append, 0o600)?;
    file.write_all(bytes).with_context(|| format!("appending to {}", path.display()))
}

/// One finished run as `sessions.jsonl` remembers it: what `stats` and the
/// usage reports count as sessions and runtime.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunRow {
    pub profile: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub model: String,
    /// RFC 3339, as the CLI reported it.
    #[serde(default)]
    pub start: String,
    pub duration_ms: u64,
}

/// Reads every run from `telemetry/sessions.jsonl`; lines that do not parse
/// (a torn write, a hand edit) are skipped.
pub fn read_runs(config_dir: &Path) -> Vec<RunRow> {
    let path = config_dir.join("telemetry").join("sessions.jsonl");
    let mut text = String::new();
    match open_private_read(&path) {
        Ok(Some(mut file)) => {
            let _ = file.read_to_string(&mut text);
        }
        Ok(None) => return Vec::new(),
        Err(e) => {
            crate::warn!("{e:#}");
            return Vec::new();
        }
    }
    text.lines().filter_map(|line| serde_json::from_slice(line.as_bytes()).ok()).collect()
}

/// Per profile, runs and total time in milliseconds, for `stats`.
pub fn session_totals(config_dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for run in read_runs(config_dir) {
        let entry: &mut (u64, u64) = totals.entry(run.profile).or_default();
        entry.0 += 1;
        entry.1 += run.duration_ms;
    }
    totals
}
