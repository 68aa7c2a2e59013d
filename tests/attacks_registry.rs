//! Attacks on the registry (issue 13), each as an attacker would try it: a
//! hostile server or registry, a hostile file handed to `sync --from`, and
//! a tampered `<config>/registry/` (state.json, `current`). Each test
//! performs the attack against the real binary and daemon and checks that
//! it is refused, that nothing hangs, and that `current` stays as it was.

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};

use crate::registry_sync::{current, inspect};
use crate::util::registry::this_registry;
use crate::util::upstream::{MockUpstream, Reply};
use crate::util::{BIN, Env};

/// Waits for `child` at most `limit` (reading its output meanwhile, so a
/// long one cannot block on a full pipe); kills it and panics on a hang.
fn finish(child: Child, limit: Duration, what: &str) -> (i32, String, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            crate::util::kill(pid, 9);
            panic!("{what}: still running after {limit:?} (hung)");
        }
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
    let dangling = format!("commits/{}", "f".repeat(64));
    let targets =
        [outside.to_str().unwrap(), relative.as_str(), "/etc", "commits/../..", dangling.as_str()];
    for target in targets {
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

/// One ustar header block and its data, made by hand: `size` is written as
/// given (it may lie), `kind` is the type flag.
fn tar_entry(out: &mut Vec<u8>, path: &str, kind: u8, data: &[u8], size: &str) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..124 + size.len()].copy_from_slice(size.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn file_entry(out: &mut Vec<u8>, path: &str, data: &[u8]) {
    tar_entry(out, path, b'0', data, &format!("{:011o}", data.len()));
}

/// Hand-made hostile bundles: each refused with a clear error, nothing
/// staged, `current` unchanged.
#[test]
fn hostile_bundles_are_refused_and_current_stays() {
    let env = Env::new("atk-tar");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    let index = fs::read(good.join("registry.json")).unwrap();
    let listed: Value = serde_json::from_slice(&index).unwrap();
    let first = listed["artifacts"][0]["path"].as_str().unwrap().to_string();
    let body = fs::read(good.join(&first)).unwrap();
    let other_index = br#"{"format":1,"channel":"stable","artifacts":[]}"#;
    let long = format!("agents/{}.toml", "x".repeat(120));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "registry.json twice",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", other_index);
                file_entry(&mut t, "./registry.json", &index);
                t
            },
            "twice",
        ),
        (
            "a hard link to an artifact",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                tar_entry(&mut t, &first, b'1', b"", "00000000000");
                t
            },
            "hard link",
        ),
        (
            "a GNU long name renaming the next entry",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                tar_entry(
                    &mut t,
                    "././@LongLink",
                    b'L',
                    long.as_bytes(),
                    &format!("{:011o}", long.len()),
                );
                file_entry(&mut t, "agents/short.toml", &body);
                t
            },
            "GNU long name",
        ),
        (
            "a GNU sparse file",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                tar_entry(&mut t, &first, b'S', &body, &format!("{:011o}", body.len()));
                t
            },
            "unknown type",
        ),
        (
            "a size field of 8 GiB",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                tar_entry(&mut t, &first, b'0', &body, "77777777777");
                t
            },
            "truncated",
        ),
        (
            "a size field in base-256",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                tar_entry(&mut t, &first, b'0', &body, "\u{80}\u{7f}");
                t
            },
            "",
        ),
        (
            "a header cut in half",
            {
                let mut t = Vec::new();
                file_entry(&mut t, "registry.json", &index);
                file_entry(&mut t, &first, &body);
                let keep = t.len() - body.len().div_ceil(512) * 512 - 300;
                t.truncate(keep);
                t
            },
            "truncated",
        ),
    ];
    for (what, bytes, why) in cases {
        let file = env.root.join("hostile.tar");
        fs::write(&file, &bytes).unwrap();
        let child = env.cmd(&["registry", "sync", "--from", file.to_str().unwrap()]).spawn();
        let (code, out, err) = finish(child, Duration::from_secs(20), what);
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(err.contains(why), "{what}: {err}");
        assert_eq!(current(&env).as_deref(), Some(commit.as_str()), "{what}");
        let staged: Vec<_> = fs::read_dir(env.config.join("registry/commits"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(staged, vec![commit.clone()], "{what}");
    }
}

/// A registry is code: an agent manifest whose detection command and setup
/// task run something. The sync itself runs neither, and lists both as
/// command-bearing changes (and `inspect --changes` against the built-ins).
#[test]
fn a_manifest_with_commands_is_listed_and_not_run_by_the_sync() {
    let env = Env::new("atk-cmds");
    let good = env.root.join("good");
    this_registry(BIN, &good);
    let marker = env.root.join("ran");
    let evil = env.root.join("evil.sh");
    fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    let mut perms = fs::metadata(&evil).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&evil, perms).unwrap();
    let claude = good.join("agents/claude.toml");
    let text = fs::read_to_string(&claude)
        .unwrap()
        .replace(
            "commands = [\"claude\"]",
            &format!("commands = [{:?}]", evil.display().to_string()),
        )
        .replace(
            "command = \"claude doctor\"",
            &format!("command = {:?}", evil.display().to_string()),
        );
    fs::write(&claude, text).unwrap();
    crate::util::registry::index(BIN, &good, "stable");
    let out = env.cmd(&["registry", "sync", "--from", good.to_str().unwrap(), "--json"]).json();
    let shown = out.to_string();
    assert!(shown.contains("detect.commands") && shown.contains("evil.sh"), "{out}");
    assert!(shown.contains("setup_tasks.doctor"), "{out}");
    assert!(!marker.exists(), "the sync ran a command of the registry");
    let changes = env.cmd(&["registry", "inspect", "--changes", "--json"]).json().to_string();
    assert!(changes.contains("detect.commands") && changes.contains("evil.sh"), "{changes}");
    assert!(!marker.exists(), "inspect ran a command of the registry");
}

