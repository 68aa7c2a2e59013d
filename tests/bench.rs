//! The figures table: how big the release `ringlet` binary is, how fast it
//! answers, and how much memory its idle daemon holds, each printed next to
//! its target.
//!
//! Everything runs against the binary cargo builds for this bench (release
//! settings) inside a throw-away HOME, config dir and runtime dir, so no real
//! daemon or cache is touched. Times are wall clock around spawn + wait of a
//! whole process, which is what a user at a shell feels. Each is taken many
//! times and reported as the median, with the p90 beside it to show the
//! spread: on a small, shared machine one run is mostly scheduler and
//! page-cache noise, and a mean is dragged up by the one run that got
//! descheduled, while the median is the typical run. `/bin/true`, timed the
//! same way, shows what creating a process costs here at all. Sizes are in
//! decimal megabytes (10^6 bytes), the stricter reading of "MB".
//!
//! The usage figures run against 1 GiB of generated Claude Code transcripts
//! in 2,000 files (tests/util/claude_gen.rs), written once to
//! `<target dir>/bench-data/claude-1g` and reused while its stats file is
//! there; a fresh daemon scans it as the user's own `~/.claude` (a symlink in
//! a second throw-away HOME), and ccusage, from tests/setup.sh, reads the
//! same files for comparison. The page cache is warm for both.
//!
//! It reports, it does not assert: a figure over its target is marked MISS.
//! The exit code is non-zero only when a figure could not be measured at all
//! (ccusage missing is a skip, not an error).
//! Run it with `cargo bench --bench figures`.

#[path = "bench_proxy.rs"]
mod proxy_figures;

#[path = "bench_registry.rs"]
mod registry_figures;

#[path = "bench_web.rs"]
mod web_figures;

#[path = "bench_browser.rs"]
mod browser_figures;

#[path = "bench_screen.rs"]
mod screen_figures;

#[path = "bench_shell.rs"]
mod shell_figures;

#[path = "util/registry.rs"]
#[allow(dead_code)]
mod registry_tree;

