//! The daemon's side of usage tracking: which directories to scan (every
//! profile's log dirs and the user's own), the watcher thread, and turning a
//! scan's deltas into UsageUpdated events. Every scan, whether the watcher's
//! or a request's, goes through [`scan_and_announce`], so no update is
//! announced twice or missed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use serde_json::json;

use super::State;
use super::events::EventKind;
use crate::usage::scan::{self, Outcome, Root};
use crate::usage::watch::{self, WatchSet};

/// The scan roots for the current profiles and manifests.
pub fn roots(state: &State) -> Vec<Root> {
    let catalog = state.catalog();
    let profiles = state.profiles.list().map(|(p, _)| p).unwrap_or_default();
    scan::roots(&catalog, &profiles, &state.paths.home, &state.paths.config_dir, &|name| {
        std::env::var(name).ok()
    })
}

/// Emits one UsageUpdated per (profile, model) a scan changed.
pub fn announce(state: &State, outcome: &Outcome) {
    for delta in &outcome.deltas {
        state.events.emit(EventKind::UsageUpdated, json!(delta));
    }
}

/// Scans everything and announces what changed.
pub fn scan_and_announce(state: &State) -> Result<Outcome> {
    let outcome = state.usage.scan(&roots(state))?;
    announce(state, &outcome);
    Ok(outcome)
}

/// Starts the watcher thread; it ends when the daemon starts shutting down.
///
/// Besides the log dirs, the watcher watches the profile store: a profile
/// created after a scan adds roots that nothing watched yet (its home is
/// new), and its first run would otherwise wait for the periodic rescan.
/// Saves are atomic renames, so the store sees a create or a move-in.
pub fn spawn_watcher(state: Arc<State>) -> Result<()> {
    let store = state.profiles.dir().to_path_buf();
    // Made now, so it can be watched before the first profile exists.
    crate::fsutil::create_private_dir(&store)?;
    std::thread::Builder::new().name("usage-watcher".into()).spawn(move || {
        let stop = || state.stopping.load(Ordering::Relaxed);
        let mut scan = || match scan_and_announce(&state) {
            Ok(mut outcome) => {
                outcome.ancestors.push(store.clone());
                Some(WatchSet {
                    dirs: outcome.dirs,
                    ancestors: outcome.ancestors,
                    unwatched: outcome.unwatched,
                })
            }
            Err(e) => {
                crate::warn!("usage scan: {e:#}");
                None
            }
        };
        watch::run(&stop, &mut scan, &state.usage.fresh);
    })?;
    Ok(())
}
