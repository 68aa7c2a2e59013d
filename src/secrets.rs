//! Where profile secrets (API keys, tokens) live: the OS keychain when one is
//! reachable, otherwise one 0600 file per secret in a 0700 directory.
//!
//! The keychain is reached through `keyring-core` and the native store of each
//! OS (Secret Service over D-Bus on Linux, synchronous, no async runtime). The
//! daemon owns one [`Secrets`] for its whole life and the keychain connection
//! is opened on first use and kept, because opening it (connect + DH session)
//! costs several times a read. The decision to fall back to files is taken on
//! the write, never on a read: a Secret Service that was never unlocked
//! answers "no such item" to every lookup yet refuses every write.
//! The caller records the [`StoreKind`] a secret went to and passes it back
//! to [`Secrets::get`] and [`Secrets::delete`].
//! No secret is ever formatted into an error or a log line.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, anyhow, bail};
use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use serde::{Deserialize, Serialize};

use crate::fsutil::{open_dir, open_private_dir, read_private, write_atomic_at};

/// The keychain service every Ringlet item is filed under; the user is the
/// profile alias.
const SERVICE: &str = "ringlet";

/// The environment variable that pins the store (see [`Secrets::forced_from_env`]).
const ENV_VAR: &str = "RINGLET_SECRET_STORE";

/// Longest accepted alias (a name's part after its namespace prefix):
/// keychain attributes and file names both stay short.
const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Keyring,
    File,
}

/// Where [`Secrets::set`] put a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub kind: StoreKind,
    /// Set when the keychain was tried and was unreachable or refused the
    /// write, so the secret went to a file instead: one line, for the user.
    pub fallback_reason: Option<String>,
}

pub struct Secrets {
    file_dir: PathBuf,
    forced: Option<StoreKind>,
    /// The open keychain store. Held only while opening or swapping it, so
    /// concurrent requests open it once and never wait on each other's D-Bus
    /// round trips. A failed open is not remembered: the next call tries
    /// again, as the session bus may come up after the daemon.
    keychain: Mutex<Option<Arc<CredentialStore>>>,
    /// How many times opening the keychain was attempted (tests assert that
    /// forced-file mode never gets here).
    keychain_opens: AtomicUsize,
}

impl Secrets {
    /// No D-Bus connection is made here; the keychain store is opened lazily on
    /// first use, once, and kept (a failed open is retried on the next call).
    pub fn new(file_dir: PathBuf, forced: Option<StoreKind>) -> Secrets {
        Secrets {
            file_dir,
            forced,
            keychain: Mutex::new(None),
            keychain_opens: AtomicUsize::new(0),
        }
    }

