//! The daemon's registry syncs: each runs on its own `registry-sync` thread,
//! never inside a request handler, and reports through events:
//! `RegistrySyncStarted`, `RegistrySyncProgress` (artifacts and bytes, at
//! most every 100 ms and after the last artifact), then `RegistrySyncCompleted` or `RegistrySyncFailed`, all
//! carrying the sync's `id`. The request that starts one ([`Runner::start`])
//! is answered at once with that id; the CLI subscribes first and then
//! follows the events, and `GET /api/registry` shows the running sync and the
//! last one's outcome.
//!
//! One sync at a time: a second request while one runs is told so (a
//! `conflict` naming the running one) rather than queued, and `registry.lock`
//! (the store's) keeps syncs of two processes apart the same way. Pin and
//! rollback are refused while a sync runs, so `state.json` has one writer.
//!
//! What a sync fetches is decided before the thread starts ([`plan`]), from
//! `config.toml` as it is now (no daemon restart after editing `[registry]`)
//! and `state.json`'s pin: a URL with no `public_key` is refused unless
//! `allow_unsigned` is set, and then warns on every sync. `--offline` fetches
//! nothing: it reports the cached commit, or fails when there is none.
//! With `auto_sync = "daily"` a thread of its own starts a URL sync when the
//! last one is a day old (and shortly after the daemon starts, when none
//! ever ran); with `off`, the default, the network is touched only when the
//! user asks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fetch::{self, HttpSource};
use super::index::Source;
use super::{Kind, bundle, changes, current_commit, current_dir, index, store};
use crate::config::{AutoSync, Config};
use crate::daemon::events::{EventBus, EventKind};
use crate::paths::Paths;

/// How often the auto-sync thread looks at the clock.
const AUTO_CHECK: Duration = Duration::from_secs(3600);
/// Its first look, after the daemon starts.
const AUTO_FIRST: Duration = Duration::from_secs(2);
/// The least time between two `RegistrySyncProgress` events of one sync.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How old the last sync is before `auto_sync = "daily"` starts one.
const DAY: u64 = 24 * 3600;

/// `registry sync`'s options, as the CLI and `POST /api/registry/sync` send them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Refetch every artifact, even unchanged ones.
    #[serde(default)]
    pub force: bool,
    /// Fetch nothing: report the cached commit (an error without one).
    #[serde(default)]
    pub offline: bool,
    /// This sync's channel instead of `[registry] channel`.
    #[serde(default)]
    pub channel: Option<String>,
    /// A registry directory or a `.tar` bundle (an absolute path on the
    /// daemon's machine), or a URL, instead of `[registry] url`.
    #[serde(default)]
    pub from: Option<String>,
}

/// The reply to a started sync: follow the events with this `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStarted {
    pub id: String,
    /// What it reads: a URL, a directory, a bundle, or `cache`.
    pub source: String,
}

/// Where artifacts come from, decided by [`plan`].
#[derive(Debug, Clone)]
enum Origin {
    Url { root: String, channel: String, signed: bool, ca_file: Option<PathBuf>, timeout: Duration },
    Dir(PathBuf),
    Tar(PathBuf),
    Cache,
}

/// A sync, ready to run.
#[derive(Debug)]
struct Plan {
    from: Origin,
    opts: store::SyncOptions,
    describe: String,
    warnings: Vec<String>,
}

/// Progress of the running sync, as the events carry it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProgressView {
    pub artifacts_done: usize,
    pub artifacts_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The running sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub id: String,
    pub source: String,
    pub started: String,
    pub progress: ProgressView,
}

/// What a finished sync did: `RegistrySyncCompleted`'s data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    pub id: String,
    pub source: String,
    pub commit: String,
    #[serde(default)]
    pub previous: Option<String>,
    /// Nothing new: only `registry.json` was fetched (or, offline, nothing).
    pub unchanged: bool,
    #[serde(default)]
    pub offline: bool,
    pub fetched: usize,
    pub reused: usize,
    pub bytes: u64,
    /// Command-bearing changes against the previous commit (or the built-ins).
    #[serde(default)]
    pub changes: Vec<Value>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The last sync's end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub id: String,
    pub source: String,
    pub finished: String,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Default)]
struct Inner {
    running: Option<Running>,
    last: Option<Finished>,
}