/// `kill -9` of the daemon at each crash point of a sync (store.rs): before
/// the swap `current` is the old commit, after it the new one; either way
/// the next sync completes and leaves no staging dir or temp link behind.
#[test]
fn a_daemon_killed_at_each_crash_point_leaves_current_whole() {
    let env = Env::new("atk-crash");
    let one = env.root.join("one");
    let first = this_registry(BIN, &one);
    env.cmd(&["registry", "sync", "--from", one.to_str().unwrap()]).ok();
    for (n, (point, swapped)) in [
        ("registry:staging", false),
        ("registry:staged", false),
        ("registry:renamed", false),
        ("registry:swapped", true),
    ]
    .into_iter()
    .enumerate()
    {
        let before = current(&env).unwrap();
        let next = env.root.join(format!("next{n}"));
        let commit = crate::util::registry::changed_copy(BIN, &one, &next, point);
        if let Some(pid) = env.daemon_pid() {
            env.cmd(&["daemon", "stop"]).ok();
            crate::util::wait_until(Duration::from_secs(10), || !crate::util::pid_alive(pid));
        }
        let child = env
            .cmd(&["registry", "sync", "--from", next.to_str().unwrap()])
            .env("RINGLET_TEST_CRASH_AT", point)
            .spawn();
        let (code, out, err) = finish(child, Duration::from_secs(30), point);
        assert_ne!(code, 0, "{point}: the daemon was not killed: {out}{err}");
        let now = current(&env);
        let want = if swapped { &commit } else { &before };
        assert_eq!(now.as_ref(), Some(want), "{point}");
        // What `current` names is a whole commit.
        let dir = env.config.join("registry/current");
        assert!(dir.join("registry.json").is_file(), "{point}");
        // The next sync (a fresh daemon) completes and clears leftovers.
        env.cmd(&["registry", "sync", "--from", next.to_str().unwrap()]).ok();
        assert_eq!(current(&env).as_deref(), Some(commit.as_str()), "{point}");
        let reg = env.config.join("registry");
        for dir in [reg.clone(), reg.join("commits")] {
            for e in fs::read_dir(&dir).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with('.'), "{point}: left {}", dir.join(&name).display());
            }
        }
    }
    let _ = first;
}

