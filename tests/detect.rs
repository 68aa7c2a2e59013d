//! Agent detection: versions of real and fake agents, the cache that keeps a
//! repeated listing from spawning anything, upgrades, and hanging probes.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Env, installed_version, pid_alive, real_agents_dir, wait_until};

fn agent<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["agents"].as_array().unwrap().iter().find(|a| a["id"] == id).unwrap()
}

/// A fake agent that counts its probes (see [`probes`]) and prints `output`.
fn counting_agent(env: &Env, name: &str, output: &str) {
    let counter = env.root.join("probes");
    env.fake_agent(name, &format!("echo probe >> {}\necho '{output}'", counter.display()));
}

/// How many times the counting agents were probed.
fn probes(env: &Env) -> usize {
    fs::read_to_string(env.root.join("probes")).unwrap_or_default().lines().count()
}

#[test]
fn the_real_agents_from_npm_are_detected() {
    let bin = real_agents_dir().join("node_modules").join(".bin");
    let mut env = Env::new("real-agents");
    env.extra_path.push(bin.clone());
    // Cold node agents on a loaded machine can take longer than the default
    // 5 s probe timeout to print their versions.
    env.write_config("[detect]\nprobe_timeout_ms = 60000\n");
    // The daemon this starts logs each probe at debug level ("probed ...").
    let list = env.cmd(&["agents", "list", "--json"]).env("RINGLET_LOG", "debug").json();
    for (id, package) in [
        ("claude", "@anthropic-ai/claude-code"),
        ("codex", "@openai/codex"),
        ("opencode", "opencode-ai"),
    ] {
        let a = agent(&list, id);
        assert_eq!(a["installed"], true, "{id}: {a}");
        assert_eq!(a["version"], installed_version(package), "{id}: {a}");
        assert_eq!(a["path"], bin.join(id).display().to_string());
    }
    assert_eq!(agent(&list, "grok")["installed"], false);
    // Warm: answered from the cache, no node process started. Counted in
    // the log rather than timed, which a loaded machine makes slow.
    let probed = || env.log_text().matches(" probed ").count();
    let cold = probed();
    assert!(cold >= 3, "the cold listing probed {cold} binaries:\n{}", env.log_text());
    env.cmd(&["agents", "list"]).ok();
    assert_eq!(probed(), cold, "the warm listing probed again:\n{}", env.log_text());
}

#[test]
fn a_repeated_listing_spawns_no_process_even_after_a_restart() {
    let env = Env::new("cache");
    counting_agent(&env, "codex", "codex-cli 1.2.3");
    let list = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agent(&list, "codex")["version"], "1.2.3");
    env.cmd(&["agents", "list"]).ok();
    env.cmd(&["agents", "inspect", "codex"]).ok();
    assert_eq!(probes(&env), 1);

    env.cmd(&["daemon", "stop"]).ok();
    let list = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agent(&list, "codex")["version"], "1.2.3");
    assert_eq!(probes(&env), 1, "the on-disk cache survives a daemon restart");
    let cache = env.config.join("cache").join("agent-detections.json");
    assert_eq!(crate::util::mode(&cache) & 0o777, 0o600);
    assert_eq!(crate::util::mode(cache.parent().unwrap()) & 0o777, 0o700);
}

#[test]
fn an_upgraded_binary_is_probed_again_and_announced() {
    let env = Env::new("upgrade");
    counting_agent(&env, "claude", "1.0.0 (Claude Code)");
    env.cmd(&["agents", "list"]).ok();
    // Subscribe, then upgrade the binary (new size and mtime).
    let stream = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    std::io::Write::write_all(
        &mut &stream,
        b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"AgentUpdated\"]}}\n",
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    crate::util::read_line_matching(&mut reader, Duration::from_secs(5), |_| true).unwrap();
    counting_agent(&env, "claude", "1.1.0 (Claude Code), upgraded");
    let list = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agent(&list, "claude")["version"], "1.1.0");
    assert_eq!(probes(&env), 2);
    let event = crate::util::read_line_matching(&mut reader, Duration::from_secs(5), |l| {
        l.contains("AgentUpdated")
    })
    .expect("AgentUpdated event");
    let v: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(v["data"]["previous_version"], "1.0.0");
    assert_eq!(v["data"]["version"], "1.1.0");
}

