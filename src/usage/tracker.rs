//! The daemon's usage tracker: one owner for the store, the scanner and the
//! price table, loaded on first use (not at daemon start, which must stay
//! fast) and serialised by one lock, so a report always follows a finished
//! scan and two scans never race over the index. A report skips its scan
//! when the watcher vouches that nothing changed since the last one
//! ([`Freshness`]): the walk is most of an unchanged report's time. The
//! prices are reloaded, and every record repriced, when the registry's
//! `current` link names another commit (one `readlink` per request): a sync
//! changes the next report without a daemon restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Result, bail};

use super::pricing::{self, ModelPrice, Pricing};
use super::report::{self, ImportReport, Input, UsageQuery, UsageReport};
use super::scan::{self, Outcome, Root, Scanner};
use super::store::Store;
use super::watch::Freshness;
use super::{Agent, Format};
use crate::profiles::run::RunRow;

struct Loaded {
    store: Store,
    scanner: Scanner,
    /// The roots of the last successful scan.
    scanned: Vec<Root>,
    /// The registry commit the prices came from ([`pricing::registry_key`]).
    prices_from: Option<PathBuf>,
}

pub struct Tracker {
    /// `<config>/telemetry`.
    dir: PathBuf,
    config_dir: PathBuf,
    overrides: BTreeMap<String, ModelPrice>,
    inner: Mutex<Option<Loaded>>,
    /// Kept by the usage watcher.
    pub fresh: Freshness,
}

impl Tracker {
    pub fn new(config_dir: &Path, overrides: BTreeMap<String, ModelPrice>) -> Tracker {
        Tracker {
            dir: config_dir.join("telemetry"),
            config_dir: config_dir.to_path_buf(),
            overrides,
            inner: Mutex::new(None),
            fresh: Freshness::default(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<Loaded>>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let prices_from = pricing::registry_key(&self.config_dir);
        match guard.as_mut() {
            None => {
                let store = Store::open(&self.dir, self.prices())?;
                if store.bad_lines > 0 {
                    crate::warn!("usage store: {} unreadable lines skipped", store.bad_lines);
                }
                let scanner = Scanner::open(&self.dir);
                *guard = Some(Loaded { store, scanner, scanned: Vec::new(), prices_from });
            }
            Some(loaded) if loaded.prices_from != prices_from => {
                let started = std::time::Instant::now();
                loaded.store.set_pricing(self.prices());
                crate::info!(
                    "prices reloaded from {} ({}), {} records repriced in {} ms",
                    prices_from.as_deref().map_or("the embedded snapshot".into(), |p| format!(
                        "registry/{}",
                        p.display()
                    )),
                    loaded.store.pricing().source(),
                    loaded.store.records().len(),
                    started.elapsed().as_millis()
                );
                loaded.prices_from = prices_from;
            }
            Some(_) => {}
        }
        Ok(guard)
    }

    /// The price table as the registry and config.toml say now.
    fn prices(&self) -> Pricing {
        pricing::load_logged(&self.config_dir, &self.overrides)
    }

    /// Scans every root for what changed since the last scan.
    pub fn scan(&self, roots: &[Root]) -> Result<Outcome> {
        let mut guard = self.lock()?;
        let loaded = guard.as_mut().expect("loaded by lock()");
        scan_logged(loaded, roots)
    }

    /// Scans, then answers `query`. The scan's outcome is returned too, so
    /// the caller can announce what it found. The scan is skipped when the
    /// last one covered the same roots and the watcher has seen nothing
    /// change since.
    pub fn report(
        &self,
        roots: &[Root],
        query: &UsageQuery,
        runs: &[RunRow],
    ) -> Result<(UsageReport, Outcome)> {
        let mut guard = self.lock()?;
        let loaded = guard.as_mut().expect("loaded by lock()");
        let outcome = if loaded.scanned == roots && self.fresh.unchanged() {
            Outcome::default()
        } else {
            scan_logged(loaded, roots)?
        };
        let input = Input {
            records: loaded.store.records(),
            names: loaded.store.names(),
            runs,
            now: jiff::Timestamp::now(),
            skipped: loaded.scanner.skipped(),
            pricing: loaded.store.pricing().source().to_string(),
        };
        Ok((report::build(query, &input)?, outcome))
    }

    /// Counts a Claude config dir's history (`<dir>/projects`, or `dir`
    /// itself when it is a `projects` dir) for `profile`. Idempotent: what
    /// the store has is not counted again.
    pub fn import_claude(&self, dir: &Path, profile: &str) -> Result<(ImportReport, Outcome)> {
        let projects = if dir.file_name().is_some_and(|n| n == "projects") {
            dir.to_path_buf()
        } else {
            dir.join("projects")
        };
        if !projects.is_dir() {
            bail!("no Claude Code history at {}: there is no projects directory", dir.display());
        }
        let root = Root {
            path: projects,
            format: Format::Claude,
            agent: Agent::Claude,
            profile: profile.into(),
            base: dir.into(),
        };
        let mut guard = self.lock()?;
        let loaded = guard.as_mut().expect("loaded by lock()");
        let (outcome, skipped) = scan::scan_once(&[root], &mut loaded.store)?;
        let report = ImportReport {
            dir: dir.display().to_string(),
            profile: profile.into(),
            files: outcome.files_read,
            added: outcome.added,
            found: outcome.found,
            skipped,
        };
        Ok((report, outcome))
    }
}

/// Scans, with one log line when the scan read anything.
fn scan_logged(loaded: &mut Loaded, roots: &[Root]) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let outcome = loaded.scanner.scan(roots, &mut loaded.store)?;
    if loaded.scanned != roots {
        loaded.scanned = roots.to_vec();
    }
    if outcome.files_read > 0 {
        crate::info!(
            "usage scan: {} files, {:.1} MB, {} entries ({} new) in {} ms",
            outcome.files_read,
            outcome.bytes_read as f64 / 1e6,
            outcome.found,
            outcome.added,
            started.elapsed().as_millis()
        );
    }
    Ok(outcome)
}
