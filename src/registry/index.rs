//! `registry.json`: parsing with every rule of the format (REGISTRY.md),
//! building it for a tree (`make registry`, a publisher's own registry), the
//! commit (the SHA-256 of its exact bytes), and [`Source`], the one shape
//! every place a registry comes from has (a directory and a tar bundle in
//! `bundle.rs`, HTTP in `fetch.rs`).
//!
//! The rules are strict because a registry is code arriving from elsewhere:
//! an artifact path is exactly `<kind dir>/<name>`, with a name of plain
//! characters that cannot be `.`, `..`, hidden, absolute or hold a separator,
//! so no later step (staging, import, the readers) ever has to think about
//! where a path leads. Anything the rules refuse is refused whole, before a
//! byte of any artifact is fetched.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::{Artifact, FORMAT, Index, Kind, PRICING_PATH};

/// The most `registry.json` may hold. This repository's is about 4 KiB; a
/// registry with thousands of artifacts still fits.
pub const INDEX_CAP: u64 = 1 << 20;

/// The most one artifact may hold. The LiteLLM pricing file, the biggest,
/// is about 50 KiB as this repository trims it and about 1.5 MiB whole.
pub const ARTIFACT_CAP: u64 = 16 << 20;

/// The most all artifacts together may hold, checked before any is read: a
/// `registry.json` within [`INDEX_CAP`] can list thousands of artifacts of
/// [`ARTIFACT_CAP`] each, over 100 GB a sync would write to the config
/// dir's disk. The same as a bundle's cap (`bundle::BUNDLE_CAP`), so what a
/// sync accepts can always be exported; this repository's registry is about
/// 150 KiB.
pub const TOTAL_CAP: u64 = 64 << 20;

/// The longest artifact file name; with its kind's directory a path always
/// fits a ustar header's 100-byte name field (bundle.rs).
const NAME_MAX: usize = 80;

/// The signature file beside `registry.json`.
pub const SIGNATURE_FILE: &str = "registry.json.minisig";

/// The most a signature file may hold (minisign's are about 300 bytes).
pub const SIGNATURE_CAP: u64 = 4 << 10;

/// A place a registry comes from: a directory, a tar bundle, a URL.
pub trait Source {
    /// The source for messages: its URL, directory or file.
    fn describe(&self) -> String;
    /// The bytes of `registry.json`, at most [`INDEX_CAP`].
    fn index(&mut self) -> Result<Vec<u8>>;
    /// The bytes of `registry.json.minisig`, `None` if the source has none.
    fn signature(&mut self) -> Result<Option<Vec<u8>>>;
    /// The bytes of one artifact; reads at most `a.size + 1` bytes, so that
    /// an oversized artifact is seen as such without reading it all.
    fn artifact(&mut self, a: &Artifact) -> Result<Vec<u8>>;
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::fsutil::hex(&Sha256::digest(bytes))
}

