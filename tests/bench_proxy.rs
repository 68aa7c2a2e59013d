//! The proxy figures (issue 12): what `ringlet proxy serve` adds to a
//! request next to calling the upstream directly, how it carries 100
//! concurrent streams, how much memory it holds, and how fast it comes up.
//!
//! The upstream is a mock Anthropic Messages server in this file (keep-alive
//! HTTP/1.1, Nagle off, a thread per connection) whose replies cost nothing,
//! so every difference between the direct and the proxied figure is the
//! proxy. A request's `x-bench-events` and `x-bench-gap-ms` headers (end to
//! end, so the proxy passes them on) shape a streamed reply. The proxy child
//! is spawned the way the daemon spawns it: the listening socket as fd 3, the
//! `ServeConfig` JSON on stdin. Direct and proxied runs alternate in blocks
//! in the same process, so machine noise hits both alike.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{RINGLET, Result, Row, Sandbox, Timings};

pub const ADDED_P50: &str = "17. proxy: added latency, non-streaming, p50";
pub const ADDED_P99: &str = "    the same, p99";
pub const ADDED_TTFB: &str = "18. proxy: added time to first byte, streaming";
pub const STREAMS: &str = "19. proxy: 100 concurrent 2-second streams, wall";
pub const IDLE_PSS: &str = "20. proxy memory (PSS), idle, the daemon alive";
pub const IDLE_RSS: &str = "    the same, RSS (shared pages counted whole)";
pub const IDLE_ANON: &str = "    the same, anonymous memory only (heap, stacks)";
pub const LOAD_RSS: &str = "    proxy RSS, under 100 streams (peak)";
pub const SPAWN: &str = "21. proxy: spawn to healthy";
pub const RESTART: &str = "22. proxy: restart after kill -9, by the daemon";

const LOCAL_TOKEN: &str = "bench-local-token";
const SEQUENTIAL: usize = 2_000;
const TTFB_RUNS: usize = 300;
const SPAWNS: usize = 15;
/// Fewer than the supervisor's limit of restarts a minute (5).
const KILLS: usize = 4;

const BODY: &str =
    r#"{"model":"claude-bench","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"claude-bench","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const REPLY: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}"#;

/// Every proxy figure; an error in one group costs only its rows. The
/// sandbox's daemon supervises the proxy of figure 22.
pub fn figures(sb: &Sandbox) -> Vec<Row> {
    let (ringlet, dir) = (RINGLET, &sb.root.join("proxy"));
    let upstream = match Upstream::start() {
        Ok(u) => u,
        Err(e) => return vec![Row::error(ADDED_P50, e)],
    };
    let mut rows = Vec::new();
    match restart_times(sb, upstream.addr) {
        Ok(t) => rows.push(Row::timed(RESTART, &t, Some(1000.0))),
        Err(e) => rows.push(Row::error(RESTART, e)),
    }
    match spawn_times(ringlet, dir, upstream.addr) {
        Ok(t) => rows.push(Row::timed(SPAWN, &t, Some(30.0))),
        Err(e) => rows.push(Row::error(SPAWN, e)),
    }
    let proxy = match Proxy::start(ringlet, dir, upstream.addr) {
        Ok(p) => p,
        Err(e) => {
            rows.push(Row::error(ADDED_P50, e));
            return rows;
        }
    };
    match added_latency(upstream.addr, proxy.addr) {
        Ok((p50, p99)) => {
            rows.push(Row::amount(ADDED_P50, p50, 0.5, "ms"));
            rows.push(Row::amount(ADDED_P99, p99, 2.0, "ms"));
        }
        Err(e) => rows.push(Row::error(ADDED_P50, e)),
    }
    match added_ttfb(upstream.addr, proxy.addr) {
        Ok(ms) => rows.push(Row::amount(ADDED_TTFB, ms, 1.0, "ms")),
        Err(e) => rows.push(Row::error(ADDED_TTFB, e)),
    }
    // What a proxy costs is its proportional set: its own heap and stacks
    // plus its share of the pages it maps. RSS counts every page of the
    // binary and libc it maps in full, though the sandbox's daemon (the
    // same binary, alive now) and every other process share them; and
    // the kernel maps code 64 KiB around each page touched (fault-around),
    // so RSS follows the binary's size more than the proxy's work.
    match smaps_mb(proxy.child.id(), "Pss:") {
        Ok(mb) => rows.push(Row::amount(IDLE_PSS, mb, 6.0, "MB")),
        Err(e) => rows.push(Row::error(IDLE_PSS, e)),
    }
    for (label, field) in [(IDLE_RSS, "VmRSS:"), (IDLE_ANON, "RssAnon:")] {
        if let Ok(mb) = status_mb(proxy.child.id(), field) {
            let mut row = Row::amount(label, mb, 6.0, "MB");
            row.target = "-".into();
            row.verdict = super::Verdict::Reference;
            rows.push(row);
        }
    }
    match concurrent_streams(&proxy) {
        Ok((wall, peak)) => {
            rows.push(Row::amount(STREAMS, wall, 2.3, "s"));
            rows.push(Row::amount(LOAD_RSS, peak, 24.0, "MB"));
        }
        Err(e) => rows.push(Row::error(STREAMS, e)),
    }
    rows
}

