//! Crash safety of `profiles create` and `profiles delete`: each writes an
//! intent file (`profiles/.<alias>.creating` or `.deleting`) before its
//! first side effect and removes it after its last, and the profile file is
//! the commit point (written last by create, removed first by delete). A
//! daemon killed at any step therefore leaves either the old state or one
//! that [`at_start`] completes or rolls back on the next start:
//!
//! - `.creating` without a profile file: the create never committed; its key,
//!   its shim and the home it made are removed. With a profile file: it
//!   committed; only the intent goes.
//! - `.deleting` without a profile file: the delete committed; the key, the
//!   shim and (with `--purge`) the home are removed. With a profile file: it
//!   never committed; the profile stays as it was.
//!
//! At start, a key in the file store without a profile is removed, stale temp
//! files are deleted, and a profile whose key is gone is remembered for
//! `profiles list` and `doctor` ([`key_missing`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Locked, Store, aliases, check_alias};
use crate::fsutil;
use crate::paths::Paths;
use crate::secrets::{Secrets, StoreKind};

/// What a create or delete in progress will have touched, so that a restart
/// can finish or undo it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Intent {
    pub alias: String,
    /// Where the key is (delete) or may be (create: either store).
    pub secret: Option<StoreKind>,
    /// A home to remove: the one a create made, or the one a purge removes.
    pub home: Option<PathBuf>,
    /// Whether a shim may have been installed (create) or is to be removed.
    pub shim: bool,
}

/// Which operation an intent belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Delete,
}

impl Op {
    fn suffix(self) -> &'static str {
        match self {
            Op::Create => "creating",
            Op::Delete => "deleting",
        }
    }
}

fn intent_path(store: &Store, alias: &str, op: Op) -> PathBuf {
    store.dir().join(format!(".{alias}.{}", op.suffix()))
}

/// Records `intent` durably before the operation's first side effect. Call
/// with the store lock held.
pub fn begin(store: &Store, _lock: &Locked, op: Op, intent: &Intent) -> Result<()> {
    let text = serde_json::to_vec(intent)?;
    fsutil::write_atomic(&intent_path(store, &intent.alias, op), &text, 0o600)
}

/// Removes the intent after the operation's last step.
pub fn finish(store: &Store, _lock: &Locked, op: Op, alias: &str) {
    let path = intent_path(store, alias, op);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        crate::warn!("removing {}: {e}", path.display());
    }
}

/// Removes an intent whose operation failed and was undone in place.
pub fn abandon(store: &Store, op: Op, alias: &str) {
    let _ = std::fs::remove_file(intent_path(store, alias, op));
}

/// Profiles found at start (or since) whose key is gone.
static KEY_MISSING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether `alias`'s key was found missing (at start, or by a failed read
/// since); file-store keys are checked live.
pub fn key_missing(secrets: &Secrets, alias: &str, kind: Option<StoreKind>) -> bool {
    match kind {
        None => false,
        Some(StoreKind::File) => !secrets.file_exists(alias),
        Some(StoreKind::Keyring) => {
            KEY_MISSING.lock().unwrap_or_else(|p| p.into_inner()).contains(alias)
        }
    }
}

/// Forgets a missing key (the profile was deleted or created again).
pub fn forget_missing(alias: &str) {
    KEY_MISSING.lock().unwrap_or_else(|p| p.into_inner()).remove(alias);
}

/// The daemon's start-up repair, before it serves: stale temp files,
/// interrupted creates and deletes, orphan keys in the file store. Never
/// fails the start: each problem is logged and the rest goes on.
pub fn at_start(paths: &Paths, store: &Store, secrets: &Secrets) {
    for sub in ["", "profiles", "telemetry", "cache", "secrets", "logs"] {
        let dir = paths.config_dir.join(sub);
        match fsutil::remove_stale_temps(&dir) {
            Ok(0) => {}
            Ok(n) => crate::info!(
                "removed {n} temp file(s) left by an interrupted write in {}",
                dir.display()
            ),
            Err(e) => crate::warn!("cleaning temp files in {}: {e:#}", dir.display()),
        }
    }
    if !store.dir().is_dir() {
        return;
    }
    let lock = match store.lock() {
        Ok(lock) => lock,
        Err(e) => {
            crate::warn!("start-up repair skipped: {e:#}");
            return;
        }
    };
    if let Err(e) = replay_intents(paths, store, &lock, secrets) {
        crate::warn!("start-up repair: {e:#}");
    }
    remove_orphan_file_keys(store, secrets);
    // Renders write into the homes: a killed one leaves a temp file there.
    // Done before serving, so no render of this daemon is in progress.
    if let Ok((profiles, _)) = store.list() {
        for p in profiles {
            let n = fsutil::remove_stale_temps_in_home(&p.home);
            if n > 0 {
                crate::info!(
                    "removed {n} temp file(s) left by an interrupted render in {}",
                    p.home.display()
                );
            }
        }
    }
}

