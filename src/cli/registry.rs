//! `ringlet registry sync|inspect|pin|rollback|export`.
//!
//! `sync` subscribes to the daemon's `RegistrySync*` events first, then asks
//! for the sync (answered at once with its id: the daemon runs it on a
//! thread of its own) and follows that id's events: progress on a terminal's
//! stderr, then the outcome. When the event stream says nothing for a while
//! or ends, it asks `registry inspect` how the sync ended, so a dropped
//! stream or a daemon killed mid-sync is reported, never waited on forever.
//! `export` runs here, not in the daemon: it reads the synced tree and
//! writes the caller's file.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use super::{Ctx, Invocation, Out, UsageError, warn_all};
use crate::client::{self, Next};
use crate::protocol::{RegistryView, Request, SyncReport, SyncRequest, SyncStarted};
use crate::registry::runner::Finished;

/// How long the CLI waits on a silent event stream before it asks.
const QUIET: Duration = Duration::from_secs(2);

const EVENTS: [&str; 4] =
    ["RegistrySyncStarted", "RegistrySyncProgress", "RegistrySyncCompleted", "RegistrySyncFailed"];

pub fn sync(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let from = match inv.value("from") {
        Some(f) if f.starts_with("http://") || f.starts_with("https://") => Some(f.to_string()),
        // The daemon's working directory is not ours.
        Some(f) => Some(
            std::path::absolute(f)
                .with_context(|| format!("--from {f}"))?
                .to_string_lossy()
                .into_owned(),
        ),
        None => None,
    };
    let request = SyncRequest {
        force: inv.flag("force"),
        offline: inv.flag("offline"),
        channel: inv.value("channel").map(str::to_string),
        from,
    };
    let paths = ctx.paths()?;
    let mut events = client::subscribe(&paths, &EVENTS)?;
    let started: SyncStarted =
        serde_json::from_value(client::request(&paths, &Request::RegistrySync(request))?)?;
    let mut progress = Progress::new(!ctx.global.json && std::io::stderr().is_terminal());
    let report = loop {
        match events.next(QUIET)? {
            Next::Event(e) if e.data.get("id").and_then(Value::as_str) == Some(&started.id) => {
                match e.kind.as_str() {
                    "RegistrySyncProgress" => progress.show(&e.data),
                    "RegistrySyncCompleted" => break e.data,
                    "RegistrySyncFailed" => {
                        progress.end();
                        let why = e.data.get("error").and_then(Value::as_str).unwrap_or("?");
                        bail!("{why}");
                    }
                    _ => {}
                }
            }
            Next::Event(_) => {}
            Next::Idle => {
                if let Some(done) = ended(&paths, &started.id)? {
                    // Its last event is on its way (or was dropped): a moment more.
                    match events.next(Duration::from_millis(500))? {
                        Next::Event(e) if e.kind == "RegistrySyncCompleted" => break e.data,
                        _ => return finished_without_event(&done, &mut progress),
                    }
                }
            }
            Next::Closed => {
                progress.end();
                return match ended(&paths, &started.id)? {
                    Some(done) => finished_without_event(&done, &mut progress),
                    None => bail!(
                        "the daemon stopped during registry sync {} (its outcome is unknown; \
                         an unfinished sync leaves `current` as it was): see `ringlet registry inspect`",
                        started.id
                    ),
                };
            }
        }
    };
    progress.end();
    let mut out = Out::new();
    if ctx.global.json {
        out.json(&report)?;
        return Ok(out.finish()?);
    }
    let report: SyncReport = serde_json::from_value(report)?;
    warn_all(&report.warnings);
    print_report(&mut out, &report)?;
    Ok(out.finish()?)
}

