//! `ringlet doctor` (issue 15 item 5): every check a user can get wrong, each
//! ok / warn / fail with what was found and the fix, in `--json` and in the
//! human output: a plain-file key planted beside the profiles' own, stale
//! alias shims (no profile, no ringlet to run), the shim dir missing from
//! PATH, a daemon whose binary was replaced since it started. Exit 1 when a
//! check fails, 0 with warnings only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{BIN, Env};

/// The marker line every shim carries (`src/profiles/aliases.rs`, kept by
/// the PATH-finding format too).
const MARKER: &str = "# ringlet-shim: written by ringlet; `ringlet aliases uninstall` removes it";

/// Writes a shim for `alias` in the world's `~/.local/bin`, in the format
/// that hard-codes the binary (what every shim was before issue 15).
fn plant_shim(env: &Env, alias: &str, ringlet: &Path) -> PathBuf {
    let dir = env.home.join(".local").join("bin");
    fs::create_dir_all(&dir).unwrap();
    let shim = dir.join(alias);
    let text = format!(
        "#!/bin/sh\n{MARKER}\nexec '{}' profiles run {alias} -- \"$@\"\n",
        ringlet.display()
    );
    fs::write(&shim, text).unwrap();
    fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    shim
}

/// Writes a shim in the format that finds `ringlet` on PATH first and falls
/// back to the recorded path (issue 15 item 4).
fn plant_path_shim(env: &Env, alias: &str, recorded: &Path) -> PathBuf {
    let dir = env.home.join(".local").join("bin");
    fs::create_dir_all(&dir).unwrap();
    let shim = dir.join(alias);
    let text = format!(
        "#!/bin/sh\n{MARKER}\nr=$(command -v ringlet) || r='{}'\nexec \"$r\" profiles run {alias} -- \"$@\"\n",
        recorded.display()
    );
    fs::write(&shim, text).unwrap();
    fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    shim
}

/// The world's PATH with its shim dir in front.
fn path_with_shims(env: &Env) -> std::ffi::OsString {
    let mut dirs = vec![env.home.join(".local").join("bin")];
    dirs.extend(std::env::split_paths(&env.path_var()));
    std::env::join_paths(dirs).unwrap()
}

fn checks(report: &Value) -> Vec<Value> {
    report["checks"].as_array().unwrap_or_else(|| panic!("no checks: {report}")).clone()
}

/// The checks called `name`.
fn named(report: &Value, name: &str) -> Vec<Value> {
    checks(report).into_iter().filter(|c| c["name"] == name).collect()
}

fn one(report: &Value, name: &str) -> Value {
    let found = named(report, name);
    assert_eq!(found.len(), 1, "one `{name}` check in {report:#}");
    found[0].clone()
}

