//! Red-team attacks on the proxy's lifecycle and its secrets at the
//! process level (issue 12): what another process can read of a running
//! proxy child, what the child and a remote session's agent inherit, a
//! profile deleted or disabled while its proxy starts, restart storms, a
//! stop during a backoff. Each test performs the attack through the real
//! binary and daemon in a temp world (file secret store).

use std::fs;
use std::net::Ipv4Addr;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::proxy_supervisor::{free_port, port_is_free, real_world, real_world_opts, status};
use crate::util::{Env, TestCommand, wait_until};

fn r(env: &Env, args: &[&str]) -> TestCommand {
    env.cmd(args).env("RINGLET_SECRET_STORE", "file")
}

fn fds(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let target = fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
        out.push(format!("{} -> {target}", e.file_name().to_string_lossy()));
    }
    out.sort();
    out
}

/// Every live `proxy serve` process whose parent is `daemon`.
fn proxy_children(daemon: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat.rsplit(") ").next().and_then(|r| r.split(' ').nth(1));
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(&daemon.to_string()) && cmdline.windows(5).any(|w| w == b"serve") {
            out.push(pid);
        }
    }
    out
}

/// `profiles delete` (or `proxy disable`) lands between a `proxy start`
/// reading the profile and the supervisor getting the start: the delete's
/// stop finds nothing, then the start runs a proxy for a profile that is
/// gone, holding its port and upstream key, out of reach of `proxy stop`
/// (no such profile) until the daemon exits. A debug pause widens the
/// window that a `profiles run` racing a delete hits by chance.
/// The proxy on `port` answers its stats route to `token`.
fn assert_serves(port: u16, token: &str) {
    let answer = crate::util::http::request(
        std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        "GET",
        "/ringlet/stats",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.head);
}

#[test]
fn a_profile_deleted_or_disabled_while_its_proxy_starts_leaves_no_proxy() {
    let mock = crate::util::mock::MockProvider::anthropic("pong");
    let pause = [("RINGLET_DEBUG_PROXY_LAUNCH_PAUSE_MS", "1500")];
    let (env, port, _) = real_world_opts("apl-delete-start", &mock.url(), &pause);
    let daemon = env.daemon_pid().unwrap();
    for undo in [&["proxy", "disable", "work"][..], &["profiles", "delete", "work"][..]] {
        r(&env, &["proxy", "enable", "work", "--port", &port.to_string()]).ok();
        let start = r(&env, &["proxy", "start", "work"]).spawn();
        thread::sleep(Duration::from_millis(500));
        let undone = r(&env, undo).output();
        assert!(undone.status.success(), "{undo:?}: {}", String::from_utf8_lossy(&undone.stderr));
        let started = start.wait_with_output().unwrap();
        assert!(
            wait_until(Duration::from_secs(15), || port_is_free(port)),
            "{undo:?}: port {port} still held by a proxy nobody wants"
        );
        assert!(
            wait_until(Duration::from_secs(15), || proxy_children(daemon).is_empty()),
            "{undo:?}: a proxy child lives on: {:?}",
            proxy_children(daemon)
        );
        let said = String::from_utf8_lossy(&started.stderr).into_owned();
        assert!(!started.status.success(), "{undo:?}: the start claims success");
        assert!(said.contains("while its proxy started"), "{undo:?}: {said}");
    }
    // And the name is free for a new profile, whose start gets a proxy of
    // its own, not the deleted one's.
    let all = r(&env, &["proxy", "status", "--json"]).json();
    assert!(all.as_array().unwrap().iter().all(|p| p["state"] != "running"), "{all}");
}

