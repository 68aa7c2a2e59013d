//! Where Ringlet keeps things (design.md §3): the config dir, the private
//! runtime dir that holds the socket and the lock, and the files inside them.
//!
//! Computing [`Paths`] only reads environment variables; nothing is created
//! until a caller asks for it ([`Paths::ensure_runtime_dir`],
//! [`Paths::ensure_config_subdir`]), so `--help` and `--version` touch no file.
//!
//! Deviation from the architecture document, on purpose: the socket does not
//! live at the shared `/tmp/ringlet.sock`, where any other user could create
//! the name first and receive our requests. It lives in a per-user 0700
//! directory whose owner we check.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil::create_private_dir;

/// Every path Ringlet uses, computed once from the environment.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The user's home directory (`$HOME`).
    pub home: PathBuf,
    /// `$RINGLET_CONFIG_DIR`, else `$XDG_CONFIG_HOME/ringlet`, else `~/.config/ringlet`.
    pub config_dir: PathBuf,
    /// `$XDG_RUNTIME_DIR/ringlet`, else `/tmp/ringlet-<uid>`.
    pub runtime_dir: PathBuf,
    /// `$RINGLET_DAEMON_ENDPOINT`, else `<runtime_dir>/ringlet.sock`.
    pub socket: PathBuf,
}

impl Paths {
    /// Reads the environment of the current process.
    pub fn from_env() -> Result<Paths> {
        Paths::from_vars(|name| std::env::var_os(name), rustix::process::getuid().as_raw())
    }

    /// The pure part of [`Paths::from_env`], testable without touching the
    /// process environment. Empty variables count as unset, as XDG says.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>, uid: u32) -> Result<Paths> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let home = PathBuf::from(var("HOME").context("HOME is not set")?);
        let absolute = |name: &str| -> Result<Option<PathBuf>> {
            match var(name) {
                None => Ok(None),
                Some(v) => {
                    let p = PathBuf::from(v);
                    if !p.is_absolute() {
                        bail!("{name} must be an absolute path, not {}", p.display());
                    }
                    Ok(Some(p))
                }
            }
        };
        let config_dir = match absolute("RINGLET_CONFIG_DIR")? {
            Some(dir) => dir,
            None => match absolute("XDG_CONFIG_HOME")? {
                Some(xdg) => xdg.join("ringlet"),
                None => home.join(".config").join("ringlet"),
            },
        };
        let runtime_dir = match absolute("XDG_RUNTIME_DIR")? {
            Some(xdg) => xdg.join("ringlet"),
            None => std::env::temp_dir().join(format!("ringlet-{uid}")),
        };
        let socket = match absolute("RINGLET_DAEMON_ENDPOINT")? {
            Some(p) => p,
            None => runtime_dir.join("ringlet.sock"),
        };
        Ok(Paths { home, config_dir, runtime_dir, socket })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    pub fn agents_d(&self) -> PathBuf {
        self.config_dir.join("agents.d")
    }

    pub fn providers_d(&self) -> PathBuf {
        self.config_dir.join("providers.d")
    }

    pub fn detection_cache(&self) -> PathBuf {
        self.config_dir.join("cache").join("agent-detections.json")
    }

    pub fn log_file(&self) -> PathBuf {
        self.config_dir.join("logs").join("daemon.log")
    }

    /// Held (flock) by the daemon for its whole life: one daemon per socket.
    pub fn daemon_lock(&self) -> PathBuf {
        sibling(&self.socket, ".lock")
    }

    /// The HTTP API's internal REST socket (tiny_http), which the front door
    /// bridges to: beside the IPC socket, in the same private directory.
    pub fn rest_socket(&self) -> PathBuf {
        sibling(&self.socket, ".http")
    }

    /// Held by a CLI while it starts a daemon, so that many CLIs starting at
    /// once spawn one daemon, not one each.
    pub fn spawn_lock(&self) -> PathBuf {
        sibling(&self.socket, ".spawn.lock")
    }

