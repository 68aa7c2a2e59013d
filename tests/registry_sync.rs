//! Registry sync end to end (issue 13): the real daemon syncs this
//! repository's registry (manifests/, scripts/ and the price file laid out as
//! `make registry` lays them out, indexed here) from local HTTP and HTTPS
//! servers the tests start (tests/util/upstream.rs), and every way a server
//! can fail leaves `current` as it was: checksum mismatch, 404, a server too
//! slow, a truncated or oversized body, a redirect loop, a malformed index,
//! a daemon killed mid-artifact. Also: one sync at a time, pins, offline use,
//! rollback, bundles between two HOMEs, the unsigned-URL rule, REST and events.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::registry::{changed_copy, index, sha256, this_registry};
use crate::util::upstream::{Action, Chunk, Gate, MockUpstream, Recorded, Reply};
use crate::util::{BIN, Env, read_line_matching, wait_until};

/// A server of registry trees: URL path prefix -> directory; an override
/// (path -> action) answers first, for the failure cases.
#[derive(Clone, Default)]
struct Trees {
    roots: Arc<Mutex<HashMap<String, PathBuf>>>,
    overrides: Arc<Mutex<HashMap<String, Action>>>,
}

impl Trees {
    fn mount(&self, prefix: &str, dir: &Path) {
        self.roots.lock().unwrap().insert(prefix.into(), dir.into());
    }

    fn answer(&self, path: &str, action: Action) {
        self.overrides.lock().unwrap().insert(path.into(), action);
    }

    fn clear(&self) {
        self.overrides.lock().unwrap().clear();
    }

    fn handle(&self, r: &Recorded) -> Action {
        if let Some(action) = self.overrides.lock().unwrap().get(&r.path) {
            return action.clone();
        }
        let path = r.path.trim_start_matches('/');
        let (prefix, rest) = path.split_once('/').unwrap_or((path, ""));
        let root = self.roots.lock().unwrap().get(prefix).cloned();
        match root.map(|d| fs::read(d.join(rest))) {
            Some(Ok(bytes)) if !rest.contains("..") => {
                Reply::bytes(200, "application/octet-stream", &bytes).into()
            }
            _ => Reply::bytes(404, "text/plain", b"not found").into(),
        }
    }

    fn http(&self) -> MockUpstream {
        let me = self.clone();
        MockUpstream::start(move |r| me.handle(r))
    }
}

/// Generous: a loaded machine running the whole suite must not time out a
/// local download (the slow-server case sets its own).
fn unsigned_config(url: &str) -> String {
    unsigned_config_timeout(url, 10)
}

fn unsigned_config_timeout(url: &str, secs: u64) -> String {
    format!("[registry]\nurl = \"{url}/{{ref}}\"\nallow_unsigned = true\ntimeout_secs = {secs}\n")
}

/// The commit `current` names, read from the link itself.
pub(crate) fn current(env: &Env) -> Option<String> {
    let link = fs::read_link(env.config.join("registry/current")).ok()?;
    Some(link.file_name()?.to_str()?.to_string())
}

/// `registry inspect --json`'s data.
pub(crate) fn inspect(env: &Env) -> Value {
    env.cmd(&["registry", "inspect", "--json"]).json()
}

/// Paths the server was asked for, in order, after the first `skip`.
fn paths_after(server: &MockUpstream, skip: usize) -> Vec<String> {
    server.requests().iter().skip(skip).map(|r| r.path.clone()).collect()
}

/// A sync that fails: its stderr (exit 1).
fn failing_sync(env: &Env) -> String {
    env.cmd(&["registry", "sync"]).code(1).1
}

