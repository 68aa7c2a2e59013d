//! Remote terminals: agents in daemon-owned PTY sessions that any number of
//! clients watch and type into over `/ws/terminal/{id}`, sandboxed by default.
//!
//! `pty` starts the agent on a terminal in its own session and ends all of
//! it; `helper` is the session helper the agent runs under (its own process
//! group, the terminal's foreground, subreaper, signals); `sandbox` builds the
//! bwrap (Linux) or sandbox-exec (macOS) command line around it; `session` is
//! the thread that owns one PTY, its scrollback and its clients; `procfs`
//! reads the process table. [`Registry`] is the daemon's list of sessions.

pub mod helper;
pub mod modes;
#[cfg(target_os = "linux")]
mod procfs;
pub mod pty;
pub mod sandbox;
pub mod screen;
pub mod session;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::profiles::NotFound;
use session::{Ctl, Handle, Info};

/// Ended sessions are removed this long after their end (reconnecting to
/// read the last screen and the exit code stays possible until then).
pub const ENDED_TTL: Duration = Duration::from_secs(3600);

/// What `POST /api/terminal/sessions` and `profiles run --remote` ask for.
/// Its `Debug` leaves out the environment's values (requests are logged at
/// debug level, and a shell environment holds secrets).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalRequest {
    pub profile: String,
    /// Arguments after the profile's own.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_cols")]
    pub cols: u16,
    #[serde(default = "default_rows")]
    pub rows: u16,
    /// Absolute; the user's home when absent.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// On unless `--no-sandbox` (recorded in the session's info).
    #[serde(default = "default_true")]
    pub sandbox: bool,
    /// Extra bwrap arguments, split like a shell splits words.
    #[serde(default)]
    pub bwrap_flags: Option<String>,
    /// PATH for finding the agent and for the agent (the CLI sends its own).
    #[serde(default)]
    pub path: Option<String>,
    /// Values for the profile's passthrough variables (the CLI sends its
    /// own); nothing is taken from the daemon's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for TerminalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalRequest")
            .field("profile", &self.profile)
            .field("args", &self.args)
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("working_dir", &self.working_dir)
            .field("sandbox", &self.sandbox)
            .field("bwrap_flags", &self.bwrap_flags)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn default_cols() -> u16 {
    80
}

fn default_rows() -> u16 {
    24
}

fn default_true() -> bool {
    true
}

/// Every session of the daemon. The map is touched by request handlers (IPC
/// and HTTP threads) under the lock, never while blocking on a session.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<BTreeMap<String, Handle>>,
    next: AtomicU64,
}

impl Registry {
    /// A new session id: short, unique for the daemon's life.
    pub fn next_id(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub fn insert(&self, handle: Handle) -> Info {
        let info = handle.info();
        self.lock().insert(info.id.clone(), handle);
        info
    }

    /// Whether any session's agent still runs.
    pub fn any_running(&self) -> bool {
        self.lock().values().any(|h| h.info().state == "running")
    }

    /// The id of a running session of `profile` that is `sandboxed` (or
    /// not), if any: a sandboxed agent can rewrite the profile's files under
    /// an unsandboxed one (see `daemon::dispatch`).
    pub fn running(&self, profile: &str, sandboxed: bool) -> Option<String> {
        self.lock()
            .values()
            .map(Handle::info)
            .find(|i| {
                i.profile == profile && i.state == "running" && (i.sandbox != "none") == sandboxed
            })
            .map(|i| i.id)
    }

    pub fn list(&self) -> Vec<Info> {
        self.lock().values().map(Handle::info).collect()
    }

    pub fn info(&self, id: &str) -> Result<Info> {
        self.lock().get(id).map(Handle::info).ok_or_else(|| not_found(id))
    }

    /// Sends a message to a session.
    pub fn send(&self, id: &str, ctl: Ctl) -> Result<()> {
        let sessions = self.lock();
        let handle = sessions.get(id).ok_or_else(|| not_found(id))?;
        if !handle.send(ctl) {
            anyhow::bail!("terminal session {id} has stopped");
        }
        Ok(())
    }

    /// Ends a session's process group (SIGHUP, SIGTERM, SIGKILL) and removes
    /// it. Returns its last info, with the exit code.
    pub fn kill(&self, id: &str) -> Result<Info> {
        let handle = self.lock().remove(id).ok_or_else(|| not_found(id))?;
        let info = handle.info.clone();
        handle.remove();
        Ok(info.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Removes ended sessions (all of them with `ttl` zero); returns their ids.
    pub fn cleanup(&self, ttl: Duration) -> Vec<String> {
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        let mut sessions = self.lock();
        let ids: Vec<String> = sessions
            .iter()
            .filter(|(_, h)| {
                let info = h.info();
                info.state == "exited"
                    && info
                        .ended_at
                        .as_deref()
                        .and_then(crate::usage::parse_timestamp_ms)
                        .is_none_or(|ms| {
                            let ended =
                                std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
                            now.duration_since(ended).unwrap_or_default() >= ttl
                        })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(handle) = sessions.remove(&id) {
                drop(sessions);
                handle.remove();
                sessions = self.lock();
                removed.push(id);
            }
        }
        removed
    }

    /// Ends every session (daemon shutdown).
    pub fn shutdown(&self) {
        let all = std::mem::take(&mut *self.lock());
        // All at once: agents that ignore SIGHUP and SIGTERM cost the grace
        // periods once, not once each.
        let removals: Vec<_> = all.into_values().map(Handle::begin_removal).collect();
        for removal in removals {
            removal.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Handle>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(id: &str) -> anyhow::Error {
    anyhow::Error::new(NotFound(format!("no terminal session {id}")))
}
