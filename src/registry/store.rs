//! The synced registry under `<config>/registry/`: a sync from any
//! [`Source`], `rollback`, and `state.json`.
//!
//! Crash safety is by order of operations; `current` is the only thing
//! readers follow, and it changes in one `rename`:
//! 1. take `registry.lock` (fd-lock; a second caller is told at once that
//!    "a registry sync is already running" rather than left waiting on a
//!    slow server behind the first), and remove what a killed sync left:
//!    `commits/.staging-*` and `.current-*`;
//! 2. read and check `registry.json`, its signature, the pin;
//! 3. stage every artifact in a fresh `commits/.staging-<random>/`, each
//!    file created `O_EXCL|O_NOFOLLOW` once its size and SHA-256 were
//!    checked (unchanged ones are copied from the current commit,
//!    re-checked), then `registry.json` and its signature; all fsynced;
//! 4. rename the staging dir to `commits/<commit>/` (a complete, verified
//!    tree, never visible half-written under that name);
//! 5. point `current` at it: a fresh symlink under a random name, renamed
//!    over `current`, directory fsynced;
//! 6. record `state.json` and prune to the last [`KEEP`] commits.
//!
//! A failure or a kill before 5 leaves `current` as it was (and leftovers
//! the next sync removes); after 5 the new commit is complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::bundle::read_beneath;
use super::changes::{self, Change};
use super::index::{self, INDEX_CAP, SIGNATURE_CAP, SIGNATURE_FILE, Source};
use super::{Index, Kind, current_commit, current_dir, root};
use crate::fsutil;
use crate::paths::Paths;

/// How many commits are kept (the current one and those to roll back to).
pub const KEEP: usize = 3;

/// The error a second, concurrent sync (or rollback) gets.
pub const BUSY: &str = "a registry sync is already running";

const STAGING: &str = ".staging-";
const LINK_TMP: &str = ".current-";

/// How a sync may go.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncOptions {
    /// Refetch every artifact, even if unchanged (repairs a damaged cache).
    pub force: bool,
    /// A pin to a commit hash: a `registry.json` with any other commit is
    /// refused. The full 64 hex digits (a prefix could be ground out).
    pub expect_commit: Option<String>,
    /// A minisign public key: `Some` means a valid signature is required.
    pub public_key: Option<String>,
    /// Only consulted by the caller (regsync) for URLs; dir and tar imports
    /// may be unsigned unless a key is set.
    pub allow_unsigned: bool,
    /// Accept a signed `registry.json` signed earlier than the current
    /// commit's (a pin: the user asked for an older registry on purpose).
    /// Without it such a registry is refused as a rollback.
    pub allow_older: bool,
}

/// Progress, reported after each artifact.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub artifacts_done: usize,
    pub artifacts_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What a sync or rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub commit: String,
    pub previous: Option<String>,
    /// The source serves the current commit: only `registry.json` was read.
    pub unchanged: bool,
    /// Artifacts read from the source.
    pub fetched: usize,
    /// Artifacts copied from the commit that was current (or kept).
    pub reused: usize,
    /// Bytes read from the source for artifacts.
    pub bytes: u64,
    /// Command-bearing changes against the previous current (or the
    /// built-ins when there was none).
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

/// `state.json`: what `registry inspect` shows besides the commit itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// `registry pin <ref>`: a commit hash or a ref substituted for `{ref}`.
    pub pin: Option<String>,
    /// The channel of the current commit's `registry.json`.
    pub channel: Option<String>,
    /// Unix seconds of the last sync that completed.
    pub last_sync: Option<u64>,
    /// The last failed sync's error, cleared by the next success.
    pub last_error: Option<String>,
    /// The commits kept, newest first (the first is current unless rolled back).
    pub history: Vec<String>,
}

fn state_path(paths: &Paths) -> PathBuf {
    root(paths).join("state.json")
}

/// `state.json`, or the default when it is missing or unreadable (with a
/// warning in the log: the state is a record, never a reason to fail).
pub fn load_state(paths: &Paths) -> State {
    let path = state_path(paths);
    let text = match fsutil::open_private_read(&path) {
        Ok(None) => return State::default(),
        Ok(Some(f)) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut bytes)
                .map(|_| bytes)
        }
        Err(e) => {
            crate::warn!("{e:#}");
            return State::default();
        }
    };
    match text.map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice(&b)?)) {
        Ok(state) => state,
        Err(e) => {
            crate::warn!("{}: {e:#}; starting afresh", path.display());
            State::default()
        }
    }
}

pub fn save_state(paths: &Paths, s: &State) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(s)?;
    bytes.push(b'\n');
    fsutil::write_atomic(&state_path(paths), &bytes, 0o600)
}

/// The registry dir and its lock, taken without waiting.
struct Locked {
    root: PathBuf,
    rootfd: OwnedFd,
    lock: File,
}