#[test]
fn a_sync_fetches_the_registry_and_a_second_fetches_only_registry_json() {
    let env = Env::new("reg-sync");
    let tree = env.root.join("tree");
    let commit = this_registry(BIN, &tree);
    let trees = Trees::default();
    trees.mount("stable", &tree);
    let server = trees.http();
    env.write_config(&unsigned_config(&server.url()));

    // The daemon runs, nothing is synced: no request has gone out.
    let before = inspect(&env);
    assert_eq!(before["commit"], Value::Null, "{before}");
    assert_eq!(before["auto_sync"], "off");
    assert!(server.requests().is_empty(), "the network was touched without a sync");

    // Events, from a subscriber of our own.
    let stream = UnixStream::connect(env.socket()).unwrap();
    (&stream)
        .write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"RegistrySyncStarted\",\"RegistrySyncProgress\",\"RegistrySyncCompleted\"]}}\n")
        .unwrap();
    let mut events = BufReader::new(stream);
    read_line_matching(&mut events, Duration::from_secs(5), |_| true).expect("subscribed");

    // The commit is the SHA-256 of registry.json, computed apart from the binary.
    assert_eq!(commit, sha256(&fs::read(tree.join("registry.json")).unwrap()));
    let (out, err) = env.cmd(&["registry", "sync"]).code(0);
    assert!(out.contains(&format!("now at commit {}", &commit[..12])), "{out}");
    assert!(err.contains("unsigned"), "an unsigned sync warns: {err}");
    assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
    let artifacts = json_file(&tree.join("registry.json"))["artifacts"].as_array().unwrap().len();
    assert!(artifacts > 15, "{artifacts} artifacts");
    // registry.json, then every artifact once.
    let asked = paths_after(&server, 0);
    assert_eq!(asked.iter().filter(|p| p.ends_with("/registry.json")).count(), 1, "{asked:?}");
    assert_eq!(asked.iter().filter(|p| !p.contains("registry.json")).count(), artifacts);
    for f in ["agents/claude.toml", "scripts/claude.rhai", "pricing/litellm-pricing.json"] {
        let synced = env.config.join("registry/current").join(f);
        assert_eq!(fs::read(synced).unwrap(), fs::read(tree.join(f)).unwrap(), "{f}");
    }

    let started = read_line_matching(&mut events, Duration::from_secs(5), |l| {
        l.contains("RegistrySyncStarted")
    })
    .expect("RegistrySyncStarted");
    let id = serde_json::from_str::<Value>(&started).unwrap()["data"]["id"].clone();
    let last_progress = read_line_matching(&mut events, Duration::from_secs(5), |l| {
        l.contains("RegistrySyncProgress") && l.contains(&format!("\"artifacts_done\":{artifacts}"))
    })
    .expect("progress up to the last artifact");
    let p: Value = serde_json::from_str(&last_progress).unwrap();
    assert_eq!(p["data"]["id"], id);
    assert_eq!(p["data"]["artifacts_total"], artifacts);
    assert_eq!(p["data"]["bytes_done"], p["data"]["bytes_total"]);
    let done = read_line_matching(&mut events, Duration::from_secs(5), |l| {
        l.contains("RegistrySyncCompleted")
    })
    .expect("RegistrySyncCompleted");
    let done: Value = serde_json::from_str(&done).unwrap();
    assert_eq!((&done["data"]["id"], &done["data"]["commit"]), (&id, &json!(commit)));

    let view = inspect(&env);
    assert_eq!(view["commit"], json!(commit), "{view}");
    assert_eq!(view["current_channel"], "stable");
    assert_eq!(view["counts"]["agent"], 5, "{view}");
    assert_eq!(view["counts"]["pricing"], 1, "{view}");
    assert_eq!(view["last_error"], Value::Null);
    assert!(view["last_sync"].as_str().unwrap().ends_with('Z'), "{view}");
    // This repository's registry is the built-ins: it overrides none of them.
    assert_eq!(view["overridden"], json!([]), "{view}");
    let text = env.cmd(&["registry", "inspect"]).ok();
    assert!(text.contains(&commit) && text.contains("agent 5"), "{text}");

    // Nothing changed: registry.json alone, and the report says so.
    let seen = server.requests().len();
    let out = env.cmd(&["registry", "sync", "--json"]).json();
    assert_eq!((&out["unchanged"], &out["fetched"]), (&json!(true), &json!(0)), "{out}");
    assert_eq!(paths_after(&server, seen), ["/stable/registry.json"]);
    let out = env.cmd(&["registry", "sync"]).ok();
    assert!(out.contains("up to date"), "{out}");

    // --force fetches everything again, into the same commit.
    let seen = server.requests().len();
    let out = env.cmd(&["registry", "sync", "--force", "--json"]).json();
    assert_eq!(out["fetched"], artifacts, "{out}");
    assert_eq!(paths_after(&server, seen).len(), artifacts + 1);
    assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Every failure leaves `current` where it was and says what went wrong.
