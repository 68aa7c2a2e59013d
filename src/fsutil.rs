//! File access that neither tears nor follows links. Ringlet writes into
//! directories an untrusted agent can write (the profile homes), so every
//! write here assumes a hostile neighbour that can plant symlinks, FIFOs and
//! huge sparse files at any name it can guess:
//!
//! - [`write_atomic`] replaces a file through a temp file created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` under an unguessable name, relative to an
//!   opened directory fd; fsync, `renameat`, fsync of the directory. A daemon
//!   killed mid-write leaves the old file or the new one, plus at worst a temp
//!   file that [`remove_stale_temps`] deletes at the next start.
//! - [`open_private`] opens files with fixed names that are reopened (locks,
//!   append-only logs and stores, the token) with `O_NOFOLLOW`, and checks with
//!   `fstat` that what it got is a regular file owned by the user.
//! - [`Beneath`] reaches everything under a profile home relative to the home's
//!   directory fd without following any link (`openat2` with
//!   `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS` where the kernel has it, else
//!   `O_NOFOLLOW` per component), and reads the agent's files non-blocking,
//!   regular files only, capped in size.
//! - [`crash_point`] is the test hook that kills the daemon at a named step.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// The most an agent-writable file merged at render may hold. Real settings
/// files are a few KiB; Claude's `.claude.json` grows with its project
/// history but stays well below this.
pub const READ_CAP: u64 = 4 << 20;

/// Creates `dir` and its missing parents with mode 0700: everything Ringlet
/// keeps under the config and runtime dirs is private to the user.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// `n` random bytes from the kernel, hex-encoded: one `getrandom(2)` call
/// (every atomic write names its temp file with these; opening and closing
/// `/dev/urandom` per name cost two more syscalls, and a kept descriptor
/// would show up in every fd count of the daemon).
pub fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(got) => filled += got,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e).context("reading random bytes from the kernel"),
        }
    }
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// Opens the directory `dir` itself without following a link at its last
/// component (the components above are the user's own path and may be
/// links, like `/tmp` on macOS).
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(dir, dir_flags(), Mode::empty()).map_err(|e| refusal(dir, e, "a directory"))
}

/// Creates (0700) and opens a directory Ringlet owns (`secrets/`, the runtime
/// dir), refusing a link or a directory of another user, and narrows its mode
/// to 0700 with `fchmod` on the opened fd, never `chmod` on the path.
pub fn open_private_dir(dir: &Path) -> Result<OwnedFd> {
    create_private_dir(dir)?;
    let fd = open_dir(dir)?;
    let stat = rustix::fs::fstat(&fd).with_context(|| format!("checking {}", dir.display()))?;
    let uid = rustix::process::getuid().as_raw();
    if stat.st_uid != uid {
        bail!(
            "{} is owned by uid {}, not by you (uid {uid}); remove it",
            dir.display(),
            stat.st_uid
        );
    }
    if stat.st_mode & 0o077 != 0 {
        crate::warn!("{} had mode {:o}; setting it to 0700", dir.display(), stat.st_mode & 0o777);
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
    }
    Ok(fd)
}

/// Writes `bytes` to `path` atomically with exactly `mode` (set on the new
/// file's fd, never by path). The parent is created if missing and must not
/// be a link.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    let name = path.file_name().context("path has no file name")?;
    create_private_dir(dir)?;
    let fd = open_dir(dir)?;
    write_atomic_at(fd.as_fd(), dir, name, bytes, mode)
}