fn lock(paths: &Paths) -> Result<Locked> {
    use rustix::fs::{FlockOperation, flock};
    let root = root(paths);
    let rootfd = fsutil::open_private_dir(&root)?;
    let lock = fsutil::open_private(&root.join("registry.lock"), fsutil::Access::ReadWrite, 0o600)?;
    match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Locked { root, rootfd, lock }),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(BUSY),
        Err(e) => Err(std::io::Error::from(e)).context("locking registry.lock"),
    }
}

impl Drop for Locked {
    /// Unlocks explicitly rather than by closing: a process forked by
    /// another thread (the daemon spawns agents and probes) holds a copy of
    /// the fd until it execs, and the lock with it, so a close alone could
    /// leave the next sync told "already running".
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.lock, rustix::fs::FlockOperation::Unlock);
    }
}

/// Syncs from `source`: see the module doc for the steps. A failure is also
/// recorded as `last_error` in `state.json` (except [`BUSY`]).
pub fn sync(
    paths: &Paths,
    source: &mut dyn Source,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    let locked = lock(paths)?;
    let result = sync_locked(paths, &locked, source, opts, progress);
    if let Err(e) = &result {
        let mut state = load_state(paths);
        state.last_error = Some(format!("{e:#}"));
        if let Err(e) = save_state(paths, &state) {
            crate::warn!("recording the failed sync: {e:#}");
        }
    }
    result
}

fn sync_locked(
    paths: &Paths,
    locked: &Locked,
    source: &mut dyn Source,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    let from = source.describe();
    let commits = locked.root.join("commits");
    let commitsfd = fsutil::open_private_dir(&commits)?;
    let mut warnings = Vec::new();
    let removed = remove_leftovers(locked, &commits, commitsfd.as_fd())?;
    if removed > 0 {
        crate::info!("registry: removed {removed} leftovers of an interrupted sync");
    }

    let bytes = source.index().with_context(|| format!("reading registry.json from {from}"))?;
    let index = index::parse(&bytes).with_context(|| format!("the registry at {from}"))?;
    let commit = index::commit_of(&bytes);
    let signature =
        source.signature().with_context(|| format!("reading the signature from {from}"))?;
    if signature.as_ref().is_some_and(|s| s.len() as u64 > SIGNATURE_CAP) {
        bail!("{SIGNATURE_FILE} at {from} is over {SIGNATURE_CAP} bytes: not a signature");
    }
    match &opts.public_key {
        Some(key) => super::sign::verify(&bytes, signature.as_deref(), key)
            .with_context(|| format!("the registry at {from}"))?,
        None if signature.is_some() => warnings.push(format!(
            "{from} is signed, but no [registry] public_key is set: the signature was not checked"
        )),
        None => {}
    }
    if let Some(pin) = &opts.expect_commit
        && !pin.eq_ignore_ascii_case(&commit)
    {
        bail!("the registry is pinned to commit {pin}, but {from} serves commit {commit}");
    }

    let previous = current_commit(paths);
    let previous_dir = current_dir(paths);
    if let (Some(key), Some(dir)) = (&opts.public_key, &previous_dir)
        && opts.expect_commit.is_none()
        && !opts.allow_older
    {
        refuse_older(dir, key, signature.as_deref(), &from)?;
    }
    let total = Progress {
        artifacts_total: index.artifacts.len(),
        bytes_total: index.artifacts.iter().map(|a| a.size).sum(),
        ..Progress::default()
    };
    if previous.as_deref() == Some(commit.as_str()) && !opts.force {
        if let Err(e) = record(paths, &commit, previous.as_deref(), &index) {
            warnings.push(format!("recording the sync in state.json: {e:#}"));
        }
        progress(&Progress {
            artifacts_done: total.artifacts_total,
            bytes_done: total.bytes_total,
            ..total
        });
        return Ok(Outcome {
            commit,
            previous,
            unchanged: true,
            fetched: 0,
            reused: 0,
            bytes: 0,
            changes: Vec::new(),
            warnings,
        });
    }

    let target = commits.join(&commit);
    let kept = !opts.force
        && std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir())
        && std::fs::read(target.join("registry.json")).is_ok_and(|b| b == bytes)
        && verify_tree(&target, &index).is_ok();
    let (fetched, reused, fetched_bytes) = if kept {
        // One of the kept commits (a return to it): verified, so used as is.
        progress(&Progress {
            artifacts_done: total.artifacts_total,
            bytes_done: total.bytes_total,
            ..total
        });
        (0, index.artifacts.len(), 0)
    } else {
        let name = format!("{STAGING}{}", fsutil::random_hex(8)?);
        rustix::fs::mkdirat(&commitsfd, name.as_str(), Mode::from_raw_mode(0o700))
            .with_context(|| format!("creating a staging dir in {}", commits.display()))?;
        let staged = stage(
            &commits,
            commitsfd.as_fd(),
            &name,
            source,
            &bytes,
            signature.as_deref(),
            &index,
            if opts.force { None } else { previous_dir.as_deref() },
            total,
            progress,
        );
        let counts = staged.and_then(|counts| {
            fsutil::crash_point("registry:staged");
            publish(&commits, commitsfd.as_fd(), &name, &commit)?;
            Ok(counts)
        });
        match counts {
            Ok(c) => c,
            Err(e) => {
                let _ = remove_entry(&commits, &name);
                return Err(e);
            }
        }
    };
    fsutil::crash_point("registry:renamed");
    swap_current(locked, &commit)?;
    fsutil::crash_point("registry:swapped");

    let changes = changes::between(previous_dir.as_deref(), &target);
    // `current` has changed: the sync succeeded, whatever happens to the
    // record of it (reported, never turned into a failure).
    if let Err(e) = record(paths, &commit, previous.as_deref(), &index) {
        warnings.push(format!("recording the sync in state.json: {e:#}"));
    }
    if let Err(e) = prune(paths, &commits) {
        warnings.push(format!("removing old commits: {e:#}"));
    }
    Ok(Outcome {
        commit,
        previous,
        unchanged: false,
        fetched,
        reused,
        bytes: fetched_bytes,
        changes,
        warnings,
    })
}