    /// Reads RINGLET_SECRET_STORE: unset or empty means automatic (keychain,
    /// else files), `keyring` or `file` pins the store.
    pub fn forced_from_env() -> Result<Option<StoreKind>> {
        match std::env::var(ENV_VAR) {
            Ok(value) => parse_forced(&value),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("{ENV_VAR} is not valid UTF-8 (expected `keyring`, `file`, or unset)")
            }
        }
    }

    /// Stores `secret` under `name`, a profile alias.
    ///
    /// Automatic mode tries the keychain and falls back to a file when it is
    /// unreachable or refuses the write, saying why in `fallback_reason`.
    /// A pinned keychain reports its errors; a pinned file store never touches
    /// D-Bus.
    pub fn set(&self, name: &str, secret: &str) -> Result<Stored> {
        check_name(name)?;
        match self.forced {
            Some(StoreKind::File) => {
                self.file_set(name, secret)?;
                Ok(Stored { kind: StoreKind::File, fallback_reason: None })
            }
            Some(StoreKind::Keyring) => {
                self.keyring_set(name, secret).map_err(|e| keyring_error("storing", name, &e))?;
                self.remove_stale_file(name);
                Ok(Stored { kind: StoreKind::Keyring, fallback_reason: None })
            }
            None => match self.keyring_set(name, secret) {
                Ok(()) => {
                    self.remove_stale_file(name);
                    Ok(Stored { kind: StoreKind::Keyring, fallback_reason: None })
                }
                Err(err) => {
                    let Some(reason) = fallback_reason(&err) else {
                        return Err(keyring_error("storing", name, &err));
                    };
                    crate::warn!(
                        "secret for `{name}` goes to a file in {}: {reason}",
                        self.file_dir.display()
                    );
                    self.file_set(name, secret)?;
                    Ok(Stored { kind: StoreKind::File, fallback_reason: Some(reason) })
                }
            },
        }
    }

    /// The secret stored under `name` in `kind`; `Ok(None)` when absent.
    /// `kind` is where [`Secrets::set`] said the secret went, so it is honoured
    /// whatever the pinned mode: a pin only decides where new secrets go.
    pub fn get(&self, kind: StoreKind, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        match kind {
            StoreKind::File => self.file_get(name),
            StoreKind::Keyring => match self.with_entry(name, |e| e.get_password()) {
                Ok(secret) => Ok(Some(secret)),
                Err(KeyringError::NoEntry) => Ok(None),
                Err(err) => Err(keyring_error("reading", name, &err)),
            },
        }
    }

    /// Removes the secret stored under `name` in `kind`; absent is not an error.
    pub fn delete(&self, kind: StoreKind, name: &str) -> Result<()> {
        check_name(name)?;
        match kind {
            StoreKind::File => self.file_delete(name),
            StoreKind::Keyring => match self.with_entry(name, |e| e.delete_credential()) {
                Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
                Err(err) => Err(keyring_error("deleting", name, &err)),
            },
        }
    }

    /// Removes `name` from every store it may be in: the file store, and the
    /// keychain unless the file store is pinned (which never touches D-Bus).
    pub fn delete_everywhere(&self, name: &str) -> Result<()> {
        self.delete(StoreKind::File, name)?;
        if self.forced != Some(StoreKind::File) {
            self.delete(StoreKind::Keyring, name)?;
        }
        Ok(())
    }

    /// Removes a keychain copy of `name`, if the keychain may hold one: not
    /// with the file store pinned (never touches D-Bus), and in automatic
    /// mode an unreachable keychain holds nothing we could have put there
    /// since it went away, so its error is not one.
    pub fn delete_keychain_copy(&self, name: &str) -> Result<()> {
        match self.forced {
            Some(StoreKind::File) => Ok(()),
            Some(StoreKind::Keyring) => self.delete(StoreKind::Keyring, name),
            None => {
                if let Err(e) = self.delete(StoreKind::Keyring, name) {
                    crate::debug!("no keychain copy of `{name}` removed: {e:#}");
                }
                Ok(())
            }
        }
    }

    /// Removes `name` from the file store and, where one may be, the
    /// keychain ([`Secrets::delete_keychain_copy`]); absent is fine.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.delete(StoreKind::File, name)?;
        self.delete_keychain_copy(name)
    }

    /// Whether the file store holds a secret for `name` (a cheap `lstat`).
    pub fn file_exists(&self, name: &str) -> bool {
        check_name(name).is_ok()
            && fs::symlink_metadata(self.file_path(name)).is_ok_and(|m| m.is_file())
    }

    /// The names the file store holds secrets for.
    pub fn file_names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.file_dir) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect()
    }

    /// Where the secret `name` is, for secrets whose store is not recorded
    /// anywhere (provider keys, local tokens): the file store first (a cheap
    /// `lstat`; a fallback file is the newer copy), then the keychain unless
    /// the file store is pinned. An unreachable keychain counts as "not
    /// there" in automatic mode (a write would fall back to a file anyway);
    /// a pinned keychain reports its error.
    pub fn find(&self, name: &str) -> Result<Option<(StoreKind, String)>> {
        check_name(name)?;
        if self.file_exists(name)
            && let Some(secret) = self.file_get(name)?
        {
            return Ok(Some((StoreKind::File, secret)));
        }
        if self.forced == Some(StoreKind::File) {
            return Ok(None);
        }
        match self.get(StoreKind::Keyring, name) {
            Ok(found) => Ok(found.map(|s| (StoreKind::Keyring, s))),
            Err(_) if self.forced.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where a secret stored now would go, and why (for `doctor`): the pin
    /// of RINGLET_SECRET_STORE, or in automatic mode whether the keychain
    /// opens (the store is kept open for later use, as a write would).
    pub fn store_in_use(&self) -> (StoreKind, String) {
        match self.forced {
            Some(kind) => (kind, format!("{ENV_VAR} pins {}", self.describe(kind))),
            None => match self.keychain_store() {
                Ok(_) => (
                    StoreKind::Keyring,
                    format!("{} is reachable", self.describe(StoreKind::Keyring)),
                ),
                Err(e) => (
                    StoreKind::File,
                    format!(
                        "{}: {}",
                        self.describe(StoreKind::File),
                        fallback_reason(&e).unwrap_or_else(|| one_line(&e))
                    ),
                ),
            },
        }
    }

    /// Where `kind` keeps secrets, for people.
    pub fn describe(&self, kind: StoreKind) -> String {
        match kind {
            StoreKind::Keyring => format!("the OS keychain ({KEYCHAIN_NAME})"),
            StoreKind::File => format!("{} (files, mode 0600)", self.file_dir.display()),
        }
    }

    fn keyring_set(&self, name: &str, secret: &str) -> Result<(), KeyringError> {
        self.with_entry(name, |e| e.set_password(secret))
    }

    /// Runs `op` on the keychain item for `name`, opening the store first if
    /// needed. A platform failure drops the kept store so that the next call
    /// reconnects (the bus or the provider may have restarted).
    fn with_entry<T>(
        &self,
        name: &str,
        op: impl FnOnce(&Entry) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let store = self.keychain_store()?;
        let result = Entry::new_in_store(&store, SERVICE, name).and_then(|e| op(&e));
        if let Err(KeyringError::PlatformFailure(_)) = result {
            let mut kept = lock(&self.keychain);
            if kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, &store)) {
                *kept = None;
            }
        }
        result
    }

    fn keychain_store(&self) -> Result<Arc<CredentialStore>, KeyringError> {
        let mut kept = lock(&self.keychain);
        if let Some(store) = kept.as_ref() {
            return Ok(store.clone());
        }
        self.keychain_opens.fetch_add(1, Ordering::Relaxed);
        let store = open_keychain()?;
        *kept = Some(store.clone());
        Ok(store)
    }

    fn file_path(&self, name: &str) -> PathBuf {
        self.file_dir.join(name)
    }

    fn file_set(&self, name: &str, secret: &str) -> Result<()> {
        // The directory is opened without following a link and checked
        // (ours, 0700) on its fd; the file is written relative to that fd.
        let dir = open_private_dir(&self.file_dir)?;
        write_atomic_at(dir.as_fd(), &self.file_dir, name.as_ref(), secret.as_bytes(), 0o600)
            .with_context(|| format!("storing the secret for `{name}` in a file"))
    }

    fn file_get(&self, name: &str) -> Result<Option<String>> {
        let path = self.file_path(name);
        // Never through a link, regular files of ours only, and small.
        let Some(bytes) = read_private(&path, 64 * 1024)? else { return Ok(None) };
        // Someone widened the mode by hand: still usable, but say so.
        if let Ok(meta) = fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            crate::warn!(
                "{} is readable by other users (mode {:o}); it should be 0600",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        // The error names the file, never its bytes.
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| anyhow!("{} does not hold valid UTF-8", path.display()))
    }

    fn file_delete(&self, name: &str) -> Result<()> {
        let path = self.file_path(name);
        // Relative to the directory opened without following a link: a
        // `secrets` link must not make us delete a file elsewhere.
        let dir = match open_dir(&self.file_dir) {
            Ok(dir) => dir,
            Err(_) if !self.file_dir.exists() => return Ok(()),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
        }
    }

    /// After a keychain write, an older plain-text copy left by an earlier
    /// fallback is stale and only a liability: remove it.
    fn remove_stale_file(&self, name: &str) {
        if let Err(err) = self.file_delete(name) {
            crate::warn!("could not remove the old secret file for `{name}`: {err:#}");
        }
    }
}