/// A hostile server: a redirect to `file://`, and a header without end.
/// Each is an error, fast, with `current` unchanged.
#[test]
fn a_redirect_to_file_and_an_endless_header_fail_clearly() {
    let env = Env::new("atk-http");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    let which = std::sync::Arc::new(std::sync::Mutex::new(0));
    let w = which.clone();
    let server = MockUpstream::start(move |_| match *w.lock().unwrap() {
        0 => Reply::bytes(302, "text/plain", b"").header("location", "file:///etc/passwd").into(),
        _ => Reply::bytes(200, "application/json", b"{}")
            .header("x-pad", &"a".repeat(4 << 20))
            .into(),
    });
    env.write_config(&format!(
        "[registry]\nurl = \"{}/{{ref}}\"\nallow_unsigned = true\ntimeout_secs = 10\n",
        server.url()
    ));
    for case in 0..2 {
        *which.lock().unwrap() = case;
        let child = env.cmd(&["registry", "sync"]).spawn();
        let (code, out, err) = finish(child, Duration::from_secs(30), "hostile server");
        assert_eq!(code, 1, "case {case}: {out}{err}");
        assert!(err.contains("registry.json"), "case {case}: {err}");
        assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
    }
}

/// The registry dir tampered with links: `state.json` and `registry.lock`
/// leading to a file of the user, `commits` leading to another dir. A sync
/// never writes through them: the user's file and the other dir are left
/// exactly as they were.
#[test]
fn links_planted_in_the_registry_dir_are_never_written_through() {
    let env = Env::new("atk-links");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    let reg = env.config.join("registry");
    fs::create_dir_all(&reg).unwrap();
    let precious = env.root.join("precious.txt");
    fs::write(&precious, "mine\n").unwrap();
    let elsewhere = env.root.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&precious, reg.join("state.json")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, reg.join("commits")).unwrap();
    let child = env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).spawn();
    let (_code, out, err) = finish(child, Duration::from_secs(30), "sync into a linked registry");
    assert_eq!(fs::read_to_string(&precious).unwrap(), "mine\n", "{out}{err}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "{out}{err}");
    // Whatever it did, `current` (if any) is a real commit below commits/.
    if let Some(c) = current(&env) {
        assert_eq!(c, commit);
        assert!(fs::symlink_metadata(reg.join("commits")).unwrap().is_dir());
    }
    // A lock file that is a link is not followed either.
    let _ = fs::remove_file(reg.join("registry.lock"));
    std::os::unix::fs::symlink(&precious, reg.join("registry.lock")).unwrap();
    let child = env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).spawn();
    let (_code, out, err) = finish(child, Duration::from_secs(30), "sync with a linked lock");
    assert_eq!(fs::read_to_string(&precious).unwrap(), "mine\n", "{out}{err}");
}

/// `registry export` onto a link: the link is replaced by the bundle, the
/// file it led to is untouched (and a dir that is a link on the way is the
/// user's own choice, followed once).
#[test]
fn export_onto_a_link_replaces_the_link_not_its_target() {
    let env = Env::new("atk-export");
    let good = env.root.join("good");
    this_registry(BIN, &good);
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    let precious = env.root.join("precious.txt");
    fs::write(&precious, "mine\n").unwrap();
    let out = env.root.join("bundle.tar");
    std::os::unix::fs::symlink(&precious, &out).unwrap();
    env.cmd(&["registry", "export", out.to_str().unwrap()]).ok();
    assert_eq!(fs::read_to_string(&precious).unwrap(), "mine\n");
    assert!(fs::symlink_metadata(&out).unwrap().is_file());
}