/// [`write_atomic`] into an opened directory; `dir` only names it in errors.
pub fn write_atomic_at(
    dirfd: BorrowedFd<'_>,
    dir: &Path,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
) -> Result<()> {
    let shown = dir.join(name);
    let (tmp, fd) = create_temp(dirfd, dir, name, mode)?;
    let result = (|| -> Result<()> {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .with_context(|| format!("setting the mode of {}", shown.display()))?;
        let mut file = File::from(fd);
        file.write_all(bytes).with_context(|| format!("writing {}", shown.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", shown.display()))?;
        crash_point("write:before-rename");
        // renameat replaces whatever entry is at `name` (a planted link
        // included) and never follows it.
        rustix::fs::renameat(dirfd, &tmp, dirfd, name)
            .with_context(|| format!("replacing {}", shown.display()))?;
        // The rename is durable only once the directory entry is on disk.
        let _ = rustix::fs::fsync(dirfd);
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dirfd, &tmp, AtFlags::empty());
    }
    result
}

/// Creates `path` with `bytes` and `mode` unless it exists, atomically: the
/// file appears whole or not at all (written to a temp file, then hard-linked
/// to its name, which fails if the name is taken, links included). Returns
/// whether it created the file.
pub fn create_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let dir = path.parent().context("path has no parent directory")?;
    let name = path.file_name().context("path has no file name")?;
    create_private_dir(dir)?;
    let dirfd = open_dir(dir)?;
    let (tmp, fd) = create_temp(dirfd.as_fd(), dir, name, mode)?;
    let result = (|| -> Result<bool> {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        let mut file = File::from(fd);
        file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
        match rustix::fs::linkat(&dirfd, &tmp, &dirfd, name, AtFlags::empty()) {
            Ok(()) => {
                let _ = rustix::fs::fsync(&dirfd);
                Ok(true)
            }
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        }
    })();
    let _ = rustix::fs::unlinkat(&dirfd, &tmp, AtFlags::empty());
    result
}

/// Creates `name` in the opened directory `dirfd` with `bytes` and `mode`,
/// `O_CREAT|O_EXCL|O_NOFOLLOW` (an existing entry, a link included, is an
/// error). Returns the file written but not yet fsynced: the caller syncs
/// it and the directory (a batch of files written first and synced after
/// costs about one journal commit instead of one each). For directories
/// that are themselves fresh and unguessably named (the registry's staging
/// dirs), where a temp file and rename per file would buy nothing.
pub fn create_new_at(
    dirfd: BorrowedFd<'_>,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<File> {
    let shown = dir.join(name);
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dirfd, name, flags, Mode::from_raw_mode(mode & 0o700))
        .with_context(|| format!("creating {}", shown.display()))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
        .with_context(|| format!("setting the mode of {}", shown.display()))?;
    let mut file = File::from(fd);
    file.write_all(bytes).with_context(|| format!("writing {}", shown.display()))?;
    Ok(file)
}

/// Creates a fresh temp file beside `name`: `.<name>.<16 hex>.tmp`, random,
/// exclusive, never through a link.
fn create_temp(
    dirfd: BorrowedFd<'_>,
    dir: &Path,
    name: &OsStr,
    mode: u32,
) -> Result<(OsString, OwnedFd)> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    for _ in 0..8 {
        let mut tmp = OsString::from(".");
        tmp.push(name);
        tmp.push(format!(".{}.tmp", random_hex(8)?));
        match rustix::fs::openat(dirfd, &tmp, flags, Mode::from_raw_mode(mode & 0o700)) {
            Ok(fd) => return Ok((tmp, fd)),
            // Someone planted this exact name: pick another.
            Err(Errno::EXIST) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating a temp file in {}", dir.display()));
            }
        }
    }
    bail!("creating a temp file in {}: every name was taken", dir.display())
}

/// Whether `name` is one of our temp files; with `legacy`, also the older
/// `.<name>.tmp.<pid>.<n>` form (never in profile homes: Claude Code names
/// its own temp files like that, and a session may be writing one).
fn is_temp_name(name: &[u8], legacy: bool) -> bool {
    let Some(rest) = name.strip_prefix(b".") else { return false };
    if let Some(stem) = rest.strip_suffix(b".tmp")
        && stem.len() > 17
        && stem[stem.len() - 17] == b'.'
        && stem[stem.len() - 16..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return true;
    }
    if !legacy {
        return false;
    }
    // The legacy form: `.<name>.tmp.<digits>.<digits>`.
    let parts: Vec<&[u8]> = rest.rsplitn(3, |&b| b == b'.').collect();
    parts.len() == 3
        && parts[0..2].iter().all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
        && parts[2].ends_with(b".tmp")
        && parts[2].len() > 4
}

