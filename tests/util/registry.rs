//! This repository's registry as a tree on disk, for the registry tests and
//! `make bench`: `manifests/`, `scripts/` and the price file laid out as
//! `make registry` lays them out (REGISTRY.md), indexed into `registry.json`
//! here, with hashes by coreutils' `sha256sum` (apart from the binary under
//! test). Also: a copy with one artifact changed, for a second commit.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

/// The repository this test binary was built from.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Copies this repository's artifacts into a registry tree at `dir` (the
/// layout of REGISTRY.md) and writes its `registry.json`; returns the commit.
pub fn this_registry(dir: &Path) -> String {
    let repo = Path::new(REPO);
    let copy_all = |from: &Path, ext: &str, to: &str| {
        // Templates and the catalog arrive with helper templates' work.
        let Ok(entries) = fs::read_dir(from) else { return };
        fs::create_dir_all(dir.join(to)).unwrap();
        for entry in entries.flatten() {
            let name = entry.file_name().into_string().unwrap();
            if name.ends_with(ext) {
                fs::copy(entry.path(), dir.join(to).join(&name)).unwrap();
            }
        }
    };
    copy_all(&repo.join("manifests/agents"), ".toml", "agents");
    copy_all(&repo.join("manifests/providers"), ".toml", "providers");
    copy_all(&repo.join("scripts"), ".rhai", "scripts");
    copy_all(&repo.join("manifests/templates"), ".toml", "templates");
    copy_all(&repo.join("manifests/catalog"), ".toml", "catalog");
    fs::create_dir_all(dir.join("pricing")).unwrap();
    fs::copy(repo.join("manifests/pricing.json"), dir.join("pricing/litellm-pricing.json"))
        .unwrap();
    index(dir, "stable")
}

/// (Re)writes `dir/registry.json` for the files under it; returns the commit.
pub fn index(dir: &Path, channel: &str) -> String {
    let mut artifacts = Vec::new();
    for (kind, sub) in [
        ("agent", "agents"),
        ("provider", "providers"),
        ("script", "scripts"),
        ("pricing", "pricing"),
        ("template", "templates"),
        ("catalog", "catalog"),
    ] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().into_string().unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            artifacts.push(json!({"kind": kind, "path": format!("{sub}/{name}"),
                                  "size": bytes.len(), "sha256": sha256(&bytes)}));
        }
    }
    artifacts.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let text = serde_json::to_vec_pretty(
        &json!({"format": 1, "channel": channel, "artifacts": artifacts}),
    )
    .unwrap();
    fs::write(dir.join("registry.json"), &text).unwrap();
    sha256(&text)
}

/// SHA-256 by coreutils' sha256sum: the test computes it apart from the binary.
pub fn sha256(bytes: &[u8]) -> String {
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A copy of the registry at `from` with `agents/claude.toml` changed (so
/// one artifact differs); returns its commit.
pub fn changed_copy(from: &Path, to: &Path, note: &str) -> String {
    copy_tree(from, to);
    let claude = to.join("agents/claude.toml");
    let mut text = fs::read_to_string(&claude).unwrap();
    text.push_str(&format!("\n# {note}\n"));
    fs::write(&claude, text).unwrap();
    index(to, "stable")
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
