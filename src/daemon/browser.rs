//! Browser sessions: what a web page signs in with instead of the daemon's
//! own token.
//!
//! `ringlet ui` opens the page with a one-time ticket; the page trades it
//! at `POST /api/login` for a *browser session token*: 256 random bits,
//! shown once, kept by the page in its origin's `localStorage`, sent as the
//! bearer on REST and as the WebSocket subprotocol. The daemon keeps only
//! its SHA-256, with an id (what lists and revocations name), when it was
//! made and when it was last used. So the daemon's token never reaches a
//! browser, and each browser can be signed out on its own.
//!
//! A session ends when it is revoked (the page's "sign out", `ringlet ui
//! --revoke <id>|all`, the REST routes, or `daemon token --rotate`, which
//! ends them all), after [`IDLE_TTL`] unused, or [`ABSOLUTE_TTL`] after
//! sign-in, whichever comes first. Use is recorded at most once a
//! [`TOUCH_EVERY`], so a busy page does not write the file at every call.
//! At most [`MAX_SESSIONS`] live at once; signing in beyond that ends the
//! least recently used.
//!
//! They are kept in `<config>/browser_sessions.json` (0600, replaced
//! atomically at every change), so a daemon that idled out and was
//! started again keeps the browser signed in. The file holds hashes only:
//! reading it signs nobody in. A damaged file costs the sessions (they
//! start empty, with a warning), never the daemon.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::http::auth::same_token;
use crate::fsutil::{hex, random_hex, read_private, write_atomic};

const DAY: u64 = 86_400;
/// A session ends this long after sign-in, however much it is used.
pub const ABSOLUTE_TTL: u64 = 30 * DAY;
/// A session unused this long ends.
pub const IDLE_TTL: u64 = 7 * DAY;
/// Use is recorded (and the file written) at most this often per session.
pub const TOUCH_EVERY: u64 = 60;
/// Sessions alive at once, at most.
pub const MAX_SESSIONS: usize = 64;
/// The file's largest size: 64 sessions take about 12 KB.
const FILE_CAP: u64 = 1 << 20;
/// The file's name in the config dir.
pub const FILE_NAME: &str = "browser_sessions.json";

/// One session as the daemon keeps it (and the file holds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    id: String,
    /// `sha256:<hex>` of the token.
    hash: String,
    /// Unix seconds.
    created: u64,
    last_used: u64,
}

impl Stored {
    fn expires(&self) -> u64 {
        (self.created + ABSOLUTE_TTL).min(self.last_used + IDLE_TTL)
    }

    fn sane(&self) -> bool {
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        hex(&self.id, 2 * ID_BYTES)
            && self.hash.strip_prefix("sha256:").is_some_and(|h| hex(h, 64))
            && self.last_used >= self.created
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    sessions: Vec<Stored>,
}

/// Random bytes of a session's id (hex: 16 characters).
const ID_BYTES: usize = 8;
/// Random bytes of a session's token (hex: 64 characters, 256 bits).
const TOKEN_BYTES: usize = 32;

/// A new session, as `POST /api/login` answers it: the token, shown this
/// once.
#[derive(Debug, Clone, Serialize)]
pub struct NewSession {
    pub token: String,
    pub id: String,
    pub expires_at: String,
    /// Sessions ended to make room (their WebSockets are to be woken).
    #[serde(skip)]
    pub evicted: usize,
}

/// A session as listed (`GET /api/browser-sessions`, `ringlet ui
/// --sessions`): never its token or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSession {
    pub id: String,
    pub created_at: String,
    pub last_used: String,
    pub expires_at: String,
    /// It is the caller's own (only an HTTP caller signed in with a
    /// browser token has one).
    pub current: bool,
}

/// A live session a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub id: String,
    /// Unix seconds; it ends then unless used again.
    pub expires: u64,
}

/// The browser sessions; shared by every HTTP connection thread.
pub struct Sessions {
    path: PathBuf,
    list: Mutex<Vec<Stored>>,
}

impl Sessions {
    /// The sessions kept in `path`: none when it does not exist or cannot
    /// be read or parsed (a warning says so), without the expired ones.
    pub fn load(path: PathBuf) -> Sessions {
        let list = match read_private(&path, FILE_CAP) {
            Ok(None) => Vec::new(),
            Ok(Some(bytes)) => match serde_json::from_slice::<File>(&bytes) {
                Ok(file) => file.sessions,
                Err(e) => {
                    crate::warn!(
                        "browser sessions: {} is damaged ({e}); starting with none \
                         (browsers sign in again with `ringlet ui`)",
                        path.display()
                    );
                    Vec::new()
                }
            },
            Err(e) => {
                crate::warn!(
                    "browser sessions: cannot read {}: {e:#}; starting with none \
                     (browsers sign in again with `ringlet ui`)",
                    path.display()
                );
                Vec::new()
            }
        };
        let now = now();
        let mut kept: Vec<Stored> = Vec::new();
        for s in list {
            if s.sane() && s.expires() > now && !kept.iter().any(|k| k.id == s.id) {
                kept.push(s);
            }
        }
        // The most recently used first, then only as many as may live.
        kept.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        kept.truncate(MAX_SESSIONS);
        Sessions { path, list: Mutex::new(kept) }
    }