#[test]
fn broken_servers_fail_clearly_and_leave_current_alone() {
    let env = Env::new("reg-broken");
    let good = env.root.join("good");
    let a = this_registry(BIN, &good);
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();
    env.write_config(&unsigned_config(&server.url()));
    env.cmd(&["registry", "sync"]).ok();
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));

    // Commit B differs from A in agents/claude.toml only.
    let next = env.root.join("next");
    let b = changed_copy(BIN, &good, &next, "next");
    trees.mount("stable", &next);
    let claude = fs::read(next.join("agents/claude.toml")).unwrap();
    let path = "/stable/agents/claude.toml";
    let bytes = |b: &[u8]| Action::from(Reply::bytes(200, "text/plain", b));

    let mut flipped = claude.clone();
    flipped[0] ^= 1;
    let cases: Vec<(&str, Action, &str)> = vec![
        ("checksum", bytes(&flipped), "checksum mismatch"),
        ("404", Reply::bytes(404, "text/plain", b"gone").into(), "HTTP 404"),
        (
            "slow",
            Reply {
                chunks: vec![
                    Chunk { bytes: claude[..10].to_vec(), pause: Duration::ZERO, gate: None },
                    Chunk {
                        bytes: claude[10..].to_vec(),
                        pause: Duration::from_secs(4),
                        gate: None,
                    },
                ],
                ..Reply::bytes(200, "text/plain", b"")
            }
            .into(),
            "timed out",
        ),
        (
            "truncated",
            Reply::bytes(200, "text/plain", &claude).cut_after(claude.len() / 2).into(),
            "truncated",
        ),
        ("oversized", bytes(&[claude.clone(), vec![b'#'; 4096]].concat()), "more than"),
        (
            "redirect loop",
            Reply::bytes(302, "text/plain", b"").header("location", path).into(),
            "more than 5 redirects",
        ),
    ];
    for (name, action, says) in cases {
        trees.answer(path, action);
        // The slow server is slow past a 1 s limit; the others get 10 s.
        let secs = if name == "slow" { 1 } else { 10 };
        env.write_config(&unsigned_config_timeout(&server.url(), secs));
        let err = failing_sync(&env);
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(current(&env).as_deref(), Some(a.as_str()), "{name}: current moved");
        let view = inspect(&env);
        assert!(view["last_error"].as_str().unwrap().contains(says), "{name}: {view}");
        trees.clear();
    }
    // The index itself: malformed, missing, too big.
    let index_path = "/stable/registry.json";
    for (name, action, says) in [
        ("malformed", bytes(b"{\"format\": 1, \"artifacts\": ["), "registry.json"),
        ("missing", Reply::bytes(404, "text/plain", b"").into(), "no registry there"),
        ("huge", bytes(&vec![b' '; 9 << 20]), "more than"),
    ] {
        trees.answer(index_path, action);
        let err = failing_sync(&env);
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(current(&env).as_deref(), Some(a.as_str()), "{name}: current moved");
        trees.clear();
    }
    // Nothing was staged for good, and the next sync completes.
    let out = env.cmd(&["registry", "sync", "--json"]).json();
    assert_eq!((&out["commit"], &out["fetched"]), (&json!(b), &json!(1)), "{out}");
    assert_eq!(current(&env).as_deref(), Some(b.as_str()));
    assert_eq!(inspect(&env)["last_error"], Value::Null);
}

/// A reply to `path` that sends half of `bytes` and waits at `gate` for the rest.
fn stalled(bytes: &[u8], gate: &Gate) -> Action {
    let half = bytes.len() / 2;
    Reply {
        chunks: vec![
            Chunk { bytes: bytes[..half].to_vec(), pause: Duration::ZERO, gate: None },
            Chunk {
                bytes: bytes[half..].to_vec(),
                pause: Duration::ZERO,
                gate: Some(gate.clone()),
            },
        ],
        ..Reply::bytes(200, "text/plain", b"")
    }
    .into()
}

