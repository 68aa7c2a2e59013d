//! Registries on disk: a directory ([`DirSource`]) and a tar bundle
//! ([`TarSource`]) to sync from, and [`export`], which writes the current
//! commit as one bundle for a machine that never sees the network.
//!
//! Bundles are plain ustar archives read and written by the few lines here
//! rather than by the `tar` crate: a registry bundle holds nothing but a
//! handful of small regular files, so the crate's links, sparse files, pax
//! and GNU extensions, xattrs and its two extra dependencies (`filetime`,
//! `xattr`) would be code that only widens what an import has to refuse, in
//! a binary that is at its size limit. The reader takes regular files
//! (`./` prefixes and the kind directories' own entries, as `tar -C dir -cf
//! x.tar .` writes them, are fine) and refuses everything else by name:
//! links, devices, FIFOs, extended headers (which could rename an entry),
//! absolute paths, `..`, duplicates, and any file `registry.json` does not
//! list. Nothing is ever extracted: entries stay in memory until the store
//! has verified them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::Serialize;

use super::index::{self, INDEX_CAP, SIGNATURE_CAP, SIGNATURE_FILE, Source};
use super::{Artifact, current_dir};
use crate::fsutil;
use crate::paths::Paths;

/// The most a bundle may hold: far above a real registry (this repository's
/// is about 150 KiB), far below what would strain memory.
pub const BUNDLE_CAP: u64 = 64 << 20;

/// A registry directory: this repository's `target/registry`, a mounted
/// medium, a mirror. Files are read relative to the directory's fd, never
/// through a link.
pub struct DirSource {
    dir: PathBuf,
    root: OwnedFd,
}

impl DirSource {
    /// `dir` is the user's own path: links on the way to it are followed
    /// (resolved once, here); nothing below it ever is.
    pub fn new(dir: &Path) -> Result<DirSource> {
        let open = || -> Result<(PathBuf, OwnedFd)> {
            let real = std::fs::canonicalize(dir)?;
            let root = fsutil::open_dir(&real)?;
            Ok((real, root))
        };
        let (_, root) =
            open().with_context(|| format!("opening the registry directory {}", dir.display()))?;
        Ok(DirSource { dir: dir.to_path_buf(), root })
    }
}

impl Source for DirSource {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn index(&mut self) -> Result<Vec<u8>> {
        read_beneath(self.root.as_fd(), &self.dir, "registry.json", INDEX_CAP + 1)?
            .with_context(|| format!("{} has no registry.json", self.dir.display()))
    }

    fn signature(&mut self) -> Result<Option<Vec<u8>>> {
        read_beneath(self.root.as_fd(), &self.dir, SIGNATURE_FILE, SIGNATURE_CAP + 1)
    }

    fn artifact(&mut self, a: &Artifact) -> Result<Vec<u8>> {
        read_beneath(self.root.as_fd(), &self.dir, &a.path, a.size + 1)?.with_context(|| {
            format!("{}: listed in registry.json but missing", self.dir.join(&a.path).display())
        })
    }
}

