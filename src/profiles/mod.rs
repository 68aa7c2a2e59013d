//! Profiles: an agent, a provider and a model in an isolated home
//! (design.md §3, §6). This module owns the profile file format and the
//! store; its children own creation, rendering a profile into files and env,
//! run preparation, hooks and alias shims. The daemon is the only writer:
//! every change is a read-modify-write under the store's lock, written
//! atomically, so concurrent requests never lose an update and a daemon
//! killed mid-write leaves the old file or the new one.

pub mod aliases;
pub mod create;
pub mod hooks;
pub mod recover;
pub mod render;
pub mod run;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::fsutil::{Access, create_private_dir, open_private, read_private, write_atomic};
use crate::manifests::{AgentManifest, Catalog, ProviderManifest, Strategy};
use crate::paths::Paths;
use crate::secrets::{Secrets, StoreKind};

/// What profile operations work with; the daemon lends its own.
pub struct Services<'a> {
    pub paths: &'a Paths,
    pub config: &'a Config,
    pub catalog: &'a Catalog,
    pub store: &'a Store,
    pub secrets: &'a Secrets,
}

impl Services<'_> {
    /// The manifests a stored profile refers to.
    pub fn manifests(&self, profile: &Profile) -> Result<(&AgentManifest, &ProviderManifest)> {
        let agent = self.catalog.agent(&profile.agent).ok_or_else(|| {
            anyhow::anyhow!(
                "profile `{}` uses agent `{}`, which no manifest defines any more",
                profile.alias,
                profile.agent
            )
        })?;
        let provider = self.catalog.provider(&profile.provider).ok_or_else(|| {
            anyhow::anyhow!(
                "profile `{}` uses provider `{}`, which no manifest defines any more",
                profile.alias,
                profile.provider
            )
        })?;
        Ok((&agent.manifest, &provider.manifest))
    }

    /// The key the agent is given (what `${API_KEY}` becomes): the proxy's
    /// local token when the profile goes through its proxy (the agent never
    /// sees an upstream key), else the profile's own key.
    pub fn agent_key(&self, profile: &Profile) -> Result<Option<String>> {
        if crate::proxy::config::proxied_port(profile).is_some() {
            return crate::proxy::keys::local_token(self.secrets, &profile.alias).map(Some);
        }
        self.key(profile)
    }

    /// The stored key of a profile; an error when it should be there and is not.
    pub fn key(&self, profile: &Profile) -> Result<Option<String>> {
        let Some(kind) = profile.secret else { return Ok(None) };
        match self.secrets.get(kind, &profile.alias)? {
            Some(key) => Ok(Some(key)),
            None => bail!(
                "the API key of profile `{}` is missing from {}; delete the profile and create it again",
                profile.alias,
                self.secrets.describe(kind)
            ),
        }
    }
}

/// One profile, as stored in `profiles/<alias>.json`. Never holds the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub alias: String,
    pub agent: String,
    pub provider: String,
    /// The endpoint name (`default`, `china`, `custom`), when there is one.
    #[serde(default)]
    pub endpoint_name: Option<String>,
    /// The resolved URL; `None` for the agent's own login.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub model: String,
    pub home: PathBuf,
    pub strategy: Strategy,
    /// Script file name, resolved at every render (user -> registry -> built-in).
    pub script: String,
    /// Claude Code's hooks schema: event -> [ { matcher, hooks: [ {type, command} ] } ].
    #[serde(default)]
    pub hooks: Map<String, Value>,
    /// MCP server definitions by name, in Claude Code's schema.
    #[serde(default)]
    pub mcp_servers: Map<String, Value>,
    /// Routed through its proxy (`proxy enable`, `profiles create --proxy`).
    #[serde(default)]
    pub proxy: bool,
    /// The proxy's port, rules, aliases and budget (kept when disabled).
    #[serde(default)]
    pub routing: crate::proxy::Routing,
    /// Where the key is kept; `None` when the provider needs none.
    #[serde(default)]
    pub secret: Option<StoreKind>,
    /// The shim we installed for this profile, if any.
    #[serde(default)]
    pub alias_shim: Option<PathBuf>,
    /// What the agent may do before it asks (rendered into its settings).
    #[serde(default)]
    pub permission_mode: render::PermissionMode,
    pub created_at: String,
    #[serde(default)]
    pub last_used: Option<String>,
    #[serde(default)]
    pub runs: u64,
}

/// Checks a profile name: ASCII `[a-z0-9][a-z0-9_-]{0,63}`. It becomes a
/// file name, a directory name, a keychain entry and a shell command, so
/// nothing else is allowed.
pub fn check_alias(alias: &str) -> Result<()> {
    let rule = "[a-z0-9][a-z0-9_-]{0,63}: lowercase ASCII letters, digits, `-` and `_`, starting with a letter or digit, at most 64 characters";
    let Some(first) = alias.bytes().next() else {
        bail!("the profile name is empty; it must match {rule}");
    };
    if alias.len() > 64 {
        bail!("profile name is {} characters long; it must match {rule}", alias.len());
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        bail!("invalid profile name `{}`: it must match {rule}", alias.escape_debug());
    }
    if let Some(bad) = alias
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        bail!(
            "invalid profile name `{}`: `{}` is not allowed; it must match {rule}",
            alias.escape_debug(),
            bad.escape_debug()
        );
    }
    Ok(())
}

/// Checks a path meant to stay inside a profile home: relative, no `..`, no
/// `.`, no empty or NUL components. Returns it as a `PathBuf`.
pub fn relative_path(path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        bail!("empty path");
    }
    if path.contains('\0') {
        bail!("path contains a NUL byte");
    }
    if path.starts_with('/') {
        bail!("`{path}` is absolute; paths must be relative to the profile home");
    }
    // Split by hand: `Path::components` silently drops `.` and empty parts.
    for part in path.split('/') {
        match part {
            ".." => bail!("`{path}` contains `..`; paths must stay inside the profile home"),
            "" | "." => bail!("`{path}` is not a plain relative path"),
            _ => {}
        }
    }
    Ok(PathBuf::from(path))
}