/// Median and p99 of what the proxy adds to a small non-streaming request on
/// a keep-alive connection.
fn added_latency(direct: SocketAddr, proxied: SocketAddr) -> Result<(f64, f64)> {
    let mut d = Client::connect(direct)?;
    let mut p = Client::connect(proxied)?;
    let (mut dt, mut pt) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        d.post(BODY, &[])?;
        p.post(BODY, &[])?;
    }
    for _ in 0..SEQUENTIAL / 100 {
        for _ in 0..100 {
            dt.push(d.post(BODY, &[])?.total);
        }
        for _ in 0..100 {
            pt.push(p.post(BODY, &[])?.total);
        }
    }
    let (d50, d99) = (percentile(&mut dt, 0.5), percentile(&mut dt, 0.99));
    let (p50, p99) = (percentile(&mut pt, 0.5), percentile(&mut pt, 0.99));
    Ok(((p50 - d50).max(0.0), (p99 - d99).max(0.0)))
}

/// Median time to the first body byte of a stream, proxied minus direct.
fn added_ttfb(direct: SocketAddr, proxied: SocketAddr) -> Result<f64> {
    let mut d = Client::connect(direct)?;
    let mut p = Client::connect(proxied)?;
    let headers = [("x-bench-events", "1"), ("x-bench-gap-ms", "0")];
    let (mut dt, mut pt) = (Vec::new(), Vec::new());
    for i in 0..TTFB_RUNS + 20 {
        let a = d.post(STREAM_BODY, &headers)?.first_byte;
        let b = p.post(STREAM_BODY, &headers)?.first_byte;
        if i >= 20 {
            dt.push(a);
            pt.push(b);
        }
    }
    Ok((percentile(&mut pt, 0.5) - percentile(&mut dt, 0.5)).max(0.0))
}

/// 100 clients each stream 20 events 100 ms apart through the proxy at
/// once: the wall time until the last stream ends (2 s is the floor), and
/// the proxy's peak RSS meanwhile.
fn concurrent_streams(proxy: &Proxy) -> Result<(f64, f64)> {
    let done = Arc::new(AtomicBool::new(false));
    let pid = proxy.child.id();
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_mb(pid).unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let events = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let (addr, events) = (proxy.addr, events.clone());
            std::thread::spawn(move || -> Result<()> {
                let mut c = Client::connect(addr)?;
                let headers = [("x-bench-events", "20"), ("x-bench-gap-ms", "100")];
                let reply = c.post(STREAM_BODY, &headers)?;
                let n = reply.body.matches("event: content_block_delta").count();
                events.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for c in clients {
        match c.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("a client thread panicked".into()),
        }
    }
    let wall = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0.0);
    if let Some(e) = failures.first() {
        return Err(format!("{} of 100 streams failed, first: {e}", failures.len()));
    }
    let got = events.load(Ordering::Relaxed);
    if got != 2_000 {
        return Err(format!("100 streams of 20 events delivered {got} events"));
    }
    Ok((wall, peak))
}

/// Spawn of `ringlet proxy serve` until its `/health` answers, several
/// times; each child is killed before the next.
fn spawn_times(ringlet: &str, dir: &Path, upstream: SocketAddr) -> Result<Timings> {
    let mut samples = Vec::new();
    for _ in 0..SPAWNS {
        let start = Instant::now();
        let proxy = Proxy::start(ringlet, dir, upstream)?;
        samples.push(start.elapsed());
        drop(proxy);
    }
    Ok(Timings::new(samples))
}