/// A registry's commit: the SHA-256 of the exact bytes of its `registry.json`.
pub fn commit_of(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

/// Whether `s` is a commit (or an artifact's hash): 64 lower-case hex digits.
pub fn is_commit(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses `registry.json` and checks every rule: the format version, the
/// channel, each artifact's path, size and hash, paths sorted and unique.
pub fn parse(bytes: &[u8]) -> Result<Index> {
    if bytes.len() as u64 > INDEX_CAP {
        bail!("registry.json is {} bytes, over the {INDEX_CAP}-byte limit", bytes.len());
    }
    let index: Index = serde_json::from_slice(bytes).context("registry.json is not valid")?;
    if index.format != FORMAT {
        bail!(
            "registry.json has format {}, this ringlet reads format {FORMAT} (a newer ringlet may read it)",
            index.format
        );
    }
    check_channel(&index.channel)?;
    let mut previous: Option<&str> = None;
    for a in &index.artifacts {
        check_path(a.kind, &a.path).with_context(|| format!("registry.json: {:?}", a.path))?;
        if a.size > ARTIFACT_CAP {
            bail!(
                "registry.json: {} is {} bytes, over the {ARTIFACT_CAP}-byte limit",
                a.path,
                a.size
            );
        }
        if !is_commit(&a.sha256) {
            bail!("registry.json: {}: sha256 must be 64 lower-case hex digits", a.path);
        }
        if let Some(p) = previous
            && p >= a.path.as_str()
        {
            bail!(
                "registry.json: artifacts must be sorted by path and unique ({:?} after {p:?})",
                a.path
            );
        }
        previous = Some(&a.path);
    }
    let total: u64 = index.artifacts.iter().map(|a| a.size).sum();
    if total > TOTAL_CAP {
        bail!(
            "registry.json lists {total} bytes in all, over the {TOTAL_CAP}-byte limit of a \
             registry: refused before anything is fetched"
        );
    }
    Ok(index)
}

/// A channel name: 1 to 64 of `[A-Za-z0-9._-]`, not starting with a dot (it
/// is substituted into a URL template).
pub fn check_channel(channel: &str) -> Result<()> {
    if channel.is_empty()
        || channel.len() > 64
        || channel.starts_with('.')
        || !channel.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        bail!("channel {channel:?} must be 1 to 64 of A-Z a-z 0-9 . _ - and not start with a dot");
    }
    Ok(())
}

/// An artifact path: `<kind dir>/<name>`, one level, a plain name with the
/// kind's extension (the pricing file has its one fixed path).
pub fn check_path(kind: Kind, path: &str) -> Result<()> {
    let Some((dir, name)) = path.split_once('/') else {
        bail!("an artifact path must be <{}>/<name>", kind.dir());
    };
    if dir != kind.dir() {
        bail!("a {} must be under {}/, not {dir:?}", kind.as_str(), kind.dir());
    }
    check_name(name)?;
    let ext = match kind {
        Kind::Script => ".rhai",
        Kind::Pricing if path != PRICING_PATH => bail!("the pricing file must be {PRICING_PATH}"),
        Kind::Pricing => ".json",
        Kind::Agent | Kind::Provider | Kind::Template | Kind::Catalog => ".toml",
    };
    if !name.ends_with(ext) || name.len() == ext.len() {
        bail!("a {} must be named <name>{ext}", kind.as_str());
    }
    Ok(())
}

/// A file name: 1 to [`NAME_MAX`] of `[A-Za-z0-9._-]`, not starting with a
/// dot. This refuses `.`, `..`, hidden files, separators of any platform,
/// sub-directories, control characters and our own temp names at once.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || name.starts_with('.')
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        bail!(
            "{name:?}: a file name must be 1 to {NAME_MAX} of A-Z a-z 0-9 . _ - and not start with a dot \
             (no sub-directories, no `..`, no absolute path)"
        );
    }
    Ok(())
}

/// Indexes the registry tree at `dir`: every file in each kind's directory,
/// which must be a regular file (a link is refused) with a valid name.
/// Other top-level entries (a README, `registry.json` itself) are not part
/// of the registry. Returns the bytes of `registry.json` (pretty, one
/// trailing newline), already checked by [`parse`].
pub fn build(dir: &Path, channel: &str) -> Result<Vec<u8>> {
    check_channel(channel)?;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut artifacts = Vec::new();
    for kind in Kind::ALL {
        let sub = dir.join(kind.dir());
        let meta = match fs::symlink_metadata(&sub) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", sub.display())),
        };
        if !meta.is_dir() {
            bail!("{} is not a directory (links are refused)", sub.display());
        }
        for entry in fs::read_dir(&sub).with_context(|| format!("listing {}", sub.display()))? {
            let entry = entry.with_context(|| format!("listing {}", sub.display()))?;
            let file = entry.path();
            let name = entry.file_name();
            let name = name.to_str().with_context(|| format!("{}: not UTF-8", file.display()))?;
            let path = format!("{}/{name}", kind.dir());
            check_path(kind, &path).with_context(|| format!("{}", file.display()))?;
            let meta = fs::symlink_metadata(&file)?;
            if !meta.is_file() {
                bail!(
                    "{}: only regular files may be in a registry (links are refused)",
                    file.display()
                );
            }
            let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if bytes.len() as u64 > ARTIFACT_CAP {
                bail!("{}: over the {ARTIFACT_CAP}-byte limit", file.display());
            }
            artifacts.push(Artifact {
                kind,
                path,
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            });
        }
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    let index = Index { format: FORMAT, channel: channel.to_string(), artifacts };
    let mut bytes = serde_json::to_vec_pretty(&index)?;
    bytes.push(b'\n');
    parse(&bytes)?;
    Ok(bytes)
}

/// Where each kind comes from in this repository (REGISTRY.md's layout
/// table): `(kind, source dir relative to the repository, extension)`. The
/// pricing file is the one exception, mapped by [`assemble`].
const REPO_LAYOUT: &[(Kind, &str, &str)] = &[
    (Kind::Agent, "manifests/agents", ".toml"),
    (Kind::Provider, "manifests/providers", ".toml"),
    (Kind::Script, "scripts", ".rhai"),
    (Kind::Template, "manifests/templates", ".toml"),
    (Kind::Catalog, "manifests/catalog", ".toml"),
];

