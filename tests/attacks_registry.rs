//! Attacks on the registry (issue 13), each as an attacker would try it: a
//! hostile server or registry, a hostile file handed to `sync --from`, and
//! a tampered `<config>/registry/` (state.json, `current`). Each test
//! performs the attack against the real binary and daemon and checks that
//! it is refused, that nothing hangs, and that `current` stays as it was.

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::registry::this_registry;
use crate::util::upstream::{MockUpstream, Reply};
use crate::util::{BIN, Env};

fn current(env: &Env) -> Option<String> {
    let link = fs::read_link(env.config.join("registry/current")).ok()?;
    Some(link.file_name()?.to_str()?.to_string())
}

fn inspect(env: &Env) -> Value {
    env.cmd(&["registry", "inspect", "--json"]).json()
}

/// Waits for `child` at most `limit`; kills it and panics on a hang.
fn finish(mut child: Child, limit: Duration, what: &str) -> (i32, String, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hung)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A FIFO handed to `sync --from` (by the CLI or `POST /api/registry/sync`)
/// must not hang the sync thread: a hung one holds the one sync slot, so
/// every later sync, pin and rollback is told "already running" until the
/// daemon restarts.
#[test]
fn a_fifo_as_from_neither_hangs_the_sync_nor_blocks_the_next() {
    let env = Env::new("atk-fifo");
    let fifo = env.root.join("bundle.tar");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let child = env.cmd(&["registry", "sync", "--from", fifo.to_str().unwrap()]).spawn();
    let (code, _, err) = finish(child, Duration::from_secs(20), "sync --from <fifo>");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // The slot is free: a real import runs at once.
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    let child = env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).spawn();
    let (code, out, err) = finish(child, Duration::from_secs(30), "the sync after");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
}

/// A registry.json within its own 1 MiB cap can list thousands of artifacts
/// of 16 MiB each: over 100 GB that a sync would write to the config dir's
/// disk before anything failed. A total cap refuses it before any artifact
/// is read.
#[test]
fn an_index_listing_more_bytes_than_the_total_cap_is_refused_before_any_fetch() {
    let env = Env::new("atk-total");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    // 40 artifacts of 16 MiB: 640 MiB; each "file" would be an endless
    // stream from a server; here they are missing, so a sync that tries to
    // read one says so, and one that refuses the index never gets there.
    let evil = env.root.join("evil");
    fs::create_dir_all(&evil).unwrap();
    let artifacts: Vec<Value> = (0..40)
        .map(|i| {
            json!({"kind": "agent", "path": format!("agents/a{i:02}.toml"),
                   "size": 16u64 << 20, "sha256": "0".repeat(64)})
        })
        .collect();
    let index = json!({"format": 1, "channel": "stable", "artifacts": artifacts});
    fs::write(evil.join("registry.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let (_, err) = env.cmd(&["registry", "sync", "--from", evil.to_str().unwrap()]).code(1);
    assert!(err.contains("in all") && !err.contains("missing"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
}

fn absolute_link(target: &Path, link: &Path) {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// `current` changed by hand (or by a bug) to lead outside
/// `registry/commits/`: readers must not follow it there. Each variant is
/// a tree that looks like a commit (a 64-hex name, a registry in it).
#[test]
fn current_leading_outside_commits_is_not_followed() {
    let env = Env::new("atk-current");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    assert_eq!(inspect(&env)["commit"], json!(commit));
    let reg = env.config.join("registry");
    // A copy of the commit outside commits/, under a commit's name.
    let outside = env.root.join("elsewhere").join(&commit);
    crate::util::registry::copy_tree(&reg.join("commits").join(&commit), &outside);
    let link = reg.join("current");
    let relative = format!("commits/../../../elsewhere/{commit}");
    for target in [outside.to_str().unwrap(), relative.as_str(), "/etc", "commits/../.."] {
        absolute_link(Path::new(target), &link);
        let view = inspect(&env);
        assert_eq!(view["commit"], Value::Null, "current -> {target}: {view}");
    }
    // A commit dir that is itself a link out of commits/.
    let fake = "e".repeat(64);
    std::os::unix::fs::symlink(&outside, reg.join("commits").join(&fake)).unwrap();
    absolute_link(Path::new(&format!("commits/{fake}")), &link);
    let view = inspect(&env);
    assert_eq!(view["commit"], Value::Null, "current -> a linked commit dir: {view}");
    // Set right again, it is used again.
    absolute_link(Path::new(&format!("commits/{commit}")), &link);
    assert_eq!(inspect(&env)["commit"], json!(commit));
}

/// A pin in state.json edited by hand is pasted into the URL: it gets the
/// same check as `registry pin` gives it, before any request.
#[test]
fn a_pin_tampered_in_state_json_is_checked_before_it_reaches_a_url() {
    let env = Env::new("atk-pin");
    let server = MockUpstream::start(|_| Reply::bytes(404, "text/plain", b"no").into());
    env.write_config(&format!(
        "[registry]\nurl = \"{}/{{ref}}\"\nallow_unsigned = true\ntimeout_secs = 10\n",
        server.url()
    ));
    // `registry pin` refuses these itself.
    let (_, err) = env.cmd(&["registry", "pin", "a/../../b"]).code(1);
    assert!(err.contains("not a ref"), "{err}");
    let reg = env.config.join("registry");
    fs::create_dir_all(&reg).unwrap();
    for pin in ["a/../../admin", "x%2e%2e/y", "v1 HTTP/1.1\r\nX: y", "@evil.example"] {
        let state = json!({"pin": pin});
        fs::write(reg.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        let (_, err) = env.cmd(&["registry", "sync"]).code(1);
        assert!(err.contains("not a ref"), "pin {pin:?}: {err}");
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}