#[test]
fn one_sync_at_a_time_and_a_daemon_killed_mid_sync_leaves_current_intact() {
    let env = Env::new("reg-kill");
    let good = env.root.join("good");
    let a = this_registry(BIN, &good);
    let next = env.root.join("next");
    let b = changed_copy(BIN, &good, &next, "next");
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();
    env.write_config(&unsigned_config_timeout(&server.url(), 30));
    env.cmd(&["registry", "sync"]).ok();

    // B's changed artifact stalls half-way.
    trees.mount("stable", &next);
    let path = "/stable/agents/claude.toml";
    let claude = fs::read(next.join("agents/claude.toml")).unwrap();
    let gate = Gate::new();
    trees.answer(path, stalled(&claude, &gate));
    let seen = server.requests().len();
    let first = env.cmd(&["registry", "sync"]).spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paths_after(&server, seen)
            .iter()
            .any(|p| p == path)),
        "the stalled artifact was never asked for"
    );
    // A second sync is told, and changes nothing.
    let (_, err) = env.cmd(&["registry", "sync"]).code(1);
    assert!(err.contains("already running"), "{err}");
    let (out, _) = env.cmd(&["registry", "sync", "--json"]).code(1);
    let refused: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(refused["error"]["code"], "conflict", "{refused}");
    let running = inspect(&env)["running"].clone();
    assert!(running["id"].is_string(), "{running}");
    let (_, err) = env.cmd(&["registry", "rollback"]).code(1);
    assert!(err.contains("sync is running"), "{err}");
    gate.open();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(current(&env).as_deref(), Some(b.as_str()));

    // kill -9 mid-artifact: back to A's tree served as C's.
    let third = env.root.join("third");
    let c = changed_copy(BIN, &good, &third, "third");
    trees.mount("stable", &third);
    let claude = fs::read(third.join("agents/claude.toml")).unwrap();
    let gate = Gate::new();
    trees.answer(path, stalled(&claude, &gate));
    let seen = server.requests().len();
    let waiting = env.cmd(&["registry", "sync"]).spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paths_after(&server, seen)
            .iter()
            .any(|p| p == path)),
        "the stalled artifact was never asked for"
    );
    let pid = env.daemon_pid().unwrap();
    crate::util::kill(pid, 9);
    assert!(wait_until(Duration::from_secs(10), || !crate::util::pid_alive(pid)));
    let out = waiting.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("daemon stopped"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(b.as_str()), "a killed sync moved current");
    gate.open();
    trees.clear();
    // The next sync (a new daemon) completes.
    let out = env.cmd(&["registry", "sync", "--json"]).json();
    assert_eq!(out["commit"], json!(c), "{out}");
    assert_eq!(current(&env).as_deref(), Some(c.as_str()));
    let _ = a;
}

#[test]
fn pins_offline_and_rollback() {
    let env = Env::new("reg-pin");
    let good = env.root.join("good");
    let a = this_registry(BIN, &good);
    let next = env.root.join("next");
    let b = changed_copy(BIN, &good, &next, "next");
    let trees = Trees::default();
    trees.mount("stable", &next);
    trees.mount(&a, &good); // an older commit, served under its hash
    trees.mount("v1", &good); // and under a tag
    let server = trees.http();
    env.write_config(&unsigned_config(&server.url()));

    // Offline without a cache: a clear error, no request.
    let (_, err) = env.cmd(&["registry", "sync", "--offline"]).code(1);
    assert!(err.contains("no registry is cached"), "{err}");
    assert!(server.requests().is_empty());

    env.cmd(&["registry", "sync"]).ok();
    assert_eq!(current(&env).as_deref(), Some(b.as_str()));

    // Pin to the older commit: fetched from /<commit>/, accepted as that commit.
    let out = env.cmd(&["registry", "pin", &a]).ok();
    assert!(out.contains("pinned to commit"), "{out}");
    assert_eq!(inspect(&env)["pin"], json!(a));
    env.cmd(&["registry", "sync"]).ok();
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));
    assert!(server.requests().iter().any(|r| r.path == format!("/{a}/registry.json")));
    // A server that answers the pinned ref with another index is refused.
    trees.mount(&a, &next);
    let err = failing_sync(&env);
    assert!(err.contains("pinned"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));
    trees.mount(&a, &good);
    // A tag pin is only substituted.
    env.cmd(&["registry", "pin", "v1"]).ok();
    let out = env.cmd(&["registry", "sync", "--json"]).json();
    assert_eq!((&out["commit"], &out["unchanged"]), (&json!(a), &json!(true)), "{out}");
    let (_, err) = env.cmd(&["registry", "pin", "../etc"]).code(1);
    assert!(err.contains("not a ref"), "{err}");
    env.cmd(&["registry", "pin", "--clear"]).ok();
    assert_eq!(inspect(&env)["pin"], Value::Null);
    env.cmd(&["registry", "sync"]).ok();
    assert_eq!(current(&env).as_deref(), Some(b.as_str()));

    // Offline with a cache: the cached commit, no request.
    let seen = server.requests().len();
    let out = env.cmd(&["registry", "sync", "--offline", "--json"]).json();
    assert_eq!((&out["commit"], &out["offline"]), (&json!(b), &json!(true)), "{out}");
    assert_eq!(server.requests().len(), seen);

    // Rollback: to the previous commit kept, and the history says so.
    let out = env.cmd(&["registry", "rollback"]).ok();
    assert!(out.contains(&a[..12]), "{out}");
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));
    let view = inspect(&env);
    assert_eq!(view["commit"], json!(a), "{view}");
    assert!(view["history"].as_array().unwrap().contains(&json!(b)), "{view}");
    // Back at the tip: the kept tree is reused, nothing fetched.
    let out = env.cmd(&["registry", "sync", "--json"]).json();
    assert_eq!((&out["commit"], &out["fetched"]), (&json!(b), &json!(0)), "{out}");
}