/// How sync `id` ended, when this daemon says it has; an error when the
/// daemon is gone or knows nothing of it any more.
fn ended(paths: &crate::paths::Paths, id: &str) -> Result<Option<Finished>> {
    let request = Request::RegistryInspect { changes: false };
    let Some(data) = client::request_if_running(paths, &request)? else {
        bail!(
            "the daemon stopped during registry sync {id} (its outcome is unknown; an \
             unfinished sync leaves `current` as it was): see `ringlet registry inspect`"
        );
    };
    let view: RegistryView = serde_json::from_value(data)?;
    if view.running.as_ref().is_some_and(|r| r.id == id) {
        return Ok(None);
    }
    match view.last_run {
        Some(done) if done.id == id => Ok(Some(done)),
        _ => bail!(
            "registry sync {id} is unknown to the running daemon (it was restarted during the \
             sync): see `ringlet registry inspect`"
        ),
    }
}

fn finished_without_event(done: &Finished, progress: &mut Progress) -> Result<()> {
    progress.end();
    match &done.error {
        Some(why) => bail!("{why}"),
        None => {
            let mut out = Out::new();
            out.line(format_args!(
                "registry: sync {} from {} completed; see `ringlet registry inspect`",
                done.id, done.source
            ))?;
            Ok(out.finish()?)
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn print_report(out: &mut Out, r: &SyncReport) -> Result<()> {
    if r.offline {
        out.line(format_args!(
            "registry: offline; using the cached commit {} ({} artifacts)",
            short(&r.commit),
            r.reused
        ))?;
    } else if r.unchanged {
        out.line(format_args!(
            "registry: up to date at commit {} ({}; only registry.json fetched)",
            short(&r.commit),
            r.source
        ))?;
    } else {
        let was = r.previous.as_deref().map_or(String::new(), |p| format!(", was {}", short(p)));
        out.line(format_args!(
            "registry: now at commit {} from {}: {} fetched ({}), {} reused{was}",
            short(&r.commit),
            r.source,
            r.fetched,
            bytes(r.bytes),
            r.reused
        ))?;
    }
    print_changes(out, &r.changes, "changes in command-bearing fields")?;
    Ok(())
}

/// One command-bearing change, as `changes::Change` serializes.
#[derive(Deserialize)]
struct ChangeRow {
    kind: String,
    id: String,
    field: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

fn print_changes(out: &mut Out, changes: &[Value], title: &str) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    out.line(format_args!("{title}:"))?;
    for c in changes {
        let Ok(c) = serde_json::from_value::<ChangeRow>(c.clone()) else { continue };
        let show =
            |v: &Option<String>| v.as_deref().map_or("(none)".to_string(), |s| format!("{s:?}"));
        out.line(format_args!(
            "  {} {}: {}: {} -> {}",
            c.kind,
            c.id,
            c.field,
            show(&c.before),
            show(&c.after)
        ))?;
    }
    Ok(())
}

fn bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} kB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}

/// The progress line on a terminal's stderr, redrawn in place.
struct Progress {
    on: bool,
    drawn: bool,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress { on, drawn: false }
    }

    fn show(&mut self, data: &Value) {
        if !self.on {
            return;
        }
        let n = |k: &str| data.get(k).and_then(Value::as_u64).unwrap_or(0);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kregistry: {}/{} artifacts, {} of {}",
            n("artifacts_done"),
            n("artifacts_total"),
            bytes(n("bytes_done")),
            bytes(n("bytes_total"))
        );
        let _ = err.flush();
        self.drawn = true;
    }

    fn end(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr().lock());
            self.drawn = false;
        }
    }
}