/// Deletes the temp files a killed write left in `dir` (only names of our
/// temp pattern, unlinked relative to the directory fd, never followed).
/// Returns how many it removed. A missing dir is no error.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let fd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(_) if !dir.exists() => return Ok(0),
        Err(e) => return Err(e),
    };
    Ok(remove_temps_at(fd, false, true))
}

/// [`remove_stale_temps`] for a profile home, where renders write: the home
/// and the directories directly in it (`.claude/`, `.codex/`, ...), each
/// opened without following a link. Returns how many it removed.
pub fn remove_stale_temps_in_home(home: &Path) -> usize {
    match open_dir(home) {
        Ok(fd) => remove_temps_at(fd, true, false),
        Err(_) => 0,
    }
}

/// Unlinks our temp files in the open directory `fd`, and with `subdirs`
/// also in the directories directly in it. The listing reads `fd` itself
/// (`Dir::new`; `Dir::read_from` would reopen it through `.`, two more
/// syscalls per directory at every daemon start).
fn remove_temps_at(fd: OwnedFd, subdirs: bool, legacy: bool) -> usize {
    let Ok(mut dir) = rustix::fs::Dir::new(fd) else { return 0 };
    let mut removed = 0;
    while let Some(entry) = dir.read() {
        let (Ok(entry), Ok(fd)) = (entry, dir.fd()) else { continue };
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if is_temp_name(bytes, legacy) {
            if rustix::fs::unlinkat(fd, name, AtFlags::empty()).is_ok() {
                removed += 1;
            }
        } else if subdirs
            && entry.file_type() == FileType::Directory
            && let Ok(sub) = rustix::fs::openat(fd, name, dir_flags(), Mode::empty())
        {
            removed += remove_temps_at(sub, false, legacy);
        }
    }
    removed
}

/// How [`open_private`] opens a fixed-name file; both create it if missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Read and write: locks, and stores that are replayed then appended to.
    ReadWrite,
    /// Append only: logs.
    Append,
}

/// Opens (creating with `mode` if missing) a file with a fixed name that
/// Ringlet reopens (a lock, an append-only log or store) with `O_NOFOLLOW`,
/// and checks that it is a regular file owned by the user: a link, a FIFO or
/// a file of someone else at that name is a clear error naming the path.
pub fn open_private(path: &Path, access: Access, mode: u32) -> Result<File> {
    let flags = match access {
        Access::ReadWrite => OFlags::RDWR | OFlags::CREATE,
        Access::Append => OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE,
    };
    open_checked(path, flags, mode)?.context("created but not found")
}

/// [`open_private`] for reading an existing file; `Ok(None)` when missing.
pub fn open_private_read(path: &Path) -> Result<Option<File>> {
    open_checked(path, OFlags::RDONLY, 0)
}

fn open_checked(path: &Path, access: OFlags, mode: u32) -> Result<Option<File>> {
    // O_NONBLOCK so that a FIFO at the name cannot hang the open.
    let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = match rustix::fs::open(path, flags, Mode::from_raw_mode(mode)) {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !access.contains(OFlags::CREATE) => return Ok(None),
        Err(e) => return Err(refusal(path, e, "a regular file")),
    };
    check_regular_owned(&fd, path)?;
    // Back to blocking I/O for the regular file it turned out to be.
    let _ = rustix::fs::fcntl_setfl(&fd, flags & !(OFlags::NONBLOCK | OFlags::CREATE));
    Ok(Some(File::from(fd)))
}

/// Reads a fixed-name private file whole (at most `cap` bytes);
/// `Ok(None)` when it does not exist.
pub fn read_private(path: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
    let Some(file) = open_private_read(path)? else { return Ok(None) };
    read_limited(file, path, cap).map(Some)
}