#[test]
fn a_url_needs_a_key_or_allow_unsigned_and_no_url_says_how_to_set_one() {
    let env = Env::new("reg-unsigned");
    let good = env.root.join("good");
    this_registry(BIN, &good);
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();

    let err = failing_sync(&env);
    assert!(err.contains("no registry URL is set") && err.contains("[registry]"), "{err}");
    assert!(err.contains("--from"), "{err}");
    env.write_config(&format!("[registry]\nurl = \"{}/{{channel}}\"\n", server.url()));
    let err = failing_sync(&env);
    assert!(err.contains("unsigned") && err.contains("allow_unsigned = true"), "{err}");
    assert!(server.requests().is_empty(), "refused before any request");
    assert_eq!(current(&env), None);
    // --channel asks for another channel's index, which must say so.
    env.write_config(&unsigned_config(&server.url()));
    trees.mount("beta", &good);
    let err = env.cmd(&["registry", "sync", "--channel", "beta"]).code(1).1;
    assert!(err.contains("channel `stable`, not the `beta`"), "{err}");
}

#[test]
fn https_with_the_test_ca_from_tls_ca_file() {
    let env = Env::new("reg-https");
    let Some((ca, cert, key)) = crate::proxy_relay::test_ca(&env.root.join("ca"), "reg") else {
        eprintln!("skipped: no openssl CLI to make a test CA");
        return;
    };
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    let trees = Trees::default();
    trees.mount("stable", &good);
    let me = trees.clone();
    let server = MockUpstream::https(&cert, &key, move |r| me.handle(r));
    // Without the CA the certificate is refused.
    env.write_config(&unsigned_config(&server.url()));
    let err = failing_sync(&env);
    assert!(err.contains(&server.url()), "{err}");
    assert_eq!(current(&env), None);
    env.write_config(&format!(
        "{}[tls]\nca_file = \"{}\"\n",
        unsigned_config(&server.url()),
        ca.display()
    ));
    env.cmd(&["registry", "sync"]).ok();
    assert_eq!(current(&env), Some(commit));
}

