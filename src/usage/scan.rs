//! The incremental scanner: finds the agents' log files under every scan
//! root, reads only what was appended since the last scan, and counts the
//! entries into the store.
//!
//! The scan index (`telemetry/scan-index.json`) remembers per file its
//! device, inode, size, mtime and the offset read up to (plus the Codex
//! parser's state at that offset). An unchanged file costs one `stat`; an
//! appended one is read from its offset; a truncated or replaced one (size
//! below the offset, another inode) is read again from the start, which the
//! store's dedup makes harmless. An incomplete last line is left for the next
//! scan. The store is flushed before the index is saved, so a crash between
//! the two only means reading some lines twice, never losing them.
//!
//! Files are read by one worker per core; entries go into the store in
//! batches under its lock. Bad input never stops a scan: unreadable files,
//! vanished files, symlink loops and malformed or oversized lines are counted
//! in [`Skipped`] and reported.
//!
//! The logs may be an agent's, written from inside a sandbox, so no file can
//! make a scan block or run long (and so hold up the reports that wait for
//! it): logs are opened without blocking and read only when regular files,
//! at most [`MAX_READ`] per file and scan; OpenCode databases are read
//! within a budget each (`opencode::read_db`), at most [`MAX_DBS`] per data
//! dir and [`DB_SCAN_TIME`] per scan, and one refused is remembered in the
//! index and not read again until it changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::claude::{self, Parsed};
use super::report::Skipped;
use super::store::{Change, DEFAULT_PROFILE, Store};
use super::{Agent, Entry, Format, Tokens, codex, is_zero, opencode, proxylog};
use crate::fsutil::write_atomic;
use crate::manifests::Catalog;
use crate::paths::expand_tilde;
use crate::profiles::Profile;

/// First read size; a buffer grows (up to [`MAX_LINE`]) only for a longer line.
const CHUNK: usize = 1 << 20;
/// Lines longer than this are skipped and counted: no agent writes one, and
/// holding it would cost that much memory.
const MAX_LINE: usize = 64 << 20;
/// What one scan reads of one log at most; the next scan reads on from
/// there. A sparse 100 GB file or a log an agent keeps growing costs each
/// scan this much, never the whole.
const MAX_READ: u64 = 256 << 20;
/// An OpenCode legacy message file is one small JSON object.
const MAX_MESSAGE_FILE: u64 = 1 << 20;
/// An OpenCode database refused over its read budget is tried again when
/// it changes, but not more often than this: an agent rewriting one in a
/// loop must not make every scan pay the budget.
const RETRY_REFUSED_MS: i64 = 60_000;
/// The OpenCode databases read in one data dir: `opencode.db` and a few
/// release channels' (`opencode-<channel>.db`). More are an agent's
/// doing, each with its own read budget; they are reported, not read.
const MAX_DBS: usize = 8;
/// One scan's time for all OpenCode databases together: past it, the
/// databases not read yet are read by the next scan.
const DB_SCAN_TIME: std::time::Duration = std::time::Duration::from_secs(10);
/// Directory depth below a root; deeper trees are not agent logs.
const MAX_DEPTH: usize = 12;
/// Directory entries (log files and directories) one scan looks at below
/// one root; past it the rest of the root is reported and not read. An
/// agent can make any number of files in its profile's log root, and every
/// scan stats each of them and keeps a record of each log in the index:
/// 20,000 empty transcripts cost every report that has to scan about a
/// second (debug build), a million would cost a minute, and every report
/// of every profile waits for the scan in progress. Claude Code keeps 30
/// days of transcripts, one per session; no user comes near this.
const MAX_ENTRIES: usize = 100_000;
/// Reasons kept in [`Skipped::details`].
const MAX_DETAILS: usize = 8;

/// A directory of one agent's logs and the profile it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    pub path: PathBuf,
    /// Which parser reads it.
    pub format: Format,
    /// Whose usage it holds.
    pub agent: Agent,
    pub profile: String,
    /// The directory the root lives in (profile home or user home): while the
    /// root does not exist yet, the watcher watches its nearest existing
    /// ancestor up to here.
    pub base: PathBuf,
}