/// Reads at most `cap` bytes of the regular file `rel` (`/`-separated,
/// already checked by the index rules) below the directory `root`, never
/// following a link on the way or at the file. `Ok(None)` when it is
/// missing; a link, FIFO, device or directory is an error naming it.
pub(crate) fn read_beneath(
    root: BorrowedFd<'_>,
    shown: &Path,
    rel: &str,
    cap: u64,
) -> Result<Option<Vec<u8>>> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    let mut dir: Option<OwnedFd> = None;
    let mut path = shown.to_path_buf();
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    for part in parts {
        path.push(part);
        let parent = dir.as_ref().map_or(root, |d| d.as_fd());
        match rustix::fs::openat(parent, part, dir_flags, Mode::empty()) {
            Ok(fd) => dir = Some(fd),
            Err(Errno::NOENT) => return Ok(None),
            Err(e @ (Errno::LOOP | Errno::MLINK | Errno::NOTDIR)) => {
                bail!("{}: not a plain directory ({e}): links are refused", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    }
    path.push(name);
    let parent = dir.as_ref().map_or(root, |d| d.as_fd());
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP | Errno::MLINK) => {
            bail!("{} is a symbolic link: a registry holds regular files only", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let stat = rustix::fs::fstat(&fd).with_context(|| format!("checking {}", path.display()))?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        bail!("{} is not a regular file ({kind:?}): refused", path.display());
    }
    let mut bytes = Vec::with_capacity((stat.st_size as u64).min(cap) as usize);
    File::from(fd)
        .take(cap)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(bytes))
}

/// `O_NONBLOCK|O_NOCTTY` for [`TarSource::open`] (no effect on a regular
/// file's reads).
fn libc_flags() -> i32 {
    (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}

/// A registry bundle (`registry export`'s output, or a ustar archive of a
/// registry directory), checked whole when opened and held in memory.
pub struct TarSource {
    file: PathBuf,
    data: Vec<u8>,
    /// Entry path -> (offset, length) in `data`.
    entries: BTreeMap<String, (usize, usize)>,
}

impl TarSource {
    pub fn open(file: &Path) -> Result<TarSource> {
        let shown = file.display();
        // Non-blocking: opening a FIFO for reading would otherwise wait for
        // a writer forever, holding the one sync slot; fstat then refuses it.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags())
            .open(file)
            .with_context(|| format!("opening the bundle {shown}"))?;
        let meta = f.metadata().with_context(|| format!("checking {shown}"))?;
        if !meta.is_file() {
            bail!("{shown} is not a regular file");
        }
        if meta.len() > BUNDLE_CAP {
            bail!("{shown} is {} bytes, over the {BUNDLE_CAP}-byte limit of a bundle", meta.len());
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        f.take(BUNDLE_CAP).read_to_end(&mut data).with_context(|| format!("reading {shown}"))?;
        let entries = read_entries(&data).with_context(|| format!("the bundle {shown}"))?;
        Ok(TarSource { file: file.to_path_buf(), data, entries })
    }

    fn entry(&self, path: &str) -> Option<&[u8]> {
        self.entries.get(path).map(|&(at, len)| &self.data[at..at + len])
    }
}

impl Source for TarSource {
    fn describe(&self) -> String {
        self.file.display().to_string()
    }

    fn index(&mut self) -> Result<Vec<u8>> {
        let shown = self.file.display();
        let bytes =
            self.entry("registry.json").with_context(|| format!("{shown} has no registry.json"))?;
        let index = index::parse(bytes).with_context(|| format!("the bundle {shown}"))?;
        // Only what registry.json lists may be in a bundle: anything else is
        // a sign of a bundle made by hand or tampered with.
        for name in self.entries.keys() {
            let listed = name == "registry.json"
                || name == SIGNATURE_FILE
                || index.artifacts.binary_search_by(|a| a.path.as_str().cmp(name)).is_ok();
            if !listed {
                bail!(
                    "the bundle {shown} holds {name:?}, which registry.json does not list: refused"
                );
            }
        }
        Ok(bytes.to_vec())
    }

    fn signature(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.entry(SIGNATURE_FILE).map(<[u8]>::to_vec))
    }

    fn artifact(&mut self, a: &Artifact) -> Result<Vec<u8>> {
        let bytes = self.entry(&a.path).with_context(|| {
            format!(
                "{}: listed in registry.json but not in the bundle {}",
                a.path,
                self.file.display()
            )
        })?;
        Ok(bytes[..bytes.len().min(a.size as usize + 1)].to_vec())
    }
}

const BLOCK: usize = 512;

/// Walks a ustar archive: every entry must be a regular file (or the
/// directory entry of `.` or a kind directory, ignored) with a plain
/// relative path, once. Returns each file's data range.
fn read_entries(data: &[u8]) -> Result<BTreeMap<String, (usize, usize)>> {
    let mut entries = BTreeMap::new();
    let mut pos = 0;
    loop {
        if pos == data.len() {
            break; // No end-of-archive blocks: tolerated, nothing is missing.
        }
        let Some(h) = data.get(pos..pos + BLOCK) else {
            bail!("truncated: a partial header at byte {pos}");
        };
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let stored = octal(&h[148..156]).ok();
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 })
            .sum();
        if stored != Some(sum) {
            bail!(
                "a damaged header at byte {pos} (checksum mismatch): not a tar file, or truncated"
            );
        }
        let mut path = cstr(&h[..100])?.to_string();
        // POSIX ustar only: GNU's own format ("ustar  ") keeps other
        // fields where ustar has the prefix.
        if &h[257..263] == b"ustar\0" {
            let prefix = cstr(&h[345..500])?;
            if !prefix.is_empty() {
                path = format!("{prefix}/{path}");
            }
        }
        let size = octal(&h[124..136]).with_context(|| format!("{path:?}: bad size"))? as usize;
        let start = pos + BLOCK;
        if size > data.len().saturating_sub(start) {
            bail!("truncated: {path:?} should hold {size} bytes");
        }
        pos = start + size.div_ceil(BLOCK) * BLOCK;
        let rel = plain(&path)?;
        let what = match h[156] {
            b'0' | 0 | b'7' => {
                if entries.insert(rel.to_string(), (start, size)).is_some() {
                    bail!("{rel:?} is in it twice: refused");
                }
                continue;
            }
            b'5' => {
                let dir = rel.trim_end_matches('/');
                if dir.is_empty() || super::Kind::ALL.iter().any(|k| k.dir() == dir) {
                    continue;
                }
                "a directory other than a kind's"
            }
            b'1' => "a hard link",
            b'2' => "a symbolic link",
            b'3' | b'4' => "a device",
            b'6' => "a FIFO",
            b'x' | b'g' => "a pax extended header",
            b'L' | b'K' => "a GNU long name",
            _ => "an entry of an unknown type",
        };
        bail!("{path:?} is {what}: a bundle holds regular files only, refused");
    }
    Ok(entries)
}

