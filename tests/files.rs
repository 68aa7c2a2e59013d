//! Attacks on the files Ringlet writes (issue 11, items 1 and 15): an agent
//! that plants symlinks, FIFOs and huge sparse files at every name a write
//! could use in its profile home; links at the fixed names in the config and
//! runtime dirs; and `kill -9` of the daemon at every step of `profiles
//! create` and `profiles delete` (the `RINGLET_TEST_CRASH_AT` hook).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::util::{Env, KEY, wait_until};

const VICTIM_TEXT: &str = "the user's own file\n";

/// A file in the world's real HOME that no write may ever reach.
fn victim(env: &Env) -> PathBuf {
    let path = env.home.join("victim.txt");
    fs::write(&path, VICTIM_TEXT).unwrap();
    path
}

fn assert_untouched(victim: &Path) {
    assert_eq!(
        fs::read_to_string(victim).unwrap(),
        VICTIM_TEXT,
        "{} was written through a planted link",
        victim.display()
    );
}

/// A Claude Code profile `c` (file store) whose `claude` is a fake that runs
/// `plant` as the agent would, with its profile home in `$CLAUDE_CONFIG_DIR`.
fn claude_world(name: &str, plant: &str) -> Env {
    let env = Env::new(name);
    env.fake_agent("claude", plant);
    env.create_profile("claude", "c");
    env
}

