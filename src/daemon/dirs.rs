//! `GET /api/fs/dirs?prefix=`: directories under the user's home that
//! complete what the web UI's "working directory" field holds, so a session
//! can be started in a project without typing its whole path.
//!
//! The home is the limit: the daemon serves its own user, but a browser tab
//! is a weaker place to browse the disk from than a shell, and sessions
//! start in the home anyway (the sandbox binds the working directory, and
//! refuses one outside the home). A prefix outside it (`/etc`, `~/../x`) or
//! a directory on the way that is a link leading out of it is refused with
//! a message; a link among the entries that leads out is left out. One
//! `readdir` a request, at most [`MAX_DIRS`] answers.

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};

/// Completions returned at most (the field shows a short list).
pub const MAX_DIRS: usize = 50;

/// The longest prefix taken (a path is at most `PATH_MAX`).
const MAX_PREFIX: usize = 4096;

/// The directories under `home` whose absolute path starts with `prefix`:
/// `~` and `~/x` expanded, a relative prefix taken from the home. The part
/// after the last `/` is matched against the names in the directory before
/// it; names starting with `.` only when that part does. Sorted, at most
/// [`MAX_DIRS`]. A directory that does not exist (yet) completes to
/// nothing.
pub fn complete(home: &Path, prefix: &str) -> Result<Vec<String>> {
    if prefix.len() > MAX_PREFIX || prefix.contains('\0') {
        bail!("the prefix must be a path of at most {MAX_PREFIX} bytes");
    }
    let home_text = home.to_string_lossy();
    let expanded = match prefix {
        "" | "~" => format!("{home_text}/"),
        p => match p.strip_prefix("~/") {
            Some(rest) => format!("{home_text}/{rest}"),
            None if p.starts_with('~') => {
                bail!("`{prefix}`: only your own home (`~` or `~/...`) can be completed")
            }
            None if p.starts_with('/') => p.to_string(),
            // A relative prefix is relative to the home.
            None => format!("{home_text}/{p}"),
        },
    };
    // The typed last segment is matched as typed (`.` asks for hidden
    // names); what is before it is the directory, normalised.
    let (head, partial) = expanded.rsplit_once('/').unwrap_or(("", &expanded));
    let (dir, partial) =
        if !expanded.ends_with('/') && partial != "." && normalize(Path::new(&expanded)) == home {
            // The home itself, typed without its slash (or `~/x/..`).
            (home.to_path_buf(), "")
        } else {
            (normalize(Path::new(if head.is_empty() { "/" } else { head })), partial)
        };
    let outside = || {
        anyhow::anyhow!(
            "`{prefix}` is outside your home ({}): only directories under it are completed",
            home.display()
        )
    };
    if !dir.starts_with(home) {
        return Err(outside());
    }
    // The real place: a link on the way must not lead out of the home.
    let real_home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    let real_dir = match dir.canonicalize() {
        Ok(real) => real,
        Err(_) => return Ok(Vec::new()),
    };
    if !real_dir.starts_with(&real_home) {
        return Err(outside());
    }
    let Ok(entries) = std::fs::read_dir(&real_dir) else { return Ok(Vec::new()) };
    let hidden = partial.starts_with('.');
    let partial = partial.to_string();
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(partial.as_str()) || (name.starts_with('.') && !hidden) {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        let is_dir = if kind.is_symlink() {
            // Followed only to a directory inside the home.
            entry.path().canonicalize().is_ok_and(|t| t.starts_with(&real_home) && t.is_dir())
        } else {
            kind.is_dir()
        };
        if is_dir {
            dirs.push(dir.join(name).to_string_lossy().into_owned());
        }
    }
    dirs.sort();
    dirs.truncate(MAX_DIRS);
    Ok(dirs)
}

/// `path` with `.` dropped and `..` taken back lexically (never above `/`),
/// before any check: `~/a/../../etc` is `/etc`, which the caller refuses.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn world() -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "ringlet-dirs-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        let home = root.join("home");
        for d in ["projects/ringlet", "projects/other", "pictures", ".config/x", "music"] {
            fs::create_dir_all(home.join(d)).unwrap();
        }
        fs::write(home.join("projects/notes.txt"), "").unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        symlink(root.join("outside"), home.join("projects/escape")).unwrap();
        symlink(home.join("music"), home.join("projects/tunes")).unwrap();
        symlink(root.join("outside"), home.join("away")).unwrap();
        (root, home)
    }

    fn names(home: &Path, dirs: Vec<String>) -> Vec<String> {
        let base = format!("{}/", home.display());
        dirs.iter().map(|d| d.strip_prefix(&base).unwrap_or(d).to_string()).collect()
    }

    #[test]
    fn completes_under_the_home() {
        let (root, home) = world();
        let ok = |prefix: &str| names(&home, complete(&home, prefix).unwrap());
        assert_eq!(ok(""), ["music", "pictures", "projects"]);
        assert_eq!(ok("~"), ["music", "pictures", "projects"]);
        assert_eq!(ok("~/p"), ["pictures", "projects"]);
        assert_eq!(ok("p"), ["pictures", "projects"]);
        assert_eq!(ok("~/projects/"), ["projects/other", "projects/ringlet", "projects/tunes"]);
        assert_eq!(ok(&format!("{}/projects/r", home.display())), ["projects/ringlet"]);
        assert_eq!(ok(&home.display().to_string()), ["music", "pictures", "projects"]);
        // Hidden ones only when asked for.
        assert_eq!(ok("~/."), [".config"]);
        assert_eq!(ok("~/.config/"), [".config/x"]);
        // Not there (yet): nothing, no error.
        assert!(ok("~/nope/").is_empty());
        assert!(ok("~/projects/notes.txt/").is_empty());
        // Inside the home, `..` is fine.
        assert_eq!(ok("~/projects/../m"), ["music"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn nothing_outside_the_home() {
        let (root, home) = world();
        for bad in ["/etc", "/", "/etc/", "~/../", "~/../../etc", "../x", "~root/", "~/away/"] {
            let err = complete(&home, bad).unwrap_err().to_string();
            assert!(err.contains("home"), "{bad}: {err}");
        }
        assert!(complete(&home, "a\0b").is_err());
        assert!(complete(&home, &"a/".repeat(3000)).is_err());
        // A link leading out is not offered; one that stays in is.
        let found = names(&home, complete(&home, "~/").unwrap());
        assert!(!found.contains(&"away".to_string()), "{found:?}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn at_most_fifty() {
        let (root, home) = world();
        for i in 0..80 {
            fs::create_dir_all(home.join(format!("many/d{i:02}"))).unwrap();
        }
        let dirs = complete(&home, "~/many/").unwrap();
        assert_eq!(dirs.len(), MAX_DIRS);
        assert!(dirs[0].ends_with("/many/d00") && dirs[49].ends_with("/many/d49"), "{dirs:?}");
        fs::remove_dir_all(root).unwrap();
    }
}