    /// Where they are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Signs a browser in: a new session, the least recently used one
    /// ending when [`MAX_SESSIONS`] are alive.
    pub fn create(&self) -> Result<NewSession> {
        self.create_at(now())
    }

    fn create_at(&self, now: u64) -> Result<NewSession> {
        let token = random_hex(TOKEN_BYTES)?;
        let id = random_hex(ID_BYTES)?;
        let stored = Stored { id: id.clone(), hash: hash(&token), created: now, last_used: now };
        let expires = stored.expires();
        let mut list = self.lock();
        list.retain(|s| s.expires() > now);
        let mut evicted = 0;
        while list.len() >= MAX_SESSIONS {
            evicted += 1;
            let oldest = list.iter().enumerate().min_by_key(|(_, s)| s.last_used).map(|(i, _)| i);
            list.remove(oldest.unwrap_or(0));
        }
        list.push(stored);
        // Not kept on disk is still a session, for this daemon's life.
        self.save_or_warn(&list);
        Ok(NewSession { token, id, expires_at: rfc3339(expires), evicted })
    }

    /// The live session `token` belongs to, if any; its use is recorded
    /// (at most once a [`TOUCH_EVERY`]). Every session's hash is compared
    /// in full, so the time taken says nothing about the token.
    pub fn check(&self, token: &str) -> Option<Live> {
        self.check_at(token, now())
    }

    fn check_at(&self, token: &str, now: u64) -> Option<Live> {
        let given = hash(token);
        let mut list = self.lock();
        let mut found = None;
        for (i, s) in list.iter().enumerate() {
            if same_token(&given, &s.hash) {
                found = Some(i);
            }
        }
        let i = found?;
        if list[i].expires() <= now {
            list.remove(i);
            self.save_or_warn(&list);
            return None;
        }
        if now >= list[i].last_used + TOUCH_EVERY {
            list[i].last_used = now;
            self.save_or_warn(&list);
        }
        Some(Live { id: list[i].id.clone(), expires: list[i].expires() })
    }

    /// The live sessions, the most recently used first; `current` is
    /// marked.
    pub fn list(&self, current: Option<&str>) -> Vec<BrowserSession> {
        let now = now();
        let mut list: Vec<Stored> =
            self.lock().iter().filter(|s| s.expires() > now).cloned().collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        list.into_iter()
            .map(|s| BrowserSession {
                current: current == Some(s.id.as_str()),
                created_at: rfc3339(s.created),
                last_used: rfc3339(s.last_used),
                expires_at: rfc3339(s.expires()),
                id: s.id,
            })
            .collect()
    }

    /// Ends the session `id`; false when there is none. Ended in memory at
    /// once; an error means the file still lists it (a restart would bring
    /// it back).
    pub fn revoke(&self, id: &str) -> Result<bool> {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|s| s.id != id);
        if list.len() == before {
            return Ok(false);
        }
        self.save(&list)?;
        Ok(true)
    }

    /// Ends every session; how many there were.
    pub fn revoke_all(&self) -> Result<usize> {
        let mut list = self.lock();
        let count = list.len();
        list.clear();
        self.save(&list)?;
        Ok(count)
    }

    /// Drops the sessions that have expired by now: how many, and when the
    /// next live one expires (unix seconds).
    pub fn sweep(&self) -> (usize, Option<u64>) {
        self.sweep_at(now())
    }

    fn sweep_at(&self, now: u64) -> (usize, Option<u64>) {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|s| s.expires() > now);
        let dropped = before - list.len();
        if dropped > 0 {
            self.save_or_warn(&list);
        }
        (dropped, list.iter().map(Stored::expires).min())
    }

    fn save(&self, list: &[Stored]) -> Result<()> {
        let file = File { version: 1, sessions: list.to_vec() };
        let bytes = serde_json::to_vec_pretty(&file)?;
        write_atomic(&self.path, &bytes, 0o600)
    }

    fn save_or_warn(&self, list: &[Stored]) {
        if let Err(e) = self.save(list) {
            crate::warn!("browser sessions: cannot write {}: {e:#}", self.path.display());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn hash(token: &str) -> String {
    format!("sha256:{}", hex(&Sha256::digest(token.as_bytes())))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    crate::time::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX / 2), 0)
}