/// What the daemon was started with stays out of the proxy child: a
/// descriptor its launcher left open without close-on-exec (a shell's
/// redirection, a service manager's extra fd, a file outside any sandbox)
/// must not reach the process that holds every upstream key. The child
/// keeps its stdio, its listener (fd 3) and what it opens itself.
#[test]
fn the_proxy_child_inherits_no_stray_descriptor() {
    let mock = crate::util::mock::MockProvider::anthropic("pong");
    let (env, port, token) = real_world("apl-fds", &mock.url());
    r(&env, &["daemon", "stop"]).ok();
    let outside = env.root.join("outside-the-sandbox.txt");
    fs::write(&outside, "private\n").unwrap();
    // The daemon started with fd 7 open on that file, as a launcher
    // (`ringlet daemon 7<file` in a shell) would leave it.
    let mut daemon = env.program("bash").env("RINGLET_SECRET_STORE", "file");
    daemon.cmd.args(["-c", "exec 7<\"$1\"; exec \"$2\" daemon", "bash"]);
    daemon.cmd.arg(&outside).arg(crate::util::BIN);
    daemon.ok();
    let daemon_fds = fds(env.daemon_pid().unwrap());
    assert!(
        daemon_fds.iter().any(|f| f.contains("outside-the-sandbox")),
        "the attack did not take: {daemon_fds:?}"
    );
    r(&env, &["proxy", "start", "work"]).ok();
    let pid = status(&env, "work")["pid"].as_u64().unwrap() as u32;
    let child = fds(pid);
    assert!(
        !child.iter().any(|f| f.contains("outside-the-sandbox")),
        "the proxy child inherited the daemon's stray fd: {child:?}"
    );
    // Nothing above its listener that it did not open: no pipe, file or
    // socket of the daemon's (its own accepted sockets and wake pair only).
    for f in &child {
        let (n, target) = f.split_once(" -> ").unwrap();
        let n: u32 = n.parse().unwrap();
        if n > 3 {
            assert!(
                target.starts_with("socket:") || target.starts_with("anon_inode:"),
                "{f} in {child:?}"
            );
        }
    }
    // And it still serves.
    assert_serves(port, &token);
    // Nor does a remote session's sandboxed agent get it (bwrap passes on
    // every descriptor it is given): an open file, or worse a directory,
    // from outside the sandbox would be a way out of it.
    env.fake_agent(
        "claude",
        "if [ \"$1\" = --version ]; then echo '2.1.0 (Claude Code)'; exit 0; fi\n\
         ls -l /proc/$$/fd > \"$PWD/fds.tmp\" 2>&1; mv \"$PWD/fds.tmp\" \"$PWD/fds.txt\"\n\
         sleep 2",
    );
    let project = env.home.join("project");
    fs::create_dir_all(&project).unwrap();
    r(&env, &["profiles", "run", "work", "--remote"]).current_dir(&project).ok();
    let listing = project.join("fds.txt");
    assert!(wait_until(Duration::from_secs(20), || listing.exists()), "the agent never ran");
    let agent = fs::read_to_string(&listing).unwrap();
    assert!(agent.contains("/dev/pts/"), "{agent}");
    assert!(
        !agent.contains("outside-the-sandbox"),
        "the sandboxed agent inherited the daemon's stray fd:\n{agent}"
    );
}

/// The daemon's threads and open descriptors. Its IPC socket's kept
/// threads (`ipc-accept`) are left out: a pool that a burst of commands
/// may leave from two up to four waiting, bounded as tests/ipc.rs checks.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let names = crate::util::thread_names(pid);
    let threads = names.iter().filter(|n| *n != "ipc-accept").count();
    (threads, fds(pid).len())
}