fn read_limited(file: File, path: &Path, cap: u64) -> Result<Vec<u8>> {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        bail!("{} is {len} bytes, over the {cap}-byte limit", path.display());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > cap {
        bail!("{} grew over the {cap}-byte limit while being read", path.display());
    }
    Ok(bytes)
}

fn check_regular_owned(fd: &OwnedFd, path: &Path) -> Result<()> {
    let stat = rustix::fs::fstat(fd).with_context(|| format!("checking {}", path.display()))?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        bail!("{} is not a regular file ({kind:?}); remove it", path.display());
    }
    let uid = rustix::process::getuid().as_raw();
    if stat.st_uid != uid {
        bail!(
            "{} is owned by uid {}, not by you (uid {uid}); remove it",
            path.display(),
            stat.st_uid
        );
    }
    Ok(())
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The error for an open that met something other than `what`.
fn refusal(path: &Path, e: Errno, what: &str) -> anyhow::Error {
    match e {
        // O_NOFOLLOW on a link fails with ELOOP (EMLINK on FreeBSD); a link
        // met by RESOLVE_NO_SYMLINKS also gives ELOOP.
        Errno::LOOP | Errno::MLINK => anyhow!(
            "{} is a symbolic link, which Ringlet never follows here; remove it",
            path.display()
        ),
        // O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR; look at the
        // entry (for the message only) to say which it was.
        Errno::NOTDIR if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            anyhow!(
                "{} is a symbolic link, which Ringlet never follows here; remove it",
                path.display()
            )
        }
        Errno::NOTDIR => anyhow!("{} is not {what} (something else is in the way)", path.display()),
        e => anyhow!("opening {}: {e}", path.display()),
    }
}

/// A directory (a profile home) that everything is reached beneath, without
/// following links: a link anywhere on the way is refused, a link (or FIFO,
/// device, oversized file) at a file's own name is replaced by writes and
/// treated as absent by [`Beneath::read_capped`].
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
}

impl Beneath {
    /// Opens `root` (which must exist and not be a link).
    pub fn open(root: &Path) -> Result<Beneath> {
        Ok(Beneath { root: open_dir(root)?, path: root.to_path_buf() })
    }