/// Every scan root: each profile's log dirs, then the user's own ones as
/// `(default)`. A default dir that is also a profile's (the daemon started
/// from a shell with `CLAUDE_CONFIG_DIR` pointing into a profile) belongs to
/// the profile. An agent whose manifest declares the `proxy` format has one
/// root per profile, its proxy's log dir under `config` (the config dir),
/// and none of the user's own.
pub fn roots(
    catalog: &Catalog,
    profiles: &[Profile],
    home: &Path,
    config: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Vec<Root> {
    let mut out: Vec<Root> = Vec::new();
    for p in profiles {
        let Some(usage) = catalog.agent(&p.agent).and_then(|a| a.manifest.usage.as_ref()) else {
            continue;
        };
        // The manifest's check makes this `Some` for every loaded manifest.
        let Some(agent) = usage.format.agent(&p.agent) else { continue };
        if usage.format == Format::Proxy {
            out.push(Root {
                path: proxylog::dir(config, &p.alias),
                format: usage.format,
                agent,
                profile: p.alias.clone(),
                base: config.to_path_buf(),
            });
            continue;
        }
        for rel in &usage.paths {
            out.push(Root {
                path: p.home.join(rel),
                format: usage.format,
                agent,
                profile: p.alias.clone(),
                base: p.home.clone(),
            });
        }
    }
    // Each root's real path, resolved once (`None`: it does not resolve):
    // comparing every default path with every root by canonicalizing both
    // cost a readlink per component per pair, at every scan.
    let mut real: Vec<Option<PathBuf>> =
        out.iter().map(|r| fs::canonicalize(&r.path).ok()).collect();
    for m in &catalog.agents {
        let Some(usage) = &m.manifest.usage else { continue };
        let Some(agent) = usage.format.agent(&m.manifest.id) else { continue };
        for template in &usage.default_paths {
            let path = expand(template, home, var);
            if path.is_relative() {
                continue;
            }
            let path_real = fs::canonicalize(&path).ok();
            let same = |(r, real): (&Root, &Option<PathBuf>)| {
                r.path == path || (path_real.is_some() && *real == path_real)
            };
            if out.iter().zip(&real).any(same) {
                continue;
            }
            real.push(path_real);
            out.push(Root {
                path,
                format: usage.format,
                agent,
                profile: DEFAULT_PROFILE.into(),
                base: home.to_path_buf(),
            });
        }
    }
    out
}

/// Expands `${VAR:-fallback}` (the variable when set and non-empty, else
/// the fallback) and a leading `~/`.
fn expand(template: &str, home: &Path, var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let inner = &rest[start + 2..start + end];
        let (name, fallback) = inner.split_once(":-").unwrap_or((inner, ""));
        match var(name).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(fallback),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    expand_tilde(&out, home)
}

/// What the index remembers about one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Mark {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    /// Bytes consumed (complete lines only).
    offset: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    skipped_lines: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codex: Option<codex::FileState>,
    /// OpenCode databases: the highest `time_updated` read.
    #[serde(default, skip_serializing_if = "is_zero")]
    updated_ms: i64,
    /// Why this OpenCode database is not read (see `opencode::Refused`);
    /// reported with the skipped files until it changes and reads.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    refused: String,
    /// When it was refused over its budget (ms since the epoch), for
    /// [`RETRY_REFUSED_MS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    refused_at_ms: i64,
    /// The read stopped at [`MAX_READ`]: the next scan reads on even if
    /// the file did not change.
    #[serde(default, skip_serializing_if = "is_zero")]
    more: bool,
    /// With `more`: the read stopped inside an overlong line, already
    /// counted as skipped, whose rest is skipped too.
    #[serde(default, skip_serializing_if = "is_zero")]
    discarding: bool,
}

impl Mark {
    fn of(meta: &Metadata) -> Mark {
        Mark {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ..Mark::default()
        }
    }

    fn unchanged(&self, meta: &Metadata) -> bool {
        let now = Mark::of(meta);
        !self.more
            && (self.dev, self.ino, self.size, self.mtime_ns)
                == (now.dev, now.ino, now.size, now.mtime_ns)
    }

    /// Refused less than [`RETRY_REFUSED_MS`] ago.
    fn refused_recently(&self, now_ms: i64) -> bool {
        self.refused_at_ms != 0 && (now_ms - self.refused_at_ms).abs() < RETRY_REFUSED_MS
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Adds the refused databases of `index` to `skipped`: they stay
/// reported for as long as they are refused, read or not this scan.
fn add_refused(index: &Index, skipped: &mut Skipped) {
    for (path, mark) in index.files.iter().filter(|(_, m)| !m.refused.is_empty()) {
        skip(skipped, 1, 0, || format!("{path}: {}", mark.refused));
    }
}

/// The persisted scan index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    #[serde(default)]
    files: BTreeMap<String, Mark>,
}

/// Token and cost changes per (profile, model) from one scan: the data of
/// UsageUpdated events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delta {
    pub profile: String,
    pub agent: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    /// Tokens added without a price.
    pub unpriced_tokens: i64,
    /// New responses (a more complete snapshot of a known one adds 0).
    pub messages: i64,
}