/// The daemon's one sync slot; see the module docs.
#[derive(Default)]
pub struct Runner {
    inner: Arc<Mutex<Inner>>,
    next: AtomicU64,
    /// The download client, kept between syncs.
    clients: Arc<fetch::Clients>,
    /// The built-ins the current commit overrides, by commit: reading and
    /// parsing its manifests once per commit keeps `registry inspect` quick.
    overridden: Mutex<Option<(String, Vec<Overridden>)>>,
}

impl Runner {
    /// [`crate::manifests::overridden_builtins`] of `commit`, cached.
    fn overridden(&self, paths: &Paths, commit: Option<&str>) -> Vec<Overridden> {
        let Some(commit) = commit else { return Vec::new() };
        let mut cache = self.overridden.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, list)) = cache.as_ref()
            && c == commit
        {
            return list.clone();
        }
        let list: Vec<Overridden> = crate::manifests::overridden_builtins(paths)
            .into_iter()
            .map(|(kind, id)| Overridden { kind, id })
            .collect();
        *cache = Some((commit.to_string(), list.clone()));
        list
    }

    /// Whether a sync is running (the daemon does not idle out meanwhile).
    pub fn running(&self) -> bool {
        lock(&self.inner).running.is_some()
    }

    /// The running sync and the last finished one.
    pub fn snapshot(&self) -> (Option<Running>, Option<Finished>) {
        let inner = lock(&self.inner);
        (inner.running.clone(), inner.last.clone())
    }

    /// Plans a sync and starts it on its own thread; errors (no URL, an
    /// unsigned URL, a missing `--from`, a sync already running) come back
    /// at once and start nothing.
    pub fn start(
        &self,
        paths: &Paths,
        events: &Arc<EventBus>,
        req: &SyncRequest,
    ) -> Result<SyncStarted, Refused> {
        let config = Config::load(&paths.config_file()).map_err(Refused::Bad)?;
        let plan = plan(paths, &config, req).map_err(Refused::Bad)?;
        self.launch(paths, events, plan)
    }

    fn launch(
        &self,
        paths: &Paths,
        events: &Arc<EventBus>,
        plan: Plan,
    ) -> Result<SyncStarted, Refused> {
        let mut inner = lock(&self.inner);
        if let Some(r) = &inner.running {
            return Err(Refused::Busy(format!(
                "a registry sync is already running (id {}, from {}, started {}); \
                 wait for it to finish",
                r.id, r.source, r.started
            )));
        }
        let id =
            format!("{}-{}", std::process::id(), self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let running = Running {
            id: id.clone(),
            source: plan.describe.clone(),
            started: crate::time::now_rfc3339(),
            progress: ProgressView::default(),
        };
        let (slot, paths, events) = (self.inner.clone(), paths.clone(), events.clone());
        let (thread_id, clients) = (id.clone(), self.clients.clone());
        let spawned = std::thread::Builder::new()
            .name("registry-sync".into())
            .spawn(move || run(&slot, &paths, &events, &clients, &thread_id, plan));
        if let Err(e) = spawned {
            return Err(Refused::Bad(anyhow!("starting the registry sync thread: {e}")));
        }
        let source = running.source.clone();
        inner.running = Some(running);
        Ok(SyncStarted { id, source })
    }

    /// Refuses while a sync runs (pin and rollback write `state.json` and
    /// `current`, which a sync is about to write).
    pub fn idle_or_busy(&self) -> Result<(), Refused> {
        match &lock(&self.inner).running {
            Some(r) => Err(Refused::Busy(format!(
                "a registry sync is running (id {}); try again when it has finished",
                r.id
            ))),
            None => Ok(()),
        }
    }

    /// With `auto_sync = "daily"`: a thread that starts a URL sync when the
    /// last one is older than a day. It reads `config.toml` at every look,
    /// so turning it off takes effect without a restart.
    pub fn spawn_auto(self: &Arc<Self>, paths: &Paths, events: &Arc<EventBus>) {
        let (runner, paths, events) = (self.clone(), paths.clone(), events.clone());
        let _ = std::thread::Builder::new().name("registry-auto".into()).spawn(move || {
            let mut wait = AUTO_FIRST;
            loop {
                std::thread::sleep(wait);
                wait = AUTO_CHECK;
                runner.auto_once(&paths, &events);
            }
        });
    }

    fn auto_once(&self, paths: &Paths, events: &Arc<EventBus>) {
        let Ok(config) = Config::load(&paths.config_file()) else { return };
        if config.registry.auto_sync != AutoSync::Daily || config.registry.url.is_none() {
            return;
        }
        let state = store::load_state(paths);
        let due = state.last_sync.is_none_or(|t| now_secs().saturating_sub(t) >= DAY);
        if !due || self.running() {
            return;
        }
        match plan(paths, &config, &SyncRequest::default()) {
            Ok(plan) => {
                crate::info!("registry: daily sync from {}", plan.describe);
                let _ = self.launch(paths, events, plan);
            }
            Err(e) => crate::warn!("registry: auto_sync: {e:#}"),
        }
    }
}