/// What the keychain is called on this OS, for [`Secrets::describe`].
#[cfg(target_os = "linux")]
const KEYCHAIN_NAME: &str = "Secret Service";
#[cfg(target_os = "macos")]
const KEYCHAIN_NAME: &str = "macOS Keychain";
#[cfg(windows)]
const KEYCHAIN_NAME: &str = "Windows Credential Manager";
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
const KEYCHAIN_NAME: &str = "not supported on this platform";

// Cargo features only add: with the default `vendored-dbus` still on, a
// `system-dbus` build would link the vendored libdbus without a word.
#[cfg(all(feature = "system-dbus", feature = "vendored-dbus"))]
compile_error!(
    "`system-dbus` links the system's libdbus-1: build with `--no-default-features --features sqlite,net,system-dbus`"
);

/// Connects to the platform's keychain. On Linux this opens the session bus
/// and an encrypted Secret Service session, and fails here when there is none.
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
fn open_keychain() -> Result<Arc<CredentialStore>, KeyringError> {
    #[cfg(target_os = "linux")]
    let store: Arc<CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
    #[cfg(target_os = "macos")]
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    #[cfg(windows)]
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

/// Elsewhere there is no keychain crate: behave like an unreachable keychain,
/// so automatic mode uses files and a pinned keychain is an error.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn open_keychain() -> Result<Arc<CredentialStore>, KeyringError> {
    Err(KeyringError::PlatformFailure("no OS keychain support on this platform".into()))
}