/// An entry's path with `./` prefixes removed; absolute paths, `..` and
/// empty or `.` components inside are refused (the index rules then match
/// what remains against registry.json exactly).
fn plain(path: &str) -> Result<&str> {
    if path.starts_with('/') {
        bail!("{path:?} is an absolute path: refused");
    }
    let mut rel = path;
    while let Some(rest) = rel.strip_prefix("./") {
        rel = rest;
    }
    if rel == "." {
        return Ok("");
    }
    let body = rel.strip_suffix('/').unwrap_or(rel);
    if body.split('/').any(|c| c == ".." || c == "." || (c.is_empty() && !body.is_empty())) {
        bail!("{path:?} leaves the registry or is not a plain path (`..`): refused");
    }
    Ok(rel)
}

fn cstr(field: &[u8]) -> Result<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).context("a name is not UTF-8")
}

/// A ustar number: octal digits, padded with spaces or NULs. GNU's base-256
/// form (sizes over 8 GiB) is refused.
fn octal(field: &[u8]) -> Result<u64> {
    let text = cstr(field)?.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).with_context(|| format!("{text:?} is not an octal number"))
}

/// Appends one regular file to a ustar archive: mode 0644, owner 0, time 0
/// (a commit always makes the same bundle).
fn write_entry(out: &mut Vec<u8>, path: &str, bytes: &[u8]) {
    fn put(field: &mut [u8], value: u64) {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    }
    let mut h = [0u8; BLOCK];
    // Paths are at most 9 + 1 + 80 bytes (index.rs), within the 100 here.
    h[..path.len()].copy_from_slice(path.as_bytes());
    put(&mut h[100..108], 0o644);
    put(&mut h[108..116], 0);
    put(&mut h[116..124], 0);
    put(&mut h[124..136], bytes.len() as u64);
    put(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub commit: String,
    pub file: String,
    pub artifacts: usize,
    pub bytes: u64,
    pub signed: bool,
}

/// Writes the current commit (its `registry.json`, signature if any, and
/// every artifact, each checked against its hash first) to `out` as one
/// bundle, atomically.
pub fn export(paths: &Paths, out: &Path) -> Result<ExportReport> {
    let dir = current_dir(paths)
        .context("there is no synced registry to export; run `ringlet registry sync` first")?;
    let root = fsutil::open_dir(&dir)?;
    let bytes = read_beneath(root.as_fd(), &dir, "registry.json", INDEX_CAP + 1)?
        .with_context(|| format!("{} has no registry.json", dir.display()))?;
    let index = index::parse(&bytes)?;
    let commit = index::commit_of(&bytes);
    let damaged = || {
        format!(
            "the cached registry {} is damaged; run `ringlet registry sync --force`",
            dir.display()
        )
    };
    if dir.file_name().and_then(|n| n.to_str()) != Some(commit.as_str()) {
        bail!(damaged());
    }
    let mut tar = Vec::new();
    write_entry(&mut tar, "registry.json", &bytes);
    let signature = read_beneath(root.as_fd(), &dir, SIGNATURE_FILE, SIGNATURE_CAP + 1)?;
    if let Some(sig) = &signature {
        write_entry(&mut tar, SIGNATURE_FILE, sig);
    }
    for a in &index.artifacts {
        let data = read_beneath(root.as_fd(), &dir, &a.path, a.size + 1)?.unwrap_or_default();
        if data.len() as u64 != a.size || index::sha256_hex(&data) != a.sha256 {
            bail!("{}: {}", a.path, damaged());
        }
        write_entry(&mut tar, &a.path, &data);
    }
    tar.resize(tar.len() + 2 * BLOCK, 0);
    // The user's own path: a link among its directories is followed (once,
    // here), the file itself is replaced atomically, never written through.
    let name = out.file_name().with_context(|| format!("{}: not a file name", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent)
        .with_context(|| format!("{}: no such directory", parent.display()))?;
    fsutil::write_atomic(&parent.join(name), &tar, 0o644)?;
    Ok(ExportReport {
        commit,
        file: out.display().to_string(),
        artifacts: index.artifacts.len(),
        bytes: tar.len() as u64,
        signed: signature.is_some(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    /// A small valid registry tree at `dir`: two agents, a script, prices.
    pub(crate) fn make_registry(dir: &Path, tag: &str) -> Vec<u8> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("agents")).unwrap();
        fs::create_dir_all(dir.join("scripts")).unwrap();
        fs::create_dir_all(dir.join("pricing")).unwrap();
        fs::write(dir.join("agents/a.toml"), format!("id = \"a\"\n# {tag}\n")).unwrap();
        fs::write(dir.join("agents/b.toml"), "id = \"b\"\n").unwrap();
        fs::write(dir.join("scripts/a.rhai"), "let x = 1;\n").unwrap();
        fs::write(dir.join("pricing/litellm-pricing.json"), "{}\n").unwrap();
        let bytes = index::build(dir, "stable").unwrap();
        fs::write(dir.join("registry.json"), &bytes).unwrap();
        bytes
    }

    pub(crate) fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlet-reg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A tar made by hand: `(path, type flag, data)` per entry.
    fn tar_of(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, kind, data) in entries {
            write_entry(&mut out, path, data);
            let at = out.len() - data.len().div_ceil(BLOCK) * BLOCK - BLOCK;
            let h = &mut out[at..at + BLOCK];
            h[156] = *kind;
            h[148..156].fill(b' ');
            let sum: u64 = h.iter().map(|&b| b as u64).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    #[test]
    fn dir_source_reads_files_and_refuses_links() {
        let dir = scratch("dirsource");
        let reg = dir.join("reg");
        let bytes = make_registry(&reg, "one");
        // The user's own path may be a link; nothing below it may.
        std::os::unix::fs::symlink(&reg, dir.join("via")).unwrap();
        assert_eq!(DirSource::new(&dir.join("via")).unwrap().index().unwrap(), bytes);
        let mut src = DirSource::new(&reg).unwrap();
        assert_eq!(src.index().unwrap(), bytes);
        assert!(src.signature().unwrap().is_none());
        let index = index::parse(&bytes).unwrap();
        assert_eq!(index.artifacts[3].path, "scripts/a.rhai");
        assert_eq!(
            src.artifact(&index.artifacts[0]).unwrap(),
            fs::read(reg.join("agents/a.toml")).unwrap()
        );
        // At most size + 1 bytes are read.
        fs::write(reg.join("agents/b.toml"), vec![b'x'; 1000]).unwrap();
        assert_eq!(
            src.artifact(&index.artifacts[1]).unwrap().len() as u64,
            index.artifacts[1].size + 1
        );
        fs::remove_file(reg.join("agents/b.toml")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", reg.join("agents/b.toml")).unwrap();
        let err = src.artifact(&index.artifacts[1]).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        fs::remove_dir_all(reg.join("scripts")).unwrap();
        std::os::unix::fs::symlink(reg.join("agents"), reg.join("scripts")).unwrap();
        let err = src.artifact(&index.artifacts[3]).unwrap_err();
        assert!(format!("{err:#}").contains("links are refused"), "{err:#}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bundle_round_trips_and_gnu_tar_reads_it() {
        let dir = scratch("tar-roundtrip");
        let reg = dir.join("reg");
        let bytes = make_registry(&reg, "one");
        let index = index::parse(&bytes).unwrap();
        let mut tar = Vec::new();
        write_entry(&mut tar, "registry.json", &bytes);
        for a in &index.artifacts {
            write_entry(&mut tar, &a.path, &fs::read(reg.join(&a.path)).unwrap());
        }
        tar.resize(tar.len() + 2 * BLOCK, 0);
        fs::write(dir.join("b.tar"), &tar).unwrap();
        let mut src = TarSource::open(&dir.join("b.tar")).unwrap();
        assert_eq!(src.index().unwrap(), bytes);
        for a in &index.artifacts {
            assert_eq!(src.artifact(a).unwrap(), fs::read(reg.join(&a.path)).unwrap());
        }
        // The system's tar lists our archive, and ours reads what it writes.
        let listed =
            std::process::Command::new("tar").arg("-tf").arg(dir.join("b.tar")).output().unwrap();
        assert!(String::from_utf8_lossy(&listed.stdout).contains("agents/a.toml"));
        let status = std::process::Command::new("tar")
            .args(["--format=ustar", "-cf"])
            .arg(dir.join("gnu.tar"))
            .arg("-C")
            .arg(&reg)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let mut src = TarSource::open(&dir.join("gnu.tar")).unwrap();
        assert_eq!(src.index().unwrap(), bytes);
        // GNU tar's default format too.
        let status = std::process::Command::new("tar")
            .arg("-cf")
            .arg(dir.join("default.tar"))
            .arg("-C")
            .arg(&reg)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(TarSource::open(&dir.join("default.tar")).unwrap().index().unwrap(), bytes);
        assert_eq!(
            src.artifact(&index.artifacts[3]).unwrap(),
            fs::read(reg.join("scripts/a.rhai")).unwrap()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bundle_with_a_link_slip_or_extra_is_refused() {
        let dir = scratch("tar-evil");
        let reg = dir.join("reg");
        let bytes = make_registry(&reg, "one");
        let open = |entries: &[(&str, u8, &[u8])]| -> Result<TarSource> {
            let path = dir.join("evil.tar");
            fs::write(&path, tar_of(entries)).unwrap();
            let mut src = TarSource::open(&path)?;
            src.index()?;
            Ok(src)
        };
        let listed: &[u8] = b"id = \"b\"\n";
        for (entries, why) in [
            (
                vec![("registry.json", b'0', &bytes[..]), ("agents/b.toml", b'2', &b""[..])],
                "symbolic link",
            ),
            (
                vec![("registry.json", b'0', &bytes[..]), ("agents/b.toml", b'1', &b""[..])],
                "hard link",
            ),
            (
                vec![("registry.json", b'0', &bytes[..]), ("agents/b.toml", b'3', &b""[..])],
                "device",
            ),
            (vec![("registry.json", b'0', &bytes[..]), ("agents/b.toml", b'6', &b""[..])], "FIFO"),
            (vec![("registry.json", b'0', &bytes[..]), ("PaxHeader", b'x', &b""[..])], "pax"),
            (vec![("registry.json", b'0', &bytes[..]), ("../agents/b.toml", b'0', listed)], "`..`"),
            (vec![("registry.json", b'0', &bytes[..]), ("agents/../../x", b'0', listed)], "`..`"),
            (
                vec![("registry.json", b'0', &bytes[..]), ("/etc/agents/b.toml", b'0', listed)],
                "absolute",
            ),
            (
                vec![
                    ("registry.json", b'0', &bytes[..]),
                    ("agents/b.toml", b'0', listed),
                    ("agents/b.toml", b'0', listed),
                ],
                "twice",
            ),
            (
                vec![("registry.json", b'0', &bytes[..]), ("agents/c.toml", b'0', listed)],
                "does not list",
            ),
            (vec![("registry.json", b'0', &bytes[..]), ("etc/", b'5', &b""[..])], "directory"),
            (vec![("agents/b.toml", b'0', listed)], "no registry.json"),
        ] {
            let err = open(&entries).err().expect(why);
            assert!(format!("{err:#}").contains(why), "{why}: {err:#}");
        }
        // Truncated: the last entry's data is cut.
        let mut tar = tar_of(&[("registry.json", b'0', &bytes[..])]);
        tar.truncate(BLOCK + 10);
        fs::write(dir.join("cut.tar"), &tar).unwrap();
        let err = TarSource::open(&dir.join("cut.tar")).err().unwrap();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
        // Not a tar at all.
        fs::write(dir.join("junk.tar"), vec![b'j'; 2048]).unwrap();
        let err = TarSource::open(&dir.join("junk.tar")).err().unwrap();
        assert!(format!("{err:#}").contains("not a tar"), "{err:#}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