/// A signature proves who made a `registry.json`, not that it is the
/// newest: a server (or whoever sits between it and us) can serve an older,
/// validly signed one with the flaws since fixed. So a signed registry
/// signed earlier (minisign's trusted `timestamp:`) than the current commit,
/// whose own signature still verifies with the same key, is refused; a pin
/// goes back on purpose.
fn refuse_older(current: &Path, key: &str, signature: Option<&[u8]>, from: &str) -> Result<()> {
    let Some(new) = signature.and_then(super::sign::signed_time) else { return Ok(()) };
    let Ok(fd) = fsutil::open_dir(current) else { return Ok(()) };
    let read = |rel: &str, cap: u64| read_beneath(fd.as_fd(), current, rel, cap).ok().flatten();
    let (Some(index), Some(sig)) =
        (read("registry.json", INDEX_CAP + 1), read(SIGNATURE_FILE, SIGNATURE_CAP + 1))
    else {
        return Ok(());
    };
    if super::sign::verify(&index, Some(&sig), key).is_err() {
        return Ok(());
    }
    match super::sign::signed_time(&sig) {
        Some(old) if new < old => bail!(
            "the registry at {from} was signed at {new}, before the current commit (signed at \
             {old}): refused as a rollback to an older registry. To go back on purpose, pin its \
             commit: ringlet registry pin <commit>"
        ),
        _ => Ok(()),
    }
}

