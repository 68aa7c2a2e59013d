//! Alias shims: `~/.local/bin/<alias>`, a small shell script that runs
//! `ringlet profiles run <alias> -- "$@"`. A shim carries a marker line; a
//! file without it is the user's and is never overwritten or deleted. A shim
//! never shadows an existing command: a profile called `git` or `claude`
//! would otherwise hijack that command (and, for an agent's own name, make
//! `profiles run` call itself).
//!
//! A shim finds `ringlet` on `PATH` first, then at the absolute path the
//! binary had when the shim was written, and otherwise says so (exit 127):
//! moving or reinstalling the binary (`make install`, a distro package)
//! breaks no shim as long as the new one is on `PATH`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Conflict, check_alias};
use crate::fsutil::{create_private_dir, write_atomic_at};
use std::os::fd::AsFd;

/// The line that marks a file as our shim.
pub const MARKER: &str =
    "# ringlet-shim: written by ringlet; `ringlet aliases uninstall` removes it";

/// Where shims go: `~/.local/bin`.
pub fn shim_dir(home: &Path) -> PathBuf {
    home.join(".local").join("bin")
}

/// Whether `path` is one of our shims.
pub fn is_shim(path: &Path) -> bool {
    // A shim is tiny; never read a large binary whole to find out.
    match fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() < 4096 => {
            fs::read_to_string(path).is_ok_and(|text| text.lines().nth(1) == Some(MARKER))
        }
        _ => false,
    }
}

/// The shim's text. Line 2 is the marker and the last line the `exec ...
/// profiles run <alias> -- "$@"` (`doctor` reads both).
fn shim_text(ringlet: &Path, alias: &str) -> String {
    // The alias is [a-z0-9_-] only (check_alias), so it needs no quoting;
    // the binary path is single-quoted for the shell.
    let exe = ringlet.display().to_string().replace('\'', r"'\''");
    let shown = shell_dq_text(&ringlet.display().to_string());
    format!(
        "#!/bin/sh\n{MARKER}\n\
         # Finds ringlet on PATH first, else where it was when this was written.\n\
         r=$(command -v ringlet 2>/dev/null) || r='{exe}'\n\
         if [ ! -x \"$r\" ]; then\n\
         \x20 echo \"{alias}: ringlet is not on PATH and no longer at {shown}; \
         put it on PATH or reinstall it\" >&2\n\
         \x20 exit 127\n\
         fi\n\
         exec \"$r\" profiles run {alias} -- \"$@\"\n"
    )
}

/// `text` made safe inside a double-quoted shell string (for a message).
fn shell_dq_text(text: &str) -> String {
    text.chars()
        .map(|c| if matches!(c, '"' | '\\' | '$' | '`') || c.is_control() { '?' } else { c })
        .collect()
}

