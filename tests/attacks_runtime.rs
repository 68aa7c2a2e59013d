//! Red-team attacks on a running session (issue 11, items 6 and 16): an
//! agent that aims the terminal's signals at a group it no longer has, one
//! that kills its session helper, and one that changes its pid faster than
//! a kill can find it. Each drives the real daemon over HTTP and
//! `/ws/terminal/{id}`, as the web UI does.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::terminal::{Term, create, shell_world};
use crate::util::{pid_alive, wait_until};

/// The live processes whose command line holds `marker`.
fn marked(marker: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker.as_bytes()))
        })
        .filter(|&pid| pid_alive(pid))
        .collect()
}

/// SIGKILLs every process marked `marker` until none is left (for a hopper
/// too: it is stopped first, so it cannot fork on), for up to 5 s.
fn sweep(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let found = marked(marker);
        if found.is_empty() {
            return;
        }
        for pid in found {
            crate::util::kill(pid, 19);
            crate::util::kill(pid, 9);
        }
    }
}

struct Sweep(&'static str);

impl Drop for Sweep {
    fn drop(&mut self) {
        sweep(self.0);
    }
}

/// Starts `argv` as a process-group leader whose pid (and so group) is
/// `pid`, by setting the kernel's last pid just below it (the test runs as
/// root; a hostile agent gets there by cycling through the 32768 pids).
fn spawn_with_pid(pid: u32, argv: &[&str]) -> Child {
    for _ in 0..200 {
        fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("this attack needs root to place a pid");
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        if child.id() == pid {
            return child;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start a process as pid {pid}");
}

/// The foreground group an agent leaves behind: it gives the terminal to a
/// child's group and lets the child exit. The group number is then free, and
/// another user's job (here: a process group outside the session) can get
/// it. A Ctrl-C from the web UI, and the HUP and TERM of `terminal kill`,
/// must never reach that stranger: the daemon checks that the group is the
/// session's, and so must the session helper it hands the signal on to.
#[test]
fn signals_never_reach_a_stranger_that_got_a_stale_foreground_group() {
    let env = shell_world("attack-stale-fg");
    let (addr, token) = env.http();
    let _sweep = Sweep("atk-stale-fg");
    let script = "perl -MPOSIX -e '$SIG{TTOU}=q(IGNORE); my $p = fork; \
                  if (!$p) { setpgid(0, 0); tcsetpgrp(0, $$) or die qq(tcsetpgrp: $!); exit 0 } \
                  waitpid($p, 0); $SIG{INT}=q(IGNORE); print qq(stale=$p.\\n); sleep 60' atk-stale-fg";
    let info = create(&env, addr, &token, json!({"args": ["-c", script]}));
    let id = info["id"].as_str().unwrap().to_string();
    let mut t = Term::open(addr, &token, &id);
    let screen = t.until(".\r\n");
    let stale: u32 = screen
        .split("stale=")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no stale group in {screen:?}"));
    // The stranger: a group leader outside the session with that number,
    // noting every signal it gets.
    let noted = env.root.join("stranger-signals");
    let ready = env.root.join("stranger-ready");
    let mut stranger = spawn_with_pid(
        stale,
        &[
            "perl",
            "-e",
            "for my $s (qw(INT HUP TERM QUIT)) { $SIG{$s} = sub { open my $f, q(>>), $ARGV[0]; \
             print $f qq($s\\n); close $f } } open my $r, q(>), $ARGV[1]; close $r; \
             sleep 1 while 1",
            noted.to_str().unwrap(),
            ready.to_str().unwrap(),
            "atk-stale-fg",
        ],
    );
    assert!(wait_until(Duration::from_secs(10), || ready.exists()), "the stranger never started");
    t.say(r#"{"type":"signal","signal":"INT"}"#);
    t.say(r#"{"type":"signal","signal":"QUIT"}"#);
    env.cmd(&["terminal", "kill", &id]).ok();
    // Whatever was sent has arrived once the session is gone.
    std::thread::sleep(Duration::from_millis(300));
    let got = fs::read_to_string(&noted).unwrap_or_default();
    assert!(pid_alive(stranger.id()), "the stranger was killed (signals: {got:?})");
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(got.is_empty(), "the session's signals reached a process outside it: {got:?}");
}

/// A program that changes its pid as fast as it can (fork, parent exits)
/// until `seconds` have passed, each generation checking the time: a kill
/// that scans for the session's processes finds a pid that is already gone.
fn hopper(marker: &str, seconds: u32) -> String {
    format!(
        "echo ready; exec perl -e 'my $end = time + {seconds}; \
         while (time < $end) {{ my $p = fork; exit 0 if $p; select(undef, undef, undef, 0.02) unless defined $p }}' {marker}"
    )
}

/// `terminal kill` of a session whose program hops from pid to pid ends it,
/// sandboxed or not, and leaves no hopper running.
#[test]
fn a_pid_hopper_does_not_outlive_kill() {
    let env = shell_world("attack-hopper");
    let (addr, token) = env.http();
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    for (sandbox, marker) in [(true, "atk-hop-sandboxed"), (false, "atk-hop-plain")] {
        let _sweep = Sweep(marker);
        let info = create(
            &env,
            addr,
            &token,
            json!({"sandbox": sandbox, "working_dir": work.display().to_string(),
                   "args": ["-c", hopper(marker, 20)]}),
        );
        let id = info["id"].as_str().unwrap().to_string();
        let mut t = Term::open(addr, &token, &id);
        t.until("ready");
        assert!(
            wait_until(Duration::from_secs(10), || !marked(marker).is_empty()),
            "sandbox={sandbox}: the hopper never ran"
        );
        env.cmd(&["terminal", "kill", &id]).ok();
        let gone = wait_until(Duration::from_secs(3), || marked(marker).is_empty());
        assert!(
            gone,
            "sandbox={sandbox}: the hopper survived `terminal kill`: {:?}",
            marked(marker)
        );
    }
}

/// An agent that kills its session helper (same uid: it can) does not keep
/// what it started out of the session's end when it runs in the sandbox: the
/// sandbox ends with the helper, and `terminal kill` ends the rest.
#[test]
fn a_sandboxed_agent_that_kills_its_helper_leaves_nothing() {
    let env = shell_world("attack-helper-kill");
    let (addr, token) = env.http();
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    let marker = "atk-helper-kill";
    let _sweep = Sweep(marker);
    let note = work.join("started");
    let script = format!(
        "setsid sh -c \"trap '' HUP TERM; exec perl -e 'sleep 1 while 1' {marker}\" & \
         setsid sh -c \"perl -e 'sleep 1 while 1' {marker} &\"; \
         while [ $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c '^{marker}$') -lt 2 ]; do sleep 0.05; done; \
         echo ready > {}; kill -9 $PPID; sleep 60",
        note.display()
    );
    let info = create(
        &env,
        addr,
        &token,
        json!({"sandbox": true, "working_dir": work.display().to_string(), "args": ["-c", script]}),
    );
    let id = info["id"].as_str().unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(10), || Path::new(&note).exists()),
        "the agent never got ready"
    );
    env.cmd(&["terminal", "kill", &id]).ok();
    let gone = wait_until(Duration::from_secs(3), || marked(marker).is_empty());
    assert!(gone, "still running: {:?}", marked(marker));
}
