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

/// Four processes that change their pid as fast as they can (fork, parent exits)
/// until `seconds` have passed, each generation in a session and group of
/// its own and deaf to HUP, TERM and INT: a kill of a group misses it, and
/// one that scans for the session's processes finds a pid already gone.
fn hopper(marker: &str, seconds: u32) -> String {
    format!(
        "perl -MPOSIX -e '$SIG{{$_}} = q(IGNORE) for qw(HUP TERM INT); \
         my $end = time + {seconds}; fork; fork; \
         while (time < $end) {{ my $p = fork; exit 0 if $p; \
         if (defined $p) {{ POSIX::setsid() }} else {{ select(undef, undef, undef, 0.02) }} }}' {marker} & echo ready; exec sleep 60"
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
        let started = Instant::now();
        env.cmd(&["terminal", "kill", &id]).ok();
        let gone = wait_until(Duration::from_secs(3), || marked(marker).is_empty());
        eprintln!("sandbox={sandbox}: the kill ended every hopper in {:?}", started.elapsed());
        assert!(
            gone,
            "sandbox={sandbox}: the hopper survived `terminal kill`: {:?}",
            marked(marker)
        );
    }
}

/// An agent that kills its session helper (same uid: it can) does not keep
/// what it started out of the session's end when it runs in the sandbox: the
/// sandbox, and everything in it, ends with the helper.
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
    // The helper is the sandbox's main process: with it, the sandbox's pid
    // namespace ends, and everything in it. (Not so without the sandbox:
    // there what left the session with `setsid` survives; see the README.)
    let gone = wait_until(Duration::from_secs(3), || marked(marker).is_empty());
    assert!(gone, "still running once the helper was killed: {:?}", marked(marker));
    env.cmd(&["terminal", "kill", &id]).ok();
}

/// The daemon's peak resident memory (VmHWM), in MiB.
fn daemon_peak_mib(env: &crate::util::Env) -> u64 {
    let pid = env.daemon_pid().expect("daemon running");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() >> 10
}

