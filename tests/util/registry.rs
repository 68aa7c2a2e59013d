//! This repository's registry as a tree on disk, for the registry tests and
//! `make bench`: built by the binary under test exactly as `make registry`
//! builds it (`ringlet registry index <dir> --repo <this repository>`), and
//! re-indexed the same way after a test changes a file. `sha256` is
//! coreutils', for checking the binary's commit from outside it.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The repository this test binary was built from.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `ringlet registry index <dir> <args> --json` with `bin`; the commit.
fn run_index(bin: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(["registry", "index"])
        .arg(dir)
        .args(args)
        .arg("--json")
        .env_clear()
        .env("HOME", dir.parent().unwrap_or(dir))
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("running ringlet registry index");
    assert!(out.status.success(), "registry index: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["commit"].as_str().unwrap().to_string()
}

/// Assembles this repository's registry into `dir` (what `make registry`
/// does); returns its commit.
pub fn this_registry(bin: &str, dir: &Path) -> String {
    run_index(bin, dir, &["--repo", REPO])
}

/// (Re)writes `dir/registry.json` for the files under it; returns the commit.
pub fn index(bin: &str, dir: &Path, channel: &str) -> String {
    run_index(bin, dir, &["--channel", channel])
}

/// SHA-256 by coreutils' sha256sum: computed apart from the binary.
pub fn sha256(bytes: &[u8]) -> String {
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A copy of the registry at `from` with `agents/claude.toml` changed (so
/// one artifact differs); returns its commit.
pub fn changed_copy(bin: &str, from: &Path, to: &Path, note: &str) -> String {
    copy_tree(from, to);
    let claude = to.join("agents/claude.toml");
    let mut text = fs::read_to_string(&claude).unwrap();
    text.push_str(&format!("\n# {note}\n"));
    fs::write(&claude, text).unwrap();
    index(bin, to, "stable")
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