    /// The directory `rel` beneath the root as a [`Beneath`] of its own,
    /// opened like every walk here (no link on the way, created 0700 when
    /// missing and `create`), so that several files in it are reached
    /// without walking again. `None` when it is missing and not `create`;
    /// `rel` must not be empty (the root is `self`).
    pub fn dir(&self, rel: &Path, create: bool) -> Result<Option<Beneath>> {
        match self.walk(rel, create) {
            Ok(Some(fd)) => Ok(Some(Beneath { root: fd, path: self.path.join(rel) })),
            Ok(None) => bail!("{}: not a directory beneath {}", rel.display(), self.path.display()),
            Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `rel` and its missing parents (0700) beneath the root.
    pub fn create_dir_all(&self, rel: &Path) -> Result<()> {
        self.walk(rel, true).map(drop)
    }

    /// Writes `bytes` to `rel` atomically with `mode`, creating missing
    /// parent directories (0700).
    pub fn write_atomic(&self, rel: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let (parent, name) = split(rel)?;
        let dir = self.walk(parent, true)?;
        let fd = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
        write_atomic_at(fd, &self.path.join(parent), name, bytes, mode)
    }

    /// Whether `rel` is already exactly what [`Beneath::write_atomic`] of
    /// `bytes` with `mode` would leave there: a regular file (not a link, not
    /// reached through one), of ours, with exactly `mode`, no other name (a
    /// hard link elsewhere would stay tied to it), and byte for byte
    /// `bytes`. Writing it again would change nothing but its inode and
    /// cost two fsyncs and a rename (about 1 ms a file on a quiet disk,
    /// several on a busy one: most of a render). Anything unexpected, an
    /// error included, is `false`, and the caller writes as before.
    pub fn holds(&self, rel: &Path, bytes: &[u8], mode: u32) -> bool {
        let Ok((parent, name)) = split(rel) else { return false };
        let Ok(dir) = self.walk(parent, false) else { return false };
        let Ok(fd) = self.open_leaf(dir.as_ref(), name) else { return false };
        let Ok(stat) = rustix::fs::fstat(&fd) else { return false };
        let same_kind = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
            && stat.st_uid == rustix::process::getuid().as_raw()
            && stat.st_nlink == 1
            && stat.st_mode & 0o7777 == mode & 0o7777
            && u64::try_from(stat.st_size).ok() == Some(bytes.len() as u64);
        if !same_kind {
            return false;
        }
        // One byte more than expected shows a file that grew meanwhile.
        let mut on_disk = Vec::with_capacity(bytes.len() + 1);
        let read = File::from(fd).take(bytes.len() as u64 + 1).read_to_end(&mut on_disk);
        read.is_ok() && on_disk == bytes
    }

    /// Reads `rel` if it is a regular file of at most `cap` bytes. `Ok(None)`
    /// when it is absent, and also (with a warning in the log) when it is a
    /// link, a FIFO, a device or bigger than `cap`: the caller treats it as
    /// absent and its next write replaces it. Never blocks on a FIFO. A link
    /// among the directories on the way is an error.
    pub fn read_capped(&self, rel: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
        let shown = self.path.join(rel);
        let (parent, name) = split(rel)?;
        let dir = match self.walk(parent, false) {
            Ok(dir) => dir,
            Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fd = match self.open_leaf(dir.as_ref(), name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e @ (Errno::LOOP | Errno::MLINK | Errno::NXIO | Errno::ACCESS)) => {
                crate::warn!(
                    "{}: {}; treated as absent",
                    shown.display(),
                    refusal(&shown, e, "a file")
                );
                return Ok(None);
            }
            Err(e) => return Err(refusal(&shown, e, "a file")),
        };
        let stat =
            rustix::fs::fstat(&fd).with_context(|| format!("checking {}", shown.display()))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            crate::warn!("{} is not a regular file ({kind:?}); treated as absent", shown.display());
            return Ok(None);
        }
        if stat.st_size as u64 > cap {
            crate::warn!(
                "{} is {} bytes, over the {cap}-byte limit; treated as absent",
                shown.display(),
                stat.st_size
            );
            return Ok(None);
        }
        match read_limited(File::from(fd), &shown, cap) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) => {
                crate::warn!("{e:#}; treated as absent");
                Ok(None)
            }
        }
    }

    /// Removes `rel` beneath the root, a file, a link or a whole directory
    /// tree, never through a link: a link among the directories on the way is
    /// an error, a link at `rel` or inside the tree is removed, not followed
    /// (every level is opened `O_NOFOLLOW` relative to its parent's fd, so a
    /// directory swapped for a link mid-way is refused, not descended).
    /// Missing is fine.
    pub fn remove_all(&self, rel: &Path) -> Result<()> {
        let shown = self.path.join(rel);
        let (parent, name) = split(rel)?;
        let dir = match self.walk(parent, false) {
            Ok(dir) => dir,
            Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        let dirfd = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
        remove_at(dirfd, name, &shown, 0)
    }

    /// Opens the directory `rel` beneath the root, creating missing ones when
    /// `create`; `None` means the root itself. A missing directory without
    /// `create` is an [`Errno::NOENT`] error.
    /// Opens `name` in `dir` (a directory [`Beneath::walk`] gave; `None`:
    /// the root) for reading: never through a link at the name, never
    /// blocking on a FIFO, never becoming a controlling terminal.
    fn open_leaf(&self, dir: Option<&OwnedFd>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
        let dirfd = dir.map_or(self.root.as_fd(), |d| d.as_fd());
        let flags =
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        rustix::fs::openat(dirfd, name, flags, Mode::empty())
    }

    fn walk(&self, rel: &Path, create: bool) -> Result<Option<OwnedFd>> {
        if rel.as_os_str().is_empty() {
            return Ok(None);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::ResolveFlags;
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.root, rel, dir_flags(), Mode::empty(), how) {
                Ok(fd) => return Ok(Some(fd)),
                // Missing parts (created below), or no openat2 (Linux < 5.6,
                // or a seccomp filter): walk one component at a time.
                Err(Errno::NOENT | Errno::NOSYS | Errno::PERM | Errno::INVAL) => {}
                Err(e) => return Err(refusal(&self.path.join(rel), e, "a directory")),
            }
        }
        let mut current: Option<OwnedFd> = None;
        let mut shown = self.path.clone();
        for part in rel.components() {
            let Component::Normal(part) = part else {
                bail!("{}: not a plain relative path", rel.display());
            };
            shown.push(part);
            let parent = current.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
            let fd = match rustix::fs::openat(parent, part, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(parent, part, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("creating {}", shown.display()));
                        }
                    }
                    rustix::fs::openat(parent, part, dir_flags(), Mode::empty())
                        .map_err(|e| refusal(&shown, e, "a directory"))?
                }
                Err(Errno::NOENT) => return Err(anyhow::Error::new(Errno::NOENT)),
                Err(e) => return Err(refusal(&shown, e, "a directory")),
            };
            current = Some(fd);
        }
        Ok(current)
    }
}