/// What installing the shim for `alias` would refuse, without writing
/// anything (dry runs, the check before the key prompt). Returns the path
/// the shim would have.
pub fn check(home: &Path, alias: &str, path_var: Option<&OsStr>) -> Result<PathBuf> {
    check_alias(alias)?;
    if alias == "ringlet" {
        // The shim would find itself on PATH and run itself for ever.
        return Err(Conflict(
            "a shim called `ringlet` would stand in for ringlet itself; use another profile name"
                .into(),
        )
        .into());
    }
    let dir = shim_dir(home);
    let shim = dir.join(alias);
    match fs::symlink_metadata(&shim) {
        Ok(_) if !is_shim(&shim) => {
            return Err(Conflict(format!(
                "{} exists and was not written by ringlet; it is left alone (remove it yourself, or use another profile name)",
                shim.display()
            ))
            .into());
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => bail!("{}: {e}", shim.display()),
    }
    if let Some(existing) = command_on_path(alias, path_var, &dir) {
        return Err(Conflict(format!(
            "`{alias}` is already a command ({}); a shim would shadow it",
            existing.display()
        ))
        .into());
    }
    Ok(shim)
}

/// A notice when the shim dir is not on `path_var` (the caller's PATH): the
/// shim works, but typing its name finds nothing until the dir is added.
pub fn path_notice(home: &Path, alias: &str, path_var: Option<&OsStr>) -> Option<String> {
    let path_var = path_var?;
    let dir = shim_dir(home);
    let real = fs::canonicalize(&dir).ok();
    let on_path = std::env::split_paths(path_var).any(|p| {
        p == dir || (p.is_absolute() && real.is_some() && fs::canonicalize(&p).ok() == real)
    });
    (!on_path).then(|| {
        format!(
            "{dir} is not on your PATH, so typing `{alias}` finds nothing: add \
             `export PATH=\"{dir}:$PATH\"` to your shell's startup file (meanwhile, \
             `ringlet profiles run {alias}` works)",
            dir = dir.display()
        )
    })
}

/// Installs the shim for `alias`. `path_var` is the PATH used to refuse a
/// name that is already a command. Returns the shim's path.
pub fn install(
    home: &Path,
    ringlet: &Path,
    alias: &str,
    path_var: Option<&OsStr>,
) -> Result<PathBuf> {
    let shim = check(home, alias, path_var)?;
    let dir = shim_dir(home);
    // `~/.local/bin` is the user's own and may be a link (dotfile setups):
    // followed, unlike Ringlet's private dirs; the shim itself never is.
    create_private_dir(&dir)?;
    let dirfd = fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let text = shim_text(ringlet, alias);
    write_atomic_at(dirfd.as_fd(), &dir, OsStr::new(alias), text.as_bytes(), 0o755)?;
    Ok(shim)
}

/// Removes the shim for `alias`. A file that is not our shim is an error
/// and stays. Returns whether a shim was removed.
pub fn uninstall(home: &Path, alias: &str) -> Result<bool> {
    check_alias(alias)?;
    let shim = shim_dir(home).join(alias);
    match fs::symlink_metadata(&shim) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => bail!("{}: {e}", shim.display()),
        Ok(meta) if meta.file_type().is_symlink() || !is_shim(&shim) => Err(Conflict(format!(
            "{} was not written by ringlet; it is left alone",
            shim.display()
        ))
        .into()),
        Ok(_) => {
            fs::remove_file(&shim)
                .map_err(|e| anyhow::anyhow!("removing {}: {e}", shim.display()))?;
            Ok(true)
        }
    }
}

/// Every shim in `~/.local/bin`: (alias, path).
pub fn list(home: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(shim_dir(home))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_shim(&e.path()))
        .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
        .collect();
    out.sort();
    out
}

/// The first executable called `name` on PATH that is not in `skip_dir`
/// (where our own shims live) and is not a shim.
fn command_on_path(name: &str, path_var: Option<&OsStr>, skip_dir: &Path) -> Option<PathBuf> {
    crate::detect::find_binary_where(&[name], path_var, |p| {
        p.parent() != Some(skip_dir) && !is_shim(p)
    })
    .map(|(path, _, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_uninstall_and_foreign_files() {
        let home = std::env::temp_dir().join(format!("ringlet-aliases-{}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        let exe = Path::new("/opt/it's/ringlet");
        let shim = install(&home, exe, "work", Some(OsStr::new("/nonexistent"))).unwrap();
        let text = fs::read_to_string(&shim).unwrap();
        assert!(text.contains("|| r='/opt/it'\\''s/ringlet'\n"), "{text}");
        assert!(text.ends_with("exec \"$r\" profiles run work -- \"$@\"\n"), "{text}");
        assert!(is_shim(&shim));
        assert_eq!(list(&home), vec![("work".to_string(), shim.clone())]);
        install(&home, exe, "work", None).unwrap(); // re-install over our own shim
        assert!(uninstall(&home, "work").unwrap());
        assert!(!uninstall(&home, "work").unwrap());
        fs::write(shim_dir(&home).join("mine"), "#!/bin/sh\necho mine\n").unwrap();
        assert!(install(&home, exe, "mine", None).is_err());
        assert!(uninstall(&home, "mine").is_err());
        assert_eq!(
            fs::read_to_string(shim_dir(&home).join("mine")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        assert!(
            install(&home, exe, "sh", Some(OsStr::new("/usr/bin:/bin")))
                .unwrap_err()
                .to_string()
                .contains("already a command")
        );
        fs::remove_dir_all(&home).unwrap();
    }
}