/// Why a sync (or a pin, a rollback) was not started.
#[derive(Debug)]
pub enum Refused {
    /// Another one runs.
    Busy(String),
    /// The request or the config cannot work.
    Bad(anyhow::Error),
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Decides where a sync reads from and what it accepts.
fn plan(paths: &Paths, config: &Config, req: &SyncRequest) -> Result<Plan> {
    let reg = &config.registry;
    let channel = req.channel.clone().unwrap_or_else(|| reg.channel.clone());
    index::check_channel(&channel)?;
    let state = store::load_state(paths);
    let mut opts = store::SyncOptions {
        force: req.force,
        expect_commit: state.pin.clone().filter(|p| index::is_commit(p)),
        public_key: reg.public_key.clone(),
        allow_unsigned: reg.allow_unsigned,
        // A pin (a commit or a ref) may lead to an older registry on purpose.
        allow_older: state.pin.is_some(),
    };
    let mut warnings = Vec::new();
    if req.offline {
        if req.from.is_some() {
            bail!("--offline reads only the cache; --from already reads no network: give one");
        }
        return Ok(Plan { from: Origin::Cache, opts, describe: "cache".into(), warnings });
    }
    let url = match &req.from {
        Some(from) if from.starts_with("http://") || from.starts_with("https://") => from.clone(),
        Some(from) => {
            let path = Path::new(from);
            if !path.is_absolute() {
                bail!("--from {from}: give an absolute path (the daemon's working directory is not yours)");
            }
            let meta = std::fs::metadata(path).with_context(|| format!("--from {from}"))?;
            let source = if meta.is_dir() { Origin::Dir(path.into()) } else { Origin::Tar(path.into()) };
            // A bundle may be unsigned; with a key set it must be signed too.
            opts.allow_unsigned = true;
            return Ok(Plan { from: source, opts, describe: from.clone(), warnings });
        }
        None => reg.url.clone().ok_or_else(|| {
            anyhow!(
                "no registry URL is set. Add one to {}:\n  [registry]\n  url = \"https://<host>/<path>/{{channel}}\"\n  \
                 public_key = \"<minisign public key>\"   # or allow_unsigned = true\n\
                 or import a bundle or a directory: ringlet registry sync --from <dir|file.tar>",
                paths.config_file().display()
            )
        })?,
    };
    // state.json may have been edited by hand: the pin gets the check
    // `registry pin` gives it before it is pasted into a URL.
    if let Some(pin) = &state.pin {
        fetch::check_ref(pin).context("the pin in registry/state.json")?;
    }
    let root = fetch::expand(&url, &channel, state.pin.as_deref())?;
    if let Some(pin) = &state.pin
        && !url.contains("{ref}")
    {
        warnings.push(format!(
            "pinned to {pin}, but the registry URL has no {{ref}} to fetch it by: the channel's \
             registry.json is fetched{}",
            if index::is_commit(pin) { " and accepted only if it is that commit" } else { "" }
        ));
    }
    if reg.public_key.is_none() {
        if !reg.allow_unsigned {
            bail!(
                "refusing the unsigned registry at {root}: a registry is code (detection \
                 commands, setup tasks, scripts). Set [registry] public_key to its minisign \
                 public key, or accept unsigned registries with [registry] allow_unsigned = true"
            );
        }
        warnings.push(format!(
            "the registry at {root} is unsigned (allow_unsigned = true): whoever can change \
             what it serves can change what ringlet runs; set [registry] public_key"
        ));
    }
    let from = Origin::Url {
        root: root.clone(),
        channel,
        signed: reg.public_key.is_some(),
        ca_file: config.tls.ca_file.clone(),
        timeout: Duration::from_secs(reg.timeout_secs),
    };
    Ok(Plan { from, opts, describe: root, warnings })
}

/// The sync thread: runs the plan, reports, frees the slot.
fn run(
    slot: &Mutex<Inner>,
    paths: &Paths,
    events: &EventBus,
    clients: &fetch::Clients,
    id: &str,
    plan: Plan,
) {
    let source = plan.describe.clone();
    events.emit(EventKind::RegistrySyncStarted, json!({"id": id, "source": source}));
    crate::info!("registry: sync {id} from {source}");
    // The store records its own failures in state.json; one before it ran
    // (a bundle that cannot be opened, a bad CA file) is recorded here.
    let mut recorded = false;
    let result = execute(slot, paths, events, clients, id, &plan, &mut recorded);
    let finished = crate::time::now_rfc3339();
    let (last, kind, data) = match result {
        Ok(report) => {
            for w in &report.warnings {
                crate::warn!("registry: {w}");
            }
            crate::info!(
                "registry: sync {id}: commit {} ({} fetched, {} reused{})",
                report.commit,
                report.fetched,
                report.reused,
                if report.unchanged { ", unchanged" } else { "" }
            );
            let data = serde_json::to_value(&report).unwrap_or(Value::Null);
            let last = Finished { id: id.into(), source, finished, ok: true, error: None };
            (last, EventKind::RegistrySyncCompleted, data)
        }
        Err(e) => {
            let error = format!("{e:#}");
            crate::warn!("registry: sync {id} failed: {error}");
            if !recorded && !plan_is_offline(&plan) {
                let mut state = store::load_state(paths);
                state.last_error = Some(error.clone());
                if let Err(e) = store::save_state(paths, &state) {
                    crate::warn!("registry: recording the failure: {e:#}");
                }
            }
            let data = json!({"id": id, "source": source, "error": error});
            let last = Finished { id: id.into(), source, finished, ok: false, error: Some(error) };
            (last, EventKind::RegistrySyncFailed, data)
        }
    };
    // The slot is free before the last event goes out: whoever it tells
    // may start the next sync at once.
    {
        let mut inner = lock(slot);
        inner.running = None;
        inner.last = Some(last);
    }
    events.emit(kind, data);
}

fn plan_is_offline(plan: &Plan) -> bool {
    matches!(plan.from, Origin::Cache)
}

fn execute(
    slot: &Mutex<Inner>,
    paths: &Paths,
    events: &EventBus,
    clients: &fetch::Clients,
    id: &str,
    plan: &Plan,
    recorded: &mut bool,
) -> Result<SyncReport> {
    let mut source: Box<dyn Source> = match &plan.from {
        Origin::Cache => return offline(paths, id),
        Origin::Url { root, channel, signed, ca_file, timeout } => {
            let ca_file = ca_file.as_deref();
            Box::new(HttpSource::new(root, channel, *signed, ca_file, *timeout, clients)?)
        }
        Origin::Dir(dir) => Box::new(bundle::DirSource::new(dir)?),
        Origin::Tar(file) => Box::new(bundle::TarSource::open(file)?),
    };
    let mut last_event: Option<std::time::Instant> = None;
    let mut progress = |p: &store::Progress| {
        let view = ProgressView {
            artifacts_done: p.artifacts_done,
            artifacts_total: p.artifacts_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        };
        if let Some(r) = lock(slot).running.as_mut() {
            r.progress = view.clone();
        }
        // An event per PROGRESS_EVERY at most, and always the last: a local
        // sync of hundreds of artifacts must not flood the subscribers.
        let last = p.artifacts_done >= p.artifacts_total;
        if !last && last_event.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        last_event = Some(std::time::Instant::now());
        let mut data = serde_json::to_value(&view).unwrap_or(Value::Null);
        data["id"] = json!(id);
        events.emit(EventKind::RegistrySyncProgress, data);
    };
    *recorded = true;
    let outcome = store::sync(paths, source.as_mut(), &plan.opts, &mut progress)?;
    let mut warnings = plan.warnings.clone();
    warnings.extend(outcome.warnings.iter().cloned());
    Ok(SyncReport {
        id: id.into(),
        source: plan.describe.clone(),
        commit: outcome.commit.clone(),
        previous: outcome.previous.clone(),
        unchanged: outcome.unchanged,
        offline: false,
        fetched: outcome.fetched,
        reused: outcome.reused,
        bytes: outcome.bytes,
        changes: outcome.changes.iter().filter_map(|c| serde_json::to_value(c).ok()).collect(),
        warnings,
    })
}

/// `--offline`: the cached commit, or a clear error.
fn offline(paths: &Paths, id: &str) -> Result<SyncReport> {
    let Some(commit) = current_commit(paths) else {
        bail!(
            "offline, and no registry is cached in {}: sync once while online \
             (`ringlet registry sync`) or import a bundle (`ringlet registry sync --from <file.tar>`)",
            super::root(paths).display()
        );
    };
    let artifacts = read_index(paths).map(|i| i.artifacts.len()).unwrap_or(0);
    Ok(SyncReport {
        id: id.into(),
        source: "cache".into(),
        commit,
        unchanged: true,
        offline: true,
        reused: artifacts,
        ..SyncReport::default()
    })
}

/// The current commit's `registry.json`, parsed.
fn read_index(paths: &Paths) -> Option<super::Index> {
    let dir = current_dir(paths)?;
    let bytes = std::fs::read(dir.join("registry.json")).ok()?;
    index::parse(&bytes).ok()
}

/// One built-in the current commit replaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overridden {
    pub kind: Kind,
    pub id: String,
}