/// Starts, stops and restarts by the dozen, all at once: afterwards one
/// child runs (or none after a stop), on the profile's port, and the
/// daemon is back to the threads and descriptors it had: no child, probe,
/// config writer or stderr reader left over, no socket kept.
#[test]
fn a_storm_of_start_stop_restart_leaks_nothing() {
    let mock = crate::util::mock::MockProvider::anthropic("pong");
    let (env, port, token) = real_world("apl-storm", &mock.url());
    let daemon = env.daemon_pid().unwrap();
    r(&env, &["proxy", "start", "work"]).ok();
    r(&env, &["proxy", "stop", "work"]).ok();
    // Settled: the threads of a first start (the supervisor's) exist.
    thread::sleep(Duration::from_millis(300));
    let before = threads_and_fds(daemon);
    let verbs = ["start", "restart", "stop", "restart", "start", "restart"];
    let storm: Vec<_> = (0..36)
        .map(|i| {
            let verb = verbs[i % verbs.len()];
            r(&env, &["proxy", verb, "work"]).spawn()
        })
        .collect();
    for child in storm {
        let _ = child.wait_with_output();
    }
    // Whatever the order was, a start now gives one healthy child.
    r(&env, &["proxy", "start", "work"]).ok();
    let s = status(&env, "work");
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["port"], port, "{s}");
    let pid = s["pid"].as_u64().unwrap() as u32;
    assert!(
        wait_until(Duration::from_secs(20), || proxy_children(daemon) == [pid]),
        "children left: {:?} (current {pid})",
        proxy_children(daemon)
    );
    assert_serves(port, &token);
    r(&env, &["proxy", "stop", "work"]).ok();
    assert!(port_is_free(port), "the port outlived the stop");
    assert!(
        wait_until(Duration::from_secs(20), || threads_and_fds(daemon) == before),
        "daemon threads/fds before {before:?}, after {:?}",
        threads_and_fds(daemon)
    );
}

