//! The registry's offline mechanics through the binary: `ringlet registry
//! index` (hidden; `make registry` runs it with `--repo`) assembles this
//! repository's registry, indexes it deterministically, and refuses trees a
//! registry cannot hold. The store itself (staging, verification, the
//! `current` swap, bundles, signatures, rollback) is unit-tested in
//! `src/registry/`; the syncs over the CLI, HTTP and the daemon are in
//! `registry_sync.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::util::Env;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file below `dir`, as relative `/` paths.
fn files(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name);
        }
    }
}

#[test]
fn index_assembles_this_repository_as_a_registry() {
    let env = Env::new("registry-index-repo");
    let repo = env!("CARGO_MANIFEST_DIR");
    let reg = env.root.join("reg");
    let reg_s = reg.to_str().unwrap();
    let out = env.cmd(&["registry", "index", reg_s, "--repo", repo]).ok();
    let bytes = fs::read(reg.join("registry.json")).unwrap();
    let commit = sha256_hex(&bytes);
    assert!(out.contains(&format!("commit {commit}")), "{out}");
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(index["format"], 1);
    assert_eq!(index["channel"], "stable");
    let artifacts = index["artifacts"].as_array().unwrap();
    // Every artifact is there with its size and hash, and nothing else is.
    let mut listed = BTreeSet::from(["registry.json".to_string()]);
    let mut kinds = BTreeSet::new();
    for a in artifacts {
        let path = a["path"].as_str().unwrap();
        let data = fs::read(reg.join(path)).unwrap();
        assert_eq!(data.len() as u64, a["size"].as_u64().unwrap(), "{path}");
        assert_eq!(sha256_hex(&data), a["sha256"].as_str().unwrap(), "{path}");
        kinds.insert(a["kind"].as_str().unwrap().to_string());
        listed.insert(path.to_string());
    }
    let mut on_disk = BTreeSet::new();
    files(&reg, "", &mut on_disk);
    assert_eq!(on_disk, listed);
    for kind in ["agent", "provider", "script", "pricing", "template", "catalog"] {
        assert!(kinds.contains(kind), "{kind} missing: {kinds:?}");
    }
    // The same sources as the repository's files, under the layout's names.
    assert_eq!(
        fs::read(reg.join("agents/claude.toml")).unwrap(),
        fs::read(Path::new(repo).join("manifests/agents/claude.toml")).unwrap()
    );
    assert_eq!(
        fs::read(reg.join("pricing/litellm-pricing.json")).unwrap(),
        fs::read(Path::new(repo).join("manifests/pricing.json")).unwrap()
    );
    assert!(!reg.join("scripts/README.md").exists());

    // Deterministic: the same sources give the same commit; re-indexing the
    // tree in place gives the same bytes; a channel changes the commit.
    let again = env.root.join("again");
    let json =
        env.cmd(&["registry", "index", again.to_str().unwrap(), "--repo", repo, "--json"]).json();
    assert_eq!(json["commit"], commit.as_str());
    assert_eq!(json["artifacts"].as_u64().unwrap(), artifacts.len() as u64);
    env.cmd(&["registry", "index", reg_s]).ok();
    assert_eq!(fs::read(reg.join("registry.json")).unwrap(), bytes);
    let beta = env.cmd(&["registry", "index", reg_s, "--channel", "beta", "--json"]).json();
    assert_ne!(beta["commit"], commit.as_str());
    assert_eq!(beta["channel"], "beta");
    // Hidden: not in the group's help.
    let help = env.cmd(&["registry", "--help"]).ok();
    assert!(!help.contains("index"), "{help}");
}

#[test]
fn index_refuses_what_a_registry_cannot_hold() {
    let env = Env::new("registry-index-bad");
    let reg = env.root.join("reg");
    let reg_s = reg.to_str().unwrap();
    fs::create_dir_all(reg.join("agents")).unwrap();
    fs::write(reg.join("agents/a.toml"), "id = \"a\"\n").unwrap();
    env.cmd(&["registry", "index", reg_s]).ok();
    let good = fs::read(reg.join("registry.json")).unwrap();
    let refuse = |why: &str| {
        let (_, err) = env.cmd(&["registry", "index", reg_s]).code(1);
        assert!(err.contains(why), "{why}: {err}");
        // Nothing written on a refusal.
        assert_eq!(fs::read(reg.join("registry.json")).unwrap(), good);
    };
    std::os::unix::fs::symlink("/etc/passwd", reg.join("agents/link.toml")).unwrap();
    refuse("links are refused");
    fs::remove_file(reg.join("agents/link.toml")).unwrap();
    fs::create_dir(reg.join("agents/sub.toml")).unwrap();
    refuse("only regular files");
    fs::remove_dir(reg.join("agents/sub.toml")).unwrap();
    fs::write(reg.join("agents/white space.toml"), "").unwrap();
    refuse("a file name must be");
    fs::remove_file(reg.join("agents/white space.toml")).unwrap();
    fs::write(reg.join("agents/.hidden.toml"), "").unwrap();
    refuse("not start with a dot");
    fs::remove_file(reg.join("agents/.hidden.toml")).unwrap();
    fs::write(reg.join("agents/readme.md"), "").unwrap();
    refuse("<name>.toml");
    fs::remove_file(reg.join("agents/readme.md")).unwrap();
    fs::create_dir_all(reg.join("pricing")).unwrap();
    fs::write(reg.join("pricing/other.json"), "{}").unwrap();
    refuse("pricing/litellm-pricing.json");
    fs::remove_dir_all(reg.join("pricing")).unwrap();
    fs::remove_dir_all(reg.join("agents")).unwrap();
    std::os::unix::fs::symlink(env.root.join("elsewhere"), reg.join("agents")).unwrap();
    refuse("links are refused");
    fs::remove_file(reg.join("agents")).unwrap();
    let missing = env.root.join("missing");
    let (_, err) = env.cmd(&["registry", "index", missing.to_str().unwrap()]).code(1);
    assert!(err.contains("not a directory") && !missing.exists(), "{err}");
    let (_, err) = env.cmd(&["registry", "index", reg_s, "--channel", "../x"]).code(1);
    assert!(err.contains("channel"), "{err}");
    // --repo never writes into a tree that is not empty.
    let repo = env!("CARGO_MANIFEST_DIR");
    let (_, err) = env.cmd(&["registry", "index", reg_s, "--repo", repo]).code(1);
    assert!(err.contains("not empty"), "{err}");
}