/// The sync lists what changed scripts set by rendering them (bounded per
/// render by Rhai's operation limit). A registry of scripts that each spin
/// to that limit, and an agent manifest listing hundreds of provider types
/// (one render each), must not keep the sync (and the one sync slot, and
/// every `inspect --changes`) busy for minutes: the dry renders share one
/// budget, and what it does not reach is listed as not rendered.
#[test]
fn spinning_scripts_and_endless_provider_types_do_not_stall_the_sync() {
    let env = Env::new("atk-spin");
    let good = env.root.join("good");
    this_registry(BIN, &good);
    let claude = good.join("agents/claude.toml");
    let types: Vec<String> = (0..300).map(|i| format!("\"t{i}\"")).collect();
    let text = fs::read_to_string(&claude).unwrap().replace(
        "provider_types = [\"anthropic\", \"anthropic-compatible\", \"self\"]",
        &format!("provider_types = [{}]", types.join(", ")),
    );
    assert!(text.contains("\"t299\""));
    fs::write(&claude, text).unwrap();
    fs::write(good.join("scripts/claude.rhai"), "loop { }\n").unwrap();
    for i in 0..200 {
        fs::write(good.join(format!("scripts/spin{i:03}.rhai")), "loop { }\n").unwrap();
    }
    crate::util::registry::index(BIN, &good, "stable");
    let child = env.cmd(&["registry", "sync", "--from", good.to_str().unwrap(), "--json"]).spawn();
    let (code, out, err) = finish(child, Duration::from_secs(90), "a sync of spinning scripts");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not rendered"), "{out}");
    let child = env.cmd(&["registry", "inspect", "--changes", "--json"]).spawn();
    let (code, out, err) = finish(child, Duration::from_secs(90), "inspect --changes");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("spin199.rhai"), "{out}");
}

/// `POST /api/registry/sync` with `from`: the token holder is the owner, so
/// the daemon may read a path of the owner's as a registry, but a file that
/// is not one only yields an error that does not quote it, and a URL is
/// held to the signing rule of `[registry]` (no key, no allow_unsigned: no
/// request at all).
#[test]
fn rest_from_a_private_file_or_an_unsigned_url_reveals_and_reaches_nothing() {
    let env = Env::new("atk-rest");
    let probe = MockUpstream::start(|_| Reply::bytes(404, "text/plain", b"no").into());
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: &str| {
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let answer = crate::util::http::request(addr, method, path, &headers, body.as_bytes());
        (answer.status, answer.json())
    };
    let secret = env.home.join("id_secret");
    let text = "SECRET-".repeat(200);
    fs::write(&secret, &text).unwrap();
    let body = json!({"from": secret.to_str().unwrap()}).to_string();
    let (status, reply) = call("POST", "/api/registry/sync", &body);
    assert_eq!(status, 202, "{reply}");
    let id = reply["data"]["id"].as_str().unwrap().to_string();
    assert!(
        crate::util::wait_until(Duration::from_secs(20), || {
            call("GET", "/api/registry", "").1["data"]["last_run"]["id"] == json!(id)
        }),
        "the sync never finished"
    );
    let (_, v) = call("GET", "/api/registry", "");
    assert_eq!(v["data"]["last_run"]["ok"], json!(false), "{v}");
    assert!(!v.to_string().contains("SECRET"), "{v}");
    let body = json!({"from": format!("{}/x", probe.url())}).to_string();
    let (status, v) = call("POST", "/api/registry/sync", &body);
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("unsigned"), "{v}");
    assert!(probe.requests().is_empty());
}

fn minisign(args: &[&str]) {
    let status = std::process::Command::new("minisign")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("minisign (Debian package; tests/setup.sh installs it)");
    assert!(status.success(), "minisign {args:?}");
}