#[test]
fn a_hanging_probe_is_killed_and_reported() {
    let env = Env::new("hang");
    // Long enough for `opencode` below to answer on a loaded machine (300 ms
    // was not); the hanging one sleeps ten times as long.
    env.write_config("[detect]\nprobe_timeout_ms = 6000\n");
    let pidfile = env.root.join("hang.pid");
    let counter = env.root.join("probes");
    // The probe forks a child that holds stdout open, then hangs itself.
    env.fake_agent(
        "droid",
        &format!(
            "echo probe >> {}\nsleep 60 &\necho $! > {}\nsleep 60",
            counter.display(),
            pidfile.display()
        ),
    );
    env.fake_agent("opencode", "echo 0.9.1");
    let started = Instant::now();
    let list = env.cmd(&["agents", "list", "--json"]).json();
    // Not held until the probe (or the child holding its stdout) ends at 60 s.
    assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
    let droid = agent(&list, "droid");
    assert_eq!(droid["installed"], true);
    assert_eq!(droid["version"], Value::Null);
    assert!(
        droid["probe_error"].as_str().unwrap().contains("did not answer within 6000 ms"),
        "{droid}"
    );
    assert_eq!(agent(&list, "opencode")["version"], "0.9.1", "other probes are unaffected");
    let forked: u32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(forked)),
        "probe's process group not killed"
    );
    // Remembered until the binary changes: the next listing probes nothing.
    let text = env.cmd(&["agents", "list"]).ok();
    assert!(text.lines().any(|l| l.starts_with("droid") && l.contains("unknown")), "{text}");
    assert_eq!(probes(&env), 1);
}

#[test]
fn binaries_that_are_not_executable_or_print_nothing() {
    let env = Env::new("odd-binaries");
    fs::write(env.bin.join("grok"), "not executable").unwrap();
    env.fake_agent("codex", "exit 3");
    env.fake_agent("claude", "echo no version here");
    let list = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agent(&list, "grok")["installed"], false);
    let codex = agent(&list, "codex");
    assert_eq!(codex["installed"], true);
    assert!(codex["probe_error"].as_str().unwrap().contains("failed"), "{codex}");
    assert!(agent(&list, "claude")["probe_error"].as_str().unwrap().contains("printed no version"));
}

/// Sets `dir`'s mtime a minute back, as a `PATH` directory nobody has
/// touched for a while looks: the detector then trusts what it found
/// missing there until the directory changes.
fn age(dir: &std::path::Path) {
    let then = std::time::SystemTime::now() - Duration::from_secs(60);
    fs::File::open(dir).unwrap().set_modified(then).unwrap();
}

fn installed(env: &Env, id: &str) -> bool {
    let list = env.cmd(&["agents", "list", "--json"]).json();
    agent(&list, id)["installed"] == true
}

#[test]
fn agents_appear_in_long_unchanged_path_directories() {
    let mut env = Env::new("path-settled");
    let later = env.root.join("later-bin");
    env.extra_path.push(later.clone());
    age(&env.bin);
    // Twice: the second listing is answered from what the first found absent.
    assert!(!installed(&env, "droid"));
    assert!(!installed(&env, "droid"));

    // Installed into a directory of PATH: the directory changed.
    env.fake_agent("droid", "echo 0.1.0");
    assert!(installed(&env, "droid"), "a new binary in a PATH directory");
    age(&env.bin);
    assert!(installed(&env, "droid"));
    assert!(installed(&env, "droid"));

    // Made executable: no directory changes, the file does.
    fs::write(env.bin.join("grok"), "#!/bin/sh\necho 0.2.0\n").unwrap();
    age(&env.bin);
    assert!(!installed(&env, "grok"));
    assert!(!installed(&env, "grok"));
    let mode = || std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(env.bin.join("grok"), mode()).unwrap();
    assert!(installed(&env, "grok"), "a binary made executable");

    // A link to nothing, then its target appears elsewhere.
    let target = env.root.join("codex-target");
    std::os::unix::fs::symlink(&target, env.bin.join("codex")).unwrap();
    age(&env.bin);
    assert!(!installed(&env, "codex"));
    assert!(!installed(&env, "codex"));
    fs::write(&target, "#!/bin/sh\necho codex-cli 0.3.0\n").unwrap();
    fs::set_permissions(&target, mode()).unwrap();
    assert!(installed(&env, "codex"), "a link whose target appeared");

    // A PATH directory that did not exist yet.
    assert!(!installed(&env, "opencode"));
    fs::create_dir(&later).unwrap();
    fs::write(later.join("opencode"), "#!/bin/sh\necho 1.0.0\n").unwrap();
    fs::set_permissions(later.join("opencode"), mode()).unwrap();
    assert!(installed(&env, "opencode"), "an agent in a PATH directory created later");

    // Uninstalled.
    age(&env.bin);
    assert!(installed(&env, "droid"));
    fs::remove_file(env.bin.join("droid")).unwrap();
    assert!(!installed(&env, "droid"), "a removed binary");
}
