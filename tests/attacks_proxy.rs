//! Red-team attacks on the profile side of the routing proxy (issue 12):
//! routing that grows a profile past what the store reads back, two
//! profiles racing for one port, a key echoed in an HTTP error, and hostile
//! proxy request logs under the usage scan. Each test performs the attack
//! through the real binary and daemon in a temp world (file secret store).

use std::fs;
use std::sync::{Arc, Barrier};
use std::thread;

use serde_json::{Value, json};

use crate::util::http::request;
use std::time::Duration;

use crate::util::{Env, KEY, TestCommand, wait_until};

fn r(env: &Env, args: &[&str]) -> TestCommand {
    env.cmd(args).env("RINGLET_SECRET_STORE", "file")
}

/// One request over the daemon socket, its reply parsed.
fn ipc(env: &Env, request: Value) -> Value {
    let mut line = json!({"version": 2, "request": request}).to_string().into_bytes();
    line.push(b'\n');
    let reply = env.raw_request(&line);
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

fn is_ok(reply: &Value) -> bool {
    reply.get("data").is_some()
}

fn message(reply: &Value) -> String {
    reply["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// The port kept in a profile's file.
fn kept_port(env: &Env, alias: &str) -> Value {
    let text = fs::read_to_string(env.config.join("profiles").join(format!("{alias}.json")))
        .expect("profile file");
    serde_json::from_str::<Value>(&text).unwrap()["routing"]["port"].clone()
}

/// Rules with the longest condition accepted (4 KiB) until the daemon
/// refuses one: the profile file must never grow past the size the store
/// reads back (1 MiB), or the profile is lost to every later command
/// (run, list, even `proxy route remove`).
#[test]
fn routing_never_grows_a_profile_past_what_the_store_reads_back() {
    let env = Env::new("ap-bloat");
    env.create_profile_cmd("claude", "work").ok();
    // `always or always or ...`: a valid condition just under 4096 bytes.
    let mut condition = "always".to_string();
    while condition.len() + " or always".len() <= 4096 {
        condition.push_str(" or always");
    }
    // Seeded (daemon stopped) with such rules to about 40 KiB under the
    // limit, as a long run of `proxy route add` would leave it; then the
    // daemon is asked for more.
    r(&env, &["daemon", "stop"]).ok();
    let path = env.config.join("profiles").join("work.json");
    let mut profile: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let rule = |i: usize| {
        json!({"name": format!("s{i}"), "condition": condition,
               "target": "anthropic/claude-haiku", "priority": 0})
    };
    let n = ((1 << 20) - (40 << 10)) / (condition.len() + 150);
    profile["routing"]["rules"] = Value::Array((0..n).map(rule).collect());
    let text = serde_json::to_string_pretty(&profile).unwrap();
    assert!(text.len() < 1 << 20, "seeded too much: {}", text.len());
    fs::write(&path, text).unwrap();
    r(&env, &["daemon"]).ok();
    let mut refused = None;
    for i in 0..40 {
        let reply = ipc(
            &env,
            json!({"type": "proxy_route_add", "alias": "work", "name": format!("r{i}"),
                   "condition": condition, "target": "anthropic/claude-haiku"}),
        );
        if !is_ok(&reply) {
            refused = Some(message(&reply));
            break;
        }
    }
    let refused = refused.expect("40 more rules of 4 KiB each were all accepted");
    assert!(refused.contains("limit") || refused.contains("at most"), "unclear: {refused}");
    // Nothing lost: the profile still loads and its rules can be removed.
    let list = r(&env, &["proxy", "route", "list", "work", "--json"]).json();
    assert!(!list.as_array().unwrap().is_empty(), "{list}");
    r(&env, &["proxy", "route", "remove", "work", "s0"]).ok();
    r(&env, &["profiles", "inspect", "work"]).ok();

    // A model alias with a huge name is refused at once, clearly.
    let huge = "m".repeat(100_000);
    let (_, err) =
        r(&env, &["proxy", "alias", "set", "work", &huge, "anthropic/claude-haiku"]).code(1);
    assert!(err.contains("long"), "{}", &err[..err.len().min(300)]);
    // A huge name that is also invalid: the error does not quote it back.
    let spaced = format!("{huge} x");
    let (_, err) =
        r(&env, &["proxy", "alias", "set", "work", &spaced, "anthropic/claude-haiku"]).code(1);
    assert!(err.len() < 1000, "the error quotes {} bytes", err.len());
    let target = format!("anthropic/{huge}");
    let (_, err) = r(&env, &["proxy", "alias", "set", "work", "fast", &target]).code(1);
    assert!(err.contains("long"), "{}", &err[..err.len().min(300)]);
    r(&env, &["profiles", "inspect", "work"]).ok();
}

/// Many short rules: a count cap with a clear error, long before the file
/// limit, and the profile still usable. The profile is seeded with 999
/// rules while the daemon is stopped (adding them one by one costs a
/// profile write each), then the 1000th and 1001st come through the daemon.
#[test]
fn ten_thousand_rules_meet_a_cap_not_a_lost_profile() {
    let env = Env::new("ap-many");
    env.create_profile_cmd("claude", "work").ok();
    r(&env, &["daemon", "stop"]).ok();
    let path = env.config.join("profiles").join("work.json");
    let mut profile: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let rules: Vec<Value> = (0..999)
        .map(|i| {
            json!({"name": format!("r{i}"), "condition": "always",
                        "target": "anthropic/claude-haiku", "priority": i})
        })
        .collect();
    profile["routing"]["rules"] = Value::Array(rules);
    fs::write(&path, serde_json::to_string_pretty(&profile).unwrap()).unwrap();

    let add = |name: &str| {
        ipc(
            &env,
            json!({"type": "proxy_route_add", "alias": "work", "name": name,
                   "condition": "always", "target": "anthropic/claude-haiku",
                   "priority": i64::MIN}),
        )
    };
    r(&env, &["proxy", "route", "list", "work"]).ok();
    assert!(is_ok(&add("last")), "the 1000th rule is accepted");
    let refused = add("one-too-many");
    assert!(message(&refused).contains("at most 1000"), "{refused}");
    let list = r(&env, &["proxy", "route", "list", "work", "--json"]).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1000, "every accepted rule kept");
    assert_eq!(list[999]["name"], "last", "i64::MIN sorts last");
    // The bounds of a priority: moved to the top and back.
    r(&env, &["proxy", "route", "move", "work", "last", "--priority", "9223372036854775807"]).ok();
    let list = r(&env, &["proxy", "route", "list", "work", "--json"]).json();
    assert_eq!(list[0]["name"], "last");
}

/// Two profiles pinning the same port at the same moment: exactly one
/// gets it (the check and the write are one step under the store lock).
#[test]
fn two_profiles_racing_for_one_port_get_it_once() {
    let env = Arc::new(Env::new("ap-port"));
    let aliases: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    for a in &aliases {
        env.create_profile_cmd("claude", a).ok();
    }
    for round in 0..4u16 {
        let port = 47_100 + round;
        let barrier = Arc::new(Barrier::new(aliases.len()));
        let handles: Vec<_> = aliases
            .iter()
            .map(|a| {
                let (env, barrier, a) = (env.clone(), barrier.clone(), a.clone());
                thread::spawn(move || {
                    barrier.wait();
                    is_ok(&ipc(&env, json!({"type": "proxy_enable", "alias": a, "port": port})))
                })
            })
            .collect();
        let won = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        let holders = aliases.iter().filter(|a| kept_port(&env, a) == json!(port)).count();
        assert_eq!((won, holders), (1, 1), "round {round}: port {port} given {won} times");
        // Free the profiles for the next round: each moves to a port of its own.
        for (i, a) in aliases.iter().enumerate() {
            let own = 47_200 + round * 10 + i as u16;
            r(&env, &["proxy", "enable", a, "--port", &own.to_string()]).ok();
        }
    }
}

/// A client that sends the key as a bare JSON string (`curl -d '"sk-..."'`)
/// gets an error that does not quote it back.
#[test]
fn a_provider_key_in_a_malformed_body_is_not_echoed() {
    let env = Env::new("ap-echo");
    env.create_profile_cmd("claude", "work").ok();
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let secret = "sk-ant-api03-ECHOECHOECHOECHOECHOECHOECHO0123456789";
    for body in [
        format!("\"{secret}\""),
        format!("{{\"{secret}\": 1}}"),
        format!("{{\"key\": \"{secret}\", \"port\": \"{secret}\"}}"),
    ] {
        let a = request(
            addr,
            "PUT",
            "/api/providers/zai/key",
            &[("Authorization", &auth)],
            body.as_bytes(),
        );
        let text = String::from_utf8_lossy(&a.body);
        assert_eq!(a.status, 400, "{text}");
        assert!(!text.contains("ECHOECHO"), "the key came back: {text}");
    }
    // A profile's key sent as a bare JSON string to the create route.
    let a = request(
        addr,
        "POST",
        "/api/profiles",
        &[("Authorization", &auth)],
        format!("\"{secret}\"").as_bytes(),
    );
    assert_eq!(a.status, 400);
    let text = String::from_utf8_lossy(&a.body);
    assert!(!text.contains("ECHOECHO"), "the key came back: {text}");
    assert!(!env.log_text().contains("ECHOECHO"), "the key is in the daemon log");
    assert!(
        fs::read_dir(env.config.join("secrets"))
            .unwrap()
            .all(|e| { e.unwrap().file_name() != "provider.zai" })
    );
}

/// Hostile proxy request logs (a FIFO, a link to `/dev/zero`, a 5 MB line
/// of junk before a good record, a sparse 64 GiB file) neither block nor balloon the usage scan:
/// `usage` answers, and the good record counts.
#[test]
fn hostile_proxy_logs_neither_block_nor_balloon_the_usage_scan() {
    let env = Env::new("ap-log");
    for alias in ["g1", "g2", "g3", "g4"] {
        r(
            &env,
            &["profiles", "create", "grok", alias, "-p", "openai", "--api-key-stdin", "--no-alias"],
        )
        .stdin(KEY)
        .ok();
    }
    let dir = |alias: &str| {
        let d = env.config.join("proxy").join(alias);
        fs::create_dir_all(&d).unwrap();
        d
    };
    let fifo = dir("g1").join("requests.jsonl");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dir("g2").join("requests.jsonl")).unwrap();
    let good = json!({"ts": "2026-11-02T10:00:00Z", "status": 200, "model": "grok-4",
                      "target": "openai/grok-4", "tokens": {"input": 7, "output": 3,
                      "cache_read": 0, "cache_write": 0}})
    .to_string();
    let junk = "{".repeat(5 << 20);
    fs::write(dir("g3").join("requests.jsonl"), format!("{junk}\n{good}\n")).unwrap();
    // A sparse 64 GiB log: read at most so far per scan, never whole.
    let sparse = fs::File::create(dir("g4").join("requests.jsonl")).unwrap();
    sparse.set_len(64 << 30).unwrap();
    drop(sparse);
    // Bounded by a deadline: a scan that blocks on the FIFO must fail the
    // test, not hang it.
    let mut child = env.cmd(&["--json", "usage", "--timezone", "UTC"]).spawn();
    let done = wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
        panic!("`usage` blocked on a hostile proxy log");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["input_tokens"], json!(7), "{report}");
}

