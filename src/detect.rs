//! Agent detection: which agents are installed, where, and which version.
//!
//! For each agent manifest we look for its commands on `PATH`, then run
//! `<binary> <version_flag>` with a per-probe timeout, all probes in
//! parallel. Results are cached in `cache/agent-detections.json` keyed by the
//! binary's path, size and mtime, so a repeated `agents list` spawns no
//! process; an upgrade changes size or mtime and is probed again. A probe
//! that hangs is killed with its whole process group and remembered as such
//! (until the binary changes), so one broken agent cannot slow every listing.
//!
//! The cache also remembers what each agent looked like last time, across
//! daemon restarts, so the AgentDetected/AgentUpdated events fire on real
//! changes only.
//!
//! Looking for an agent that is not installed costs a `stat` in every `PATH`
//! directory, most of a warm `agents list`'s work. So the detector also
//! keeps, in memory, which agents none of whose names exists in any `PATH`
//! directory, with each directory's identity and mtime ([`PathScan`]). An
//! entry added to, removed from or renamed in a directory changes its
//! mtime, so while no directory's stamp has changed those agents are still
//! absent and one `stat` per directory replaces one per directory and name.
//! A name that is there but was turned down (not executable, a dangling
//! link, a shim) is looked at every time, since making it usable changes
//! no directory. A stamp is trusted only once its mtime is
//! [`SETTLED`] older than the clock when it was read, so a change within
//! the same timestamp tick as the one before is never missed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::manifests::AgentManifest;
use crate::paths::expand_tilde;

/// Bumped when the cache file changes shape; an old file is then ignored.
const CACHE_VERSION: u32 = 1;

/// At most this much of a probe's output is read.
const MAX_PROBE_OUTPUT: u64 = 64 * 1024;

/// How much older than the clock a directory's mtime must be for its stamp
/// to be trusted ([`PathScan`]): more than a filesystem's timestamp tick
/// (coarse kernel clocks, FAT's 2 s).
const SETTLED: Duration = Duration::from_secs(3);

/// What detection found for one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub id: String,
    pub path: Option<PathBuf>,
    pub version: Option<String>,
    pub probe_error: Option<String>,
    pub config_files: Vec<PathBuf>,
}

/// A change worth an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Found for the first time (or again after having disappeared).
    Detected { id: String, path: String, version: Option<String> },
    /// Found before, now at another path or version.
    Updated { id: String, path: String, previous_version: Option<String>, version: Option<String> },
}

/// The detection cache, owned by whoever holds it (the daemon keeps it behind
/// one mutex, so concurrent listings never probe the same binary twice).
#[derive(Debug)]
pub struct Detector {
    file: PathBuf,
    cache: CacheFile,
    loaded: bool,
    /// Agents known to be absent from `PATH`, and since when.
    scan: Option<PathScan>,
}

/// The agents (by their command names) none of whose names exists in any
/// `PATH` directory, valid while every directory's stamp is as recorded.
#[derive(Debug, PartialEq)]
struct PathScan {
    path_var: std::ffi::OsString,
    stamps: Vec<Option<DirStamp>>,
    /// Every stamp was settled when read: none can hide a change.
    settled: bool,
    absent: Vec<Vec<String>>,
}

/// A directory's identity and mtime; `None` in [`PathScan::stamps`] for
/// one that could not be read (missing: creating it changes the stamp).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DirStamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
}