/// A rollback (replay) attack: a server serves an older `registry.json`
/// with its valid signature. Refused unless the user pinned it; a pin to
/// its commit goes back on purpose.
#[test]
fn an_older_validly_signed_registry_is_refused_as_a_rollback_unless_pinned() {
    let env = Env::new("atk-replay");
    let keys = env.root.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let (public, secret) = (keys.join("minisign.pub"), keys.join("minisign.key"));
    minisign(&["-G", "-W", "-f", "-p", public.to_str().unwrap(), "-s", secret.to_str().unwrap()]);
    let key = fs::read_to_string(&public).unwrap().lines().nth(1).unwrap().to_string();
    env.write_config(&format!("[registry]\npublic_key = \"{key}\"\n"));
    let sign = |tree: &Path, at: u64| {
        let comment = format!("timestamp:{at}\tfile:registry.json\thashed");
        let index = tree.join("registry.json");
        let s = secret.to_str().unwrap();
        minisign(&["-S", "-s", s, "-m", index.to_str().unwrap(), "-t", &comment]);
    };
    // The old registry (signed in 2001), then the new one (signed in 2033).
    let old = env.root.join("old");
    let old_commit = this_registry(BIN, &old);
    sign(&old, 1_000_000_000);
    let new = env.root.join("new");
    let new_commit = crate::util::registry::changed_copy(BIN, &old, &new, "fixed");
    sign(&new, 2_000_000_000);
    env.cmd(&["registry", "sync", "--from", new.to_str().unwrap()]).ok();
    assert_eq!(current(&env).as_deref(), Some(new_commit.as_str()));
    // The replay: the old registry, validly signed, served again.
    let (_, err) = env.cmd(&["registry", "sync", "--from", old.to_str().unwrap()]).code(1);
    assert!(err.contains("rollback"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(new_commit.as_str()));
    // Pinned on purpose: accepted.
    env.cmd(&["registry", "pin", &old_commit]).ok();
    env.cmd(&["registry", "sync", "--from", old.to_str().unwrap()]).ok();
    assert_eq!(current(&env).as_deref(), Some(old_commit.as_str()));
}

/// An HTTPS registry that redirects to plain HTTP (where anyone on the path
/// could answer): the redirect is not followed, the plain server never sees
/// a request, and nothing changes.
#[test]
fn an_https_registry_redirecting_to_http_is_not_followed() {
    let env = Env::new("atk-downgrade");
    let Some((ca, cert, key)) = crate::proxy_relay::test_ca(&env.root.join("ca"), "reg") else {
        eprintln!("skipped: no openssl CLI to make a test CA");
        return;
    };
    let good = env.root.join("good");
    this_registry(BIN, &good);
    let tree = good.clone();
    let plain = MockUpstream::start(move |r| {
        let rel = r.path.trim_start_matches("/stable/");
        match fs::read(tree.join(rel)) {
            Ok(bytes) => Reply::bytes(200, "application/octet-stream", &bytes).into(),
            Err(_) => Reply::bytes(404, "text/plain", b"no").into(),
        }
    });
    let to = plain.url();
    let secure = MockUpstream::https(&cert, &key, move |r| {
        Reply::bytes(302, "text/plain", b"").header("location", &format!("{to}{}", r.path)).into()
    });
    env.write_config(&format!(
        "[registry]\nurl = \"{}/{{ref}}\"\nallow_unsigned = true\ntimeout_secs = 10\n\
         [tls]\nca_file = \"{}\"\n",
        secure.url(),
        ca.display()
    ));
    let (_, err) = env.cmd(&["registry", "sync"]).code(1);
    assert!(err.contains("registry.json"), "{err}");
    assert!(plain.requests().is_empty(), "followed to plain HTTP: {:?}", plain.requests());
    assert_eq!(current(&env), None);
    assert!(!secure.requests().is_empty());
}