/// Copies this repository's registry sources (`manifests/`, `scripts/`) from
/// `repo` into the registry layout at `out` (which must not exist or be
/// empty), then writes `out/registry.json`. Returns its bytes. `make
/// registry` runs this through `ringlet registry index --repo`.
pub fn assemble(repo: &Path, out: &Path, channel: &str) -> Result<Vec<u8>> {
    if fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} is not empty; remove it first", out.display());
    }
    let copy = |from: &Path, kind: Kind, name: &str| -> Result<()> {
        let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        // A tree to publish: directories as the umask makes them (a web
        // server may run as another user), not write_atomic's private 0700.
        let dir = out.join(kind.dir());
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::fsutil::write_atomic(&dir.join(name), &bytes, 0o644)
    };
    for &(kind, src, ext) in REPO_LAYOUT {
        let dir = repo.join(src);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(ext) && !name.starts_with('.') {
                copy(&entry.path(), kind, &name)?;
            }
        }
    }
    let pricing = repo.join("manifests/pricing.json");
    copy(&pricing, Kind::Pricing, PRICING_PATH.rsplit('/').next().unwrap_or_default())?;
    let bytes = build(out, channel)?;
    crate::fsutil::write_atomic(&out.join("registry.json"), &bytes, 0o644)?;
    Ok(bytes)
}