/// An `opencode.db` whose `message` is a real table, but whose schema holds
/// triggers of 400,000 statements each (planted straight into
/// `sqlite_master`, so nothing checked them). They are never run, but
/// SQLite parses the whole schema before the first query: the parse fills
/// SQLite's heap until it fails with "out of memory". That failure was not
/// remembered, so every scan (each report, each write the watcher saw)
/// parsed it again, for seconds of CPU and hundreds of MiB each time. It is
/// refused like a database over its time budget, and the heap is capped
/// low enough that the daemon's memory stays small.
#[test]
fn a_schema_that_exhausts_sqlites_heap_is_refused_once_and_stays_small() {
    let env = crate::util::Env::new("attack-schema-heap");
    let db = env.home.join(".local/share/opencode/opencode.db");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let script = "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute('CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER, data TEXT)')
c.commit()
c.execute('PRAGMA writable_schema=ON')
body = 'SELECT 1,2,3,4,5,6,7,8;' * 400000
for n in range(4):
    sql = 'CREATE TRIGGER t%d AFTER INSERT ON message BEGIN %s END' % (n, body)
    c.execute(\"INSERT INTO sqlite_master VALUES('trigger', 't%d', 'message', 0, ?)\" % n, (sql,))
c.commit()";
    let status = Command::new("python3").arg("-c").arg(script).arg(&db).status().expect("python3");
    assert!(status.success());
    let report = || {
        let r = env.cmd(&["--json", "usage", "--agent", "opencode"]).json();
        r["skipped"]["details"].to_string()
    };
    let first = report();
    assert!(first.contains("opencode.db"), "the database is reported: {first}");
    assert!(
        first.contains("not read again until it changes"),
        "the database is remembered as refused: {first}"
    );
    let second = report();
    assert!(second.contains("not read again until it changes"), "{second}");
    let peak = daemon_peak_mib(&env);
    eprintln!("heap-exhausting schema: the daemon's peak memory is {peak} MiB");
    assert!(peak < 256, "the daemon's peak memory is {peak} MiB");
}

/// The same with the agent's own group: the agent exits and leaves a
/// process behind (in a group of its own, deaf to HUP), so the helper
/// lingers before ending it. The helper has reaped the agent, so its pid is
/// free, and a stranger gets it as its group. A Ctrl-C or a TERM from the
/// web UI in that moment must not reach the stranger.
#[test]
fn signals_never_reach_a_stranger_that_got_the_exited_agents_pid() {
    let env = shell_world("attack-stale-agent");
    let (addr, token) = env.http();
    let _sweep = Sweep("atk-stale-agent");
    let script = "setsid perl -e '$SIG{HUP}=q(IGNORE); sleep 30' atk-stale-agent & \
                  exec perl -e 'print qq(agent=$$.\\n); select(undef, undef, undef, 0.2)'";
    let info = create(&env, addr, &token, json!({"args": ["-c", script]}));
    let id = info["id"].as_str().unwrap().to_string();
    let mut t = Term::open(addr, &token, &id);
    let screen = t.until(".\r\n");
    let agent: u32 = screen
        .split("agent=")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no agent pid in {screen:?}"));
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(agent)), "the agent never exited");
    // The helper reaps the agent at once; then the pid is free.
    assert!(
        wait_until(Duration::from_secs(5), || !Path::new(&format!("/proc/{agent}")).exists()),
        "the agent was never reaped"
    );
    let noted = env.root.join("stranger-signals");
    let ready = env.root.join("stranger-ready");
    let mut stranger = spawn_with_pid(
        agent,
        &[
            "perl",
            "-e",
            "for my $s (qw(INT HUP TERM QUIT CONT)) { $SIG{$s} = sub { open my $f, q(>>), $ARGV[0]; \
             print $f qq($s\\n); close $f } } open my $r, q(>), $ARGV[1]; close $r; \
             sleep 1 while 1",
            noted.to_str().unwrap(),
            ready.to_str().unwrap(),
            "atk-stale-agent",
        ],
    );
    assert!(wait_until(Duration::from_secs(10), || ready.exists()), "the stranger never started");
    t.say(r#"{"type":"signal","signal":"INT"}"#);
    t.say(r#"{"type":"signal","signal":"TERM"}"#);
    env.cmd(&["terminal", "kill", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    let got = fs::read_to_string(&noted).unwrap_or_default();
    let alive = pid_alive(stranger.id());
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(alive, "the stranger was killed (signals: {got:?})");
    assert!(got.is_empty(), "the session's signals reached a process outside it: {got:?}");
}

/// An agent (or a cleanup) replaces a watched log directory: moves it away
/// and makes a new one at the same path. The watch stayed on the old
/// directory, the new one was never watched, yet the watcher kept vouching
/// that nothing had changed: a report right after a write to the new
/// directory skipped its scan and missed it (for up to the 30 s safety-net
/// rescan). A report must count what was written before it was asked.
#[test]
fn a_replaced_log_directory_is_watched_again() {
    let env = crate::util::Env::new("attack-replaced-dir");
    let fixture = include_str!("fixtures/usage/claude-6.1.jsonl");
    let dir = env.home.join(".claude/projects/-w");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.jsonl"), fixture).unwrap();
    let messages = || {
        let r = env.cmd(&["--json", "usage", "--timezone", "UTC"]).json();
        r["totals"]["messages"].as_u64().unwrap_or_else(|| panic!("no totals in {r}"))
    };
    let before = messages();
    assert!(before > 0);
    // Let the watcher scan and watch what the daemon's first scan found.
    std::thread::sleep(Duration::from_millis(1000));
    fs::rename(&dir, env.root.join("moved-away")).unwrap();
    fs::create_dir(&dir).unwrap();
    // The watcher sees the new directory (an event in its parent) and
    // scans; give it time to be done, so that it vouches again.
    std::thread::sleep(Duration::from_millis(1500));
    let line = fixture.lines().nth(3).unwrap().replace("req_011BBB", "req_011REPLACED");
    fs::write(dir.join("b.jsonl"), format!("{line}\n")).unwrap();
    assert_eq!(messages(), before + 1, "the line written to the new directory is counted");
}

/// The inotify watches the daemon holds (its inotify descriptors' `wd:`
/// lines).
fn daemon_watches(env: &crate::util::Env) -> usize {
    let pid = env.daemon_pid().expect("daemon running");
    fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|info| info.lines().filter(|l| l.starts_with("inotify wd:")).count())
        .sum()
}

/// An agent fills its profile's log root with thousands of empty
/// directories. The daemon watched every one, and inotify watches are the
/// user's (`fs.inotify.max_user_watches`, 8192 on older kernels): the
/// user's own editor and file manager could then watch nothing. The daemon
/// takes a bounded number of watches, and reports stay right (they scan
/// for themselves when not every directory is watched).
#[test]
fn a_directory_flood_does_not_take_the_users_inotify_watches() {
    let env = crate::util::Env::new("attack-dir-flood");
    env.create_profile("claude", "cl");
    let flood = env.home.join(".claude-profiles/cl/.claude/projects");
    for n in 0..9000 {
        fs::create_dir_all(flood.join(format!("d{n}"))).unwrap();
    }
    let fixture = include_str!("fixtures/usage/claude-6.1.jsonl");
    let own = env.home.join(".claude/projects/-w");
    fs::create_dir_all(&own).unwrap();
    fs::write(own.join("a.jsonl"), fixture).unwrap();
    let messages = || {
        let r = env.cmd(&["--json", "usage", "--timezone", "UTC"]).json();
        r["totals"]["messages"].as_u64().unwrap_or_else(|| panic!("no totals in {r}"))
    };
    let before = messages();
    assert!(before > 0);
    // The watcher's first scan, and the one right after it that checks
    // what was written meanwhile.
    assert!(
        wait_until(Duration::from_secs(10), || daemon_watches(&env) > 100),
        "the watcher never watched"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let watches = daemon_watches(&env);
    eprintln!("9000 planted directories: the daemon holds {watches} inotify watches");
    assert!(watches <= 4200, "the daemon holds {watches} inotify watches");
    // And a report right after a write counts it.
    let line = fixture.lines().nth(3).unwrap().replace("req_011BBB", "req_011FLOOD");
    fs::write(flood.join("d8999/b.jsonl"), format!("{line}\n")).unwrap();
    assert_eq!(messages(), before + 1, "the line written after the flood is counted");
}

/// Lines nested 200,000 deep in a transcript and a rollout (16 MiB of
/// `[`): the JSON parser's recursion limit (128, serde_json's default)
/// skips them without overflowing the daemon's stack, and the lines around
/// them count.
#[test]
fn deeply_nested_log_lines_are_skipped_not_a_crash() {
    let env = crate::util::Env::new("attack-deep-json");
    let fixture = include_str!("fixtures/usage/claude-6.1.jsonl");
    let deep =
        format!("{{\"type\":\"assistant\",\"usage\":{{}},\"message\":{}\n", "[".repeat(200_000));
    let dir = env.home.join(".claude/projects/-w");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.jsonl"), format!("{deep}{fixture}")).unwrap();
    let codex = env.home.join(".codex/sessions/2026/07/10");
    fs::create_dir_all(&codex).unwrap();
    let rollout = format!(
        "{{\"type\":\"event_msg\",\"payload\":{{\"type\":\"token_count\",\"info\":{}\n",
        "{\"a\":".repeat(100_000)
    );
    fs::write(codex.join("rollout-2026-07-10T00-00-00-x.jsonl"), rollout).unwrap();
    let r = env.cmd(&["--json", "usage", "--timezone", "UTC"]).json();
    assert_eq!(r["totals"]["messages"], 3, "{r}");
    // The fixture's own bad line, and the two deep ones.
    assert_eq!(r["skipped"]["lines"], 3, "{r}");
    assert!(env.daemon_pid().is_some_and(pid_alive), "the daemon survived");
}