/// A child that dies at once, forever: `proxy stop` during a backoff stops
/// it for good (no respawn after), the proxy fails after its restarts
/// rather than spinning, and `proxy start` after `failed` tries afresh.
#[test]
fn a_stop_during_a_backoff_sticks_and_a_failed_proxy_starts_afresh() {
    let env = Env::new("apl-backoff");
    env.fake_agent("claude", "echo '2.1.0 (Claude Code)'");
    let child = env.bin.join("dying-proxy");
    let count = env.root.join("spawns");
    fs::write(&child, format!("#!/bin/sh\necho x >> '{}'\nexit 3\n", count.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&child, fs::Permissions::from_mode(0o755)).unwrap();
    r(&env, &["daemon"]).env("RINGLET_DEBUG_PROXY_CHILD", &child).ok();
    env.create_profile("claude", "work");
    let port = free_port();
    r(&env, &["proxy", "enable", "work", "--port", &port.to_string()]).ok();
    let spawns = || fs::read_to_string(&count).map(|t| t.lines().count()).unwrap_or(0);
    let start = r(&env, &["proxy", "start", "work"]).spawn();
    // In a backoff after its second death.
    assert!(wait_until(Duration::from_secs(10), || spawns() >= 2));
    r(&env, &["proxy", "stop", "work"]).ok();
    let out = start.wait_with_output().unwrap();
    assert!(!out.status.success());
    let s = status(&env, "work");
    assert_eq!(s["state"], "stopped", "{s}");
    let after_stop = spawns();
    thread::sleep(Duration::from_secs(3));
    assert_eq!(spawns(), after_stop, "respawned after the stop");
    assert!(port_is_free(port));
    // Failed after its restarts (1 + 5 spawns), then no more.
    let (_, err) = r(&env, &["proxy", "start", "work"]).code(1);
    assert!(err.contains("failed") && err.contains("exited with code 3"), "{err}");
    let failed_at = spawns();
    assert_eq!(failed_at - after_stop, 6, "spawns for one failed start");
    assert_eq!(status(&env, "work")["state"], "failed");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(spawns(), failed_at, "a failed proxy keeps spawning");
    // A start after `failed` tries afresh: the full round again.
    let (_, err) = r(&env, &["proxy", "start", "work"]).code(1);
    assert!(err.contains("failed"), "{err}");
    assert_eq!(spawns() - failed_at, 6);
}

/// Runs `ringlet proxy serve` as uid 65534 (its listener on fd 3, a config
/// with a key on stdin), then, as the same uid, tries every way to read the
/// key from outside: /proc environ, mem, maps, ptrace. A dumpable process
/// of that uid is the control (its environ reads fine).
const SAME_UID_PROBE: &str = r#"
import json, os, socket, subprocess, sys, time
binary, logdir = sys.argv[1], sys.argv[2]
as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
cfg = {"alias": "w", "agent": "claude", "family": "anthropic", "local_token": "ab" * 32,
       "default_upstream": "anthropic", "config_dir": logdir, "log_dir": logdir,
       "upstreams": {"anthropic": {"url": "http://127.0.0.1:9", "key": "sk-SAME-UID-PROBE",
                                   "auth": "x_api_key"}},
       "rules": [], "aliases": {}, "budget": {}}
p = subprocess.Popen(as_nobody + [binary, "proxy", "serve"], stdin=subprocess.PIPE,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     pass_fds=(3,), env={"PATH": "/usr/bin:/bin", "MARKER": "env-marker"})
p.stdin.write(json.dumps(cfg).encode()); p.stdin.close()
for _ in range(200):
    if p.poll() is not None: break
    try:
        c = socket.create_connection(("127.0.0.1", s.getsockname()[1]), timeout=1)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if c.recv(100).startswith(b"HTTP/1.1 200"): break
    except OSError: time.sleep(0.05)
def read(path):
    r = subprocess.run(as_nobody + ["python3", "-c",
        f"import sys; sys.stdout.buffer.write(open('{path}','rb').read(4096))"], capture_output=True)
    return r.returncode, r.stdout
out = {"alive": p.poll() is None}
for f in ["environ", "mem", "maps", "auxv"]:
    out[f] = read(f"/proc/{p.pid}/{f}")[0]
out["status_uid"] = os.stat(f"/proc/{p.pid}/environ").st_uid
r = subprocess.run(as_nobody + ["python3", "-c", f"""
import ctypes; libc = ctypes.CDLL(None, use_errno=True)
print(libc.ptrace(16, {p.pid}, 0, 0), ctypes.get_errno())"""], capture_output=True, text=True)
out["ptrace"] = r.stdout.strip()
ctl = subprocess.Popen(as_nobody + ["sleep", "10"], env={"MARKER": "visible"})
time.sleep(0.2)
out["control"] = read(f"/proc/{ctl.pid}/environ")[1].decode(errors="replace")
ctl.kill()
# An attach that worked leaves it stopped: continue it, then SIGTERM.
os.kill(p.pid, 18); p.terminate()
try: out["exit"] = p.wait(timeout=20)
except subprocess.TimeoutExpired: p.kill(); out["exit"] = "killed"
print(json.dumps(out))
"#;

/// The child is non-dumpable: another process of the same (non-root) uid
/// reads neither its environment nor its memory and cannot attach to it,
/// while it can all of that for an ordinary process of that uid.
#[test]
fn a_same_uid_process_reads_no_key_from_the_proxy_child() {
    let is_root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let setpriv = std::process::Command::new("setpriv").arg("--version").output().is_ok();
    if !is_root || !setpriv {
        eprintln!("skipped: needs root and setpriv to run the child as uid 65534");
        return;
    }
    let env = Env::new("apl-same-uid");
    let logdir = env.root.join("proxy-log");
    fs::create_dir_all(&logdir).unwrap();
    std::os::unix::fs::chown(&logdir, Some(65534), Some(65534)).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", SAME_UID_PROBE, crate::util::BIN])
        .arg(&logdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(seen["alive"], true, "{seen}");
    assert!(seen["control"].as_str().unwrap().contains("MARKER=visible"), "control: {seen}");
    for f in ["environ", "mem", "maps", "auxv"] {
        assert_ne!(seen[f], 0, "/proc/<child>/{f} readable by the same uid: {seen}");
    }
    assert_eq!(seen["status_uid"], 0, "its /proc entry is not root's: {seen}");
    assert!(seen["ptrace"].as_str().unwrap().starts_with("-1 "), "attached: {seen}");
    assert_eq!(seen["exit"], 0, "SIGTERM: {seen}");
}