/// Runs a command with a deadline: a hang is a failure, not a stuck suite.
fn output_within(env: &Env, args: &[&str], limit: Duration) -> Output {
    let mut child = env.cmd(args).spawn();
    let done = wait_until(limit, || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`ringlet {}` did not finish within {limit:?}", args.join(" "));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_agent_planting_links_at_every_name_never_gets_a_write_outside_its_home() {
    let env = Env::new("plant-links");
    let victim = victim(&env);
    let pid_file = env.run.join("ringlet").join("ringlet.sock.lock");
    // The agent reads the daemon's pid (the old temp names were
    // `.<file>.tmp.<pid>.<n>`) and plants links at every temp name the next
    // render could use; told to by a file in its home, it also plants links
    // at the rendered files themselves.
    env.fake_agent(
        "claude",
        &format!(
            r#"cd "$CLAUDE_CONFIG_DIR" || exit 3
pid=$(cat {pid_file} 2>/dev/null | tr -d '\n')
for f in settings.json .claude.json; do
  n=0
  while [ $n -lt 64 ]; do ln -sf {victim} ".$f.tmp.$pid.$n"; n=$((n+1)); done
  if [ -e ../plant-files ]; then rm -f "$f"; ln -s {victim} "$f"; fi
done
echo planted"#,
            pid_file = pid_file.display(),
            victim = victim.display()
        ),
    );
    env.create_profile("claude", "c");
    let first = env.cmd(&["profiles", "run", "c"]).ok();
    assert!(first.contains("planted"), "{first}");
    // The next run renders again, beside the planted temp names.
    env.cmd(&["profiles", "run", "c"]).ok();
    assert_untouched(&victim);

    // Links at the rendered names themselves: replaced by real files.
    let claude_dir = env.home.join(".claude-profiles/c/.claude");
    fs::write(env.home.join(".claude-profiles/c/plant-files"), "").unwrap();
    env.cmd(&["profiles", "run", "c"]).ok();
    assert!(fs::symlink_metadata(claude_dir.join("settings.json")).unwrap().is_symlink());
    // This run's render meets the links (the agent plants no more).
    fs::remove_file(env.home.join(".claude-profiles/c/plant-files")).unwrap();
    let again = env.cmd(&["profiles", "run", "c"]).output();
    assert_untouched(&victim);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    for f in ["settings.json", ".claude.json"] {
        let meta = fs::symlink_metadata(claude_dir.join(f)).unwrap();
        assert!(meta.is_file(), "{f} is still a link");
    }

    // The whole `.claude` dir swapped for a link to the real home: refused
    // with a clear error, nothing written there.
    let before: Vec<_> =
        fs::read_dir(&env.home).unwrap().flatten().map(|e| e.file_name()).collect();
    fs::remove_dir_all(&claude_dir).unwrap();
    symlink(&env.home, &claude_dir).unwrap();
    let (_, err) = env.cmd(&["profiles", "run", "c"]).code(1);
    assert!(err.contains("symbolic link"), "{err}");
    let after: Vec<_> = fs::read_dir(&env.home).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(before, after, "nothing created in the real home");
    assert_untouched(&victim);
}

#[test]
fn a_fifo_or_a_sparse_huge_file_at_a_rendered_name_neither_hangs_nor_balloons() {
    let env = claude_world("plant-fifo", "echo ran");
    env.cmd(&["profiles", "run", "c"]).ok();
    let claude_dir = env.home.join(".claude-profiles/c/.claude");
    // A FIFO nobody writes: reading it would block forever.
    fs::remove_file(claude_dir.join("settings.json")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(claude_dir.join("settings.json"))
        .status()
        .unwrap();
    assert!(status.success());
    // 100 GB of holes: reading it whole would eat the machine's memory.
    let sparse = fs::File::create(claude_dir.join(".claude.json")).unwrap();
    sparse.set_len(100 << 30).unwrap();
    drop(sparse);
    let out = output_within(&env, &["profiles", "run", "c"], Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["settings.json", ".claude.json"] {
        let meta = fs::symlink_metadata(claude_dir.join(f)).unwrap();
        assert!(meta.is_file() && meta.len() < 1 << 20, "{f} was not replaced");
    }
    // The daemon stayed small (its peak resident set, from /proc).
    let pid = env.daemon_pid().expect("daemon alive");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(hwm_kb < 256 * 1024, "daemon peak RSS {hwm_kb} kB");
    assert!(env.log_text().contains("treated as absent"), "{}", env.log_text());
}

/// Plants `link -> target`, runs `args`, and checks the victim stayed as it
/// was and the command either worked or named the refused path.
fn attack_fixed_name(env: &Env, link: &Path, target: &Path, args: &[&str]) -> (bool, String) {
    let _ = env.cmd(&["daemon", "stop"]).output();
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let _ = fs::remove_file(link);
    let _ = fs::remove_dir_all(link);
    symlink(target, link).unwrap();
    let out = output_within(env, args, Duration::from_secs(60));
    let err = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        env.log_text()
    );
    // Refused, by an error or a warning that names the link.
    let name = link.file_name().unwrap().to_string_lossy();
    assert!(err.contains(&*name) && err.contains("symbolic link"), "{link:?}: {err}");
    let _ = env.cmd(&["daemon", "stop"]).output();
    for pid in env.daemon_processes() {
        crate::util::kill(pid, 9);
    }
    let _ = fs::remove_file(link);
    (out.status.success(), err)
}

#[test]
fn links_at_fixed_names_are_refused_never_followed() {
    let env = claude_world("fixed-links", "echo ran");
    let victim = victim(&env);
    env.cmd(&["profiles", "run", "c"]).ok();
    let elsewhere = env.home.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();

    // Files reopened by name: a link at each is an error naming it.
    for (link, args) in [
        (env.config.join("telemetry/sessions.jsonl"), &["profiles", "run", "c"][..]),
        (env.config.join("telemetry/usage.jsonl"), &["usage", "--json"][..]),
        (env.config.join("profiles/.lock"), &["profiles", "run", "c"][..]),
        (env.config.join("logs/daemon.log"), &["profiles", "list"][..]),
        (env.run.join("ringlet/ringlet.sock.lock"), &["profiles", "list"][..]),
        (env.config.join("http_token"), &["daemon", "token"][..]),
    ] {
        attack_fixed_name(&env, &link, &victim, args);
        assert_untouched(&victim);
    }

    // A dangling and a looping token link: a clear error, not a crash.
    let token = env.config.join("http_token");
    for target in [env.root.join("nowhere"), token.clone()] {
        let (ok, err) = attack_fixed_name(&env, &token, &target, &["daemon", "token"]);
        assert!(!ok && err.contains("http_token"), "{err}");
    }

    // The secret store's directory swapped for a link: refused, nothing
    // written or deleted through it.
    let secrets = env.config.join("secrets");
    fs::rename(&secrets, env.root.join("secrets-real")).unwrap();
    symlink(&elsewhere, &secrets).unwrap();
    fs::write(elsewhere.join("d"), "not ours").unwrap();
    let (_, err) = env.create_profile_cmd("claude", "d").code(1);
    assert!(err.contains("secrets") && err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_to_string(elsewhere.join("d")).unwrap(), "not ours");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 1);
    assert_untouched(&victim);
}

#[test]
fn stale_temp_files_are_removed_at_daemon_start() {
    let env = claude_world("stale-temps", "echo ran");
    env.cmd(&["daemon", "stop"]).ok();
    let planted = [
        env.config.join(".http_token.0123456789abcdef.tmp"),
        env.config.join("profiles/.c.json.0123456789abcdef.tmp"),
        env.config.join("telemetry/.usage.jsonl.fedcba9876543210.tmp"),
        env.config.join("secrets/.c.00112233445566ff.tmp"),
        env.config.join("cache/.agent-detections.json.tmp.123.4"),
        env.home.join(".claude-profiles/c/.claude/.settings.json.0123456789abcdef.tmp"),
    ];
    let keep = env.config.join("profiles/notes.tmp");
    // Claude Code's own temp name: a running session may be writing it.
    let claudes = env.home.join(".claude-profiles/c/.claude/.claude.json.tmp.123.1765080000000");
    for p in planted.iter().chain([&keep, &claudes]) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "half").unwrap();
    }
    env.cmd(&["profiles", "list"]).ok();
    for p in &planted {
        assert!(!p.exists(), "{} stayed", p.display());
    }
    assert!(keep.exists(), "a file that only looks like a temp file was removed");
    assert!(claudes.exists(), "the agent's own temp file was removed");
}