/// The one-line reason to fall back to files for a keychain error, or `None`
/// when the error is not about reaching the keychain (a bad item, say) and
/// must be reported as it is.
fn fallback_reason(err: &KeyringError) -> Option<String> {
    match err {
        KeyringError::PlatformFailure(inner) => {
            Some(format!("no keychain reachable ({})", one_line(inner)))
        }
        KeyringError::NoStorageAccess(inner) => {
            Some(format!("the keychain refused the write ({})", one_line(inner)))
        }
        _ => None,
    }
}

fn keyring_error(verb: &str, name: &str, err: &KeyringError) -> anyhow::Error {
    anyhow!("{verb} the secret for `{name}` in the OS keychain: {}", one_line(err))
}

/// The Display of `err` on one line: D-Bus messages can span several.
fn one_line(err: &dyn std::fmt::Display) -> String {
    err.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The namespace prefix of provider keys (`provider.<id>`, `providers key set`).
pub const PROVIDER_PREFIX: &str = "provider.";
/// The namespace prefix of proxies' local tokens (`proxy.<alias>`).
pub const PROXY_PREFIX: &str = "proxy.";

/// The secret name of a provider's key: `provider.<id>`. A `.` never
/// appears in an alias, so it never collides with a profile's own key
/// (stored under the bare alias), even for a profile named like the provider.
pub fn provider_name(id: &str) -> String {
    format!("{PROVIDER_PREFIX}{id}")
}

/// The secret name of a profile's proxy local token: `proxy.<alias>`.
pub fn proxy_name(alias: &str) -> String {
    format!("{PROXY_PREFIX}{alias}")
}

/// What a secret name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A profile's own key (the bare alias).
    Profile(&'a str),
    /// A provider key (`provider.<id>`).
    Provider(&'a str),
    /// A proxy's local token (`proxy.<alias>`).
    Proxy(&'a str),
}

/// Splits a valid name into its namespace and the plain part.
pub fn owner(name: &str) -> Owner<'_> {
    if let Some(id) = name.strip_prefix(PROVIDER_PREFIX) {
        Owner::Provider(id)
    } else if let Some(alias) = name.strip_prefix(PROXY_PREFIX) {
        Owner::Proxy(alias)
    } else {
        Owner::Profile(name)
    }
}

/// Names become keychain attributes and file names, so only a plain alias
/// (`[a-z0-9][a-z0-9_-]{0,63}`: no `/`, no dots, not empty) is accepted,
/// alone (a profile's key) or after one of the two namespace prefixes
/// (`provider.<id>`, `proxy.<alias>`). The `.` of a prefix is the only dot
/// a name may hold, so the three namespaces never collide.
fn check_name(name: &str) -> Result<()> {
    let plain = match owner(name) {
        Owner::Profile(p) | Owner::Provider(p) | Owner::Proxy(p) => p,
    };
    let mut bytes = plain.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !first_ok || !rest_ok || plain.len() > MAX_NAME_LEN {
        bail!(
            "invalid secret name {name:?}: expected a profile alias of 1 to {MAX_NAME_LEN} \
             characters from a-z, 0-9, `_` and `-`, starting with a letter or digit, alone \
             or after `{PROVIDER_PREFIX}` or `{PROXY_PREFIX}`"
        );
    }
    Ok(())
}

/// Parses the value of RINGLET_SECRET_STORE (empty means automatic).
fn parse_forced(value: &str) -> Result<Option<StoreKind>> {
    match value {
        "" => Ok(None),
        "keyring" => Ok(Some(StoreKind::Keyring)),
        "file" => Ok(Some(StoreKind::File)),
        other => bail!("{ENV_VAR}={other:?} is not valid (expected `keyring`, `file`, or unset)"),
    }
}

/// A poisoned lock only means another request panicked; the data (a store
/// handle, or nothing) is still sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// A name and a temp dir no other test (or test process) uses.
    fn unique(tag: &str) -> (String, PathBuf) {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}-{n}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ringlet-secrets-{name}"));
        (name, dir)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Secrets>();
    }

    #[test]
    fn file_store_round_trip_with_private_modes() {
        let (name, dir) = unique("file");
        let secrets = Secrets::new(dir.join("secrets"), Some(StoreKind::File));
        assert_eq!(secrets.get(StoreKind::File, &name).unwrap(), None);

        let stored = secrets.set(&name, "first value\n with a newline").unwrap();
        assert_eq!(stored, Stored { kind: StoreKind::File, fallback_reason: None });
        let path = dir.join("secrets").join(&name);
        assert_eq!(fs::read(&path).unwrap(), b"first value\n with a newline");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("secrets")), 0o700);

        secrets.set(&name, "second").unwrap();
        assert_eq!(secrets.get(StoreKind::File, &name).unwrap().as_deref(), Some("second"));
        assert_eq!(mode(&path), 0o600);
        let entries: Vec<_> = fs::read_dir(dir.join("secrets")).unwrap().collect();
        assert_eq!(entries.len(), 1, "one file per secret, no temp files left");

        secrets.delete(StoreKind::File, &name).unwrap();
        assert_eq!(secrets.get(StoreKind::File, &name).unwrap(), None);
        assert!(!path.exists());
        secrets.delete(StoreKind::File, &name).unwrap(); // absent is fine
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_store_narrows_a_widened_dir() {
        let (name, dir) = unique("widened");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let secrets = Secrets::new(dir.clone(), Some(StoreKind::File));
        secrets.set(&name, "x").unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_are_plain_aliases() {
        let long_provider = format!("provider.{}", "a".repeat(64));
        for good in [
            "a",
            "0",
            "work",
            "work-2",
            "a_b",
            &"a".repeat(64),
            "provider.openai",
            "proxy.work",
            &long_provider,
        ] {
            check_name(good).unwrap_or_else(|e| panic!("{good:?} rejected: {e}"));
        }
        let long = "a".repeat(65);
        let too_long = format!("proxy.{long}");
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/a",
            "../a",
            "-a",
            "_a",
            "A",
            "aB",
            "a b",
            "a.b",
            "é",
            &long,
            "provider.",
            "proxy.",
            "proxy.a.b",
            "provider.A",
            "provider./x",
            "providers.x",
            "proxy..",
            &too_long,
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        // Every entry point checks, before touching any store.
        let (_, dir) = unique("names");
        let secrets = Secrets::new(dir.clone(), None);
        assert!(secrets.set("../escape", "x").is_err());
        assert!(secrets.get(StoreKind::File, "a/b").is_err());
        assert!(secrets.delete(StoreKind::Keyring, "..").is_err());
        assert_eq!(secrets.keychain_opens.load(Ordering::Relaxed), 0);
        assert!(!dir.exists());
    }

    #[test]
    fn namespaces_never_collide() {
        assert_eq!(owner("openai"), Owner::Profile("openai"));
        assert_eq!(owner(&provider_name("openai")), Owner::Provider("openai"));
        assert_eq!(owner(&proxy_name("openai")), Owner::Proxy("openai"));
        let (_, dir) = unique("namespaces");
        let secrets = Secrets::new(dir.clone(), Some(StoreKind::File));
        secrets.set("openai", "profile-key").unwrap();
        secrets.set(&provider_name("openai"), "provider-key").unwrap();
        secrets.set(&proxy_name("openai"), "token").unwrap();
        let found = |n: &str| secrets.find(n).unwrap().map(|(_, s)| s);
        assert_eq!(found("openai").as_deref(), Some("profile-key"));
        assert_eq!(found("provider.openai").as_deref(), Some("provider-key"));
        assert_eq!(found("proxy.openai").as_deref(), Some("token"));
        let mut names = secrets.file_names();
        names.sort();
        assert_eq!(names, ["openai", "provider.openai", "proxy.openai"]);
        secrets.delete(StoreKind::File, "openai").unwrap();
        assert_eq!(found("provider.openai").as_deref(), Some("provider-key"));
        assert_eq!(found("openai"), None);
        assert_eq!(secrets.keychain_opens.load(Ordering::Relaxed), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forced_file_never_opens_the_keychain() {
        let (name, dir) = unique("forced");
        let secrets = Secrets::new(dir.clone(), Some(StoreKind::File));
        let stored = secrets.set(&name, "v").unwrap();
        assert_eq!(stored.kind, StoreKind::File);
        assert_eq!(stored.fallback_reason, None);
        secrets.get(StoreKind::File, &name).unwrap();
        secrets.delete(StoreKind::File, &name).unwrap();
        assert_eq!(secrets.keychain_opens.load(Ordering::Relaxed), 0);
        assert!(lock(&secrets.keychain).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_values_parse() {
        assert_eq!(parse_forced("").unwrap(), None);
        assert_eq!(parse_forced("keyring").unwrap(), Some(StoreKind::Keyring));
        assert_eq!(parse_forced("file").unwrap(), Some(StoreKind::File));
        for bad in ["auto", "File", "keychain", " file"] {
            let msg = parse_forced(bad).unwrap_err().to_string();
            assert!(msg.contains("RINGLET_SECRET_STORE"), "{msg}");
            assert!(msg.contains("keyring") && msg.contains("file"), "{msg}");
        }
    }

    #[test]
    fn store_kind_serializes_snake_case() {
        assert_eq!(serde_json::to_string(&StoreKind::Keyring).unwrap(), "\"keyring\"");
        assert_eq!(serde_json::from_str::<StoreKind>("\"file\"").unwrap(), StoreKind::File);
    }

    #[test]
    fn only_unreachable_keychains_fall_back() {
        let failure = KeyringError::PlatformFailure("D-Bus error:\n  no bus".into());
        assert_eq!(
            fallback_reason(&failure).unwrap(),
            "no keychain reachable (D-Bus error: no bus)"
        );
        let refused = KeyringError::NoStorageAccess("locked".into());
        assert!(fallback_reason(&refused).unwrap().contains("refused"));
        assert_eq!(fallback_reason(&KeyringError::NoEntry), None);
        assert_eq!(fallback_reason(&KeyringError::Invalid("user".into(), "bad".into())), None);
        let msg = keyring_error("storing", "work", &failure).to_string();
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn describe_names_the_place() {
        let secrets = Secrets::new(PathBuf::from("/x/secrets"), None);
        assert_eq!(secrets.describe(StoreKind::File), "/x/secrets (files, mode 0600)");
        assert!(secrets.describe(StoreKind::Keyring).starts_with("the OS keychain ("));
    }

    /// With no session bus at all, automatic mode must land in a file and say
    /// why. Skipped when a bus could be found (the keychain test covers that).
    #[test]
    fn auto_falls_back_to_files_without_a_bus() {
        let runtime_bus =
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
        if !cfg!(target_os = "linux")
            || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || runtime_bus
        {
            eprintln!("skipped: a session bus may be reachable");
            return;
        }
        let (name, dir) = unique("nobus");
        let secrets = Secrets::new(dir.clone(), None);
        let stored = secrets.set(&name, "fallback-value").unwrap();
        assert_eq!(stored.kind, StoreKind::File);
        let reason = stored.fallback_reason.expect("a reason");
        assert!(reason.starts_with("no keychain reachable ("), "{reason}");
        assert!(!reason.contains('\n') && !reason.contains("fallback-value"), "{reason}");
        assert_eq!(secrets.get(StoreKind::File, &name).unwrap().as_deref(), Some("fallback-value"));
        // Asking the keychain itself is an error, not "absent".
        assert!(secrets.get(StoreKind::Keyring, &name).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// `secret-tool lookup` for our item: what the Secret Service really holds.
    fn secret_tool_lookup(name: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", SERVICE, "username", name])
            .output()
            .expect("running secret-tool (package libsecret-tools)");
        // Exit status 1 with no output means "no such item".
        out.status.success().then(|| String::from_utf8(out.stdout).unwrap())
    }

    /// Runs only with a session bus (tests/with-keyring.sh provides one);
    /// REQUIRE_KEYCHAIN=1 turns "no usable keychain" into a failure.
    #[test]
    fn keychain_round_trip() {
        let required = std::env::var_os("REQUIRE_KEYCHAIN").is_some_and(|v| v == "1");
        let skip = |why: &str| {
            if required {
                panic!("REQUIRE_KEYCHAIN=1 but {why}");
            }
            eprintln!("skipped: {why}");
        };
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return skip("DBUS_SESSION_BUS_ADDRESS is not set");
        }
        let (name, dir) = unique("keychain");
        let secrets = Secrets::new(dir.clone(), Some(StoreKind::Keyring));
        let secret = format!("kc-secret-{name}");
        if let Err(err) = secrets.set(&name, &secret) {
            return skip(&format!("the keychain is not usable: {err:#}"));
        }
        assert_eq!(secrets.get(StoreKind::Keyring, &name).unwrap(), Some(secret.clone()));
        assert_eq!(secret_tool_lookup(&name), Some(secret.clone()));
        assert!(!dir.exists(), "a keychain write must not create the file store");

        secrets.delete(StoreKind::Keyring, &name).unwrap();
        assert_eq!(secrets.get(StoreKind::Keyring, &name).unwrap(), None);
        assert_eq!(secret_tool_lookup(&name), None);
        secrets.delete(StoreKind::Keyring, &name).unwrap(); // absent is fine
        assert_eq!(secrets.keychain_opens.load(Ordering::Relaxed), 1, "opened once, kept");

        // Automatic mode picks the keychain and drops an old fallback file.
        let auto = Secrets::new(dir.clone(), None);
        Secrets::new(dir.clone(), Some(StoreKind::File)).set(&name, "old").unwrap();
        let stored = auto.set(&name, &secret).unwrap();
        assert_eq!(stored, Stored { kind: StoreKind::Keyring, fallback_reason: None });
        assert_eq!(auto.get(StoreKind::File, &name).unwrap(), None);
        assert_eq!(secret_tool_lookup(&name), Some(secret));
        auto.delete(StoreKind::Keyring, &name).unwrap();
        assert_eq!(secret_tool_lookup(&name), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