impl PathScan {
    /// The stamps of `path_var`'s absolute directories now, and whether all
    /// of them are settled.
    fn stamps(path_var: &OsStr) -> (Vec<Option<DirStamp>>, bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let mut settled = true;
        let stamps = path_dirs(path_var)
            .map(|dir| {
                let meta = fs::metadata(dir).ok()?;
                let mtime_ns =
                    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
                settled &= mtime_ns < now - SETTLED.as_nanos() as i128;
                Some(DirStamp { dev: meta.dev(), ino: meta.ino(), mtime_ns })
            })
            .collect();
        (stamps, settled)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// Probe results by binary path.
    binaries: BTreeMap<String, CachedProbe>,
    /// What each agent looked like at the last detection, by agent id.
    agents: BTreeMap<String, Seen>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CachedProbe {
    size: u64,
    mtime_ns: i64,
    version: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    path: String,
    version: Option<String>,
}

impl Detector {
    pub fn new(file: PathBuf) -> Detector {
        Detector { file, cache: CacheFile::default(), loaded: false, scan: None }
    }

    /// Each agent's binary, as [`find_binary`] finds it, skipping the
    /// lookup of agents the last [`PathScan`] found absent while it holds.
    fn find_all(
        &mut self,
        agents: &[&AgentManifest],
        path_var: Option<&OsStr>,
    ) -> Vec<Option<(PathBuf, u64, i64)>> {
        let Some(path_var) = path_var else { return agents.iter().map(|_| None).collect() };
        let (stamps, settled) = PathScan::stamps(path_var);
        let holds = self
            .scan
            .as_ref()
            .is_some_and(|scan| scan.settled && scan.path_var == path_var && scan.stamps == stamps);
        if !holds {
            let path_var = path_var.to_os_string();
            self.scan = Some(PathScan { path_var, stamps, settled, absent: Vec::new() });
        }
        let scan = self.scan.as_mut().expect("set above");
        agents
            .iter()
            .map(|agent| {
                let commands = agent.commands();
                if holds && scan.absent.iter().any(|a| *a == commands) {
                    return None;
                }
                match find_in_path(&commands, Some(path_var), not_a_shim) {
                    Lookup::Found(path, size, mtime_ns) => Some((path, size, mtime_ns)),
                    Lookup::Absent => {
                        scan.absent.push(commands.iter().map(|c| c.to_string()).collect());
                        None
                    }
                    Lookup::TurnedDown => None,
                }
            })
            .collect()
    }

    /// Detects every agent in `agents`. `path_var` is the `PATH` to search,
    /// `home` expands `~/` in `[detect] files`.
    pub fn detect(
        &mut self,
        agents: &[&AgentManifest],
        path_var: Option<&OsStr>,
        home: &Path,
        timeout: Duration,
    ) -> (Vec<Detection>, Vec<Change>) {
        self.load();
        let mut dirty = false;

        // Find binaries and decide which need a probe.
        let found = self.find_all(agents, path_var);
        let mut to_probe: Vec<(PathBuf, &str)> = Vec::new();
        for (agent, hit) in agents.iter().zip(&found) {
            if let Some((path, size, mtime_ns)) = hit {
                let key = path.to_string_lossy().into_owned();
                let fresh = self
                    .cache
                    .binaries
                    .get(&key)
                    .is_some_and(|c| c.size == *size && c.mtime_ns == *mtime_ns);
                if !fresh && !to_probe.iter().any(|(p, _)| p == path) {
                    to_probe.push((path.clone(), agent.version_flag.as_str()));
                }
            }
        }

        // Probe in parallel: node-based agents take hundreds of ms each.
        let results: Vec<(PathBuf, Result<String, String>)> = thread::scope(|s| {
            let handles: Vec<_> = to_probe
                .iter()
                .map(|(path, flag)| {
                    let handle = thread::Builder::new()
                        .name("detect-probe".into())
                        .spawn_scoped(s, move || probe_version(path, flag, timeout));
                    (path.clone(), handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(path, handle)| {
                    let result = match handle {
                        Ok(h) => h.join().unwrap_or_else(|_| Err("probe panicked".into())),
                        Err(e) => Err(format!("starting probe thread: {e}")),
                    };
                    (path, result)
                })
                .collect()
        });
        for (path, result) in results {
            let Some((_, size, mtime_ns)) =
                found.iter().flatten().find(|(p, _, _)| *p == path).cloned()
            else {
                continue;
            };
            let (version, error) = match result {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
            crate::debug!("probed {}: version {version:?}, error {error:?}", path.display());
            self.cache.binaries.insert(
                path.to_string_lossy().into_owned(),
                CachedProbe { size, mtime_ns, version, error },
            );
            dirty = true;
        }

        // Assemble results and compare with what we saw last time.
        let mut detections = Vec::new();
        let mut changes = Vec::new();
        for (agent, hit) in agents.iter().zip(&found) {
            let config_files = agent
                .detect
                .files
                .iter()
                .map(|f| expand_tilde(f, home))
                .filter(|p| p.exists())
                .collect();
            let mut d = Detection {
                id: agent.id.clone(),
                path: None,
                version: None,
                probe_error: None,
                config_files,
            };
            if let Some((path, _, _)) = hit {
                let key = path.to_string_lossy().into_owned();
                if let Some(c) = self.cache.binaries.get(&key) {
                    d.version = c.version.clone();
                    d.probe_error = c.error.clone();
                }
                d.path = Some(path.clone());
                let now = Seen { path: key.clone(), version: d.version.clone() };
                match self.cache.agents.get(&agent.id) {
                    None => changes.push(Change::Detected {
                        id: agent.id.clone(),
                        path: key,
                        version: d.version.clone(),
                    }),
                    Some(prev) if *prev != now => changes.push(Change::Updated {
                        id: agent.id.clone(),
                        path: key,
                        previous_version: prev.version.clone(),
                        version: d.version.clone(),
                    }),
                    Some(_) => {}
                }
                if self.cache.agents.get(&agent.id) != Some(&now) {
                    self.cache.agents.insert(agent.id.clone(), now);
                    dirty = true;
                }
            } else if self.cache.agents.remove(&agent.id).is_some() {
                // Uninstalled: forget it, so a reinstall is "detected" again.
                dirty = true;
            }
            detections.push(d);
        }

        // Forget probes of binaries that no longer exist.
        let before = self.cache.binaries.len();
        // (Those just found exist: no second look.)
        let just_found = |path: &str| found.iter().flatten().any(|(p, _, _)| p.as_os_str() == path);
        self.cache.binaries.retain(|path, _| just_found(path) || Path::new(path).exists());
        dirty |= before != self.cache.binaries.len();

        if dirty {
            self.save();
        }
        (detections, changes)
    }

    fn load(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let Ok(bytes) = fs::read(&self.file) else { return };
        match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(c) if c.version == CACHE_VERSION => self.cache = c,
            Ok(_) => crate::info!("ignoring detection cache of another version"),
            Err(e) => crate::warn!("ignoring unreadable {}: {e}", self.file.display()),
        }
    }

    fn save(&mut self) {
        self.cache.version = CACHE_VERSION;
        let result = serde_json::to_vec_pretty(&self.cache)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| crate::fsutil::write_atomic(&self.file, &bytes, 0o600));
        if let Err(e) = result {
            // Detection still works; it just probes again next time.
            crate::warn!("saving {}: {e:#}", self.file.display());
        }
    }
}

/// The first of `commands` found as an executable file on `path_var`, with
/// the size and mtime (nanoseconds) of the file it resolves to.
pub fn find_binary(commands: &[&str], path_var: Option<&OsStr>) -> Option<(PathBuf, u64, i64)> {
    find_in_path(commands, path_var, not_a_shim).found()
}

/// Our own alias shims are never an agent: a profile called `claude` would
/// otherwise be detected as Claude Code, and run itself. A shim is a small
/// file, so a large one is not read to find out.
fn not_a_shim(path: &Path, meta: &fs::Metadata) -> bool {
    meta.len() >= 4096 || !crate::profiles::aliases::is_shim(path)
}

/// The first executable named like one of `commands` on `path_var` (absolute
/// entries only) that `accept` takes: its path, size and mtime (ns).
pub fn find_binary_where(
    commands: &[&str],
    path_var: Option<&OsStr>,
    accept: impl Fn(&Path) -> bool,
) -> Option<(PathBuf, u64, i64)> {
    find_in_path(commands, path_var, |path, _| accept(path)).found()
}

/// What [`find_in_path`] found.
enum Lookup {
    /// The binary: path, size and mtime (ns) of the file it resolves to.
    Found(PathBuf, u64, i64),
    /// None of the names exists in any directory, not even as a dangling
    /// link: only a change to a directory can make one appear.
    Absent,
    /// Something by one of the names is there but does not qualify, or
    /// could not be looked at.
    TurnedDown,
}

impl Lookup {
    /// The binary, if found: path, size and mtime (ns).
    fn found(self) -> Option<(PathBuf, u64, i64)> {
        match self {
            Lookup::Found(path, size, mtime_ns) => Some((path, size, mtime_ns)),
            Lookup::Absent | Lookup::TurnedDown => None,
        }
    }
}

/// The absolute entries of `path_var`, in order: relative ones depend on the
/// daemon's cwd and are skipped.
fn path_dirs(path_var: &OsStr) -> impl Iterator<Item = PathBuf> + '_ {
    std::env::split_paths(path_var).filter(|dir| dir.is_absolute())
}

/// [`find_binary_where`], also telling an absent name from one turned down.
fn find_in_path(
    commands: &[&str],
    path_var: Option<&OsStr>,
    accept: impl Fn(&Path, &fs::Metadata) -> bool,
) -> Lookup {
    let Some(path_var) = path_var else { return Lookup::Absent };
    let mut absent = true;
    for cmd in commands {
        for dir in path_dirs(path_var) {
            let candidate = dir.join(cmd);
            let meta = match fs::metadata(&candidate) {
                Ok(meta) => meta,
                Err(e) => {
                    // Not there, unless as a link to nothing (which its
                    // target's creation makes usable, changing no directory
                    // here).
                    absent &= e.kind() == std::io::ErrorKind::NotFound
                        && fs::symlink_metadata(&candidate)
                            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                    continue;
                }
            };
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 && accept(&candidate, &meta)
            {
                let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
                return Lookup::Found(candidate, meta.len(), mtime_ns);
            }
            absent = false;
        }
    }
    if absent { Lookup::Absent } else { Lookup::TurnedDown }
}

/// Runs `<path> <flag>` and extracts a version, killing the probe's whole
/// process group if it outlives `timeout`.
pub fn probe_version(path: &Path, flag: &str, timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new(path);
    // A minimal environment: a probe needs to find its interpreter (PATH)
    // and nothing of the daemon's beyond that.
    cmd.env_clear();
    for name in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("NO_COLOR", "1")
        // Never let a probe update an agent in place (agents-verified.md).
        .env("DISABLE_AUTOUPDATER", "1")
        .current_dir("/")
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("running {} {flag}: {e}", path.display()))?;
    let pid = rustix::process::Pid::from_child(&child);
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    // The reader ends at EOF, which comes when the probe (and anything it
    // forked that holds the pipe) exits, or when we kill the group.
    let reader = thread::Builder::new().name("detect-read".into()).spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_PROBE_OUTPUT).read_to_end(&mut out);
        let _ = tx.send(out);
    });
    if reader.is_err() {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = child.wait();
        return Err("could not start a probe reader thread".into());
    }
    let started = Instant::now();
    let output = rx.recv_timeout(timeout);
    let out = match output {
        Ok(out) => out,
        Err(_) => {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.wait();
            return Err(format!(
                "`{} {flag}` did not answer within {} ms",
                path.display(),
                timeout.as_millis()
            ));
        }
    };
    // Output is complete; the process should be exiting. Give it the rest of
    // the budget, then make sure it is gone.
    let deadline = started + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = String::from_utf8_lossy(&out);
    match parse_version(&text) {
        Some(v) => Ok(v),
        None => match status {
            Some(s) if !s.success() => Err(format!("`{} {flag}` failed ({s})", path.display())),
            _ => Err(format!("`{} {flag}` printed no version", path.display())),
        },
    }
}