/// `registry inspect`: `GET /api/registry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryView {
    /// `[registry] url`, as configured (a template).
    pub url: Option<String>,
    /// `[registry] channel`.
    pub channel: String,
    /// The channel of the current commit's `registry.json`.
    pub current_channel: Option<String>,
    pub commit: Option<String>,
    pub pin: Option<String>,
    /// RFC 3339, UTC.
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
    /// Commits kept, newest first (`registry rollback` goes to the second).
    pub history: Vec<String>,
    /// Artifacts of the current commit per kind (every kind listed).
    pub counts: BTreeMap<String, usize>,
    /// Built-ins the current commit replaces (a synced file equal to its
    /// built-in replaces nothing): agents and providers by id, scripts by
    /// file name, the price table.
    pub overridden: Vec<Overridden>,
    pub signed: bool,
    pub allow_unsigned: bool,
    pub auto_sync: String,
    /// The sync running now, with its progress.
    pub running: Option<Running>,
    /// The last sync this daemon ran.
    pub last_run: Option<Finished>,
    /// With `--changes`: command-bearing fields the current commit changes
    /// against the built-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Value>>,
}

/// What `registry inspect` shows.
pub fn view(paths: &Paths, runner: &Runner, with_changes: bool) -> Result<RegistryView> {
    let config = Config::load(&paths.config_file())?;
    let state = store::load_state(paths);
    let index = read_index(paths);
    let mut counts: BTreeMap<String, usize> =
        Kind::ALL.iter().map(|k| (k.as_str().to_string(), 0)).collect();
    for a in index.iter().flat_map(|i| &i.artifacts) {
        *counts.entry(a.kind.as_str().into()).or_default() += 1;
    }
    let (running, last_run) = runner.snapshot();
    let commit = current_commit(paths);
    let changes = match (with_changes, current_dir(paths)) {
        (false, _) => None,
        (true, None) => Some(Vec::new()),
        (true, Some(dir)) => Some(
            changes::between(None, &dir)
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect(),
        ),
    };
    Ok(RegistryView {
        url: config.registry.url.clone(),
        channel: config.registry.channel.clone(),
        current_channel: index.as_ref().map(|i| i.channel.clone()),
        overridden: runner.overridden(paths, commit.as_deref()),
        commit,
        pin: state.pin.clone(),
        last_sync: state.last_sync.map(|t| crate::time::rfc3339(t as i64, 0)),
        last_error: state.last_error.clone(),
        history: state.history.clone(),
        counts,
        signed: config.registry.public_key.is_some(),
        allow_unsigned: config.registry.allow_unsigned,
        auto_sync: match config.registry.auto_sync {
            AutoSync::Off => "off".into(),
            AutoSync::Daily => "daily".into(),
        },
        running,
        last_run,
        changes,
    })
}