    /// Creates the runtime dir (0700) if needed and checks that it is a real
    /// directory owned by us that nobody else can enter. When the socket path
    /// was overridden, its parent is the user's business and is only created.
    pub fn ensure_runtime_dir(&self) -> Result<()> {
        if self.socket.parent() != Some(self.runtime_dir.as_path()) {
            if let Some(parent) = self.socket.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            return Ok(());
        }
        ensure_private_dir(&self.runtime_dir)
    }

    /// Creates `<config_dir>/<sub>` (and the config dir) if needed.
    pub fn ensure_config_subdir(&self, sub: &str) -> Result<PathBuf> {
        let dir = self.config_dir.join(sub);
        create_private_dir(&dir)?;
        Ok(dir)
    }
}

/// Expands a leading `~/` against `home`.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if path == "~" => home.to_path_buf(),
        None => PathBuf::from(path),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_else(|| "ringlet".into());
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes `dir` a 0700 directory owned by the current user, refusing symlinks
/// and directories owned by someone else (another user could otherwise
/// pre-create `/tmp/ringlet-<uid>` and watch or replace our socket).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    // Succeeds for an existing directory, or a symlink to one: the checks
    // below look at the entry itself.
    create_private_dir(dir)?;
    let meta = fs::symlink_metadata(dir)
        .with_context(|| format!("checking runtime dir {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("runtime dir {} is not a directory (a symlink or file is in the way)", dir.display());
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        bail!(
            "runtime dir {} is owned by uid {}, not by you (uid {uid}); remove it or set XDG_RUNTIME_DIR",
            dir.display(),
            meta.uid()
        );
    }
    // Ours, but maybe too open (an older tool or a umask accident): opened
    // without following a link, checked again on the fd, and tightened with
    // fchmod on that fd.
    crate::fsutil::open_private_dir(dir)
        .with_context(|| format!("making runtime dir {} private", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn paths(vars: &[(&str, &str)]) -> Result<Paths> {
        let map: HashMap<String, OsString> =
            vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Paths::from_vars(|name| map.get(name).cloned(), 1000)
    }

    #[test]
    fn defaults_follow_home() {
        let p = paths(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(p.config_dir, Path::new("/home/u/.config/ringlet"));
        assert_eq!(p.runtime_dir, std::env::temp_dir().join("ringlet-1000"));
        assert_eq!(p.socket, p.runtime_dir.join("ringlet.sock"));
        assert_eq!(p.daemon_lock(), p.runtime_dir.join("ringlet.sock.lock"));
    }

    #[test]
    fn xdg_and_overrides_win_in_order() {
        let p = paths(&[
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/xdg/config"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ])
        .unwrap();
        assert_eq!(p.config_dir, Path::new("/xdg/config/ringlet"));
        assert_eq!(p.socket, Path::new("/run/user/1000/ringlet/ringlet.sock"));

        let p = paths(&[
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/xdg/config"),
            ("RINGLET_CONFIG_DIR", "/cfg"),
            ("RINGLET_DAEMON_ENDPOINT", "/sock/d.sock"),
        ])
        .unwrap();
        assert_eq!(p.config_dir, Path::new("/cfg"));
        assert_eq!(p.socket, Path::new("/sock/d.sock"));
        assert_eq!(p.spawn_lock(), Path::new("/sock/d.sock.spawn.lock"));
    }

    #[test]
    fn empty_vars_count_as_unset_and_relative_ones_are_errors() {
        let p = paths(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "")]).unwrap();
        assert_eq!(p.config_dir, Path::new("/h/.config/ringlet"));
        let err = paths(&[("HOME", "/h"), ("RINGLET_CONFIG_DIR", "rel")]).unwrap_err();
        assert!(err.to_string().contains("RINGLET_CONFIG_DIR must be an absolute path"));
        assert!(paths(&[]).is_err());
    }

    #[test]
    fn tilde_expands_only_at_the_start() {
        let home = Path::new("/h");
        assert_eq!(expand_tilde("~/.claude", home), Path::new("/h/.claude"));
        assert_eq!(expand_tilde("/etc/x", home), Path::new("/etc/x"));
        assert_eq!(expand_tilde("a~/b", home), Path::new("a~/b"));
    }
}