/// The slower part of the start-up repair, run on its own thread once the
/// daemon serves (a keychain round trip per profile must not delay the
/// start): profiles whose key is gone, remembered for [`key_missing`].
pub fn check_profiles(store: &Store, secrets: &Secrets) {
    if let Ok((profiles, _)) = store.list() {
        for p in profiles {
            let Some(kind) = p.secret else { continue };
            if let Ok(None) = secrets.get(kind, &p.alias) {
                crate::warn!(
                    "profile `{}`: its API key is missing from {}; delete the profile and create it again",
                    p.alias,
                    secrets.describe(kind)
                );
                KEY_MISSING.lock().unwrap_or_else(|p| p.into_inner()).insert(p.alias);
            }
        }
    }
}

fn replay_intents(paths: &Paths, store: &Store, lock: &Locked, secrets: &Secrets) -> Result<()> {
    let entries = std::fs::read_dir(store.dir())
        .with_context(|| format!("reading {}", store.dir().display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix('.') else { continue };
        let (alias, op) = match rest.rsplit_once('.') {
            Some((alias, "creating")) => (alias, Op::Create),
            Some((alias, "deleting")) => (alias, Op::Delete),
            _ => continue,
        };
        if check_alias(alias).is_err() {
            continue;
        }
        let path = entry.path();
        let intent: Intent = match fsutil::read_private(&path, 64 * 1024)
            .and_then(|b| b.context("vanished"))
            .and_then(|b| serde_json::from_slice(&b).context("corrupt"))
        {
            Ok(intent) => intent,
            Err(e) => {
                crate::warn!("{}: {e:#}; removed", path.display());
                finish(store, lock, op, alias);
                continue;
            }
        };
        if intent.alias != alias {
            crate::warn!("{} names another profile; removed", path.display());
            finish(store, lock, op, alias);
            continue;
        }
        let committed = store.path(alias).exists();
        match (op, committed) {
            (Op::Create, true) => {
                crate::info!("profile {alias}: its create finished before a crash");
            }
            (Op::Create, false) => {
                crate::warn!("profile {alias}: rolling back a create interrupted by a crash");
                undo_side_effects(paths, secrets, &intent, None);
            }
            (Op::Delete, false) => {
                crate::warn!("profile {alias}: finishing a delete interrupted by a crash");
                undo_side_effects(paths, secrets, &intent, intent.secret);
            }
            (Op::Delete, true) => {
                crate::info!(
                    "profile {alias}: a delete was interrupted before it took effect; kept"
                );
            }
        }
        finish(store, lock, op, alias);
    }
    Ok(())
}

/// Removes a profile's key, shim and (if named) home. `kind` is where the key
/// is; `None` means "wherever it may be" (a create that never recorded it).
fn undo_side_effects(paths: &Paths, secrets: &Secrets, intent: &Intent, kind: Option<StoreKind>) {
    let alias = &intent.alias;
    if let Err(e) = match kind {
        Some(kind) => secrets.delete(kind, alias),
        None => secrets.delete_everywhere(alias),
    } {
        crate::warn!("profile {alias}: removing its key: {e:#}");
    }
    if let Err(e) = crate::proxy::keys::remove_local_token(secrets, alias) {
        crate::warn!("profile {alias}: removing its proxy token: {e:#}");
    }
    if intent.shim
        && let Err(e) = aliases::uninstall(&paths.home, alias)
    {
        crate::warn!("profile {alias}: removing its shim: {e:#}");
    }
    if let Some(home) = &intent.home {
        remove_home(home, alias);
    }
    forget_missing(alias);
}

fn remove_home(home: &Path, alias: &str) {
    match std::fs::remove_dir_all(home) {
        Ok(()) => crate::info!("profile {alias}: removed {}", home.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => crate::warn!("profile {alias}: removing {}: {e}", home.display()),
    }
}

/// A key in the file store whose profile file does not exist belongs to no
/// profile (a create or delete killed before its intent was written, or an
/// older version's crash): remove it.
/// A proxy's local token (`proxy.<alias>`) without its profile goes too;
/// provider keys (`provider.<id>`) belong to no profile and always stay.
fn remove_orphan_file_keys(store: &Store, secrets: &Secrets) {
    for name in secrets.file_names() {
        let (alias, what) = match crate::secrets::owner(&name) {
            crate::secrets::Owner::Profile(alias) => (alias, "key"),
            crate::secrets::Owner::Proxy(alias) => (alias, "proxy token"),
            crate::secrets::Owner::Provider(_) => continue,
        };
        if store.path(alias).exists() {
            continue;
        }
        match secrets.delete(StoreKind::File, &name) {
            Ok(()) => crate::warn!("removed the {what} of `{alias}`, which no profile uses"),
            Err(e) => crate::warn!("removing the orphan {what} of `{alias}`: {e:#}"),
        }
    }
}