fn doctor_json(env: &Env, path: &std::ffi::OsStr, code: i32) -> Value {
    let (out, _) = env.cmd(&["doctor", "--json"]).env("PATH", path).code(code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{out}"))
}

#[test]
fn json_reports_each_check_with_a_planted_key_and_stale_shims() {
    let env = Env::new("doctor-json");
    env.create_profile("claude", "work");
    env.create_profile("claude", "spare");
    // A key planted by hand in the file store, readable by everyone, that
    // no profile uses: the daemon only sweeps such files at its start.
    let secrets = env.config.join("secrets");
    fs::write(secrets.join("ghost"), "sk-planted-0123456789abcdefghijklmnop").unwrap();
    fs::set_permissions(secrets.join("ghost"), fs::Permissions::from_mode(0o644)).unwrap();
    // Shims: one whose profile is gone, one that hard-codes a binary that is
    // gone, one that finds ringlet on PATH (none there) and records a path
    // that is gone, and a good one.
    plant_shim(&env, "gone", Path::new(BIN));
    plant_shim(&env, "work", Path::new("/nonexistent/ringlet"));
    plant_path_shim(&env, "spare", Path::new("/nonexistent/ringlet"));

    let report = doctor_json(&env, &path_with_shims(&env), 1);
    assert_eq!(report["ok"], false, "{report:#}");
    for c in checks(&report) {
        assert!(["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap()), "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
        assert!(c.get("fix").is_some(), "every check says its fix (or null): {c}");
        if c["status"] != "ok" {
            assert!(c["fix"].as_str().is_some_and(|f| !f.is_empty()), "a problem has a fix: {c}");
        }
    }
    // Every area is there: the daemon's and the CLI's own.
    for name in [
        "daemon",
        "version",
        "config",
        "manifests",
        "agent",
        "keystore",
        "keys",
        "keyfiles",
        "sandbox",
        "http",
        "registry",
        "ringlet",
        "path",
        "shims",
    ] {
        assert!(!named(&report, name).is_empty(), "no `{name}` check in {report:#}");
    }

    // The planted key: named, readable by others (a failure), used by no
    // profile; the profiles' own plain-file keys are named with the reason.
    let keyfiles = one(&report, "keyfiles");
    assert_eq!(keyfiles["status"], "fail", "{keyfiles}");
    let detail = keyfiles["detail"].as_str().unwrap();
    assert!(detail.contains("ghost"), "{detail}");
    assert!(detail.contains("644"), "the mode: {detail}");
    assert!(detail.contains("no profile"), "{detail}");
    assert!(detail.contains("work") && detail.contains("spare"), "{detail}");
    assert!(detail.contains("RINGLET_SECRET_STORE"), "why plain files: {detail}");
    assert!(!detail.contains("sk-"), "never a key: {detail}");
    let fix = keyfiles["fix"].as_str().unwrap();
    assert!(fix.contains("chmod 600") || fix.contains("rm "), "{fix}");

    // The stale shims, each with its cause.
    let shims = one(&report, "shims");
    assert_eq!(shims["status"], "warn", "{shims}");
    let detail = shims["detail"].as_str().unwrap();
    assert!(detail.contains("gone: no profile"), "{detail}");
    assert!(detail.contains("work: ") && detail.contains("/nonexistent/ringlet"), "{detail}");
    assert!(detail.contains("spare: "), "{detail}");
    assert!(shims["fix"].as_str().unwrap().contains("ringlet aliases"), "{shims}");
    // The shim dir is on this PATH.
    assert_eq!(one(&report, "path")["status"], "ok", "{report:#}");
    // The daemon is this ringlet.
    let version = one(&report, "version");
    assert_eq!(version["status"], "ok", "{version}");
    assert!(version["detail"].as_str().unwrap().contains(env!("CARGO_PKG_VERSION")), "{version}");
    // Not on PATH here: ringlet is run by its full path.
    assert_eq!(one(&report, "ringlet")["status"], "warn", "{report:#}");

    // Fixed: the key file goes, the shims go; warnings remain, exit 0.
    fs::remove_file(secrets.join("ghost")).unwrap();
    for alias in ["gone", "work", "spare"] {
        fs::remove_file(env.home.join(".local/bin").join(alias)).unwrap();
    }
    plant_shim(&env, "work", Path::new(BIN));
    let report = doctor_json(&env, &path_with_shims(&env), 0);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(one(&report, "shims")["status"], "ok", "{report:#}");
    let keyfiles = one(&report, "keyfiles");
    assert_eq!(keyfiles["status"], "ok", "pinned by RINGLET_SECRET_STORE: {keyfiles}");
    // The shim dir is not on the world's own PATH, and a shim is there.
    let report = doctor_json(&env, &env.path_var(), 0);
    let path = one(&report, "path");
    assert_eq!(path["status"], "warn", "{path}");
    assert!(path["detail"].as_str().unwrap().contains("not on your PATH"), "{path}");
    assert!(path["fix"].as_str().unwrap().contains("export PATH="), "{path}");
}

#[test]
fn human_output_names_each_problem_and_its_fix() {
    let env = Env::new("doctor-human");
    env.create_profile("claude", "work");
    let secrets = env.config.join("secrets");
    fs::write(secrets.join("ghost"), "sk-planted-0123456789abcdefghijklmnop").unwrap();
    fs::set_permissions(secrets.join("ghost"), fs::Permissions::from_mode(0o644)).unwrap();
    plant_shim(&env, "gone", Path::new(BIN));
    let (out, err) = env.cmd(&["doctor"]).env("PATH", path_with_shims(&env)).code(1);
    assert!(out.contains("FAIL keyfiles"), "{out}");
    assert!(out.contains("warn shims"), "{out}");
    assert!(out.contains("ok   config"), "{out}");
    assert!(out.contains("fix: chmod 600"), "{out}");
    assert!(out.contains("fix: ringlet aliases uninstall gone"), "{out}");
    // One summary line at the end.
    let last = out.lines().last().unwrap();
    assert!(last.contains("1 failed") && last.contains("warning"), "{out}");
    assert!(!out.contains('\x1b'), "no colour in a pipe: {out:?}");
    assert!(err.is_empty(), "{err}");
    // Without a daemon the checks that need none still run, and none starts.
    env.cmd(&["daemon", "stop"]).ok();
    let (out, _) = env.cmd(&["doctor"]).env("PATH", path_with_shims(&env)).code(1);
    assert!(out.contains("FAIL keyfiles"), "{out}");
    assert!(out.contains("warn shims"), "{out}");
    assert!(out.contains("ok   config"), "{out}");
    assert!(out.contains("ok   manifests"), "{out}");
    assert!(!env.socket().exists(), "doctor never starts a daemon");
}

#[test]
fn a_daemon_whose_binary_was_replaced_is_a_warning() {
    let env = Env::new("doctor-replaced");
    // The daemon runs from a second name for the binary, removed once it
    // runs: as after an upgrade that left the old daemon running.
    let other = env.root.join("old-ringlet");
    if fs::hard_link(BIN, &other).is_err() {
        fs::copy(BIN, &other).unwrap();
    }
    let mut start = env.program(&other);
    start.cmd.arg("daemon");
    start.ok();
    fs::remove_file(&other).unwrap();
    let report = doctor_json(&env, &env.path_var(), 0);
    let daemon = one(&report, "daemon");
    assert_eq!(daemon["status"], "warn", "{daemon}");
    let detail = daemon["detail"].as_str().unwrap();
    assert!(detail.contains("old-ringlet") && detail.contains("replaced"), "{detail}");
    assert!(daemon["fix"].as_str().unwrap().contains("ringlet daemon stop"), "{daemon}");
    // Still the same version: only the file changed.
    assert_eq!(one(&report, "version")["status"], "ok", "{report:#}");
}