/// Removes `name` in `dir`: unlinks a file or link, empties and removes a
/// directory. `depth` bounds the recursion (a tree deeper than 64 levels
/// is an error rather than a stack overflow).
fn remove_at(dir: BorrowedFd<'_>, name: &OsStr, shown: &Path, depth: usize) -> Result<()> {
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("checking {}", shown.display())),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", shown.display())),
        };
    }
    if depth >= 64 {
        bail!("{}: too deeply nested to remove", shown.display());
    }
    let sub = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
        .map_err(|e| refusal(shown, e, "a directory"))?;
    let mut children = Vec::new();
    for entry in
        rustix::fs::Dir::read_from(&sub).with_context(|| format!("listing {}", shown.display()))?
    {
        let entry = entry.with_context(|| format!("listing {}", shown.display()))?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes());
        if child != "." && child != ".." {
            children.push(child.to_os_string());
        }
    }
    for child in children {
        remove_at(sub.as_fd(), &child, &shown.join(&child), depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", shown.display())),
    }
}

/// Splits a relative file path into its directory part and its name.
fn split(rel: &Path) -> Result<(&Path, &OsStr)> {
    let name = rel.file_name().with_context(|| format!("{}: no file name", rel.display()))?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

/// A test hook for crash safety: when `RINGLET_TEST_CRASH_AT` names `step`,
/// the process kills itself with SIGKILL right there, as `kill -9` would.
/// Unset (always, outside the crash tests) it costs one cached lookup.
pub fn crash_point(step: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at =
        AT.get_or_init(|| std::env::var("RINGLET_TEST_CRASH_AT").ok().filter(|v| !v.is_empty()));
    if at.as_deref() == Some(step) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; this is never reached.
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlet-fsutil-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn remove_all_removes_links_never_what_they_point_at() {
        let dir = scratch("remove");
        let outside = dir.join("outside");
        fs::create_dir_all(outside.join("keep")).unwrap();
        fs::write(outside.join("keep/file"), "mine").unwrap();
        let home = dir.join("home");
        fs::create_dir_all(home.join("tree/deeper")).unwrap();
        fs::write(home.join("tree/deeper/f"), "x").unwrap();
        symlink(&outside, home.join("tree/link")).unwrap();
        symlink(&outside, home.join("top-link")).unwrap();
        symlink(&outside, home.join("via")).unwrap();
        let b = Beneath::open(&home).unwrap();
        b.remove_all(Path::new("tree")).unwrap();
        b.remove_all(Path::new("top-link")).unwrap();
        b.remove_all(Path::new("missing/also")).unwrap();
        // A link among the parents is refused, not followed.
        assert!(b.remove_all(Path::new("via/keep")).is_err());
        assert!(
            !home.join("tree").exists() && fs::symlink_metadata(home.join("top-link")).is_err()
        );
        assert_eq!(fs::read_to_string(outside.join("keep/file")).unwrap(), "mine");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replaces_content_with_mode() {
        let dir = scratch("replace");
        let path = dir.join("sub").join("f.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        fs::create_dir(dir.join("home")).unwrap();
        symlink(&victim, dir.join("home/f.json")).unwrap();
        write_atomic(&dir.join("home/f.json"), b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read(dir.join("home/f.json")).unwrap(), b"new");
        // A linked parent dir is refused.
        symlink(dir.join("home"), dir.join("linked")).unwrap();
        let err = write_atomic(&dir.join("linked/g"), b"x", 0o600).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_recognised_and_cleaned() {
        assert!(is_temp_name(b".a.json.0123456789abcdef.tmp", false));
        assert!(is_temp_name(b".usage.jsonl.tmp.123.4", true));
        assert!(!is_temp_name(b".claude.json.tmp.123.1765080000000", false));
        assert!(!is_temp_name(b".lock", true));
        assert!(!is_temp_name(b"a.json.0123456789abcdef.tmp", true));
        assert!(!is_temp_name(b".a.json.0123456789ABCDEF.tmp", true));
        assert!(!is_temp_name(b".a.tmp", true));
        let dir = scratch("stale");
        fs::write(dir.join(".x.json.0123456789abcdef.tmp"), "").unwrap();
        fs::write(dir.join("x.json"), "keep").unwrap();
        assert_eq!(remove_stale_temps(&dir).unwrap(), 1);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fixed_names_refuse_links_and_fifos() {
        let dir = scratch("fixed");
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.join("log")).unwrap();
        let err = open_private(&dir.join("log"), Access::Append, 0o600).unwrap_err();
        let err2 = open_private(&dir.join("log"), Access::ReadWrite, 0o600).unwrap_err();
        assert!(format!("{err2:#}").contains("symbolic link"), "{err2:#}");
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        assert!(open_private_read(&dir.join("dangling")).is_err());
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = open_private_read(&dir.join("fifo")).unwrap_err();
        assert!(format!("{err:#}").contains("not a regular file"), "{err:#}");
        assert!(open_private_read(&dir.join("absent")).unwrap().is_none());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn beneath_never_follows_and_reads_capped() {
        let dir = scratch("beneath");
        let home = dir.join("home");
        fs::create_dir(&home).unwrap();
        let outside = dir.join("outside");
        fs::create_dir(&outside).unwrap();
        let b = Beneath::open(&home).unwrap();
        b.write_atomic(Path::new("a/b/c.json"), b"{}", 0o600).unwrap();
        assert_eq!(b.read_capped(Path::new("a/b/c.json"), 10).unwrap().unwrap(), b"{}");
        assert!(b.read_capped(Path::new("a/b/missing"), 10).unwrap().is_none());
        assert!(b.read_capped(Path::new("nope/missing"), 10).unwrap().is_none());
        // Over the cap: absent.
        fs::write(home.join("big"), vec![b'x'; 11]).unwrap();
        assert!(b.read_capped(Path::new("big"), 10).unwrap().is_none());
        // A FIFO: absent, and no hang.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            home.join("fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(b.read_capped(Path::new("fifo"), 10).unwrap().is_none());
        // A linked directory on the way: refused for writes and reads.
        symlink(&outside, home.join("link")).unwrap();
        let err = b.write_atomic(Path::new("link/x.json"), b"{}", 0o600).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert!(b.read_capped(Path::new("link/x.json"), 10).is_err());
        assert!(b.create_dir_all(Path::new("link/deeper")).is_err());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