/// Ends sessions as they expire, so a WebSocket opened with one closes
/// then, not at its next use: sleeps until the next expiry (a minute at
/// most, since use pushes expiries back) and, when any ended, wakes every
/// WebSocket to check its credential again.
pub fn spawn_expiry(state: std::sync::Arc<super::State>) -> Result<()> {
    std::thread::Builder::new().name("browser-expiry".into()).spawn(move || {
        loop {
            if state.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let (dropped, next) = state.browser.sweep();
            if dropped > 0 {
                crate::info!("http: {dropped} browser session(s) expired");
                if let Some(http) = state.http.get() {
                    http.slots.revoke();
                }
            }
            let wait = next.map_or(60, |at| at.saturating_sub(now()).clamp(1, 60));
            std::thread::sleep(std::time::Duration::from_secs(wait));
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlet-bs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_token_signs_in_until_revoked_and_the_file_keeps_hashes() {
        let d = dir("basic");
        let path = d.join(FILE_NAME);
        let s = Sessions::load(path.clone());
        let a = s.create().unwrap();
        let b = s.create().unwrap();
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        assert_eq!(s.check(&a.token).map(|l| l.id), Some(a.id.clone()));
        assert_eq!(s.check(&a.token[..63]), None);
        assert_eq!(s.check(""), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&a.token) && text.contains(&hash(&a.token)), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Kept across a restart; revocations too.
        assert!(s.revoke(&a.id).unwrap());
        assert!(!s.revoke(&a.id).unwrap());
        let again = Sessions::load(path.clone());
        assert_eq!(again.check(&a.token), None);
        assert_eq!(again.check(&b.token).map(|l| l.id), Some(b.id.clone()));
        let listed = again.list(Some(&b.id));
        assert_eq!(listed.len(), 1);
        assert!(listed[0].current && listed[0].expires_at.ends_with('Z'));
        assert_eq!(again.revoke_all().unwrap(), 1);
        assert_eq!(again.check(&b.token), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sessions_expire_when_idle_or_old_and_use_is_recorded_sparingly() {
        let d = dir("expiry");
        let s = Sessions::load(d.join(FILE_NAME));
        let t0 = 1_000_000_000;
        let a = s.create_at(t0).unwrap();
        assert_eq!(s.check_at(&a.token, t0 + 30).unwrap().expires, t0 + IDLE_TTL, "not touched");
        let live = s.check_at(&a.token, t0 + TOUCH_EVERY).unwrap();
        assert_eq!(live.expires, t0 + TOUCH_EVERY + IDLE_TTL, "touched");
        // Used every few days: still ends 30 days after sign-in.
        let mut t = t0;
        while t + 6 * DAY < t0 + ABSOLUTE_TTL {
            t += 6 * DAY;
            assert!(s.check_at(&a.token, t).is_some(), "day {}", (t - t0) / DAY);
        }
        assert_eq!(s.check_at(&a.token, t0 + ABSOLUTE_TTL), None);
        // Idle for a week.
        let b = s.create_at(t0).unwrap();
        assert!(s.check_at(&b.token, t0 + IDLE_TTL - 1).is_some());
        assert_eq!(s.check_at(&b.token, t0 + 2 * IDLE_TTL), None);
        // The sweep drops what expired and says when the next one does.
        let c = s.create_at(t0).unwrap();
        let e = s.create_at(t0 + DAY).unwrap();
        assert_eq!(s.sweep_at(t0 + IDLE_TTL - 1), (0, Some(t0 + IDLE_TTL)));
        assert_eq!(s.sweep_at(t0 + IDLE_TTL), (1, Some(t0 + DAY + IDLE_TTL)));
        assert_eq!(s.check_at(&c.token, t0 + IDLE_TTL), None);
        assert!(s.check_at(&e.token, t0 + IDLE_TTL).is_some());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_count_is_capped_least_recently_used_first() {
        let d = dir("cap");
        let s = Sessions::load(d.join(FILE_NAME));
        let t0 = 2_000_000_000;
        let first = s.create_at(t0).unwrap();
        let second = s.create_at(t0).unwrap();
        for i in 0..MAX_SESSIONS - 2 {
            s.create_at(t0 + 1 + i as u64).unwrap();
        }
        // The first is used: the second is now the least recently used.
        assert!(s.check_at(&first.token, t0 + 2 * TOUCH_EVERY).is_some());
        assert_eq!(s.create_at(t0 + 3 * TOUCH_EVERY).unwrap().evicted, 1);
        assert_eq!(s.lock().len(), MAX_SESSIONS);
        assert!(s.check_at(&first.token, t0 + 3 * TOUCH_EVERY).is_some());
        assert_eq!(s.check_at(&second.token, t0 + 3 * TOUCH_EVERY), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_or_hostile_file_starts_empty_or_loses_only_bad_entries() {
        let d = dir("damaged");
        let path = d.join(FILE_NAME);
        std::fs::write(&path, "{not json").unwrap();
        let s = Sessions::load(path.clone());
        assert!(s.list(None).is_empty());
        let a = s.create().unwrap();
        assert!(s.check(&a.token).is_some(), "the file is written over");
        let now = now();
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let good = file["sessions"][0].clone();
        let mut bad_hash = good.clone();
        bad_hash["hash"] = "plain-token".into();
        bad_hash["id"] = "00000000000000aa".into();
        let mut future = good.clone();
        future["created"] = (now + 10).into();
        future["id"] = "00000000000000bb".into();
        let dup = good.clone();
        file["sessions"] = serde_json::json!([good, bad_hash, future, dup]);
        std::fs::write(&path, file.to_string()).unwrap();
        let s = Sessions::load(path);
        assert_eq!(s.list(None).len(), 1, "{:?}", s.list(None));
        assert!(s.check(&a.token).is_some());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