/// The most a profile file may hold (they are a few KiB).
const PROFILE_CAP: u64 = 1 << 20;

/// The profile files under `<config>/profiles`, and the lock that
/// serializes every change to them.
pub struct Store {
    dir: PathBuf,
}

/// A profile file that could not be read; `profiles list` reports it and
/// goes on with the others.
#[derive(Debug)]
pub struct Broken {
    pub path: PathBuf,
    pub error: String,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// The directory holding the profile files (the usage watcher watches
    /// it for new profiles).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, alias: &str) -> PathBuf {
        self.dir.join(format!("{alias}.json"))
    }

    /// Takes the store's write lock (flock on `profiles/.lock`, blocking);
    /// it is held until the guard drops. flock is per open file, so two
    /// daemon threads exclude each other as two processes would.
    pub fn lock(&self) -> Result<Locked> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join(".lock");
        let file = open_private(&path, Access::ReadWrite, 0o600)?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(Locked { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => bail!("locking {}: {e}", path.display()),
            }
        }
    }

    /// Loads one profile. `Ok(None)` when it does not exist.
    pub fn load(&self, alias: &str) -> Result<Option<Profile>> {
        check_alias(alias)?;
        let path = self.path(alias);
        let Some(bytes) = read_private(&path, PROFILE_CAP)? else { return Ok(None) };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
        let profile: Profile = serde_json::from_slice(text.as_bytes())
            .with_context(|| format!("{} is corrupt", path.display()))?;
        if profile.alias != alias {
            bail!("{} names another profile (`{}`)", path.display(), profile.alias);
        }
        Ok(Some(profile))
    }

    /// Loads a profile that must exist. The error names the closest
    /// profile there is, if one is close ("did you mean `work`?").
    pub fn get(&self, alias: &str) -> Result<Profile> {
        match self.load(alias)? {
            Some(p) => Ok(p),
            None => {
                let names = self.names();
                let hint = match crate::suggest::closest(alias, names.iter().map(String::as_str)) {
                    Some(name) => format!("; did you mean `{name}`?"),
                    None => " (see `ringlet profiles list`)".to_string(),
                };
                Err(NotFound(format!("no profile `{alias}`{hint}")).into())
            }
        }
    }

    /// The names of the profiles on disk, from their file names only (no
    /// file is read): cheap enough for an error message.
    fn names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
            .filter(|name| check_alias(name).is_ok())
            .collect()
    }

    /// Every readable profile, by name, and the files that were not.
    pub fn list(&self) -> Result<(Vec<Profile>, Vec<Broken>)> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((vec![], vec![])),
            Err(e) => bail!("reading {}: {e}", self.dir.display()),
        };
        let mut profiles = Vec::new();
        let mut broken = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(alias) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if alias.starts_with('.') {
                continue;
            }
            match self.load(alias) {
                Ok(Some(p)) => profiles.push(p),
                Ok(None) => {}
                Err(e) => broken.push(Broken { path: entry.path(), error: format!("{e:#}") }),
            }
        }
        profiles.sort_by(|a, b| a.alias.cmp(&b.alias));
        broken.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((profiles, broken))
    }

    /// Writes a profile atomically (0600). Call with the lock held.
    pub fn save(&self, _lock: &Locked, profile: &Profile) -> Result<()> {
        let mut text = serde_json::to_string_pretty(profile)?;
        text.push('\n');
        // A file `load` would refuse loses the profile to every later
        // command (even the one that would shrink it): refuse the change.
        if text.len() as u64 > PROFILE_CAP {
            bail!(
                "profile `{}` would be {} bytes, over the {PROFILE_CAP}-byte limit of a profile \
                 file (too many or too long rules, aliases or hooks?); nothing was changed",
                profile.alias,
                text.len()
            );
        }
        write_atomic(&self.path(&profile.alias), text.as_bytes(), 0o600)
    }

    /// Removes a profile file. Call with the lock held.
    pub fn remove(&self, _lock: &Locked, alias: &str) -> Result<()> {
        let path = self.path(alias);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => bail!("removing {}: {e}", path.display()),
        }
    }

    /// Loads, changes and saves one profile under the lock.
    pub fn update<T>(
        &self,
        alias: &str,
        change: impl FnOnce(&mut Profile) -> Result<T>,
    ) -> Result<(Profile, T)> {
        let lock = self.lock()?;
        let mut profile = self.get(alias)?;
        let out = change(&mut profile)?;
        self.save(&lock, &profile)?;
        Ok((profile, out))
    }
}

/// The store's lock; closing the file releases it.
pub struct Locked {
    _file: File,
}

/// A "does not exist" error, mapped to `not_found` by the dispatcher.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// A conflict with existing state (profile exists, foreign shim), mapped to
/// `conflict`.
#[derive(Debug)]
pub struct Conflict(pub String);

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Conflict {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rule() {
        for ok in ["a", "0", "work", "my-proj_2", &"a".repeat(64)] {
            check_alias(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "Work",
            "a b",
            "a/b",
            "..",
            ".a",
            "a.b",
            "é",
            "a\0",
            &"a".repeat(65),
            "a;rm",
            "ａ",
        ] {
            assert!(check_alias(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn relative_paths() {
        for ok in ["a", ".claude/settings.json", "x/y/z.toml"] {
            relative_path(ok).unwrap();
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "./a", "a\0b"] {
            assert!(relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