/// A proxied profile on the mock upstream, its proxy started by the daemon
/// and killed with SIGKILL a few times: each time, from the kill until the
/// port answers `/health` from a new child (the supervisor's first backoff,
/// 100 ms, included). Connections made meanwhile wait in the kept socket's
/// backlog, so the poll sees the first moment the new child serves.
fn restart_times(sb: &Sandbox, upstream: SocketAddr) -> Result<Timings> {
    let providers = sb.config_dir().join("providers.d");
    std::fs::create_dir_all(&providers).map_err(|e| e.to_string())?;
    let manifest = format!(
        "id = \"benchmock\"\nname = \"Bench mock\"\ntype = \"anthropic-compatible\"\n\n\
         [endpoints]\ndefault = \"http://{upstream}\"\n\n[auth]\nenv_key = \"BENCHMOCK_KEY\"\n\n\
         [models]\navailable = [\"claude-bench\"]\ndefault = \"claude-bench\"\n"
    );
    std::fs::write(providers.join("benchmock.toml"), manifest).map_err(|e| e.to_string())?;
    let args =
        ["profiles", "create", "claude", "pxbench", "-p", "benchmock", "--proxy", "--no-alias"];
    let mut cmd = sb.command(RINGLET, &args);
    cmd.env("BENCHMOCK_KEY", "sk-bench-proxy-0123456789abcdef");
    let status = cmd.status().map_err(|e| format!("creating the proxied profile: {e}"))?;
    if !status.success() {
        return Err(format!("creating the proxied profile failed ({status})"));
    }
    sb.run_ringlet(&["proxy", "start", "pxbench"])?;
    let mut samples = Vec::new();
    for _ in 0..KILLS {
        let (pid, port) = proxy_pid(sb)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let target = rustix::process::Pid::from_raw(pid as i32).ok_or("pid 0")?;
        rustix::process::kill_process(target, rustix::process::Signal::KILL)
            .map_err(|e| format!("killing the proxy {pid}: {e}"))?;
        let start = Instant::now();
        let old = format!("\"pid\":{pid}");
        loop {
            if let Ok(mut c) = Client::connect(addr)
                && let Ok(r) = c.get("/health")
                && r.status == 200
                && !r.body.contains(&old)
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err("no new proxy answered within 10 s of the kill".into());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        samples.push(start.elapsed());
        // The supervisor has seen the new child healthy before the next kill.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy_pid(sb).map(|(p, _)| p) == Ok(pid) {
            if Instant::now() > deadline {
                return Err("the supervisor never reported the new child".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    sb.run_ringlet(&["proxy", "stop", "pxbench"])?;
    Ok(Timings::new(samples))
}

/// The pid and port of `pxbench`'s running proxy, from `proxy status --json`.
fn proxy_pid(sb: &Sandbox) -> Result<(u32, u16)> {
    let out = sb.run_ringlet(&["proxy", "status", "pxbench", "--json"])?;
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("proxy status: {e}"))?;
    let info = status.as_array().and_then(|a| a.first()).unwrap_or(&status);
    match (info["pid"].as_u64(), info["port"].as_u64()) {
        (Some(pid), Some(port)) if info["state"] == "running" => Ok((pid as u32, port as u16)),
        _ => Err(format!("the proxy is not running: {status}")),
    }
}

/// A running `ringlet proxy serve`, killed on drop.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    /// Binds a port, spawns the child with it as fd 3 and the config on
    /// stdin, and returns once `/health` answers.
    fn start(ringlet: &str, dir: &Path, upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let config = serde_json::json!({
            "alias": "bench",
            "agent": "claude",
            "family": "anthropic",
            "local_token": LOCAL_TOKEN,
            "rules": [],
            "aliases": {},
            "budget": {},
            "upstreams": { "anthropic": {
                "url": format!("http://{upstream}"), "auth": "x_api_key", "key": "upstream-key" } },
            "default_upstream": "anthropic",
            "config_dir": dir.join("config"),
            "log_dir": dir.join("config/proxy/bench"),
        });
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(ringlet);
        cmd.args(["proxy", "serve"])
            .env("RINGLET_CONFIG_DIR", dir.join("config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and
        // exec; `fd` stays open in the parent until the spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                let listener = rustix::fd::BorrowedFd::borrow_raw(fd);
                let mut three = OwnedFd::from_raw_fd(3);
                let result = if fd == 3 { Ok(()) } else { rustix::io::dup2(listener, &mut three) };
                let flags = result
                    .and_then(|()| rustix::io::fcntl_setfd(&three, rustix::io::FdFlags::empty()));
                std::mem::forget(three);
                flags.map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawning {ringlet} proxy serve: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(config.to_string().as_bytes()).map_err(|e| e.to_string())?;
        drop(stdin);
        drop(listener);
        let proxy = Proxy { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Client::connect(addr)
                && c.get("/health").is_ok_and(|r| r.status == 200)
            {
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                return Err("the proxy never answered /health".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 client that times each reply.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

struct Reply {
    status: u16,
    /// Milliseconds from the write of the request to the first body byte.
    first_byte: f64,
    /// Milliseconds from the write of the request to the end of the body.
    total: f64,
    body: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Client { reader: BufReader::new(stream), writer, addr })
    }

    fn get(&mut self, path: &str) -> Result<Reply> {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        self.exchange(head.as_bytes())
    }

    fn post(&mut self, body: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        let mut head = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {}\r\nx-api-key: {LOCAL_TOKEN}\r\n\
             anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.exchange(head.as_bytes())
    }

    fn exchange(&mut self, request: &[u8]) -> Result<Reply> {
        let start = Instant::now();
        self.writer.write_all(request).map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        let mut first_byte = None;
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size {line:?}"))?;
                first_byte.get_or_insert_with(|| start.elapsed());
                if size == 0 {
                    line.clear();
                    self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
                    break;
                }
                let at = body.len();
                body.resize(at + size + 2, 0);
                self.reader.read_exact(&mut body[at..]).map_err(|e| e.to_string())?;
                body.truncate(at + size);
            }
        } else {
            let n = length.ok_or("a reply with neither length nor chunks")?;
            body.resize(n, 0);
            if n > 0 {
                self.reader.read_exact(&mut body[..1]).map_err(|e| e.to_string())?;
                first_byte = Some(start.elapsed());
                self.reader.read_exact(&mut body[1..]).map_err(|e| e.to_string())?;
            }
        }
        let total = start.elapsed();
        Ok(Reply {
            status,
            first_byte: first_byte.unwrap_or(total).as_secs_f64() * 1e3,
            total: total.as_secs_f64() * 1e3,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// The mock upstream; its threads end with the process.
struct Upstream {
    addr: SocketAddr,
}

impl Upstream {
    fn start() -> Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve_upstream(stream);
                });
            }
        });
        Ok(Upstream { addr })
    }
}

/// Serves one keep-alive connection: JSON replies, or SSE streams shaped by
/// the `x-bench-*` headers.
fn serve_upstream(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (mut length, mut events, mut gap) = (0usize, 0u64, 0u64);
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "x-bench-events" => events = value.parse().unwrap_or(0),
                "x-bench-gap-ms" => gap = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        if !body.windows(13).any(|w| w == b"\"stream\":true") {
            write!(
                writer,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{REPLY}",
                REPLY.len()
            )?;
            continue;
        }
        writer.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        )?;
        let chunk = |w: &mut TcpStream, data: &str| -> std::io::Result<()> {
            write!(w, "{:x}\r\n{data}\r\n", data.len())
        };
        chunk(
            &mut writer,
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        )?;
        for _ in 0..events {
            if gap > 0 {
                std::thread::sleep(Duration::from_millis(gap));
            }
            chunk(
                &mut writer,
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok \"}}\n\n",
            )?;
        }
        chunk(
            &mut writer,
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":20}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        )?;
        writer.write_all(b"0\r\n\r\n")?;
    }
}

/// The resident set of a process, from /proc, in decimal MB.
fn rss_mb(pid: u32) -> Result<f64> {
    status_mb(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`, in decimal MB.
fn status_mb(pid: u32, field: &str) -> Result<f64> {
    proc_kb_field(&format!("/proc/{pid}/status"), field)
}

/// A `kB` field of `/proc/<pid>/smaps_rollup` (the sums over every
/// mapping), in decimal MB.
fn smaps_mb(pid: u32, field: &str) -> Result<f64> {
    proc_kb_field(&format!("/proc/{pid}/smaps_rollup"), field)
}

fn proc_kb_field(file: &str, field: &str) -> Result<f64> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {field} in {file}"))?;
    Ok(kb * 1024.0 / super::MB)
}

/// The `q` quantile (0..1) of `samples` in milliseconds.
fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(at).copied().unwrap_or(f64::NAN)
}