/// What a scan did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub files_read: u64,
    pub bytes_read: u64,
    /// Entries parsed (known ones included).
    pub found: u64,
    /// Entries the store did not have.
    pub added: u64,
    pub deltas: Vec<Delta>,
    /// Directories that exist under the roots (for the watcher) and, for
    /// roots that do not exist yet, their nearest existing ancestor.
    pub dirs: Vec<PathBuf>,
    /// Ancestors watched only for the creation of a root.
    pub ancestors: Vec<PathBuf>,
    /// Something scanned can change without an event in any of `dirs` or
    /// `ancestors`: a symlinked log file (its writes land in the target's
    /// directory) or a root with no existing ancestor inside its base. The
    /// watcher then cannot vouch that nothing changed between scans.
    pub unwatched: bool,
}

/// The scanner and its index.
pub struct Scanner {
    path: PathBuf,
    index: Index,
    /// What the last walk could not read (recomputed each scan).
    walk_skipped: Skipped,
}

impl Scanner {
    /// Opens the index in `dir`. A corrupt index is started afresh: every
    /// file is read again, and the store's dedup keeps the counts right.
    pub fn open(dir: &Path) -> Scanner {
        let path = dir.join("scan-index.json");
        let index = fs::read(&path)
            .ok()
            .and_then(|bytes| match serde_json::from_slice(&bytes) {
                Ok(index) => Some(index),
                Err(e) => {
                    crate::warn!("{}: {e}; rescanning every file", path.display());
                    None
                }
            })
            .unwrap_or_default();
        Scanner { path, index, walk_skipped: Skipped::default() }
    }

    /// Scans every root; saves the store, then the index.
    pub fn scan(&mut self, roots: &[Root], store: &mut Store) -> Result<Outcome> {
        let mut walk_skipped = Skipped::default();
        let (outcome, changed) = scan_into(&mut self.index, roots, store, &mut walk_skipped, true);
        self.walk_skipped = walk_skipped;
        store.flush()?;
        if changed {
            let bytes = serde_json::to_vec(&self.index)?;
            write_atomic(&self.path, &bytes, 0o600)?;
        }
        Ok(outcome)
    }

    /// Lines and files the scans could not read, with the first reasons.
    pub fn skipped(&self) -> Skipped {
        let mut s = self.walk_skipped.clone();
        s.lines += self.index.files.values().map(|m| m.skipped_lines).sum::<u64>();
        add_refused(&self.index, &mut s);
        s
    }
}

/// Scans `roots` once with a throwaway index (`usage import-claude`).
pub fn scan_once(roots: &[Root], store: &mut Store) -> Result<(Outcome, Skipped)> {
    let mut index = Index::default();
    let mut skipped = Skipped::default();
    let (outcome, _) = scan_into(&mut index, roots, store, &mut skipped, false);
    store.flush()?;
    skipped.lines += index.files.values().map(|m| m.skipped_lines).sum::<u64>();
    add_refused(&index, &mut skipped);
    Ok((outcome, skipped))
}

fn skip(skipped: &mut Skipped, files: u64, lines: u64, detail: impl FnOnce() -> String) {
    skipped.files += files;
    skipped.lines += lines;
    if skipped.details.len() < MAX_DETAILS {
        skipped.details.push(detail());
    }
}

/// One file to read.
struct Job {
    key: String,
    path: PathBuf,
    root: usize,
    kind: JobKind,
    previous: Option<Mark>,
}

#[derive(Clone, Copy, PartialEq)]
enum JobKind {
    Jsonl,
    OpencodeDb,
    OpencodeFile,
}