/// With the daemon logging at debug level, the profile key, a provider key
/// and the proxy's local token (what guards a proxy's loopback port from
/// other local users) appear in no log line, whatever the commands did.
#[test]
fn no_key_or_local_token_in_a_debug_log() {
    let env = Env::new("ap-debug");
    let d = |args: &[&str]| r(&env, args).env("RINGLET_LOG", "debug");
    d(&["daemon"]).ok();
    let pkey = "sk-prov-DEBUGDEBUGDEBUGDEBUG0123456789";
    let create = ["profiles", "create", "claude", "work", "-p", "anthropic", "--proxy"];
    d(&[&create[..], &["--api-key-stdin", "--no-alias"]].concat()).stdin(KEY).ok();
    d(&["providers", "key", "set", "zai", "--api-key-stdin"]).stdin(pkey).ok();
    d(&["proxy", "route", "add", "work", "long", "tokens > 10", "zai/glm-5.1"]).ok();
    d(&["proxy", "alias", "set", "work", "fast", "zai/glm-5.1"]).ok();
    d(&["proxy", "config", "work", "--json"]).ok();
    d(&["proxy", "disable", "work"]).ok();
    d(&["proxy", "enable", "work"]).ok();
    d(&["profiles", "env", "work"]).ok();
    d(&["providers", "key", "set", "zai", "--api-key-stdin"]).stdin(pkey).ok();
    let token = fs::read_to_string(env.config.join("secrets").join("proxy.work")).unwrap();
    d(&["daemon", "stop"]).ok();
    let log = env.log_text();
    assert!(log.contains("DEBUG") || log.contains("debug"), "not a debug log:\n{log}");
    for (what, secret) in [("profile key", KEY), ("provider key", pkey), ("local token", &token)] {
        assert!(!log.contains(secret), "the {what} is in the daemon log:\n{log}");
    }
}