/// The first `N.N[.N...][-pre][+build]` in `text`, e.g. `2.1.197` from
/// `2.1.197 (Claude Code)` or `0.169.0` from `codex-cli 0.169.0`.
pub fn parse_version(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let boundary =
            |j: usize| j == 0 || !bytes[j - 1].is_ascii_alphanumeric() && bytes[j - 1] != b'.';
        // `v1.2.3` counts as `1.2.3`.
        let starts_token = boundary(i) || (bytes[i - 1] == b'v' && boundary(i - 1));
        if bytes[i].is_ascii_digit() && starts_token {
            let start = i;
            let mut dots = 0;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                dots += usize::from(bytes[i] == b'.');
                i += 1;
            }
            if dots >= 1 {
                // Keep a pre-release or build suffix such as `-beta.1`.
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'-' | b'+' | b'.'))
                {
                    i += 1;
                }
                let v = text[start..i].trim_end_matches(['.', '-', '+']);
                return Some(v.to_string());
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_the_real_agents() {
        assert_eq!(parse_version("2.1.197 (Claude Code)\n").as_deref(), Some("2.1.197"));
        assert_eq!(parse_version("codex-cli 0.169.0\n").as_deref(), Some("0.169.0"));
        assert_eq!(parse_version("1.18.33\n").as_deref(), Some("1.18.33"));
        assert_eq!(parse_version("v0.0.34").as_deref(), Some("0.0.34"));
        assert_eq!(parse_version("droid 1.2.3-beta.1 (x)").as_deref(), Some("1.2.3-beta.1"));
        assert_eq!(parse_version("no version here 7"), None);
        assert_eq!(parse_version("build x86_64 v2.0"), Some("2.0".into()));
    }

    #[test]
    fn find_binary_needs_an_executable_file() {
        let dir = std::env::temp_dir().join(format!("ringlet-detect-{}", std::process::id()));
        fs::create_dir_all(dir.join("bin")).unwrap();
        let plain = dir.join("bin").join("plain");
        fs::write(&plain, "x").unwrap();
        let exe = dir.join("bin").join("exe");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("relative"), &dir.join("bin")]).unwrap();
        assert!(find_binary(&["plain"], Some(&path)).is_none());
        assert!(find_binary(&["bin"], Some(dir.as_os_str())).is_none(), "directories do not count");
        assert_eq!(find_binary(&["nope", "exe"], Some(&path)).unwrap().0, exe);
        assert!(find_binary(&["exe"], None).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_names_not_there_at_all_count_as_absent() {
        let dir = std::env::temp_dir().join(format!("ringlet-absent-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("plain"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent-ringlet-dir"), &dir]).unwrap();
        let lookup = |names: &[&str]| find_in_path(names, Some(&path), |_, _| true);
        assert!(matches!(lookup(&["none"]), Lookup::Absent));
        // There but not usable: looked at again every time.
        assert!(matches!(lookup(&["none", "plain"]), Lookup::TurnedDown));
        assert!(matches!(lookup(&["dangling"]), Lookup::TurnedDown));
        fs::remove_dir_all(&dir).unwrap();
    }
}