/// The walk, then the reads. Returns whether the index changed.
fn scan_into(
    index: &mut Index,
    roots: &[Root],
    store: &mut Store,
    skipped: &mut Skipped,
    prune: bool,
) -> (Outcome, bool) {
    let mut outcome = Outcome::default();
    let mut jobs = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut visited: HashSet<(u64, u64)> = HashSet::new();
    let now = now_ms();
    for (i, root) in roots.iter().enumerate() {
        let found = walk_root(root, &mut outcome, &mut visited, skipped);
        for (path, kind, meta) in found {
            let key = path.to_string_lossy().into_owned();
            if !seen.insert(key.clone()) {
                continue; // reached twice (a symlink): counted once
            }
            let previous = index.files.get(&key).cloned();
            let unchanged = match kind {
                JobKind::OpencodeDb => previous.as_ref().is_some_and(|m| {
                    m.refused_recently(now) || Some(db_cursor(m)) == opencode_cursor(&path)
                }),
                _ => previous.as_ref().is_some_and(|m| m.unchanged(&meta)),
            };
            if !unchanged {
                jobs.push(Job { key, path, root: i, kind, previous });
            }
        }
    }
    let mut changed = false;
    if prune {
        let before = index.files.len();
        index.files.retain(|k, _| seen.contains(k));
        changed |= index.files.len() != before;
    }
    if jobs.is_empty() {
        return (outcome, changed);
    }
    changed = true;

    // Codex forks of forks: the roots the index already knows.
    let thread_roots: HashMap<String, String> = index
        .files
        .values()
        .filter_map(|m| m.codex.as_ref())
        .filter(|s| !s.thread.is_empty() && !s.root.is_empty())
        .map(|s| (s.thread.clone(), s.root.clone()))
        .collect();
    let root_of = |t: &str| thread_roots.get(t).cloned();

    let next = AtomicUsize::new(0);
    let db_deadline = std::time::Instant::now() + DB_SCAN_TIME;
    let shared = Mutex::new(Shared { store, deltas: HashMap::new() });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(jobs.len());
    let results: Vec<Vec<Done>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut reader = Reader::default();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let root = &roots[job.root];
                        let mut stats = Stats::default();
                        let mark = match job.kind {
                            JobKind::Jsonl => {
                                reader.read_jsonl(job, root, &shared, &root_of, &mut stats)
                            }
                            JobKind::OpencodeDb => {
                                read_db(job, root, &shared, &mut stats, db_deadline)
                            }
                            JobKind::OpencodeFile => {
                                read_message_file(job, root, &shared, &mut stats)
                            }
                        };
                        done.push((i, mark, stats));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });

    for (i, mark, stats) in results.into_iter().flatten() {
        let job = &jobs[i];
        outcome.files_read += 1;
        outcome.bytes_read += stats.bytes;
        outcome.found += stats.found;
        outcome.added += stats.added;
        match mark {
            Ok(mark) => {
                // More to read: the watcher must not vouch for the store
                // until a scan has read it all.
                outcome.unwatched |= mark.more;
                index.files.insert(job.key.clone(), mark);
            }
            Err(why) => {
                index.files.remove(&job.key);
                skip(skipped, 1, 0, || format!("{}: {why}", job.path.display()));
            }
        }
    }
    let Shared { store, deltas } = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let names = store.names();
    let mut deltas: Vec<Delta> = deltas
        .into_iter()
        .map(|((profile, model), (agent, mut d))| {
            d.profile = names.get(profile).to_string();
            d.model = names.get(model).to_string();
            d.agent = agent.id().to_string();
            d
        })
        .collect();
    deltas.sort_by(|a, b| (&a.profile, &a.model).cmp(&(&b.profile, &b.model)));
    outcome.deltas = deltas;
    (outcome, changed)
}

/// One read file: its job index, its new mark (or why it could not be
/// read) and what reading it found.
type Done = (usize, Result<Mark, String>, Stats);

/// What the workers share: the store and the running deltas.
struct Shared<'s> {
    store: &'s mut Store,
    deltas: HashMap<(u32, u32), (Agent, Delta)>,
}

impl Shared<'_> {
    fn insert_all(
        &mut self,
        agent: Agent,
        profile: &str,
        entries: &[Entry<'_>],
        stats: &mut Stats,
    ) {
        for e in entries {
            if let Some(change) = self.store.insert(agent, profile, e) {
                if change.before.is_none() {
                    stats.added += 1;
                }
                self.record(&change);
            }
        }
        self.store.spill();
    }

    fn record(&mut self, c: &Change) {
        let (agent, d) =
            self.deltas.entry((c.profile, c.model)).or_insert_with(|| (c.agent, Delta::default()));
        *agent = c.agent;
        let zero = (Tokens::default(), Some(0.0));
        let (before, before_cost) = c.before.unwrap_or(zero);
        let (after, after_cost) = c.after;
        let diff = |a: u64, b: u64| a as i64 - b as i64;
        d.input_tokens += diff(after.input, before.input);
        d.output_tokens += diff(after.output, before.output);
        d.cache_creation_tokens += diff(after.cache_writes(), before.cache_writes());
        d.cache_read_tokens += diff(after.cache_read, before.cache_read);
        d.total_tokens += diff(after.total(), before.total());
        d.cost_usd += after_cost.unwrap_or(0.0) - before_cost.unwrap_or(0.0);
        let unpriced = |t: &Tokens, c: Option<f64>| if c.is_none() { t.total() as i64 } else { 0 };
        d.unpriced_tokens += unpriced(&after, after_cost) - unpriced(&before, before_cost);
        d.messages += i64::from(c.before.is_none());
    }
}