#[test]
fn the_rest_routes_start_a_sync_and_show_it() {
    let env = Env::new("reg-rest");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();
    env.write_config(&unsigned_config(&server.url()));
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: &str| {
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let answer = crate::util::http::request(addr, method, path, &headers, body.as_bytes());
        (answer.status, answer.json())
    };
    let (status, reply) = call("POST", "/api/registry/sync", "");
    assert_eq!(status, 202, "{reply}");
    let id = reply["data"]["id"].as_str().unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (_, v) = call("GET", "/api/registry", "");
            v["data"]["last_run"]["id"] == json!(id)
        }),
        "the sync never finished"
    );
    let (_, v) = call("GET", "/api/registry", "");
    assert_eq!(
        (&v["data"]["commit"], &v["data"]["last_run"]["ok"]),
        (&json!(commit), &json!(true))
    );
    let (status, v) = call("GET", "/api/registry/changes", "");
    assert_eq!((status, &v["data"]["commit"]), (200, &json!(commit)), "{v}");
    assert!(v["data"]["changes"].is_array(), "{v}");
    let (status, v) = call("POST", "/api/registry/pin", r#"{"ref":"v2"}"#);
    assert_eq!((status, &v["data"]["pin"]), (200, &json!("v2")), "{v}");
    let (status, v) = call("POST", "/api/registry/pin", r#"{"clear":true}"#);
    assert_eq!((status, &v["data"]["pin"]), (200, &Value::Null), "{v}");
    // Only one commit kept: nothing to roll back to, said as a 400.
    let (status, v) = call("POST", "/api/registry/rollback", "");
    assert_eq!(status, 400, "{v}");
    let (status, v) = call("POST", "/api/registry/sync", r#"{"from":"relative/dir"}"#);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("absolute"), "{v}");
}

#[test]
fn a_bundle_exported_in_one_home_imports_in_another_without_a_server() {
    let env = Env::new("reg-export");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    // A directory import needs no server, nor a URL.
    env.cmd(&["registry", "sync", "--from", good.to_str().unwrap()]).ok();
    assert_eq!(current(&env).as_deref(), Some(commit.as_str()));
    // A relative path is the caller's (the command runs in env.root).
    let bundle = env.root.join("bundle.tar");
    let out = env.cmd(&["registry", "export", "bundle.tar"]).ok();
    assert!(out.contains(&commit[..12]), "{out}");

    let other = Env::new("reg-import");
    let out = other.cmd(&["registry", "sync", "--from", bundle.to_str().unwrap(), "--json"]).json();
    assert_eq!(out["commit"], json!(commit), "{out}");
    assert_eq!(current(&other).as_deref(), Some(commit.as_str()));
    let f = "pricing/litellm-pricing.json";
    assert_eq!(
        fs::read(other.config.join("registry/current").join(f)).unwrap(),
        fs::read(good.join(f)).unwrap()
    );
}

/// A minisign key pair made with the real tool in `dir`; the public key line.
fn minisign_key(dir: &Path) -> Option<String> {
    fs::create_dir_all(dir).unwrap();
    let made = Command::new("minisign")
        .args(["-G", "-W", "-f", "-p"])
        .arg(dir.join("minisign.pub"))
        .arg("-s")
        .arg(dir.join("minisign.key"))
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    assert!(made.success());
    Some(fs::read_to_string(dir.join("minisign.pub")).unwrap().lines().nth(1)?.to_string())
}

fn minisign_sign(keys: &Path, file: &Path) {
    let status = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(keys.join("minisign.key"))
        .arg("-m")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_signed_url_registry_is_verified_with_the_configured_key() {
    let env = Env::new("reg-signed");
    let keys = env.root.join("keys");
    let Some(public) = minisign_key(&keys) else {
        assert!(std::env::var_os("REQUIRE_KEYCHAIN").is_none(), "no minisign (tests/setup.sh)");
        eprintln!("skipped: no minisign");
        return;
    };
    let good = env.root.join("good");
    let a = this_registry(BIN, &good);
    minisign_sign(&keys, &good.join("registry.json"));
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();
    env.write_config(&format!(
        "[registry]\nurl = \"{}/{{channel}}\"\npublic_key = \"{public}\"\n",
        server.url()
    ));
    let (_, err) = env.cmd(&["registry", "sync"]).code(0);
    assert!(!err.contains("unsigned"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));
    assert!(server.requests().iter().any(|r| r.path == "/stable/registry.json.minisig"));
    assert_eq!(inspect(&env)["signed"], true);

    // B carries A's signature (copied with the tree): bad. Without one: refused.
    let next = env.root.join("next");
    changed_copy(BIN, &good, &next, "next");
    trees.mount("stable", &next);
    let err = failing_sync(&env);
    assert!(err.contains("bad signature"), "{err}");
    fs::remove_file(next.join("registry.json.minisig")).unwrap();
    let err = failing_sync(&env);
    assert!(err.contains("not signed"), "{err}");
    assert_eq!(current(&env).as_deref(), Some(a.as_str()));
}

#[test]
fn auto_sync_daily_syncs_a_never_synced_registry_soon_after_the_daemon_starts() {
    let env = Env::new("reg-auto");
    let good = env.root.join("good");
    let commit = this_registry(BIN, &good);
    let trees = Trees::default();
    trees.mount("stable", &good);
    let server = trees.http();
    env.write_config(&format!("{}auto_sync = \"daily\"\n", unsigned_config(&server.url())));
    env.start_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || current(&env).as_deref() == Some(commit.as_str())),
        "no daily sync: {:?}",
        paths_after(&server, 0)
    );
    // Synced today: the daemon does not sync again on its own.
    let seen = server.requests().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.requests().len(), seen);
    assert_eq!(inspect(&env)["auto_sync"], "daily");
}