/// What a world holds for profile `c`: its file, key, home, leftovers.
#[derive(Debug, PartialEq)]
struct State {
    profile: bool,
    key: bool,
    home: bool,
    leftovers: Vec<String>,
}

fn state_of(env: &Env) -> State {
    let mut leftovers = Vec::new();
    for sub in ["profiles", "secrets", "telemetry", ""] {
        let Ok(entries) = fs::read_dir(env.config.join(sub)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".creating") || name.ends_with(".deleting")
            {
                leftovers.push(format!("{sub}/{name}"));
            }
        }
    }
    State {
        profile: env.config.join("profiles/c.json").exists(),
        key: env.config.join("secrets/c").exists(),
        home: env.home.join(".claude-profiles/c").exists(),
        leftovers,
    }
}

fn create_c(env: &Env, crash_at: Option<&str>) -> Output {
    let mut cmd = env.create_profile_cmd("claude", "c");
    if let Some(step) = crash_at {
        cmd = cmd.env("RINGLET_TEST_CRASH_AT", step);
    }
    cmd.output()
}

/// Stops the world's daemon, so that the next command starts one (with the
/// crash hook, or one that repairs).
fn stop_daemon(env: &Env) {
    let _ = env.cmd(&["daemon", "stop"]).output();
    wait_dead(env);
}

/// Waits until the killed daemon is gone: its process, and its socket (a
/// dying process drops its command line before it closes its fds).
fn wait_dead(env: &Env) {
    assert!(wait_until(Duration::from_secs(10), || {
        env.daemon_processes().is_empty()
            && std::os::unix::net::UnixStream::connect(env.socket()).is_err()
    }));
}

#[test]
fn a_daemon_killed_at_any_step_of_create_leaves_the_old_state_or_the_new_one() {
    for step in [
        "write:before-rename",
        "create:intent",
        "create:home",
        "create:key",
        "create:shim",
        "create:profile",
    ] {
        let env = Env::new("crash-create");
        env.fake_agent("claude", "echo ran");
        // The crash hook is read by the daemon this command starts.
        let out = create_c(&env, Some(step));
        assert!(!out.status.success(), "{step}: the daemon was not killed");
        wait_dead(&env);
        // The next daemon repairs at its start.
        let list = env.cmd(&["profiles", "list"]).output();
        assert!(list.status.success(), "{step}: {}", String::from_utf8_lossy(&list.stderr));
        let state = state_of(&env);
        let committed = step == "create:profile";
        assert_eq!(
            state,
            State { profile: committed, key: committed, home: committed, leftovers: vec![] },
            "after a kill at {step}"
        );
        if committed {
            assert!(env.cmd(&["profiles", "env", "c"]).ok().contains(KEY), "{step}");
            env.cmd(&["profiles", "run", "c"]).ok();
        } else {
            // Nothing stands in the way of creating it again.
            let again = create_c(&env, None);
            assert!(again.status.success(), "{step}: {}", String::from_utf8_lossy(&again.stderr));
        }
        stop_daemon(&env);
    }
}