#[derive(Default)]
struct Stats {
    bytes: u64,
    found: u64,
    added: u64,
}

/// Finds a root's files. Follows symlinks (users link their logs elsewhere)
/// but never enters a directory twice, so a symlink loop ends the descent
/// and is reported.
fn walk_root(
    root: &Root,
    outcome: &mut Outcome,
    visited: &mut HashSet<(u64, u64)>,
    skipped: &mut Skipped,
) -> Vec<(PathBuf, JobKind, Metadata)> {
    walk_root_within(root, outcome, visited, skipped, MAX_ENTRIES)
}

/// [`walk_root`], looking at `max_entries` directory entries at most.
fn walk_root_within(
    root: &Root,
    outcome: &mut Outcome,
    visited: &mut HashSet<(u64, u64)>,
    skipped: &mut Skipped,
    max_entries: usize,
) -> Vec<(PathBuf, JobKind, Metadata)> {
    let mut found = Vec::new();
    let meta = match fs::metadata(&root.path) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            skip(skipped, 1, 0, || format!("{}: not a directory", root.path.display()));
            return found;
        }
        Err(_) => {
            // Not there yet: watch the nearest existing ancestor for it.
            let mut dir = root.path.parent();
            outcome.unwatched = true;
            while let Some(d) = dir {
                if d.is_dir() {
                    outcome.ancestors.push(d.to_path_buf());
                    outcome.unwatched = false;
                    break;
                }
                if d == root.base {
                    break;
                }
                dir = d.parent();
            }
            return found;
        }
    };
    if root.format == Format::Opencode {
        outcome.dirs.push(root.path.clone());
        let mut dbs = opencode::db_files(&root.path);
        // OpenCode's own first, whatever else is there.
        dbs.sort_by_key(|p| p.file_name() != Some(std::ffi::OsStr::new("opencode.db")));
        if dbs.len() > MAX_DBS {
            let extra = dbs.split_off(MAX_DBS);
            skip(skipped, extra.len() as u64, 0, || {
                format!(
                    "{}: more than {MAX_DBS} OpenCode databases; {} not read",
                    root.path.display(),
                    extra.len()
                )
            });
        }
        for path in dbs {
            if let Ok(meta) = fs::metadata(&path) {
                outcome.unwatched |= fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
                found.push((path, JobKind::OpencodeDb, meta));
            }
        }
        let mut legacy = opencode::legacy_message_files(&root.path, &mut outcome.dirs);
        if legacy.len() > max_entries {
            skip(skipped, (legacy.len() - max_entries) as u64, 0, || {
                format!(
                    "{}: more than {max_entries} OpenCode message files; the rest not read",
                    root.path.display()
                )
            });
            legacy.truncate(max_entries);
        }
        for path in legacy {
            if let Ok(meta) = fs::metadata(&path) {
                found.push((path, JobKind::OpencodeFile, meta));
            }
        }
        return found;
    }
    // A proxy log dir holds the log and its one rotated file, nothing below.
    let (is_log, max_depth): (fn(&Path) -> bool, usize) = match root.format {
        Format::Proxy => (proxylog::is_log, 1),
        _ => (|p| p.extension().is_some_and(|x| x == "jsonl"), MAX_DEPTH),
    };
    let mut stack = vec![(root.path.clone(), meta, 0usize)];
    let mut entries_seen = 0usize;
    while let Some((dir, meta, depth)) = stack.pop() {
        if !visited.insert((meta.dev(), meta.ino())) {
            skip(skipped, 1, 0, || {
                format!("{}: directory already scanned (a symlink loop?)", dir.display())
            });
            continue;
        }
        outcome.dirs.push(dir.clone());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                skip(skipped, 1, 0, || format!("{}: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            entries_seen += 1;
            if entries_seen > max_entries {
                skip(skipped, 1, 0, || {
                    format!(
                        "{}: more than {max_entries} files and directories; the rest not read",
                        root.path.display()
                    )
                });
                return found;
            }
            let path = entry.path();
            // `DirEntry::metadata` stats relative to the open directory (no
            // path walk: most of an unchanged scan's time) but does not
            // follow symlinks; only a symlink pays for the full path.
            let is_link = entry.file_type().map_or(true, |t| t.is_symlink());
            let meta = if is_link { fs::metadata(&path) } else { entry.metadata() };
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    // A dangling symlink, or a file deleted since readdir.
                    if is_log(&path) {
                        skip(skipped, 1, 0, || format!("{}: {e}", path.display()));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if depth + 1 < max_depth {
                    stack.push((path, meta, depth + 1));
                }
            } else if is_log(&path) {
                if meta.is_file() {
                    outcome.unwatched |= is_link;
                    found.push((path, JobKind::Jsonl, meta));
                } else {
                    skip(skipped, 1, 0, || format!("{}: not a regular file", path.display()));
                }
            }
        }
    }
    found
}