/// End to end (regload's loading, driven by a real sync): a provider the
/// registry adds and a built-in it changes are what the running daemon
/// serves right after the sync, and a profile created then uses them.
#[test]
fn a_synced_provider_is_used_by_the_running_daemon_without_a_restart() {
    let env = Env::new("reg-e2e");
    let tree = env.root.join("tree");
    this_registry(BIN, &tree);
    let anthropic = tree.join("providers/anthropic.toml");
    let text = fs::read_to_string(&anthropic).unwrap();
    let text = text.replace(
        "default = \"https://api.anthropic.com\"",
        "default = \"https://anthropic.registry.example\"",
    );
    fs::write(&anthropic, text).unwrap();
    fs::write(
        tree.join("providers/acme.toml"),
        "id = \"acme\"\nname = \"Acme AI\"\ntype = \"anthropic\"\n\n[endpoints]\n\
         default = \"https://api.acme.example\"\n\n[auth]\nenv_key = \"ACME_API_KEY\"\n\n\
         [models]\navailable = [\"acme-1\"]\ndefault = \"acme-1\"\n",
    )
    .unwrap();
    index(BIN, &tree, "stable");
    let trees = Trees::default();
    trees.mount("stable", &tree);
    let server = trees.http();
    env.write_config(&unsigned_config(&server.url()));
    env.fake_agent("claude", "echo '2.1.332 (Claude Code)'");

    let pid = env.start_daemon();
    let before = env.cmd(&["providers", "inspect", "anthropic", "--json"]).json();
    assert_eq!(before["default_endpoint"]["url"], "https://api.anthropic.com", "{before}");
    env.cmd(&["providers", "inspect", "acme"]).code(1);

    // The sync lists the command-bearing change: where a key is sent.
    let out = env.cmd(&["registry", "sync"]).ok();
    let change = "provider anthropic: endpoints.default: \"https://api.anthropic.com\" -> \
                  \"https://anthropic.registry.example\"";
    assert!(out.contains("changes in command-bearing fields") && out.contains(change), "{out}");
    let text = env.cmd(&["registry", "inspect", "--changes"]).ok();
    assert!(text.contains("changes against the built-ins") && text.contains(change), "{text}");
    let view = env.cmd(&["registry", "inspect", "--changes", "--json"]).json();
    let listed = view["changes"].as_array().unwrap();
    assert!(
        listed.iter().any(|c| c["kind"] == "provider"
            && c["id"] == "anthropic"
            && c["after"] == "https://anthropic.registry.example"),
        "{view}"
    );
    let after = env.cmd(&["providers", "inspect", "anthropic", "--json"]).json();
    assert_eq!(after["default_endpoint"]["url"], "https://anthropic.registry.example", "{after}");
    let acme = env.cmd(&["providers", "inspect", "acme", "--json"]).json();
    assert_eq!(acme["default_model"], "acme-1", "{acme}");
    let view = inspect(&env);
    assert!(
        view["overridden"]
            .as_array()
            .unwrap()
            .contains(&json!({"kind": "provider", "id": "anthropic"})),
        "{view}"
    );
    // A profile created now goes to the synced endpoint.
    let created = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "work",
            "-p",
            "acme",
            "--api-key-stdin",
            "--no-alias",
            "--json",
        ])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(crate::util::KEY)
        .json();
    assert!(created.to_string().contains("https://api.acme.example"), "{created}");
    assert_eq!(env.daemon_pid(), Some(pid), "the daemon was restarted");
}