/// A model alias whose name holds a `/` (OpenRouter-style names) set over
/// REST can be removed over REST too (no path segment carries a `/`).
#[test]
fn a_model_alias_with_a_slash_can_be_removed_over_rest() {
    let env = Env::new("ap-slash");
    env.create_profile_cmd("claude", "work").ok();
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: &str| {
        request(addr, method, path, &[("Authorization", &auth)], body.as_bytes())
    };
    let body = json!({"model": "openrouter/fast", "target": "anthropic/claude-haiku"});
    assert_eq!(call("POST", "/api/profiles/work/proxy/aliases", &body.to_string()).status, 200);
    let a = call("DELETE", "/api/profiles/work/proxy/aliases?model=openrouter%2Ffast", "");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(r(&env, &["proxy", "alias", "list", "work", "--json"]).json(), json!([]));
    let a = call("DELETE", "/api/profiles/work/proxy/aliases", "");
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
}

/// Route adds racing on one profile: none is lost (each is a
/// read-modify-write under the store lock).
#[test]
fn concurrent_route_adds_lose_nothing() {
    let env = Arc::new(Env::new("ap-lost"));
    env.create_profile_cmd("claude", "work").ok();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (env, barrier) = (env.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                let add = json!({"type": "proxy_route_add", "alias": "work",
                                 "name": format!("r{i}"), "condition": "always",
                                 "target": "anthropic/claude-haiku"});
                assert!(is_ok(&ipc(&env, add)));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let list = r(&env, &["proxy", "route", "list", "work", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 16, "{list}");
}

/// The agent of a proxied profile, run locally and as a remote terminal
/// session, sees neither the profile key nor a provider key: not in its
/// environment, its arguments, nor any file of its home.
#[test]
fn a_proxied_agent_never_sees_an_upstream_key_run_locally_or_remotely() {
    let env = Env::new("ap-agent");
    let dump = env.root.join("dumps");
    fs::create_dir_all(&dump).unwrap();
    env.fake_agent(
        "claude",
        &format!(
            "case \"$1\" in --version) echo '2.1.0 (Claude Code)'; exit 0;; esac\n\
             f={}/$$; {{ env; echo \"ARGS $*\"; }} > \"$f.tmp\"; mv \"$f.tmp\" \"$f\"",
            dump.display()
        ),
    );
    let pkey = "sk-prov-AGENTAGENTAGENTAGENT0123456789";
    let create = ["profiles", "create", "claude", "work", "-p", "anthropic", "--proxy"];
    r(&env, &[&create[..], &["--api-key-stdin", "--no-alias"]].concat()).stdin(KEY).ok();
    r(&env, &["providers", "key", "set", "zai", "--api-key-stdin"]).stdin(pkey).ok();
    r(&env, &["proxy", "route", "add", "work", "long", "tokens > 10", "zai/glm-5.1"]).ok();
    r(&env, &["profiles", "run", "work", "--", "-p", "hi"]).ok();

    let (addr, token) = env.http();
    let body = json!({"profile": "work", "sandbox": false, "path": env.path_var().to_str().unwrap(),
                      "cols": 80, "rows": 24, "working_dir": env.root.display().to_string()});
    let a = crate::util::http::post_session(addr, &token, &body);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let count = || {
        fs::read_dir(&dump)
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    };
    assert!(wait_until(Duration::from_secs(30), || count() >= 2), "the session's agent never ran");

    let local = fs::read_to_string(env.config.join("secrets").join("proxy.work")).unwrap();
    let mut seen = Vec::new();
    for e in fs::read_dir(&dump).unwrap() {
        seen.push(fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let home = env.home.join(".claude-profiles/work");
    seen.extend(walk(&home));
    for text in &seen {
        for key in [KEY, pkey] {
            assert!(!text.contains(key), "an upstream key reached the agent:\n{text}");
            assert!(!text.contains(&key[key.len() - 20..]), "a key's tail:\n{text}");
        }
    }
    assert!(seen.iter().take(2).all(|t| t.contains(&local)), "the agent has its local token");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            out.extend(walk(&e.path()));
        } else if meta.is_file() {
            out.push(String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned());
        }
    }
    out
}

/// A custom provider whose id mimics the local-token namespace
/// (`proxy.work`) or climbs out of the secrets dir never loads, so no
/// `providers key set` can write over a profile's local token or a file
/// elsewhere; a provider key set after the token leaves the token alone.
#[test]
fn a_provider_id_cannot_reach_another_secret_namespace() {
    let env = Env::new("ap-ns");
    let create = ["profiles", "create", "claude", "work", "-p", "anthropic", "--proxy"];
    r(&env, &[&create[..], &["--api-key-stdin", "--no-alias"]].concat()).stdin(KEY).ok();
    let token_file = env.config.join("secrets").join("proxy.work");
    let token = fs::read_to_string(&token_file).unwrap();
    let dir = env.config.join("providers.d");
    fs::create_dir_all(&dir).unwrap();
    let zai = include_str!("../manifests/providers/zai.toml");
    for (file, id) in [("a.toml", "proxy.work"), ("b.toml", "../x"), ("c.toml", "Work")] {
        fs::write(dir.join(file), zai.replace("id = \"zai\"", &format!("id = \"{id}\""))).unwrap();
    }
    r(&env, &["daemon", "stop"]).ok();
    for id in ["proxy.work", "../x", "Work", "proxy", "provider.zai"] {
        let (_, err) = r(&env, &["providers", "key", "set", id, "--api-key-stdin"])
            .stdin("sk-evil-0123456789abcdefghij")
            .code(1);
        assert!(!err.is_empty(), "{id}");
    }
    assert_eq!(fs::read_to_string(&token_file).unwrap(), token, "the local token was replaced");
    assert!(!env.config.join("x").exists() && !env.config.join("secrets/x").exists());
    let names: Vec<String> = fs::read_dir(env.config.join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n == "work" || n == "proxy.work"), "{names:?}");
}