#[path = "util/claude_gen.rs"]
#[allow(dead_code)]
mod claude_gen;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, built with the bench (= release) profile.
const RINGLET: &str = env!("CARGO_BIN_EXE_ringlet");
/// Runs for the quick figures (`--version`, warm `agents list`).
const QUICK_RUNS: usize = 200;
/// Runs for the cold-start figure; each one starts a daemon.
const COLD_RUNS: usize = 30;
/// Untimed runs that start the daemon and fill the detection cache.
const WARM_UPS: usize = 5;
const MB: f64 = 1_000_000.0;
/// The usage data set: files, bytes, seed.
const USAGE_FILES: usize = 2_000;
const USAGE_BYTES: u64 = 1 << 30;
const USAGE_SEED: u64 = 1;
/// Runs of `usage --json` with nothing changed.
const USAGE_RUNS: usize = 25;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let sandbox = match Sandbox::create("main") {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("figures: cannot set up the sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `cargo bench --bench figures -- http` takes one group of figures
    // (startup, http, screen, proxy, registry, web, browser, shell, usage); cargo itself adds `--bench`.
    let groups: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |group: &str| groups.is_empty() || groups.iter().any(|g| g == group);
    let mut rows = Vec::new();
    if wanted("startup") {
        rows.extend(startup_figures(&sandbox));
        rows.push(doctor_figure(&sandbox));
    }
    if wanted("http") {
        rows.extend(http_figures(&sandbox));
    }
    if wanted("screen") {
        rows.extend(screen_figures::figures(&sandbox));
    }
    if wanted("proxy") {
        rows.extend(proxy_figures::figures(&sandbox));
    }
    if wanted("registry") {
        rows.extend(registry_figures::figures(&sandbox));
    }
    if wanted("web") {
        rows.extend(web_figures::figures(&sandbox));
    }
    if wanted("browser") {
        rows.extend(browser_figures::figures(&sandbox));
    }
    if wanted("shell") {
        rows.extend(shell_figures::figures(&sandbox));
    }
    drop(sandbox); // stops the daemon and removes the temp dir
    if wanted("usage") {
        rows.extend(usage_figures());
    }
    print_table(&rows);
    if rows.iter().any(|r| r.verdict == Verdict::Error) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Figures 1-7, in an order that suits the daemon's state: warm figures (and
/// the idle daemon's memory) first, the cold start last.
fn startup_figures(sb: &Sandbox) -> Vec<Row> {
    let size = binary_size(sb).unwrap_or_else(|e| Row::error(SIZE, e));
    let version = time_quick(sb, RINGLET, &["--version"], VERSION, Some(2.0));
    let reference = time_quick(sb, "/bin/true", &[], TRUE, None);
    let warm = warm_up(sb).map_or_else(
        |e| Row::error(WARM, e),
        |()| time_quick(sb, RINGLET, &["agents", "list"], WARM, Some(3.0)),
    );
    let rss = daemon_rss(sb, RSS, 8.0).unwrap_or_else(|e| Row::error(RSS, e));
    let (render, overhead) = match bench_profile(sb) {
        Ok(()) => (
            render_time(sb).unwrap_or_else(|e| Row::error(RENDER, e)),
            run_overhead(sb).unwrap_or_else(|e| Row::error(RUN, e)),
        ),
        Err(e) => (Row::error(RENDER, e.clone()), Row::error(RUN, e)),
    };
    let cold = cold_start(sb).unwrap_or_else(|e| Row::error(COLD, e));
    vec![size, version, reference, warm, cold, rss, render, overhead]
}

/// Figures 12-16: the HTTP API and terminal sessions.
fn http_figures(sb: &Sandbox) -> Vec<Row> {
    let (rest, rest_p99) = rest_throughput(sb)
        .unwrap_or_else(|e| (Row::error(REST, e.clone()), Row::error(REST_P99, e)));
    let mut rows = vec![rest, rest_p99];
    rows.extend(terminal_figures(sb).unwrap_or_else(|e| vec![Row::error(PTY_RATE, e)]));
    rows
}

/// The daemon's HTTP address and token.
fn http_api(sb: &Sandbox) -> Result<(std::net::SocketAddr, String)> {
    let token =
        String::from_utf8_lossy(&sb.run_ringlet(&["daemon", "token"])?.stdout).trim().to_string();
    let status: serde_json::Value =
        serde_json::from_slice(&sb.run_ringlet(&["daemon", "status", "--json"])?.stdout)
            .map_err(|e| e.to_string())?;
    let addr = status["http"].as_str().ok_or("the daemon has no HTTP API")?;
    Ok((addr.parse().map_err(|e| format!("{e}"))?, token))
}

/// One HTTP request (Connection: close); the reply's `data`.
fn http_call(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<serde_json::Value> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        addr.port(),
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {raw}"))?;
    if v["success"] != true {
        return Err(format!("{method} {path}: {v}"));
    }
    Ok(v["data"].clone())
}

/// The `sh` profile of a `shell` agent running `sh`, which the terminal
/// figures (13-18) start sessions of; made once (already there when an
/// earlier group made it: that is fine).
fn shell_profile(sb: &Sandbox) -> Result<()> {
    let dir = sb.config_dir();
    fs::create_dir_all(dir.join("agents.d")).map_err(|e| e.to_string())?;
    fs::create_dir_all(dir.join("scripts")).map_err(|e| e.to_string())?;
    fs::write(
        dir.join("agents.d/shell.toml"),
        "id = \"shell\"\nname = \"Shell\"\nbinary = \"sh\"\n[profile]\nstrategy = \"home-wrapper\"\nsource_home = \"~/.shell-profiles/{alias}\"\nscript = \"shell.rhai\"\nprovider_types = [\"anthropic\"]\n",
    )
    .map_err(|e| e.to_string())?;
    fs::write(dir.join("scripts/shell.rhai"), "#{ files: #{}, env: #{}, args: [] }")
        .map_err(|e| e.to_string())?;
    let mut cmd = sb
        .command(RINGLET, &["profiles", "create", "shell", "sh", "-p", "anthropic", "--no-alias"]);
    cmd.env("ANTHROPIC_API_KEY", "sk-bench-0123456789abcdefghij");
    cmd.output().map_err(|e| e.to_string())?;
    Ok(())
}

/// A WebSocket client of the daemon at `addr` on `url`, with the bearer
/// token, Nagle off (as the web UI's browser has it).
fn ws_client(
    addr: std::net::SocketAddr,
    token: &str,
    url: &str,
) -> Result<tungstenite::WebSocket<std::net::TcpStream>> {
    use tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().map_err(|_| "header".to_string())?,
    );
    let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(req, stream).map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Figures 13-16: a `shell` agent whose sessions run `sh`.
fn terminal_figures(sb: &Sandbox) -> Result<Vec<Row>> {
    shell_profile(sb)?;
    let (addr, token) = http_api(sb)?;
    let create = |args: &[&str]| -> Result<String> {
        let body = serde_json::json!({"profile": "sh", "args": args, "sandbox": false, "path": "/usr/bin:/bin"});
        let info = http_call(addr, &token, "POST", "/api/terminal/sessions", &body.to_string())?;
        Ok(info["id"].as_str().unwrap_or_default().to_string())
    };
    let attach_to = |url: &str| ws_client(addr, &token, url);
    let attach = |id: &str| attach_to(&format!("ws://{addr}/ws/terminal/{id}"));

    // 13: a program writing a large stream, one client; and the same stream
    // through the kernel's PTY alone, read straight off the master by this
    // process: the ceiling any relay on this machine works under. Rounds
    // alternate, so both see the same machine, and each reports its median.
    eprintln!("figures: {PTY_RATE}");
    const STREAM: u64 = 200_000_000;
    const ROUNDS: usize = 3;
    let (mut relayed, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let id = create(&["-c", &format!("sleep 0.5; {YES} | head -c {STREAM}; sleep 1")])?;
        let mut ws = attach(&id)?;
        let mut got = 0u64;
        let mut first = None;
        while got < STREAM {
            if let tungstenite::Message::Binary(b) = ws.read().map_err(|e| e.to_string())? {
                first.get_or_insert_with(Instant::now);
                got += b.len() as u64;
            }
        }
        let secs = first.map_or(1.0, |t| t.elapsed().as_secs_f64());
        relayed.push(got as f64 / MB / secs);
        drop(ws);
        direct.push(kernel_pty_rate(&format!("{YES} | head -c {STREAM}"))?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (relayed, direct) = (median(&mut relayed), median(&mut direct));
    let rate = Row::at_least(PTY_RATE, relayed, 200.0, "MB/s");
    let ceiling = Row {
        figure: PTY_CEILING,
        measured: format!("{direct:.2} MB/s (relay / this: {:.2})", relayed / direct),
        p90: "-".into(),
        target: "-".into(),
        verdict: Verdict::Reference,
    };

    // 14: keystroke -> echo, through `cat` on the terminal.
    eprintln!("figures: {ECHO}");
    let id = create(&["-c", "exec cat"])?;
    let mut ws = attach(&id)?;
    let mut samples = Vec::new();
    for i in 0..300u32 {
        let key = [b'a' + (i % 26) as u8];
        let t = Instant::now();
        ws.send(tungstenite::Message::Binary(key.to_vec().into())).map_err(|e| e.to_string())?;
        loop {
            if let tungstenite::Message::Binary(b) = ws.read().map_err(|e| e.to_string())?
                && b.contains(&key[0])
            {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let p50 = ms(samples[samples.len() / 2]);
    let p99 = ms(samples[samples.len() * 99 / 100]);
    let echo = Row::amount(ECHO, p50, 1.0, "ms");
    let echo99 = Row::amount(ECHO_P99, p99, 5.0, "ms");
    drop(ws);

    // 16: 10 sessions, 5 clients each.
    let mut clients = Vec::new();
    for _ in 0..10 {
        let id = create(&[])?;
        for _ in 0..5 {
            clients.push(attach(&id)?);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = daemon_rss(sb, SESSIONS_RSS, 64.0)?;

    // 16: the same, plus 20 /ws event clients, all idle: what the daemon
    // burns doing nothing (timers, polls) over 5 s.
    eprintln!("figures: {IDLE_CPU}");
    let mut events = Vec::new();
    for _ in 0..20 {
        events.push(attach_to(&format!("ws://{addr}/ws"))?);
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = sb.daemon_pid()?;
    let before = cpu_ticks(pid)?;
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let used = (cpu_ticks(pid)? - before) as f64 * 1000.0 / clock_ticks() as f64;
    let idle = Row::amount(IDLE_CPU, used / window.as_secs_f64(), 10.0, "ms/s");
    drop((clients, events));
    // The groups after this one (the dashboard's page load among them)
    // start from a daemon running no session of this one's.
    let listed = http_call(addr, &token, "GET", "/api/terminal/sessions", "")?;
    for session in listed.as_array().map(Vec::as_slice).unwrap_or_default() {
        let id = session["id"].as_str().unwrap_or_default();
        http_call(addr, &token, "DELETE", &format!("/api/terminal/sessions/{id}"), "")?;
    }
    Ok(vec![rate, ceiling, echo, echo99, rss, idle])
}

/// User + system CPU time of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u64) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    // Fields after the `(comm)`, which may hold spaces: state is field 3,
    // utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("no comm in stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Ok(field(14).ok_or("no utime")? + field(15).ok_or("no stime")?)
}

/// `getconf CLK_TCK`: the unit of /proc's CPU times (100 on Linux).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// The program of figure 13: 70 characters and a newline, over and over.
const YES: &str = "yes 0123456789012345678901234567890123456789012345678901234567890123456789";

/// MB/s of `command`'s output through a fresh PTY (default termios, as a
/// session gets), read from the master in 64 KiB reads with nothing else in
/// the way.
fn kernel_pty_rate(command: &str) -> Result<f64> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let err = |e: rustix::io::Errno| e.to_string();
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).map_err(err)?;
    grantpt(&master).map_err(err)?;
    unlockpt(&master).map_err(err)?;
    let name = ptsname(&master, Vec::new()).map_err(err)?;
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(slave.try_clone().map_err(|e| e.to_string())?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Only the child holds the slave now: EIO on the master means it is done.
    drop(slave);
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    loop {
        match rustix::io::read(&master, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => got += n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    child.wait().map_err(|e| e.to_string())?;
    Ok(got as f64 / MB / secs)
}

/// Figure 12: `GET /api/profiles` from 10 keep-alive clients at once, through
/// the front door, the bridge and tiny_http, for 3 s.
fn rest_throughput(sb: &Sandbox) -> Result<(Row, Row)> {
    use std::io::{BufRead, BufReader, Read as _, Write as _};
    let token =
        String::from_utf8_lossy(&sb.run_ringlet(&["daemon", "token"])?.stdout).trim().to_string();
    let status: serde_json::Value =
        serde_json::from_slice(&sb.run_ringlet(&["daemon", "status", "--json"])?.stdout)
            .map_err(|e| e.to_string())?;
    let addr: std::net::SocketAddr = status["http"]
        .as_str()
        .ok_or("the daemon has no HTTP API")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    eprintln!("figures: {REST} (10 clients, 3 s)");
    let request = format!(
        "GET /api/profiles HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\n\r\n",
        addr.port()
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
                let mut reader = BufReader::new(stream);
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    writer.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).map_err(|e| e.to_string())?;
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
                    samples.push(t.elapsed());
                }
                Ok(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| "a client thread panicked")??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or_default();
    Ok((Row::at_least(REST, rate, 5000.0, "req/s"), Row::amount(REST_P99, ms(p99), 5.0, "ms")))
}

const SIZE: &str = "1. binary size, stripped";
const VERSION: &str = "2. ringlet --version";
const TRUE: &str = "   /bin/true (reference)";
const WARM: &str = "3. agents list, warm daemon";
const COLD: &str = "4. agents list, daemon auto-start";
const RSS: &str = "5. idle daemon RSS";
const RENDER: &str = "6. claude script render, in the daemon";
const RUN: &str = "7. `profiles run -- --version` minus direct";
const SCAN: &str = "8. usage: first scan of 1 GiB, 2,000 files";
const RATIO: &str = "9. ccusage daily / ringlet first scan";
const UNCHANGED: &str = "10. `usage --json`, nothing changed";
const SCAN_RSS: &str = "11. daemon RSS after the scan";
const REST: &str = "12. REST GET /api/profiles, 10 keep-alive clients";
const REST_P99: &str = "    the same, p99 latency";
const PTY_RATE: &str = "13. PTY -> WebSocket, one client";
const PTY_CEILING: &str = "    the kernel PTY alone, no relay, reference";
const ECHO: &str = "14. keystroke -> echo via WebSocket, p50";
const ECHO_P99: &str = "    the same, p99";
const SESSIONS_RSS: &str = "15. daemon RSS, 10 sessions x 5 clients";
const IDLE_CPU: &str = "16. daemon CPU, all idle, + 20 /ws clients";
const DOCTOR: &str = "33. `doctor`, warm daemon";
/// Runs of `doctor`; each starts two trial sandboxes.
const DOCTOR_RUNS: usize = 50;
/// Interleaved pairs for figure 7; each starts Node twice.
const RUN_PAIRS: usize = 25;

// ---------------------------------------------------------------------------
// The figures

/// Figure 1: the size of the binary after `strip` (the release profile
/// already strips symbols; stripping a copy again makes sure).
fn binary_size(sb: &Sandbox) -> Result<Row> {
    eprintln!("figures: {SIZE}");
    let copy = sb.root.join("ringlet.stripped");
    fs::copy(RINGLET, &copy).map_err(|e| format!("copying {RINGLET}: {e}"))?;
    let stripped = Command::new("strip").arg(&copy).output().is_ok_and(|o| o.status.success());
    let bytes = fs::metadata(if stripped { copy.as_path() } else { Path::new(RINGLET) })
        .map_err(|e| format!("reading the size of {RINGLET}: {e}"))?
        .len();
    // Issue 12's budget with ureq + rustls in (every default feature).
    let mut row = Row::amount(SIZE, bytes as f64 / MB, 6.5, "MB");
    if !stripped {
        row.measured.push_str(" (strip failed; as built)");
    }
    Ok(row)
}

/// Figures 2 and 3 (and the reference row): `QUICK_RUNS` runs of one command.
fn time_quick(
    sb: &Sandbox,
    program: &str,
    args: &[&str],
    figure: &'static str,
    target_ms: Option<f64>,
) -> Row {
    eprintln!("figures: {figure} ({QUICK_RUNS} runs)");
    let mut samples = Vec::with_capacity(QUICK_RUNS);
    for _ in 0..QUICK_RUNS {
        match time_once(sb.command(program, args)) {
            Ok(took) => samples.push(took),
            Err(e) => return Row::error(figure, e),
        }
    }
    Row::timed(figure, &Timings::new(samples), target_ms)
}

/// Creates the claude profile `bench` (Z.ai, a key from the environment;
/// nothing is ever sent to it).
fn bench_profile(sb: &Sandbox) -> Result<()> {
    let mut cmd =
        sb.command(RINGLET, &["profiles", "create", "claude", "bench", "-p", "zai", "--no-alias"]);
    cmd.env("ZAI_API_KEY", "sk-bench-0123456789abcdefghij");
    let status = cmd.status().map_err(|e| format!("creating the bench profile: {e}"))?;
    if !status.success() {
        return Err(format!("creating the bench profile failed ({status})"));
    }
    Ok(())
}

/// Figure 6: the daemon's own time to resolve the claude script, render it
/// and write its files, as `profiles env --json` reports it (`render_ms`).
/// The whole command, process start and IPC included, is in the note.
fn render_time(sb: &Sandbox) -> Result<Row> {
    eprintln!("figures: {RENDER} ({QUICK_RUNS} runs)");
    let (mut inside, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..QUICK_RUNS {
        let started = Instant::now();
        let out = sb.run_ringlet(&["profiles", "env", "bench", "--json"])?;
        whole.push(started.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("parsing `profiles env --json`: {e}"))?;
        let ms = v["render_ms"].as_f64().ok_or("no render_ms in `profiles env --json`")?;
        inside.push(Duration::from_secs_f64(ms / 1000.0));
    }
    let mut row = Row::timed(RENDER, &Timings::new(inside), Some(3.0));
    row.measured.push_str(&format!(" (whole command {:.2} ms)", Timings::new(whole).median_ms()));
    Ok(row)
}

/// Figure 7: what `profiles run` adds to the agent's own start: the median
/// of `ringlet profiles run bench -- --version` minus the median of `claude
/// --version`, run alternately so both see the same machine load. Includes
/// the CLI start, the IPC round trip, the render and the file writes.
fn run_overhead(sb: &Sandbox) -> Result<Row> {
    eprintln!("figures: {RUN} ({RUN_PAIRS} pairs)");
    let claude = std::env::split_paths(&sb.path_var)
        .map(|d| d.join("claude"))
        .find(|p| p.is_file())
        .ok_or("claude is not installed (tests/setup.sh installs it)")?;
    let claude = claude.to_string_lossy().into_owned();
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..RUN_PAIRS {
        direct.push(time_once(sb.command(&claude, &["--version"]))?);
        through.push(time_once(
            sb.command(RINGLET, &["profiles", "run", "bench", "--", "--version"]),
        )?);
    }
    let (direct, through) = (Timings::new(direct), Timings::new(through));
    let extra = through.median_ms() - direct.median_ms();
    let mut row = Row::amount(RUN, extra, 15.0, "ms");
    row.measured =
        format!("{extra:.2} ms ({:.1} vs {:.1} ms)", through.median_ms(), direct.median_ms());
    Ok(row)
}

/// Starts the daemon and fills the detection cache: the first `agents list`
/// probes every agent's version, which may take seconds.
fn warm_up(sb: &Sandbox) -> Result<()> {
    eprintln!("figures: warming up the daemon and the detection cache");
    for _ in 0..WARM_UPS {
        sb.run_ringlet(&["agents", "list"])?;
    }
    let listing = sb.run_ringlet(&["--json", "agents", "list"])?;
    eprintln!("figures: detected agents: {}", installed_agents(&listing.stdout));
    Ok(())
}

/// The installed agents in an `agents list --json` reply, for the log.
fn installed_agents(json: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let agents = value["agents"].as_array().map(Vec::as_slice).unwrap_or_default();
    let found: Vec<String> = agents
        .iter()
        .filter(|a| a["installed"].as_bool() == Some(true))
        .map(|a| {
            format!("{} {}", a["id"].as_str().unwrap_or("?"), a["version"].as_str().unwrap_or("?"))
        })
        .collect();
    if found.is_empty() { "none".into() } else { found.join(", ") }
}

/// Figure 4: `agents list` with no daemon running, so the CLI starts one and
/// waits for it; the detection cache on disk is warm from the earlier runs.
/// `daemon stop` between runs returns once the old daemon is fully gone.
fn cold_start(sb: &Sandbox) -> Result<Row> {
    eprintln!("figures: {COLD} ({COLD_RUNS} runs)");
    let mut samples = Vec::with_capacity(COLD_RUNS);
    let mut last_pid = sb.daemon_pid().ok();
    for _ in 0..COLD_RUNS {
        sb.run_ringlet(&["daemon", "stop", "--force"])?;
        samples.push(time_once(sb.command(RINGLET, &["agents", "list"]))?);
        // A run that found the old daemon still there would not be cold.
        let pid = sb.daemon_pid()?;
        if last_pid == Some(pid) {
            return Err(format!("`daemon stop` left daemon {pid} running"));
        }
        last_pid = Some(pid);
    }
    Ok(Row::timed(COLD, &Timings::new(samples), Some(40.0)))
}

/// `ringlet doctor` with a warm daemon: the CLI's own checks (its trial
/// sandbox, PATH, shims) and the daemon's (another trial sandbox, the
/// keystore, agents from the detection cache, the port's owner, the
/// registry). A failing check (exit 1, say no bwrap here) is still a
/// measured run; any other exit is an error.
fn doctor_figure(sb: &Sandbox) -> Row {
    eprintln!("figures: {DOCTOR} ({DOCTOR_RUNS} runs)");
    let run = || -> Result<Duration> {
        let mut cmd = sb.command(RINGLET, &["doctor"]);
        let start = Instant::now();
        let status = cmd.status().map_err(|e| format!("spawning {}: {e}", describe(&cmd)))?;
        let took = start.elapsed();
        match status.code() {
            Some(0 | 1) => Ok(took),
            _ => Err(format!("{} failed ({status})", describe(&cmd))),
        }
    };
    let measure = || -> Result<Timings> {
        sb.run_ringlet(&["agents", "list"])?; // the daemon runs, its cache is warm
        run()?;
        (0..DOCTOR_RUNS).map(|_| run()).collect::<Result<Vec<_>>>().map(Timings::new)
    };
    match measure() {
        Ok(timings) => Row::timed(DOCTOR, &timings, Some(100.0)),
        Err(e) => Row::error(DOCTOR, e),
    }
}

/// Figures 5 and 11: the resident memory of the daemon, after the warm runs
/// and after the usage scan.
fn daemon_rss(sb: &Sandbox, figure: &'static str, target_mb: f64) -> Result<Row> {
    eprintln!("figures: {}", figure.trim());
    let pid = sb.daemon_pid()?;
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS line in {path}"))?;
    Ok(Row::amount(figure, (kib * 1024) as f64 / MB, target_mb, "MB"))
}

/// Figures 8 to 11, in a sandbox of their own whose `~/.claude` is the data.
fn usage_figures() -> Vec<Row> {
    let all_fail = |e: String| {
        eprintln!("figures: usage figures: {e}");
        [SCAN, RATIO, UNCHANGED, SCAN_RSS]
            .into_iter()
            .map(|f| Row::error(f, "see above".into()))
            .collect()
    };
    let (data, stats) = match bench_data() {
        Ok(found) => found,
        Err(e) => return all_fail(e),
    };
    let sb = match Sandbox::create("usage") {
        Ok(sb) => sb,
        Err(e) => return all_fail(e),
    };
    if let Err(e) = symlink(&data, sb.root.join(".claude")) {
        return all_fail(format!("linking ~/.claude to {}: {e}", data.display()));
    }
    let (scan, took) = match first_scan(&sb, &stats) {
        Ok((row, took)) => (row, Some(took)),
        Err(e) => (Row::error(SCAN, e), None),
    };
    let rss = daemon_rss(&sb, SCAN_RSS, 64.0).unwrap_or_else(|e| Row::error(SCAN_RSS, e));
    let unchanged = unchanged_usage(&sb).unwrap_or_else(|e| Row::error(UNCHANGED, e));
    let ratio = match took {
        Some(took) => ccusage_ratio(&sb, &data, &stats, took),
        None => Row::error(RATIO, "no ringlet scan time to compare with".into()),
    };
    vec![scan, ratio, unchanged, rss]
}

/// The generated data set and its stats: generated once, kept in the target
/// dir, regenerated when its stats file is missing (an interrupted run) or
/// its size is not what the stats say.
fn bench_data() -> Result<(PathBuf, claude_gen::GenStats)> {
    let target = Path::new(RINGLET)
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("no target dir above {RINGLET}"))?;
    let dir = target.join("bench-data").join("claude-1g");
    let stats_file = dir.join(format!(
        "gen-stats-v{}-{USAGE_FILES}-{USAGE_BYTES}-{USAGE_SEED}.txt",
        claude_gen::FORMAT
    ));
    let kept = fs::read_to_string(&stats_file).ok();
    if let Some(stats) = kept.as_deref().and_then(claude_gen::GenStats::from_text) {
        // Into the page cache, as freshly generated data would be; anything
        // changed since it was written means it is generated again.
        match read_all(&dir.join("projects")) {
            Ok(read) if read == stats.bytes => {
                eprintln!("figures: usage data: {} ({} files, kept)", dir.display(), stats.files);
                return Ok((dir, stats));
            }
            Ok(read) => {
                eprintln!("figures: {} holds {read} bytes, not {}", dir.display(), stats.bytes)
            }
            Err(e) => eprintln!("figures: {e}"),
        }
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    eprintln!(
        "figures: generating {} GiB of Claude Code data in {}",
        USAGE_BYTES >> 30,
        dir.display()
    );
    let started = Instant::now();
    let stats = claude_gen::generate(&dir, USAGE_FILES, USAGE_BYTES, USAGE_SEED);
    let took = started.elapsed().as_secs_f64();
    eprintln!(
        "figures: generated {:.0} MB, {} lines in {} files in {took:.1} s ({:.0} MB/s)",
        stats.bytes as f64 / MB,
        stats.lines,
        stats.files,
        stats.bytes as f64 / MB / took
    );
    fs::write(&stats_file, stats.to_text())
        .map_err(|e| format!("writing {}: {e}", stats_file.display()))?;
    Ok((dir, stats))
}

/// Reads every file under `dir`; returns the bytes read.
fn read_all(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let entries = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?.path();
        total += if path.is_dir() {
            read_all(&path)?
        } else {
            fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?.len() as u64
        };
    }
    Ok(total)
}

/// Figure 8: the first `usage --json` of a fresh daemon (auto-started by
/// it, no store yet) reads every file; its answer must have every token the
/// generator wrote, or the figure is an error.
fn first_scan(sb: &Sandbox, stats: &claude_gen::GenStats) -> Result<(Row, Duration)> {
    eprintln!("figures: {SCAN}");
    let started = Instant::now();
    let out = sb.run_ringlet(&["usage", "--json"])?;
    let took = started.elapsed();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("parsing `usage --json`: {e}"))?;
    let found = report["totals"]["total_tokens"].as_u64();
    if found != Some(stats.tokens.total_tokens()) {
        return Err(format!(
            "the scan found {found:?} tokens, the data has {} (is ~/.claude a symlink it skips?)",
            stats.tokens.total_tokens()
        ));
    }
    let rate = stats.bytes as f64 / MB / took.as_secs_f64();
    let mut row = Row::at_least(SCAN, rate, 400.0, "MB/s");
    row.measured = format!("{rate:.0} MB/s ({:.2} s)", took.as_secs_f64());
    Ok((row, took))
}

/// Figure 10: `usage --json` when nothing changed since the scan.
fn unchanged_usage(sb: &Sandbox) -> Result<Row> {
    eprintln!("figures: {UNCHANGED} ({USAGE_RUNS} runs)");
    let mut samples = Vec::with_capacity(USAGE_RUNS);
    for _ in 0..USAGE_RUNS {
        samples.push(time_once(sb.command(RINGLET, &["usage", "--json"]))?);
    }
    Ok(Row::timed(UNCHANGED, &Timings::new(samples), Some(20.0)))
}

/// Figure 9: one `ccusage daily --offline --json` over the same files,
/// against the first scan's time. Skipped when ccusage is not installed.
fn ccusage_ratio(
    sb: &Sandbox,
    data: &Path,
    stats: &claude_gen::GenStats,
    ringlet: Duration,
) -> Row {
    let Some(ccusage) = agents_bin().map(|d| d.join("ccusage")).filter(|p| p.is_file()) else {
        return Row::skipped(RATIO, "ccusage is not installed (tests/setup.sh installs it)");
    };
    eprintln!("figures: {RATIO} (one ccusage run)");
    let mut cmd = sb.command(&ccusage.to_string_lossy(), &["daily", "--offline", "--json"]);
    cmd.env("CLAUDE_CONFIG_DIR", data).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => return Row::error(RATIO, format!("spawning {}: {e}", describe(&cmd))),
    };
    let took = started.elapsed();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Row::error(
            RATIO,
            format!("{} failed ({}): {}", describe(&cmd), out.status, stderr.trim()),
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let found = report["totals"]["totalTokens"].as_u64();
    if found != Some(stats.tokens.total_tokens()) {
        eprintln!(
            "figures: warning: ccusage found {found:?} tokens, the data has {}",
            stats.tokens.total_tokens()
        );
    }
    let ratio = took.as_secs_f64() / ringlet.as_secs_f64();
    let mut row = Row::at_least(RATIO, ratio, 20.0, "x");
    row.measured = format!("{ratio:.1}x (ccusage {:.1} s)", took.as_secs_f64());
    row.target = ">= 20x".into();
    row
}

/// Wall time of one spawn + wait; a failing command is an error.
fn time_once(mut cmd: Command) -> Result<Duration> {
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("spawning {}: {e}", describe(&cmd)))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(format!("{} failed ({status})", describe(&cmd)));
    }
    Ok(took)
}

fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

// ---------------------------------------------------------------------------
// The sandbox: a private HOME, config dir and runtime dir

/// A temporary directory used as HOME, config dir and runtime dir. Dropping
/// it stops the daemon and removes the directory, also on an early return.
struct Sandbox {
    root: PathBuf,
    path_var: OsString,
}

impl Sandbox {
    fn create(name: &str) -> Result<Sandbox> {
        let root =
            std::env::temp_dir().join(format!("ringlet-figures-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root); // left over from a crashed run with our pid
        let agents_bin = agents_bin();
        match &agents_bin {
            Some(dir) => eprintln!("figures: agents from {}", dir.display()),
            None => eprintln!("figures: no test agents installed (tests/setup.sh); PATH as is"),
        }
        let sandbox = Sandbox { root, path_var: search_path(agents_bin.as_deref())? };
        let mkdir = |dir: &Path| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))
        };
        mkdir(&sandbox.config_dir())?;
        mkdir(&sandbox.runtime_dir())?;
        Ok(sandbox)
    }

    fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// `program args` with only the sandbox's environment and no output.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", &self.root)
            .env("RINGLET_CONFIG_DIR", self.config_dir())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("RINGLET_HTTP_PORT", "0")
            .env("PATH", &self.path_var)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs `ringlet args` untimed, capturing its output; failing is an error.
    fn run_ringlet(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = self.command(RINGLET, args);
        let out = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("spawning {}: {e}", describe(&cmd)))?;
        if !out.status.success() {
            // `--json` commands report their errors on stdout.
            let said = if out.stderr.trim_ascii().is_empty() { &out.stdout } else { &out.stderr };
            let said = String::from_utf8_lossy(said);
            return Err(format!("{} failed ({}): {}", describe(&cmd), out.status, said.trim()));
        }
        Ok(out)
    }

    fn daemon_pid(&self) -> Result<u64> {
        let out = self.run_ringlet(&["daemon", "status", "--json"])?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("parsing `daemon status --json`: {e}"))?;
        status["pid"].as_u64().ok_or_else(|| format!("no pid in daemon status: {status}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.run_ringlet(&["daemon", "stop", "--force"]) {
            eprintln!("figures: warning: stopping the daemon: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            eprintln!("figures: warning: removing {}: {e}", self.root.display());
        }
    }
}

/// The directory of the real agents installed by `tests/setup.sh`, if any:
/// `$RINGLET_TEST_AGENTS_BIN`, else its default under `~/.cache`.
fn agents_bin() -> Option<PathBuf> {
    let default = || {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/ringlet-test/agents/node_modules/.bin"))
    };
    let dir = std::env::var_os("RINGLET_TEST_AGENTS_BIN").map(PathBuf::from).or_else(default)?;
    dir.is_dir().then_some(dir)
}

/// Our `PATH`, with the agents directory first when there is one.
fn search_path(agents_bin: Option<&Path>) -> Result<OsString> {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = agents_bin.map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::split_paths(&inherited));
    std::env::join_paths(dirs).map_err(|e| format!("building PATH: {e}"))
}

// ---------------------------------------------------------------------------
// Statistics and the table

/// Sorted samples of one timed figure.
struct Timings(Vec<Duration>);

impl Timings {
    fn new(mut samples: Vec<Duration>) -> Timings {
        samples.sort();
        Timings(samples)
    }

    fn median_ms(&self) -> f64 {
        let n = self.0.len();
        if n == 0 {
            return f64::NAN;
        }
        (ms(self.0[(n - 1) / 2]) + ms(self.0[n / 2])) / 2.0
    }

    /// The nearest-rank 90th percentile.
    fn p90_ms(&self) -> f64 {
        let rank = (self.0.len() * 9).div_ceil(10).max(1);
        self.0.get(rank - 1).map_or(f64::NAN, |d| ms(*d))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Miss,
    Reference,
    Skipped,
    Error,
}

impl Verdict {
    fn within(value: f64, target: f64) -> Verdict {
        if value <= target { Verdict::Ok } else { Verdict::Miss }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Miss => "MISS",
            Verdict::Reference => "ref",
            Verdict::Skipped => "skip",
            Verdict::Error => "ERROR",
        }
    }
}

/// One line of the table.
struct Row {
    figure: &'static str,
    measured: String,
    p90: String,
    target: String,
    verdict: Verdict,
}

impl Row {
    fn amount(figure: &'static str, value: f64, target: f64, unit: &str) -> Row {
        Row {
            figure,
            measured: format!("{value:.2} {unit}"),
            p90: "-".into(),
            target: format!("<= {target} {unit}"),
            verdict: Verdict::within(value, target),
        }
    }

    /// A figure that must reach `target` (a rate, a ratio).
    fn at_least(figure: &'static str, value: f64, target: f64, unit: &str) -> Row {
        Row {
            figure,
            measured: format!("{value:.2} {unit}"),
            p90: "-".into(),
            target: format!(">= {target} {unit}"),
            verdict: if value >= target { Verdict::Ok } else { Verdict::Miss },
        }
    }

    /// A timed figure: the median is the measurement, the p90 is shown beside
    /// it; without a target the row is a reference.
    fn timed(figure: &'static str, timings: &Timings, target_ms: Option<f64>) -> Row {
        let median = timings.median_ms();
        Row {
            figure,
            measured: format!("{median:.2} ms"),
            p90: format!("{:.2} ms", timings.p90_ms()),
            target: target_ms.map_or_else(|| "-".into(), |t| format!("<= {t} ms")),
            verdict: target_ms.map_or(Verdict::Reference, |t| Verdict::within(median, t)),
        }
    }

    fn error(figure: &'static str, message: String) -> Row {
        eprintln!("figures: {}: {message}", figure.trim());
        Row {
            figure,
            measured: "error (see above)".into(),
            p90: "-".into(),
            target: "-".into(),
            verdict: Verdict::Error,
        }
    }

    fn skipped(figure: &'static str, why: &str) -> Row {
        eprintln!("figures: {}: skipped: {why}", figure.trim());
        Row {
            figure,
            measured: format!("skipped: {why}"),
            p90: "-".into(),
            target: "-".into(),
            verdict: Verdict::Skipped,
        }
    }

    fn cells(&self) -> [&str; 5] {
        [self.figure, &self.measured, &self.p90, &self.target, self.verdict.label()]
    }
}

fn print_table(rows: &[Row]) {
    let header = ["figure", "measured (median)", "p90", "target", "ok/MISS"];
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.cells()) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join(" | ").trim_end());
    };
    println!();
    line(header);
    line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for row in rows {
        line(row.cells());
    }
    println!(
        "\n{QUICK_RUNS} runs per quick figure, {COLD_RUNS} cold starts; wall time of spawn + wait."
    );
    println!(
        "Usage figures: {} GiB of generated Claude Code transcripts in {USAGE_FILES} files, page \
         cache warm; the first scan includes the daemon's auto-start; {USAGE_RUNS} runs of \
         figure 10.",
        USAGE_BYTES >> 30
    );
}