/// Reads appended lines, reusing one buffer per worker.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    fn read_jsonl(
        &mut self,
        job: &Job,
        root: &Root,
        shared: &Mutex<Shared<'_>>,
        root_of: &dyn Fn(&str) -> Option<String>,
        stats: &mut Stats,
    ) -> Result<Mark, String> {
        let (mut file, meta) = open_regular(&job.path)?;
        let mut mark = Mark::of(&meta);
        // Read on from the previous offset only if this is the same file and
        // it has not shrunk; anything else is a new file.
        if let Some(prev) = &job.previous
            && prev.dev == mark.dev
            && prev.ino == mark.ino
            && prev.offset <= mark.size
        {
            mark.offset = prev.offset;
            mark.skipped_lines = prev.skipped_lines;
            mark.codex = prev.codex.clone();
            mark.discarding = prev.more && prev.discarding;
        }
        file.seek(SeekFrom::Start(mark.offset)).map_err(|e| e.to_string())?;
        let mut state = mark.codex.take().unwrap_or_default();
        let claude_finder = claude::finder();
        let codex_finders = codex::Finders::default();

        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        let mut filled = 0usize;
        let mut discarding = std::mem::take(&mut mark.discarding);
        // Bytes read (holes jumped over are free).
        let mut read = 0u64;
        loop {
            if read >= MAX_READ {
                // Enough for one scan; what is buffered is read again next time.
                mark.more = true;
                break;
            }
            if filled == self.buf.len() {
                // A line that does not start like JSON (a hole of a sparse
                // file, /dev/zero's bytes) is skipped without growing the
                // buffer for it: no agent writes one.
                if self.buf.len() >= MAX_LINE || self.buf[0] != b'{' {
                    // One line longer than we will hold: skip to its end.
                    if !discarding {
                        mark.skipped_lines += 1;
                    }
                    discarding = true;
                    mark.offset += filled as u64;
                    filled = 0;
                } else {
                    let len = (self.buf.len() * 2).min(MAX_LINE);
                    self.buf.resize(len, 0);
                }
            }
            if discarding && filled == 0 {
                // Inside a skipped line: jump over a hole of a sparse file
                // (its zeros are no line end) instead of reading it. Only
                // here, never on the path of a normal log.
                match rustix::fs::seek(&file, rustix::fs::SeekFrom::Data(mark.offset)) {
                    Ok(data) if data > mark.offset => mark.offset = data,
                    // Nothing but a hole to the end.
                    Err(rustix::io::Errno::NXIO) => {
                        mark.offset = mark.offset.max(meta.size());
                        break;
                    }
                    _ => {}
                }
            }
            let n = match file.read(&mut self.buf[filled..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            };
            stats.bytes += n as u64;
            read += n as u64;
            let start = filled;
            filled += n;
            // Only the new bytes can hold the chunk's last newline.
            let Some(last) = memchr::memrchr(b'\n', &self.buf[start..filled]).map(|i| start + i)
            else {
                continue;
            };
            let mut lines = &self.buf[..last];
            if discarding {
                let first = memchr::memchr(b'\n', &self.buf[..=last]).unwrap_or(last);
                lines = if first < last { &self.buf[first + 1..last] } else { &[] };
                discarding = false;
            }
            let mut entries: Vec<Entry<'_>> = Vec::new();
            if !lines.is_empty() {
                // memchr, not `split`: a byte-at-a-time newline search
                // was a third of the scan's time.
                let mut start = 0;
                let ends = memchr::memchr_iter(b'\n', lines).chain(std::iter::once(lines.len()));
                for end in ends {
                    let line = &lines[start..end];
                    start = end + 1;
                    let parsed = match root.format {
                        Format::Codex => {
                            codex::parse_line(line, &mut state, &codex_finders, root_of)
                        }
                        Format::Proxy => proxylog::parse_line(line, &root.profile),
                        _ => claude::parse_line(line, &claude_finder),
                    };
                    match parsed {
                        Parsed::Entry(e) => entries.push(e),
                        Parsed::Malformed => mark.skipped_lines += 1,
                        Parsed::Nothing => {}
                    }
                }
            }
            if !entries.is_empty() {
                stats.found += entries.len() as u64;
                let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                guard.insert_all(root.agent, &root.profile, &entries, stats);
                drop(guard);
            }
            drop(entries);
            mark.offset += (last + 1) as u64;
            self.buf.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
        if discarding {
            // Skipped bytes are not read again.
            mark.offset += filled as u64;
            mark.discarding = mark.more;
        }
        if self.buf.len() > CHUNK {
            // A long line grew the buffer: give the memory back.
            self.buf.truncate(CHUNK);
            self.buf.shrink_to_fit();
        }
        if root.format == Format::Codex {
            mark.codex = Some(state);
        }
        Ok(mark)
    }
}

fn db_cursor(mark: &Mark) -> (i128, u64) {
    (i128::from(mark.mtime_ns), mark.size)
}

fn opencode_cursor(path: &Path) -> Option<(i128, u64)> {
    opencode::change_cursor(path).map(|(t, s)| (t.min(i128::from(i64::MAX)), s))
}

#[cfg(feature = "sqlite")]
fn read_db(
    job: &Job,
    root: &Root,
    shared: &Mutex<Shared<'_>>,
    stats: &mut Stats,
    deadline: std::time::Instant,
) -> Result<Mark, String> {
    let meta = fs::metadata(&job.path).map_err(|e| e.to_string())?;
    let (mtime, size) = opencode_cursor(&job.path).ok_or("vanished during the scan")?;
    let same_file =
        job.previous.as_ref().is_some_and(|p| (p.dev, p.ino) == (meta.dev(), meta.ino()));
    let previous = job.previous.as_ref().filter(|_| same_file);
    let since = previous.map_or(0, |p| p.updated_ms);
    let mut mark = Mark::of(&meta);
    mark.mtime_ns = mtime as i64;
    mark.size = size;
    mark.updated_ms = since;
    mark.skipped_lines = previous.map_or(0, |p| p.skipped_lines);
    // Rows updated in the same millisecond as the last one read may be new:
    // read that millisecond again; the store's dedup drops what it knows.
    // Entries go to the store in batches as they are read.
    let mut found = 0u64;
    let mut added = Stats::default();
    let read = opencode::read_db(&job.path, since.saturating_sub(1), deadline, &mut |entries| {
        found += entries.len() as u64;
        shared.lock().unwrap_or_else(|e| e.into_inner()).insert_all(
            root.agent,
            &root.profile,
            entries,
            &mut added,
        );
    });
    stats.found += found;
    stats.added += added.added;
    match read {
        Ok(batch) => {
            stats.bytes += size;
            mark.updated_ms = batch.max_updated_ms.max(since);
            mark.skipped_lines += batch.skipped_rows;
            Ok(mark)
        }
        // Read next scan, from the cursor it had; until then the watcher
        // does not vouch for the store (`more`).
        Err(e) if e.downcast_ref::<opencode::Deferred>().is_some() => match job.previous.clone() {
            Some(previous) => Ok(Mark { more: true, ..previous }),
            None => Err(e.to_string()),
        },
        Err(e) => match e.downcast_ref::<opencode::Refused>() {
            // Remembered, so that it costs nothing until it changes.
            Some(refused) => {
                crate::warn!("usage: {} not read: {refused}", job.path.display());
                mark.refused = refused.why.clone();
                // Only what cost a budget is rationed: a database refused
                // for its shape is read again as soon as it changes (a new
                // OpenCode database has no table for a moment).
                mark.refused_at_ms = if refused.over_budget { now_ms() } else { 0 };
                Ok(mark)
            }
            None => Err(format!("{e:#}")),
        },
    }
}

#[cfg(not(feature = "sqlite"))]
fn read_db(
    _: &Job,
    _: &Root,
    _: &Mutex<Shared<'_>>,
    _: &mut Stats,
    _: std::time::Instant,
) -> Result<Mark, String> {
    Err("this ringlet was built without SQLite (the `sqlite` feature); OpenCode databases are not read".into())
}

fn read_message_file(
    job: &Job,
    root: &Root,
    shared: &Mutex<Shared<'_>>,
    stats: &mut Stats,
) -> Result<Mark, String> {
    let (file, meta) = open_regular(&job.path)?;
    let mut bytes = Vec::new();
    file.take(MAX_MESSAGE_FILE).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    stats.bytes += bytes.len() as u64;
    let mut mark = Mark::of(&meta);
    mark.offset = bytes.len() as u64;
    let stem = job.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let session = job
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match opencode::parse_message(&stem, &session, &bytes) {
        Some(entry) => {
            stats.found += 1;
            shared.lock().unwrap_or_else(|e| e.into_inner()).insert_all(
                root.agent,
                &root.profile,
                &[entry],
                stats,
            );
        }
        None if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() => {
            mark.skipped_lines = 1
        }
        None => {}
    }
    Ok(mark)
}

/// Opens a log an agent may have replaced with anything: without blocking
/// (a FIFO swapped in after the walk's `stat` would block the open until a
/// writer came) and without making a terminal the daemon's controlling
/// one; then `fstat` says whether it is a regular file, the only kind read.
/// Symlinks are followed, as the walk does: users link their logs
/// elsewhere, and what the link reaches is checked here.
fn open_regular(path: &Path) -> Result<(File, Metadata), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A default path that is the same directory as another (through a
    /// link) is one root, not two; paths that do not resolve are compared
    /// as written. (Each path is resolved once, not once per pair.)
    #[test]
    fn default_roots_through_links_are_one_root() {
        let dir = std::env::temp_dir().join(format!("ringlet-scan-roots-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let home = dir.join("home");
        fs::create_dir_all(home.join(".config/claude/projects")).unwrap();
        std::os::unix::fs::symlink(home.join(".config/claude"), home.join(".claude")).unwrap();
        let none = dir.join("none");
        let catalog = Catalog::load_layers(&none, None, &none);
        let var = |_: &str| None;
        let found = roots(&catalog, &[], &home, &dir.join("config"), &var);
        let claude: Vec<&Root> = found.iter().filter(|r| r.format == Format::Claude).collect();
        assert_eq!(claude.len(), 1, "{:?}", found.iter().map(|r| &r.path).collect::<Vec<_>>());
        assert_eq!(claude[0].path, home.join(".claude/projects"));
        // Two codex paths that do not exist: both kept.
        assert_eq!(found.iter().filter(|r| r.format == Format::Codex).count(), 2);
        // Without the link both Claude paths are roots.
        fs::remove_file(home.join(".claude")).unwrap();
        let found = roots(&catalog, &[], &home, &dir.join("config"), &var);
        assert_eq!(found.iter().filter(|r| r.format == Format::Claude).count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An agent's flood of files in its log root: the walk looks at a
    /// bounded number of entries and reports the rest (the real bound,
    /// 100,000, is too slow to build in a test).
    #[test]
    fn a_flooded_root_is_walked_only_so_far_and_reported() {
        let dir = std::env::temp_dir().join(format!("ringlet-scan-flood-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for n in 0..30 {
            fs::write(dir.join(format!("{n}.jsonl")), "").unwrap();
        }
        let root = Root {
            path: dir.clone(),
            format: Format::Claude,
            agent: Agent::Claude,
            profile: DEFAULT_PROFILE.to_string(),
            base: dir.clone(),
        };
        let walk = |max| {
            let mut skipped = Skipped::default();
            let found = walk_root_within(
                &root,
                &mut Outcome::default(),
                &mut HashSet::new(),
                &mut skipped,
                max,
            );
            (found.len(), skipped)
        };
        let (found, skipped) = walk(10);
        assert_eq!(found, 10);
        assert_eq!(skipped.files, 1);
        assert!(skipped.details[0].contains("more than 10 files and directories"), "{skipped:?}");
        let (found, skipped) = walk(MAX_ENTRIES);
        assert_eq!((found, skipped.files), (30, 0));
        let _ = fs::remove_dir_all(&dir);
    }

    /// The same for OpenCode's legacy message files.
    #[test]
    fn a_flood_of_opencode_message_files_is_read_only_so_far_and_reported() {
        let dir = std::env::temp_dir().join(format!("ringlet-scan-legacy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let session = dir.join("storage/message/ses_1");
        fs::create_dir_all(&session).unwrap();
        for n in 0..30 {
            fs::write(session.join(format!("msg_{n}.json")), "{}").unwrap();
        }
        let root = Root {
            path: dir.clone(),
            format: Format::Opencode,
            agent: Agent::Opencode,
            profile: DEFAULT_PROFILE.to_string(),
            base: dir.clone(),
        };
        let mut skipped = Skipped::default();
        let found =
            walk_root_within(&root, &mut Outcome::default(), &mut HashSet::new(), &mut skipped, 10);
        assert_eq!((found.len(), skipped.files), (10, 20));
        assert!(skipped.details[0].contains("more than 10 OpenCode message files"), "{skipped:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