/// `ringlet registry index <dir> [--channel C] [--repo DIR]` (hidden; for
/// publishers and `make registry`): indexes the tree at `dir`, after first
/// assembling this repository's registry into it with `--repo`, writes
/// `dir/registry.json` and prints the commit. Local only: no daemon.
pub fn cli(inv: &crate::cli::Invocation, json: bool) -> Result<()> {
    let dir = Path::new(inv.arg("dir").unwrap_or_default());
    let channel = inv.value("channel").unwrap_or("stable");
    let bytes = match inv.value("repo") {
        Some(repo) => assemble(Path::new(repo), dir, channel)?,
        None => {
            let bytes = build(dir, channel)?;
            crate::fsutil::write_atomic(&dir.join("registry.json"), &bytes, 0o644)?;
            bytes
        }
    };
    let index = parse(&bytes)?;
    let commit = commit_of(&bytes);
    let mut out = crate::cli::Out::new();
    if json {
        out.json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "channel": index.channel,
            "commit": commit,
            "artifacts": index.artifacts.len(),
        }))?;
    } else {
        out.line(format_args!(
            "{}: {} artifacts, channel {}, commit {commit}",
            dir.join("registry.json").display(),
            index.artifacts.len(),
            index.channel
        ))?;
    }
    Ok(out.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_json(artifacts: &str) -> String {
        format!(r#"{{"format":1,"channel":"stable","artifacts":[{artifacts}]}}"#)
    }

    fn one(kind: &str, path: &str) -> String {
        format!(r#"{{"kind":"{kind}","path":"{path}","size":3,"sha256":"{}"}}"#, "a".repeat(64))
    }

    #[test]
    fn commit_is_the_sha256_of_the_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(commit_of(b""), sha256_hex(b""));
        assert!(is_commit(&commit_of(b"x")));
        assert!(!is_commit(&commit_of(b"x").to_uppercase()));
    }

    #[test]
    fn a_valid_index_parses() {
        let text = index_json(&format!(
            "{},{},{}",
            one("agent", "agents/claude.toml"),
            one("pricing", "pricing/litellm-pricing.json"),
            one("script", "scripts/claude.rhai")
        ));
        let index = parse(text.as_bytes()).unwrap();
        assert_eq!(index.artifacts.len(), 3);
        assert_eq!(index.channel, "stable");
    }

    #[test]
    fn every_bad_path_is_refused() {
        for (kind, path, why) in [
            ("agent", "/agents/claude.toml", "must be under agents/"),
            ("agent", "agents/../claude.toml", "no sub-directories"),
            ("agent", "agents/..", "file name"),
            ("agent", "agents/.", "file name"),
            ("agent", "agents/", "file name"),
            ("agent", "agents/sub/claude.toml", "file name"),
            ("agent", "agents/a\\b.toml", "file name"),
            ("agent", "agents/.hidden.toml", "file name"),
            ("agent", "agents//claude.toml", "file name"),
            ("agent", "claude.toml", "<agents>/<name>"),
            ("agent", "scripts/claude.toml", "must be under agents/"),
            ("agent", "agents/claude.rhai", "<name>.toml"),
            ("agent", "agents/.toml", "file name"),
            ("script", "scripts/x.toml", "<name>.rhai"),
            ("pricing", "pricing/other.json", "must be pricing/litellm-pricing.json"),
        ] {
            let err = parse(index_json(&one(kind, path)).as_bytes()).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(why), "{path}: {msg}");
        }
    }

    #[test]
    fn every_other_rule_is_checked() {
        let a = one("agent", "agents/a.toml");
        let b = one("agent", "agents/b.toml");
        for (text, why) in [
            ("not json".to_string(), "not valid"),
            (index_json(&format!("{b},{a}")), "sorted"),
            (index_json(&format!("{a},{a}")), "unique"),
            (index_json(&a).replace("\"format\":1", "\"format\":2"), "format 2"),
            (index_json(&a).replace("stable", ""), "channel"),
            (index_json(&a).replace("stable", "../x"), "channel"),
            (index_json(&a).replace(&"a".repeat(64), &"A".repeat(64)), "hex"),
            (index_json(&a).replace(&"a".repeat(64), "abc"), "hex"),
            (index_json(&a).replace("\"size\":3", "\"size\":99999999999"), "limit"),
            (index_json(&a).replace("\"size\":3", "\"size\":-1"), "not valid"),
            (index_json(&a).replace("\"kind\":\"agent\"", "\"kind\":\"binary\""), "not valid"),
            (index_json(&a).replace("\"size\"", "\"extra\":1,\"size\""), "not valid"),
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(format!("{err:#}").contains(why), "{text}: {err:#}");
        }
        let big = vec![b' '; INDEX_CAP as usize + 1];
        assert!(format!("{:#}", parse(&big).unwrap_err()).contains("limit"));
    }

    #[test]
    fn build_indexes_a_tree_and_refuses_links() {
        let dir = std::env::temp_dir().join(format!("ringlet-index-build-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("agents")).unwrap();
        fs::create_dir_all(dir.join("scripts")).unwrap();
        fs::write(dir.join("agents/b.toml"), "id = \"b\"\n").unwrap();
        fs::write(dir.join("agents/a.toml"), "id = \"a\"\n").unwrap();
        fs::write(dir.join("scripts/a.rhai"), "1").unwrap();
        fs::write(dir.join("README.md"), "not part of it").unwrap();
        let bytes = build(&dir, "beta").unwrap();
        let index = parse(&bytes).unwrap();
        let paths: Vec<_> = index.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["agents/a.toml", "agents/b.toml", "scripts/a.rhai"]);
        assert_eq!(index.channel, "beta");
        assert_eq!(index.artifacts[2].sha256, sha256_hex(b"1"));
        assert_eq!(index.artifacts[2].size, 1);
        std::os::unix::fs::symlink("/etc/passwd", dir.join("agents/c.toml")).unwrap();
        assert!(format!("{:#}", build(&dir, "beta").unwrap_err()).contains("links are refused"));
        fs::remove_file(dir.join("agents/c.toml")).unwrap();
        fs::write(dir.join("agents/c.txt"), "").unwrap();
        assert!(format!("{:#}", build(&dir, "beta").unwrap_err()).contains("<name>.toml"));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The built-ins embedded in the binary are byte for byte this
    /// repository's registry (`make registry`), both ways: a file added to
    /// `manifests/` or `scripts/` but not embedded, or embedded from
    /// elsewhere, fails here.
    #[test]
    fn the_embedded_builtins_are_this_repositorys_registry() {
        use std::collections::BTreeMap;
        let out = std::env::temp_dir().join(format!("ringlet-index-drift-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        let bytes = assemble(Path::new(env!("CARGO_MANIFEST_DIR")), &out, "stable").unwrap();
        let index = parse(&bytes).unwrap();
        assert_eq!(fs::read(out.join("registry.json")).unwrap(), bytes);
        let embedded: [(Kind, &[(&str, &str)]); 5] = [
            (Kind::Agent, crate::manifests::BUILTIN_AGENTS),
            (Kind::Provider, crate::manifests::BUILTIN_PROVIDERS),
            (Kind::Script, crate::scripting::BUILTIN),
            (Kind::Template, crate::templates::BUILTIN),
            (Kind::Catalog, crate::catalog::BUILTIN),
        ];
        for (kind, table) in embedded {
            let in_tree: BTreeMap<String, Vec<u8>> = index
                .artifacts
                .iter()
                .filter(|a| a.kind == kind)
                .map(|a| {
                    let name = a.path.rsplit('/').next().unwrap().to_string();
                    (name, fs::read(out.join(&a.path)).unwrap())
                })
                .collect();
            let built_in: BTreeMap<String, Vec<u8>> =
                table.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect();
            assert_eq!(
                in_tree.keys().collect::<Vec<_>>(),
                built_in.keys().collect::<Vec<_>>(),
                "{kind:?}: the registry and the built-ins list different files"
            );
            assert!(in_tree == built_in, "{kind:?}: a built-in differs from its registry file");
        }
        let pricing = fs::read(out.join(PRICING_PATH)).unwrap();
        assert_eq!(pricing, crate::usage::pricing::EMBEDDED.as_bytes());
        for a in &index.artifacts {
            let data = fs::read(out.join(&a.path)).unwrap();
            assert_eq!((data.len() as u64, sha256_hex(&data)), (a.size, a.sha256.clone()));
        }
        fs::remove_dir_all(&out).unwrap();
    }
}