/// Fills the staging dir `name`; returns (fetched, reused, bytes fetched).
#[allow(clippy::too_many_arguments)]
fn stage(
    commits: &Path,
    commitsfd: BorrowedFd<'_>,
    name: &str,
    source: &mut dyn Source,
    index_bytes: &[u8],
    signature: Option<&[u8]>,
    index: &Index,
    reuse_from: Option<&Path>,
    total: Progress,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(usize, usize, u64)> {
    let from = source.describe();
    let dir = commits.join(name);
    let stagefd = open_subdir(commitsfd, &dir, name)?;
    // Unchanged artifacts come from the current commit, found by hash.
    let reuse =
        reuse_from.and_then(|d| Some((d, fsutil::open_dir(d).ok()?))).and_then(|(d, fd)| {
            let bytes = read_beneath(fd.as_fd(), d, "registry.json", INDEX_CAP + 1).ok()??;
            let old = index::parse(&bytes).ok()?;
            let by_hash: std::collections::HashMap<String, String> =
                old.artifacts.into_iter().map(|a| (a.sha256, a.path)).collect();
            Some((d, fd, by_hash))
        });
    let mut kinds: Vec<(Kind, OwnedFd)> = Vec::new();
    let mut written: Vec<(File, PathBuf)> = Vec::new();
    let (mut fetched, mut reused, mut fetched_bytes) = (0, 0, 0u64);
    let mut done = total.clone();
    for a in &index.artifacts {
        let old = reuse.as_ref().and_then(|(d, fd, by_hash)| {
            let path = by_hash.get(&a.sha256)?;
            let data = read_beneath(fd.as_fd(), d, path, a.size + 1).ok()??;
            check(a, &data).is_ok().then_some(data)
        });
        let data = match old {
            Some(data) => {
                reused += 1;
                data
            }
            None => {
                let data = source
                    .artifact(a)
                    .with_context(|| format!("fetching {} from {from}", a.path))?;
                check(a, &data).with_context(|| format!("{} from {from}", a.path))?;
                fetched += 1;
                fetched_bytes += data.len() as u64;
                data
            }
        };
        if !kinds.iter().any(|(k, _)| *k == a.kind) {
            rustix::fs::mkdirat(&stagefd, a.kind.dir(), Mode::from_raw_mode(0o700))
                .with_context(|| format!("creating {}", dir.join(a.kind.dir()).display()))?;
            kinds.push((a.kind, open_subdir(stagefd.as_fd(), &dir, a.kind.dir())?));
        }
        let (_, kindfd) = kinds.iter().find(|(k, _)| *k == a.kind).expect("created above");
        let file = a.path.rsplit('/').next().unwrap_or_default();
        let shown = dir.join(&a.path);
        written.push((
            fsutil::create_new_at(kindfd.as_fd(), &dir.join(a.kind.dir()), file, &data, 0o600)?,
            shown,
        ));
        if done.artifacts_done == 0 {
            fsutil::crash_point("registry:staging");
        }
        done.artifacts_done += 1;
        done.bytes_done += a.size;
        progress(&done);
    }
    let index_file =
        fsutil::create_new_at(stagefd.as_fd(), &dir, "registry.json", index_bytes, 0o600)?;
    written.push((index_file, dir.join("registry.json")));
    if let Some(sig) = signature {
        let sig_file = fsutil::create_new_at(stagefd.as_fd(), &dir, SIGNATURE_FILE, sig, 0o600)?;
        written.push((sig_file, dir.join(SIGNATURE_FILE)));
    }
    // Every file is durable before the tree gets its commit's name.
    for (file, path) in written {
        file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    }
    for (_, fd) in &kinds {
        rustix::fs::fsync(fd).context("syncing the staging dir")?;
    }
    rustix::fs::fsync(&stagefd).context("syncing the staging dir")?;
    Ok((fetched, reused, fetched_bytes))
}

/// An artifact's bytes against its index entry: size first (a clearer
/// message for a truncated or oversized body), then SHA-256.
fn check(a: &super::Artifact, data: &[u8]) -> Result<()> {
    let got = data.len() as u64;
    if got > a.size {
        bail!("oversized: more than the {} bytes registry.json lists", a.size);
    }
    if got < a.size {
        bail!("truncated: {got} of the {} bytes registry.json lists", a.size);
    }
    let sha = index::sha256_hex(data);
    if sha != a.sha256 {
        bail!("checksum mismatch: registry.json lists sha256 {}, the file has {sha}", a.sha256);
    }
    Ok(())
}

/// Every artifact of a commit dir checked against its index.
fn verify_tree(dir: &Path, index: &Index) -> Result<()> {
    let fd = fsutil::open_dir(dir)?;
    for a in &index.artifacts {
        let data = read_beneath(fd.as_fd(), dir, &a.path, a.size + 1)?
            .with_context(|| format!("{} is missing", dir.join(&a.path).display()))?;
        check(a, &data).with_context(|| format!("{}", dir.join(&a.path).display()))?;
    }
    Ok(())
}

fn open_subdir(dirfd: BorrowedFd<'_>, parent: &Path, name: &str) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dirfd, name, flags, Mode::empty())
        .with_context(|| format!("opening {}", parent.join(name).display()))
}

/// Renames the staging dir to `commits/<commit>`. When that commit is
/// already there (a forced sync), the two are exchanged atomically, so a
/// `current` pointing at it never dangles, and the old tree is removed.
fn publish(commits: &Path, commitsfd: BorrowedFd<'_>, staging: &str, commit: &str) -> Result<()> {
    match rustix::fs::renameat(commitsfd, staging, commitsfd, commit) {
        Ok(()) => {}
        Err(Errno::EXIST | Errno::NOTEMPTY) => {
            rustix::fs::renameat_with(
                commitsfd,
                staging,
                commitsfd,
                commit,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .with_context(|| format!("replacing {}", commits.join(commit).display()))?;
            remove_entry(commits, staging)?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("creating {}", commits.join(commit).display()));
        }
    }
    rustix::fs::fsync(commitsfd).context("syncing the commits dir")
}

/// Points `current` at `commits/<commit>`: a fresh relative symlink under a
/// random name, renamed over `current` (atomic: readers see the old target
/// or the new one), then the directory is fsynced.
fn swap_current(locked: &Locked, commit: &str) -> Result<()> {
    let target = format!("commits/{commit}");
    let fd = locked.rootfd.as_fd();
    let mut tmp = String::new();
    for attempt in 0..8 {
        tmp = format!("{LINK_TMP}{}", fsutil::random_hex(8)?);
        match rustix::fs::symlinkat(target.as_str(), fd, tmp.as_str()) {
            Ok(()) => break,
            Err(Errno::EXIST) if attempt < 7 => continue,
            Err(e) => return Err(e).context("creating the new `current` link"),
        }
    }
    if let Err(e) = rustix::fs::renameat(fd, tmp.as_str(), fd, "current") {
        let _ = rustix::fs::unlinkat(fd, tmp.as_str(), AtFlags::empty());
        return Err(e)
            .with_context(|| format!("replacing {}", locked.root.join("current").display()));
    }
    rustix::fs::fsync(fd).context("syncing the registry dir")
}

/// Removes what a killed sync left: staging dirs, temp links, temp files.
fn remove_leftovers(locked: &Locked, commits: &Path, commitsfd: BorrowedFd<'_>) -> Result<usize> {
    let mut removed = fsutil::remove_stale_temps(&locked.root)?;
    for (dir, fd, prefix) in
        [(commits, commitsfd, STAGING), (locked.root.as_path(), locked.rootfd.as_fd(), LINK_TMP)]
    {
        for name in list(fd, dir)? {
            if name.starts_with(prefix) {
                remove_entry(dir, &name)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn list(fd: BorrowedFd<'_>, dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let listing =
        rustix::fs::Dir::read_from(fd).with_context(|| format!("listing {}", dir.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Ok(name) = entry.file_name().to_str()
            && name != "."
            && name != ".."
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Removes `dir/name` (a file, a link, or a whole tree), never following a link.
fn remove_entry(dir: &Path, name: &str) -> Result<()> {
    fsutil::Beneath::open(dir)?.remove_all(Path::new(name))
}

/// Records a completed sync: the new commit first in the history, then the
/// one it replaced (so `rollback` returns to it), then the rest.
fn record(paths: &Paths, commit: &str, previous: Option<&str>, index: &Index) -> Result<()> {
    let mut state = load_state(paths);
    let mut history = vec![commit.to_string()];
    history.extend(previous.map(String::from));
    history.extend(state.history.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    history.retain(|c| seen.insert(c.clone()) && root(paths).join("commits").join(c).is_dir());
    history.truncate(KEEP);
    state.history = history;
    state.channel = Some(index.channel.clone());
    state.last_sync = Some(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    state.last_error = None;
    save_state(paths, &state)
}

/// Removes every commit dir not in the history (which [`record`] keeps to
/// [`KEEP`] entries, the current commit first or kept by a rollback).
fn prune(paths: &Paths, commits: &Path) -> Result<()> {
    let keep = load_state(paths).history;
    let current = current_commit(paths);
    let fd = fsutil::open_dir(commits)?;
    for name in list(fd.as_fd(), commits)? {
        if index::is_commit(&name) && !keep.contains(&name) && current.as_deref() != Some(&name) {
            remove_entry(commits, &name)?;
        }
    }
    Ok(())
}

/// Returns `current` to the commit that was current before it (the next
/// kept one in the history), after checking that tree whole.
pub fn rollback(paths: &Paths) -> Result<Outcome> {
    let locked = lock(paths)?;
    let current = current_commit(paths)
        .context("there is no synced registry to roll back; run `ringlet registry sync` first")?;
    let current_dir = current_dir(paths).context("the current registry commit is gone")?;
    let state = load_state(paths);
    let after = state.history.iter().position(|c| *c == current).map_or(0, |i| i + 1);
    let commits = locked.root.join("commits");
    let mut tried = Vec::new();
    for candidate in state.history.iter().skip(after).filter(|c| **c != current) {
        let dir = commits.join(candidate);
        let checked = (|| -> Result<Index> {
            let fd = fsutil::open_dir(&dir)?;
            let bytes = read_beneath(fd.as_fd(), &dir, "registry.json", INDEX_CAP + 1)?
                .context("registry.json is missing")?;
            if index::commit_of(&bytes) != *candidate {
                bail!("registry.json does not match the commit");
            }
            let index = index::parse(&bytes)?;
            verify_tree(&dir, &index)?;
            Ok(index)
        })();
        let index = match checked {
            Ok(index) => index,
            Err(e) => {
                tried.push(format!("{candidate}: {e:#}"));
                continue;
            }
        };
        swap_current(&locked, candidate)?;
        let mut state = state.clone();
        state.channel = Some(index.channel.clone());
        if let Err(e) = save_state(paths, &state) {
            tried.push(format!("recording the rollback in state.json: {e:#}"));
        }
        return Ok(Outcome {
            commit: candidate.clone(),
            previous: Some(current),
            unchanged: false,
            fetched: 0,
            reused: index.artifacts.len(),
            bytes: 0,
            changes: changes::between(Some(&current_dir), &dir),
            warnings: tried,
        });
    }
    let why = if tried.is_empty() { String::new() } else { format!(" ({})", tried.join("; ")) };
    Err(anyhow!(
        "no earlier registry commit is kept to roll back to (ringlet keeps the last {KEEP}){why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::bundle::tests::{make_registry, scratch};
    use crate::registry::bundle::{DirSource, TarSource, export};
    use std::fs;

    fn paths(dir: &Path) -> Paths {
        Paths {
            home: dir.to_path_buf(),
            config_dir: dir.join("config"),
            runtime_dir: dir.join("run"),
            socket: dir.join("run/sock"),
        }
    }

    fn sync_dir(p: &Paths, reg: &Path, opts: &SyncOptions) -> Result<Outcome> {
        sync(p, &mut DirSource::new(reg)?, opts, &mut |_| {})
    }

    fn commits_on_disk(p: &Paths) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(root(p).join("commits"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Rewrites one artifact of a registry dir without re-indexing.
    fn tamper(reg: &Path, rel: &str, bytes: &[u8]) {
        fs::write(reg.join(rel), bytes).unwrap();
    }

    #[test]
    fn sync_stages_swaps_reuses_and_reports_unchanged() {
        let dir = scratch("store-sync");
        let p = paths(&dir);
        let reg = dir.join("reg");
        let bytes = make_registry(&reg, "one");
        let mut seen = Vec::new();
        let out = sync(&p, &mut DirSource::new(&reg).unwrap(), &SyncOptions::default(), &mut |g| {
            seen.push(g.clone())
        })
        .unwrap();
        assert_eq!(out.commit, index::commit_of(&bytes));
        assert_eq!(
            (out.fetched, out.reused, out.unchanged, out.previous.clone()),
            (4, 0, false, None)
        );
        assert_eq!(seen.len(), 4);
        let last = seen.last().unwrap();
        assert_eq!((last.artifacts_done, last.artifacts_total), (4, 4));
        assert_eq!(last.bytes_done, last.bytes_total);
        assert_eq!(current_commit(&p).as_deref(), Some(out.commit.as_str()));
        let cur = current_dir(&p).unwrap();
        assert_eq!(fs::read(cur.join("registry.json")).unwrap(), bytes);
        assert_eq!(
            fs::read(cur.join("agents/a.toml")).unwrap(),
            fs::read(reg.join("agents/a.toml")).unwrap()
        );
        assert_eq!(
            fs::read_link(root(&p).join("current")).unwrap(),
            Path::new("commits").join(&out.commit)
        );
        let state = load_state(&p);
        assert_eq!(state.history, vec![out.commit.clone()]);
        assert_eq!(state.channel.as_deref(), Some("stable"));
        assert!(state.last_sync.is_some() && state.last_error.is_none());
        // Against the built-ins: the registry's agents "a" and "b" are new,
        // but carry no command-bearing field.
        assert!(out.changes.iter().all(|c| c.id == "a.rhai"), "{:?}", out.changes);

        // Nothing changed: only registry.json read.
        let again = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert!(again.unchanged);
        assert_eq!((again.fetched, again.reused), (0, 0));

        // One artifact changed: the others are reused.
        let next = make_registry(&reg, "two");
        let out2 = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert_eq!(out2.commit, index::commit_of(&next));
        assert_eq!(
            (out2.fetched, out2.reused, out2.previous.as_deref()),
            (1, 3, Some(out.commit.as_str()))
        );
        assert_eq!(load_state(&p).history, vec![out2.commit.clone(), out.commit.clone()]);
        // Forced: everything fetched again, the same commit.
        let forced =
            sync_dir(&p, &reg, &SyncOptions { force: true, ..Default::default() }).unwrap();
        assert_eq!((forced.fetched, forced.reused, forced.unchanged), (4, 0, false));
        assert_eq!(current_commit(&p).as_deref(), Some(out2.commit.as_str()));
        assert_eq!(commits_on_disk(&p), {
            let mut v = vec![out.commit.clone(), out2.commit.clone()];
            v.sort();
            v
        });
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_bad_artifact_fails_and_current_stays() {
        let dir = scratch("store-bad");
        let p = paths(&dir);
        let reg = dir.join("reg");
        make_registry(&reg, "good");
        let good = sync_dir(&p, &reg, &SyncOptions::default()).unwrap().commit;
        // agents/a.toml differs in each (it holds the tag), so it is fetched;
        // 9 + 2 + 8 + 1 = 20 bytes.
        let rel = "agents/a.toml";
        for (what, why) in [
            ("mismatch", "checksum mismatch"),
            ("truncate", "truncated: 2 of the 20 bytes"),
            ("oversize", "oversized"),
        ] {
            make_registry(&reg, what);
            let mut bytes = fs::read(reg.join(rel)).unwrap();
            assert_eq!(bytes.len(), 20);
            match what {
                "mismatch" => bytes[0] = b'X',
                "truncate" => bytes.truncate(2),
                _ => bytes.extend_from_slice(b"# more\n"),
            }
            tamper(&reg, rel, &bytes);
            let err = sync_dir(&p, &reg, &SyncOptions::default()).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(why) && msg.contains(rel), "{what}: {msg}");
            assert_eq!(current_commit(&p).as_deref(), Some(good.as_str()), "{what}");
            assert!(load_state(&p).last_error.unwrap().contains(why));
            // No staging dir is left behind by a failure.
            assert_eq!(commits_on_disk(&p), vec![good.clone()], "{what}");
        }
        // A missing artifact, a malformed registry.json, bad paths.
        make_registry(&reg, "missing");
        fs::remove_file(reg.join("agents/a.toml")).unwrap();
        let err = sync_dir(&p, &reg, &SyncOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
        for (text, why) in [
            (b"{\"format\":1,".to_vec(), "not valid"),
            (
                format!(
                    r#"{{"format":1,"channel":"stable","artifacts":[{{"kind":"agent","path":"agents/../../x.toml","size":1,"sha256":"{}"}}]}}"#,
                    "0".repeat(64)
                )
                .into_bytes(),
                "no `..`",
            ),
            (
                format!(
                    r#"{{"format":1,"channel":"stable","artifacts":[{{"kind":"agent","path":"/etc/x.toml","size":1,"sha256":"{}"}}]}}"#,
                    "0".repeat(64)
                )
                .into_bytes(),
                "must be under agents/",
            ),
        ] {
            fs::write(reg.join("registry.json"), &text).unwrap();
            let err = sync_dir(&p, &reg, &SyncOptions::default()).unwrap_err();
            assert!(format!("{err:#}").contains(why), "{err:#}");
            assert_eq!(current_commit(&p).as_deref(), Some(good.as_str()));
        }
        // A link in the source tree is refused, even to the right bytes.
        make_registry(&reg, "link");
        fs::rename(reg.join("agents/a.toml"), dir.join("outside.toml")).unwrap();
        std::os::unix::fs::symlink(dir.join("outside.toml"), reg.join("agents/a.toml")).unwrap();
        let err = sync_dir(&p, &reg, &SyncOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert_eq!(current_commit(&p).as_deref(), Some(good.as_str()));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pin_signature_and_a_second_sync_at_once() {
        let dir = scratch("store-pin");
        let p = paths(&dir);
        let reg = dir.join("reg");
        let bytes = make_registry(&reg, "one");
        let commit = index::commit_of(&bytes);
        let other = "f".repeat(64);
        let err = sync_dir(
            &p,
            &reg,
            &SyncOptions { expect_commit: Some(other.clone()), ..Default::default() },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains(&format!("pinned to commit {other}")), "{err:#}");
        assert!(current_commit(&p).is_none());
        sync_dir(
            &p,
            &reg,
            &SyncOptions { expect_commit: Some(commit.to_uppercase()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(current_commit(&p), Some(commit.clone()));

        // Signatures with the real minisign.
        let public = crate::registry::sign::tests::keygen(&dir.join("keys"));
        let signed = SyncOptions { public_key: Some(public.clone()), ..Default::default() };
        make_registry(&reg, "two");
        let err = sync_dir(&p, &reg, &signed).unwrap_err();
        assert!(format!("{err:#}").contains("not signed"), "{err:#}");
        crate::registry::sign::tests::sign(&dir.join("keys"), &reg.join("registry.json"));
        let out = sync_dir(&p, &reg, &signed).unwrap();
        assert!(current_dir(&p).unwrap().join(SIGNATURE_FILE).is_file());
        // Signed but no key configured: synced, with a warning.
        make_registry(&reg, "three");
        crate::registry::sign::tests::sign(&dir.join("keys"), &reg.join("registry.json"));
        let unchecked = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert!(unchecked.warnings[0].contains("not checked"), "{:?}", unchecked.warnings);
        // Signed with another key.
        let other = crate::registry::sign::tests::keygen(&dir.join("other"));
        let err =
            sync_dir(&p, &reg, &SyncOptions { public_key: Some(other), ..Default::default() })
                .unwrap_err();
        assert!(format!("{err:#}").contains("another key"), "{err:#}");
        assert_eq!(current_commit(&p), Some(unchecked.commit.clone()));
        // A signature of an older registry.json: bad.
        let old_sig = fs::read(reg.join(SIGNATURE_FILE)).unwrap();
        make_registry(&reg, "four");
        fs::write(reg.join(SIGNATURE_FILE), old_sig).unwrap();
        let err = sync_dir(&p, &reg, &signed).unwrap_err();
        assert!(format!("{err:#}").contains("bad signature"), "{err:#}");
        assert_eq!(current_commit(&p), Some(unchecked.commit.clone()));
        let _ = out;

        // A second sync while one holds the lock is told at once.
        let held = lock(&p).unwrap();
        let err = sync_dir(&p, &reg, &SyncOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), BUSY);
        assert!(rollback(&p).unwrap_err().to_string().contains(BUSY));
        // Not recorded as the last error: the running sync owns the state.
        assert!(load_state(&p).last_error.unwrap().contains("bad signature"));
        drop(held);
        sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A source that fails (a dropped connection) at its `fail_at`th artifact.
    struct Failing {
        inner: DirSource,
        served: usize,
        fail_at: usize,
    }

    impl Source for Failing {
        fn describe(&self) -> String {
            "a flaky source".into()
        }
        fn index(&mut self) -> Result<Vec<u8>> {
            self.inner.index()
        }
        fn signature(&mut self) -> Result<Option<Vec<u8>>> {
            self.inner.signature()
        }
        fn artifact(&mut self, a: &crate::registry::Artifact) -> Result<Vec<u8>> {
            self.served += 1;
            if self.served == self.fail_at {
                bail!("connection reset");
            }
            self.inner.artifact(a)
        }
    }

    #[test]
    fn a_source_failing_mid_sync_leaves_current_and_no_staging() {
        let dir = scratch("store-flaky");
        let p = paths(&dir);
        let reg = dir.join("reg");
        make_registry(&reg, "one");
        let good = sync_dir(&p, &reg, &SyncOptions::default()).unwrap().commit;
        make_registry(&reg, "two");
        for fail_at in 1..=4 {
            let mut src = Failing { inner: DirSource::new(&reg).unwrap(), served: 0, fail_at };
            let opts = SyncOptions { force: true, ..Default::default() };
            let mut calls = 0;
            let err = sync(&p, &mut src, &opts, &mut |_| calls += 1).unwrap_err();
            assert!(format!("{err:#}").contains("connection reset"), "{err:#}");
            assert_eq!(calls, fail_at - 1);
            assert_eq!(current_commit(&p), Some(good.clone()));
            assert_eq!(commits_on_disk(&p), vec![good.clone()]);
            assert!(load_state(&p).last_error.unwrap().contains("connection reset"));
        }
        // And the next sync completes, clearing the error.
        sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert!(load_state(&p).last_error.is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sync_whose_record_fails_still_succeeds_with_a_warning() {
        let dir = scratch("store-record");
        let p = paths(&dir);
        let reg = dir.join("reg");
        make_registry(&reg, "one");
        // state.json cannot be written (a directory is in the way).
        fs::create_dir_all(root(&p).join("state.json/x")).unwrap();
        let out = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert_eq!(current_commit(&p), Some(out.commit.clone()));
        assert!(out.warnings.iter().any(|w| w.contains("state.json")), "{:?}", out.warnings);
        assert_eq!(load_state(&p), State::default());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rollback_prune_to_three_and_leftovers() {
        let dir = scratch("store-rollback");
        let p = paths(&dir);
        let reg = dir.join("reg");
        assert!(format!("{:#}", rollback(&p).unwrap_err()).contains("no synced registry"));
        let mut made = Vec::new();
        for tag in ["c1", "c2", "c3", "c4"] {
            make_registry(&reg, tag);
            made.push(sync_dir(&p, &reg, &SyncOptions::default()).unwrap().commit);
        }
        // Pruned to the last three.
        let mut kept = made[1..].to_vec();
        kept.sort();
        assert_eq!(commits_on_disk(&p), kept);
        assert_eq!(load_state(&p).history, vec![made[3].clone(), made[2].clone(), made[1].clone()]);
        // Rollback twice walks back; a third has nothing left.
        let back = rollback(&p).unwrap();
        assert_eq!(
            (back.commit.as_str(), back.previous.as_deref()),
            (made[2].as_str(), Some(made[3].as_str()))
        );
        assert_eq!(current_commit(&p), Some(made[2].clone()));
        rollback(&p).unwrap();
        assert_eq!(current_commit(&p), Some(made[1].clone()));
        assert!(format!("{:#}", rollback(&p).unwrap_err()).contains("no earlier registry commit"));
        // A sync after a rollback keeps what was current to return to.
        make_registry(&reg, "c5");
        let c5 = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert_eq!(c5.previous.as_deref(), Some(made[1].as_str()));
        assert_eq!(rollback(&p).unwrap().commit, made[1]);
        // Back to a kept commit by syncing it again: nothing fetched.
        make_registry(&reg, "c5");
        let again = sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert_eq!((again.fetched, again.reused), (0, 4));
        assert_eq!(current_commit(&p), Some(c5.commit.clone()));

        // A killed sync's leftovers are removed by the next one, and
        // `current` was never touched by them.
        let commits = root(&p).join("commits");
        fs::create_dir_all(commits.join(".staging-0123456789abcdef/agents")).unwrap();
        fs::write(commits.join(".staging-0123456789abcdef/agents/a.toml"), "half").unwrap();
        std::os::unix::fs::symlink("commits/nowhere", root(&p).join(".current-0123456789abcdef"))
            .unwrap();
        assert_eq!(current_commit(&p), Some(c5.commit.clone()));
        make_registry(&reg, "c6");
        sync_dir(&p, &reg, &SyncOptions::default()).unwrap();
        assert!(!commits.join(".staging-0123456789abcdef").exists());
        assert!(fs::symlink_metadata(root(&p).join(".current-0123456789abcdef")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn export_then_import_in_another_home() {
        let dir = scratch("store-export");
        let (p1, p2) = (paths(&dir.join("one")), paths(&dir.join("two")));
        let reg = dir.join("reg");
        make_registry(&reg, "one");
        let keys = dir.join("keys");
        let public = crate::registry::sign::tests::keygen(&keys);
        crate::registry::sign::tests::sign(&keys, &reg.join("registry.json"));
        let synced = sync_dir(&p1, &reg, &SyncOptions::default()).unwrap();
        assert!(
            format!("{:#}", export(&p2, &dir.join("x.tar")).unwrap_err())
                .contains("no synced registry")
        );
        let report = export(&p1, &dir.join("bundle.tar")).unwrap();
        assert_eq!(
            (report.commit.as_str(), report.artifacts, report.signed),
            (synced.commit.as_str(), 4, true)
        );
        let signed = SyncOptions { public_key: Some(public), ..Default::default() };
        let out =
            sync(&p2, &mut TarSource::open(&dir.join("bundle.tar")).unwrap(), &signed, &mut |_| {})
                .unwrap();
        assert_eq!(out.commit, synced.commit);
        assert_eq!(out.fetched, 4);
        // A damaged cache is not exported.
        let cur = current_dir(&p1).unwrap();
        fs::write(cur.join("agents/a.toml"), "id = \"x\"\n").unwrap();
        assert!(format!("{:#}", export(&p1, &dir.join("b2.tar")).unwrap_err()).contains("damaged"));
        // And --force repairs it in place, without ever unsetting current.
        sync_dir(&p1, &reg, &SyncOptions { force: true, ..Default::default() }).unwrap();
        export(&p1, &dir.join("b2.tar")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