/// `registry pin <ref>` / `--clear`: the new pin.
pub fn pin(paths: &Paths, runner: &Runner, reference: Option<&str>) -> Result<Value, Refused> {
    if let Some(r) = reference {
        fetch::check_ref(r).map_err(Refused::Bad)?;
    }
    // A commit is a hash in any case; the store compares lower case.
    let lower = reference.map(str::to_ascii_lowercase);
    let reference = match lower {
        Some(l) if index::is_commit(&l) => Some(l),
        _ => reference.map(str::to_string),
    };
    let reference = reference.as_deref();
    runner.idle_or_busy()?;
    let mut state = store::load_state(paths);
    state.pin = reference.map(str::to_string);
    store::save_state(paths, &state).map_err(Refused::Bad)?;
    Ok(json!({
        "pin": state.pin,
        "commit": reference.is_some_and(index::is_commit),
        "current": current_commit(paths),
    }))
}

/// `registry rollback`: back to the previous commit kept.
pub fn rollback(paths: &Paths, runner: &Runner, events: &EventBus) -> Result<Value, Refused> {
    runner.idle_or_busy()?;
    let outcome = store::rollback(paths).map_err(Refused::Bad)?;
    let data = json!({
        "rollback": true,
        "commit": outcome.commit,
        "previous": outcome.previous,
        "changes": outcome.changes.iter().filter_map(|c| serde_json::to_value(c).ok()).collect::<Vec<_>>(),
    });
    crate::info!("registry: rolled back to {}", outcome.commit);
    events.emit(EventKind::RegistrySyncCompleted, data.clone());
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(name: &str) -> Paths {
        let dir =
            std::env::temp_dir().join(format!("ringlet-runner-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Paths::from_vars(
            |k| match k {
                "HOME" => Some(dir.clone().into()),
                "RINGLET_CONFIG_DIR" => Some(dir.join("config").into()),
                "XDG_RUNTIME_DIR" => Some(dir.join("run").into()),
                _ => None,
            },
            rustix::process::getuid().as_raw(),
        )
        .unwrap()
    }

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_url_needs_a_key_or_allow_unsigned_and_then_warns() {
        let p = paths("plan");
        let err = plan(&p, &config(""), &SyncRequest::default()).unwrap_err().to_string();
        assert!(err.contains("no registry URL is set") && err.contains("[registry]"), "{err}");
        let url = "[registry]\nurl = \"https://r.example/{channel}\"\n";
        let err = plan(&p, &config(url), &SyncRequest::default()).unwrap_err().to_string();
        assert!(err.contains("refusing the unsigned registry") && err.contains("allow_unsigned"));
        let ok =
            plan(&p, &config(&format!("{url}allow_unsigned = true\n")), &SyncRequest::default())
                .unwrap();
        assert_eq!(ok.describe, "https://r.example/stable");
        assert!(ok.warnings[0].contains("unsigned"), "{:?}", ok.warnings);
        let signed = plan(
            &p,
            &config(&format!("{url}public_key = \"RWQ\"\n")),
            &SyncRequest { channel: Some("beta".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(
            (signed.describe.as_str(), signed.warnings.len()),
            ("https://r.example/beta", 0)
        );
        let bad = SyncRequest { channel: Some("a/b".into()), ..Default::default() };
        assert!(plan(&p, &config(url), &bad).is_err());
        let rel = SyncRequest { from: Some("bundle.tar".into()), ..Default::default() };
        assert!(plan(&p, &config(""), &rel).unwrap_err().to_string().contains("absolute"));
    }

    #[test]
    fn a_commit_pin_is_expected_and_a_ref_pin_is_only_substituted() {
        let p = paths("pin");
        let runner = Runner::default();
        let url = "[registry]\nurl = \"http://h/{ref}/x\"\nallow_unsigned = true\n";
        pin(&p, &runner, Some("v2")).unwrap();
        let v2 = plan(&p, &config(url), &SyncRequest::default()).unwrap();
        assert_eq!((v2.describe.as_str(), v2.opts.expect_commit), ("http://h/v2/x", None));
        let commit = "ab".repeat(32);
        pin(&p, &runner, Some(&commit)).unwrap();
        let c = plan(&p, &config(url), &SyncRequest::default()).unwrap();
        assert_eq!(c.opts.expect_commit.as_deref(), Some(commit.as_str()));
        assert!(matches!(pin(&p, &runner, Some("../x")), Err(Refused::Bad(_))));
        // A commit in upper case is the same commit.
        pin(&p, &runner, Some(&commit.to_uppercase())).unwrap();
        assert_eq!(store::load_state(&p).pin.as_deref(), Some(commit.as_str()));
        let no_ref = "[registry]\nurl = \"http://h/{channel}\"\nallow_unsigned = true\n";
        let warned = plan(&p, &config(no_ref), &SyncRequest::default()).unwrap();
        assert!(warned.warnings.iter().any(|w| w.contains("no {ref}")), "{:?}", warned.warnings);
        pin(&p, &runner, None).unwrap();
        let cleared = plan(&p, &config(url), &SyncRequest::default()).unwrap();
        assert_eq!(cleared.describe, "http://h/stable/x");
    }
}