#[test]
fn a_daemon_killed_at_any_step_of_delete_leaves_the_profile_or_nothing() {
    for step in ["delete:intent", "delete:profile", "delete:key", "delete:home"] {
        let env = Env::new("crash-delete");
        env.fake_agent("claude", "echo ran");
        assert!(create_c(&env, None).status.success());
        stop_daemon(&env);
        let out = env
            .cmd(&["profiles", "delete", "c", "--purge"])
            .env("RINGLET_TEST_CRASH_AT", step)
            .output();
        assert!(!out.status.success(), "{step}: the daemon was not killed");
        wait_dead(&env);
        env.cmd(&["profiles", "list"]).ok();
        let kept = step == "delete:intent";
        assert_eq!(
            state_of(&env),
            State { profile: kept, key: kept, home: kept, leftovers: vec![] },
            "after a kill at {step}"
        );
        if kept {
            assert!(env.cmd(&["profiles", "env", "c"]).ok().contains(KEY), "{step}");
        }
        stop_daemon(&env);
    }
}

#[test]
fn an_orphan_key_is_removed_and_a_missing_key_is_reported() {
    let env = Env::new("orphans");
    env.fake_agent("claude", "echo ran");
    assert!(create_c(&env, None).status.success());
    stop_daemon(&env);
    // A key with no profile (an older version's crash): removed at start.
    fs::write(env.config.join("secrets/ghost"), "sk-ghost").unwrap();
    // A profile whose key is gone: reported, not hidden.
    fs::remove_file(env.config.join("secrets/c")).unwrap();
    let out = env.cmd(&["profiles", "list"]).output();
    assert!(out.status.success());
    assert!(!env.config.join("secrets/ghost").exists(), "the orphan key stayed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("c (key missing)"), "{stdout}");
    assert!(stderr.contains("profile `c`: its API key is missing"), "{stderr}");
    let list = env.cmd(&["profiles", "list", "--json"]).json();
    assert_eq!(list["profiles"][0]["key_missing"], true, "{list}");
    let (doctor, _) = env.cmd(&["doctor"]).code(1);
    assert!(doctor.contains("no API key stored for c"), "{doctor}");
}

#[test]
fn a_killed_create_or_delete_leaves_no_key_in_the_keychain() {
    let Some(bus) = crate::util::keychain_bus() else { return };
    let alias = format!("crash{}", std::process::id());
    let lookup = || crate::util::keychain_lookup(&bus, &alias);
    let env = Env::new("crash-keychain");
    env.fake_agent("claude", "echo ran");
    let create = |crash: Option<&str>| {
        let mut cmd = env
            .create_profile_cmd("claude", &alias)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("RINGLET_SECRET_STORE", "keyring");
        if let Some(step) = crash {
            cmd = cmd.env("RINGLET_TEST_CRASH_AT", step);
        }
        cmd.output()
    };
    let list =
        || env.cmd(&["profiles", "list", "--json"]).env("DBUS_SESSION_BUS_ADDRESS", &bus).json();
    // Killed with the key stored and no profile file: the key goes at start.
    assert!(!create(Some("create:shim")).status.success());
    wait_dead(&env);
    assert_eq!(lookup(), KEY, "the kill came after the key was stored");
    assert_eq!(list()["profiles"].as_array().unwrap().len(), 0);
    assert_eq!(lookup(), "", "the orphan key stayed in the keychain");
    // Killed after the profile file went: the key goes at start too.
    assert!(create(None).status.success());
    stop_daemon(&env);
    let out = env
        .cmd(&["profiles", "delete", &alias])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("RINGLET_TEST_CRASH_AT", "delete:profile")
        .output();
    assert!(!out.status.success());
    wait_dead(&env);
    assert_eq!(lookup(), KEY);
    assert_eq!(list()["profiles"].as_array().unwrap().len(), 0);
    assert_eq!(lookup(), "", "the deleted profile's key stayed in the keychain");
    stop_daemon(&env);
}