pub fn inspect(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let mut out = Out::new();
    let request = Request::RegistryInspect { changes: inv.flag("changes") };
    let Some(v) = super::fetch::<RegistryView>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    out.line("registry")?;
    out.line(format_args!(
        "  url:           {}",
        v.url.clone().unwrap_or_else(|| "- (not set: [registry] url in config.toml)".into())
    ))?;
    out.line(format_args!("  channel:       {}", v.channel))?;
    match &v.commit {
        Some(c) => out.line(format_args!(
            "  commit:        {c} (channel {})",
            v.current_channel.as_deref().unwrap_or("?")
        ))?,
        None => out.line("  commit:        - (nothing synced: the built-ins are in use)")?,
    }
    out.line(format_args!("  pin:           {}", dash(&v.pin)))?;
    out.line(format_args!("  last sync:     {}", dash(&v.last_sync)))?;
    out.line(format_args!("  last error:    {}", dash(&v.last_error)))?;
    out.line(format_args!("  auto sync:     {}", v.auto_sync))?;
    let signing = match (v.signed, v.allow_unsigned) {
        (true, _) => "minisign signature required",
        (false, true) => "unsigned registries allowed (warned at every sync)",
        (false, false) => "URL syncs refused until [registry] public_key is set",
    };
    out.line(format_args!("  signing:       {signing}"))?;
    let kept: Vec<&str> = v.history.iter().map(|c| short(c)).collect();
    out.line(format_args!(
        "  kept commits:  {}",
        if kept.is_empty() { "-".into() } else { kept.join(", ") }
    ))?;
    let counts: Vec<String> = v.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.line(format_args!("  artifacts:     {}", counts.join(", ")))?;
    let over: Vec<String> =
        v.overridden.iter().map(|o| format!("{} {}", o.kind.as_str(), o.id)).collect();
    out.line(format_args!(
        "  overrides:     {}",
        if over.is_empty() { "-".into() } else { over.join(", ") }
    ))?;
    if let Some(r) = &v.running {
        out.line(format_args!(
            "  running:       sync {} from {}: {}/{} artifacts",
            r.id, r.source, r.progress.artifacts_done, r.progress.artifacts_total
        ))?;
    }
    if let Some(changes) = &v.changes {
        if changes.is_empty() {
            out.line("no command-bearing changes against the built-ins")?;
        }
        print_changes(&mut out, changes, "changes against the built-ins")?;
    }
    Ok(out.finish()?)
}

pub fn pin(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let reference = match (inv.arg("ref"), inv.flag("clear")) {
        (Some(r), false) => Some(r.to_string()),
        (None, true) => None,
        _ => {
            return Err(UsageError("give a ref to pin, or --clear (not both)".into()).into());
        }
    };
    let mut out = Out::new();
    let request = Request::RegistryPin { reference };
    let Some(v) = super::fetch::<Value>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    match v.get("pin").and_then(Value::as_str) {
        Some(p) if v["commit"] == true => out.line(format_args!(
            "registry: pinned to commit {p}; syncs accept only that registry.json"
        ))?,
        Some(p) => out.line(format_args!(
            "registry: pinned to {p}; the next `ringlet registry sync` fetches it"
        ))?,
        None => out.line("registry: pin cleared; syncs follow the channel")?,
    }
    Ok(out.finish()?)
}

pub fn rollback(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let Some(v) = super::fetch::<Value>(ctx, &Request::RegistryRollback, &mut out)? else {
        return Ok(out.finish()?);
    };
    let commit = v.get("commit").and_then(Value::as_str).unwrap_or("?");
    let previous = v.get("previous").and_then(Value::as_str).unwrap_or("-");
    out.line(format_args!(
        "registry: rolled back to commit {} (was {})",
        short(commit),
        short(previous)
    ))?;
    let changes: Vec<Value> =
        v.get("changes").and_then(Value::as_array).cloned().unwrap_or_default();
    print_changes(&mut out, &changes, "changes in command-bearing fields")?;
    Ok(out.finish()?)
}

pub fn export(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let given = inv.arg("file").unwrap_or_default();
    let file = std::path::absolute(given).with_context(|| given.to_string())?;
    let paths = ctx.paths()?;
    let report = crate::registry::bundle::export(&paths, &file)?;
    let mut out = Out::new();
    let data = serde_json::to_value(&report)?;
    if ctx.global.json {
        out.json(&data)?;
    } else {
        let commit = data.get("commit").and_then(Value::as_str).unwrap_or("?");
        let artifacts = data.get("artifacts").and_then(Value::as_u64);
        out.line(format_args!(
            "registry: wrote commit {}{} to {}",
            short(commit),
            artifacts.map_or(String::new(), |n| format!(" ({n} artifacts)")),
            file.display()
        ))?;
    }
    Ok(out.finish()?)
}
