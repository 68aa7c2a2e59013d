//! `ringlet proxy serve` (hidden): the proxy child the daemon spawns for a
//! proxy-enabled profile. It first makes itself non-dumpable with core
//! dumps off (it holds upstream keys), reads its [`ServeConfig`] from stdin
//! to EOF, and serves on the listening socket it inherits as fd 3 (bound by
//! the daemon, so a restarted child keeps the port and clients wait in the
//! backlog meanwhile).
//!
//! HTTP/1.1 of its own, one thread per connection with a small stack:
//! tiny_http buffers whole responses and never sets `TCP_NODELAY`, and a
//! relayed stream must reach the agent read by read. Heads are parsed by the
//! daemon's front door parser (strict, bounded); bodies are read whole (up to
//! [`MAX_BODY`], since fallback resends them) with `Content-Length` or
//! chunked. Endpoints: `GET /health` (no token), `GET /ringlet/stats` (the
//! local token), everything else is relayed (`relay`) once the local token
//! checks out. On SIGTERM or SIGINT it stops accepting, lets requests under
//! way finish for up to [`GRACE`], and exits 0.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::ServeConfig;
use super::relay::{Proxy, error_body};
use crate::daemon::http::slots::{Slot, Slots};
use crate::daemon::http::{Head, content_length, parse_head};

/// Request bodies are buffered whole for fallback; a bigger one gets 413.
pub const MAX_BODY: usize = 32 << 20;
/// The most a ServeConfig may weigh (rules, aliases, keys: a few KiB).
const MAX_CONFIG: u64 = 4 << 20;
/// A request head larger than this gets 431.
const MAX_HEAD: usize = 64 * 1024;
/// How long requests under way may run on after SIGTERM.
pub const GRACE: Duration = Duration::from_secs(10);
/// A kept-alive connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(120);
/// A request, once its first byte is in, must arrive whole within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that leaves an answer unread this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections that showed the local token, at most (each is a thread);
/// past it the next gets 503 and is closed. An agent opens a handful; a
/// hundred concurrent streams fit many times over.
const MAX_CONNECTIONS: usize = 1024;
/// Connections that have not shown the token (yet), at most: anyone who can
/// reach the port, another local user included, can open them, so a
/// newcomer past the pool closes the oldest (the daemon front door's
/// `Slots`), and the agent's connection, whose request is already in its
/// socket, is never the one closed. Strangers cannot lock the agent out.
const STRANGER_POOL: usize = 32;
/// Connection threads' stacks: JSON parsing (depth-capped at 128 by
/// serde_json) and TLS handshakes fit with room to spare; only the pages
/// touched count against memory.
const STACK: usize = 1 << 20;

/// The child's main: never returns early while requests are under way.
pub fn run() -> Result<()> {
    harden()?;
    close_inherited();
    // The socket first: run by hand, it fails at once instead of waiting
    // for a configuration on the terminal.
    let listener = inherited_listener()?;
    let config = read_config()?;
    let proxy = Arc::new(Proxy::new(config)?);

    // SIGTERM/SIGINT set the flag and write to the pipe that wakes poll.
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_rx, wake_tx) = UnixStream::pair().context("creating the wake pipe")?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
        signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)?;
    }
    crate::info!(
        "proxy {} serving on {}",
        proxy.config.alias,
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    accept_loop(&listener, &proxy, &stop, &wake_rx);

    // Draining: no new connection; requests under way get the grace period.
    proxy.stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + GRACE;
    while proxy.in_flight() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    crate::info!("proxy {} stopped", proxy.config.alias);
    Ok(())
}

/// Non-dumpable (no ptrace by other processes of the user, no core file,
/// `/proc/<pid>/mem` closed) and no core dumps: the child holds keys.
fn harden() -> Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })
        .context("turning core dumps off")?;
    // Each connection holds three descriptors (and a relay one more): the
    // soft limit (often 1024) would cap the agent far below
    // [`MAX_CONNECTIONS`]. Raised to the hard limit, as far as it goes.
    let files = rustix::process::getrlimit(Resource::Nofile);
    if files.current < files.maximum {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: files.maximum, ..files });
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("making the proxy non-dumpable")?;
    Ok(())
}

/// Closes every descriptor above the listener (fd 3): nothing of this
/// process is open yet, so whatever is there came from the daemon's own
/// launcher without close-on-exec (a shell's `7<file`, a service manager's
/// extra fd) and has no business in the process that holds the keys.
fn close_inherited() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
        // Collected first: the directory's own descriptor is among them,
        // closed again once the listing is dropped (skipped below).
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|&fd| fd > 3)
            .collect();
        for fd in fds {
            // SAFETY: at this point the process has opened nothing of its
            // own (no thread, no file, no socket; std keeps no descriptor
            // open), so every open descriptor above 3 is an inherited one
            // that no object here owns: checking and closing it cannot pull
            // one from under anything. The check skips the listing's own,
            // already closed (rustix's close must not see EBADF).
            unsafe {
                let borrowed = rustix::fd::BorrowedFd::borrow_raw(fd);
                if rustix::io::fcntl_getfd(borrowed).is_ok() {
                    rustix::io::close(fd);
                }
            }
        }
    }
}

fn read_config() -> Result<ServeConfig> {
    let mut text = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut text)
        .context("reading the proxy configuration from stdin")?;
    if text.len() as u64 > MAX_CONFIG {
        bail!("the proxy configuration on stdin is over {MAX_CONFIG} bytes");
    }
    serde_json::from_slice(&text).context("reading the proxy configuration from stdin")
}

/// The listening TCP socket the daemon passed as fd 3.
fn inherited_listener() -> Result<TcpListener> {
    // SAFETY: fd 3 is only borrowed here, for checks that leave it open.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(3) };
    let listening = rustix::net::sockopt::socket_acceptconn(fd)
        .context("fd 3 is not a socket (run by the daemon, not by hand)")?;
    let addr = rustix::net::getsockname(fd).context("fd 3")?;
    if !listening || std::net::SocketAddr::try_from(addr).is_err() {
        bail!("fd 3 is not a listening TCP socket");
    }
    // Not passed on to anything this process might start.
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).context("fd 3")?;
    // SAFETY: fd 3 is an open listening TCP socket (checked above) that
    // nothing else in this process owns; the listener takes it over.
    Ok(unsafe { TcpListener::from_raw_fd(3) })
}

fn accept_loop(listener: &TcpListener, proxy: &Arc<Proxy>, stop: &AtomicBool, wake: &UnixStream) {
    use rustix::event::{PollFd, PollFlags, poll};
    let slots = Arc::new(Slots::with_limits(MAX_CONNECTIONS, STRANGER_POOL));
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener, PollFlags::IN), PollFd::new(wake, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                crate::error!("proxy: poll: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        if !fds[0].revents().contains(PollFlags::IN) || stop.load(Ordering::SeqCst) {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like pass; a pause keeps one from spinning.
                crate::warn!("proxy: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(slot) = slots.take(&stream) else {
            let mut client = Client::new(stream);
            client.close = true;
            let _ = client.error(proxy, 503, "ringlet: cannot serve another connection now");
            continue;
        };
        let proxy = proxy.clone();
        // Given back when the thread ends, however it ends (a panic too),
        // or when it cannot be spawned (the closure is dropped).
        let held = Held(slots.clone(), slot);
        let spawned =
            thread::Builder::new().name("proxy-conn".into()).stack_size(STACK).spawn(move || {
                connection(stream, &proxy, &held);
            });
        if let Err(e) = spawned {
            crate::warn!("proxy: no thread for a connection: {e}");
        }
    }
}

/// A connection's slot, held by its thread and given back when dropped.
struct Held(Arc<Slots>, Arc<Slot>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.give_back(&self.1);
    }
}

/// Serves one client connection's requests until it closes, idles out, or
/// an answer leaves it unusable.
fn connection(stream: TcpStream, proxy: &Proxy, held: &Held) {
    // Small writes (an SSE event) must leave at once.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else { return };
    let slot = held.1.clone();
    let mut reader = Reader::new(read_half, slot);
    let mut client = Client::new(stream);
    loop {
        let head = match reader.head() {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(status) => {
                let _ = client.error(proxy, status, &refusal(status));
                break;
            }
        };
        // With the token it leaves the stranger pool for good, before it is
        // marked looked at (which lets newcomers close it); without, it may
        // now give way to newcomers.
        if !held.1.trusted()
            && proxy.authorized(&head)
            && !held.0.trust(&held.1, held.0.generation())
        {
            client.close = true;
            let message = format!("ringlet: all {MAX_CONNECTIONS} connections are in use");
            let _ = client.error(proxy, 503, &message);
            break;
        }
        held.1.settle();
        let _busy = proxy.busy();
        client.close = proxy.stopping.load(Ordering::SeqCst) || wants_close(&head);
        if serve(proxy, &mut reader, &mut client, &head).is_err() || client.close {
            break;
        }
    }
    linger_close(&client.stream, &mut reader.stream);
}

/// Closes so the last answer is read: a socket closed with unread input
/// (a refused request's body) sends RST, which can destroy the answer in
/// flight. Half-close, then drain what the client still sends (bounded
/// in time and bytes) until it closes too.
fn linger_close(write_half: &TcpStream, read_half: &mut TcpStream) {
    let _ = write_half.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained <= MAX_BODY + MAX_HEAD {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || read_half.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match read_half.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    let _ = write_half.shutdown(Shutdown::Both);
}

/// One request: the endpoints of the proxy itself, or the relay.
fn serve(proxy: &Proxy, reader: &mut Reader, client: &mut Client, head: &Head) -> io::Result<()> {
    let path = head.path();
    if head.method == "GET" && path == "/health" {
        // Its body (none is expected) is not read: closing keeps it from
        // being taken for the next request.
        client.close |= head.header("content-length").is_some_and(|l| l != "0")
            || head.header("transfer-encoding").is_some();
        let body = json!({"ok": true, "alias": proxy.config.alias, "pid": std::process::id()});
        return client.whole(200, "application/json", body.to_string().as_bytes());
    }
    if !path.starts_with('/') {
        // Absolute-form (a client taking this for a forward proxy) or `*`.
        client.close = true;
        return client.error(proxy, 400, "ringlet: the request target must be a path");
    }
    if !proxy.authorized(head) {
        // The body is left unread: the connection closes after the answer.
        client.close = true;
        let message = "ringlet: missing or wrong local token for this proxy";
        return client.error(proxy, 401, message);
    }
    // Asked to (curl does for bodies over 1 MiB), and only for a body that
    // will be read: an HTTP/1.0 client knows no 100, and one over the cap
    // is refused at once.
    let fits = content_length(head).is_ok_and(|n| n <= MAX_BODY);
    if head.version == "HTTP/1.1"
        && fits
        && head.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        client.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = match reader.body(head) {
        Ok(body) => body,
        Err(status) => {
            client.close = true;
            if status == 413 {
                proxy.log_refusal(head, 413);
            }
            return client.error(proxy, status, &refusal(status));
        }
    };
    if head.method == "GET" && path == "/ringlet/stats" {
        let body = serde_json::to_vec(&proxy.stats()).unwrap_or_default();
        return client.whole(200, "application/json", &body);
    }
    proxy.relay(head, body, client)
}

fn wants_close(head: &Head) -> bool {
    let tokens = head.header("connection").unwrap_or("").to_ascii_lowercase();
    let has = |t: &str| tokens.split(',').any(|x| x.trim() == t);
    if head.version == "HTTP/1.0" { !has("keep-alive") } else { has("close") }
}

/// What a refused request is told.
fn refusal(status: u16) -> String {
    match status {
        400 => "ringlet: a malformed request".into(),
        408 => format!("ringlet: a request must arrive within {REQUEST_TIMEOUT:?}"),
        413 => format!("ringlet: request bodies are limited to {MAX_BODY} bytes"),
        431 => format!("ringlet: request heads are limited to {MAX_HEAD} bytes"),
        505 => "ringlet: HTTP/1.x only".into(),
        _ => "ringlet: refused".into(),
    }
}

// Cuts a connection's bytes into requests (the methods below); its reads
// mark and settle the slot as the front door's do.
use crate::daemon::http::slots::SlotReader as Reader;

impl Reader {
    /// The next head; `None` when the client closed or idled out between
    /// requests, `Err(status)` to refuse and close.
    fn head(&mut self) -> Result<Option<Head>, u16> {
        if self.pending.is_empty() && self.fill(Instant::now() + IDLE)? == 0 {
            return Ok(None);
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let end = loop {
            if let Some(i) = memchr::memmem::find(&self.pending, b"\r\n\r\n") {
                break i + 4;
            }
            if self.pending.len() > MAX_HEAD {
                return Err(431);
            }
            if self.fill(deadline)? == 0 {
                return Ok(None);
            }
        };
        if end > MAX_HEAD {
            return Err(431);
        }
        let head = parse_head(&self.pending[..end])?;
        self.pending.drain(..end);
        Ok(Some(head))
    }

    /// The body of `head`, whole (chunked bodies decoded), at most [`MAX_BODY`].
    fn body(&mut self, head: &Head) -> Result<Vec<u8>, u16> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let chunked = head.header("transfer-encoding").is_some_and(|te| {
            te.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        // Anything but chunked, or chunked beside a Content-Length (RFC 9112
        // §6.1: a smuggling attempt), is refused.
        if head.header("transfer-encoding").is_some()
            && (!chunked || head.header("content-length").is_some())
        {
            return Err(400);
        }
        if !chunked {
            let length = content_length(head)?;
            if length > MAX_BODY {
                return Err(413);
            }
            self.want(length, deadline)?;
            return Ok(self.pending.drain(..length).collect());
        }
        let mut body = Vec::new();
        loop {
            let line = self.line(deadline)?;
            let size = line.split(';').next().unwrap_or("").trim();
            // Hex digits only (`from_str_radix` would take a sign).
            if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(400);
            }
            let size = usize::from_str_radix(size, 16).map_err(|_| 413u16)?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !self.line(deadline)?.is_empty() {}
                return Ok(body);
            }
            // Checked: a size near `usize::MAX` must not wrap past the cap.
            if body.len().checked_add(size).is_none_or(|total| total > MAX_BODY) {
                return Err(413);
            }
            self.want(size + 2, deadline)?;
            body.extend_from_slice(&self.pending[..size]);
            if &self.pending[size..size + 2] != b"\r\n" {
                return Err(400);
            }
            self.pending.drain(..size + 2);
        }
    }

    /// One CRLF-terminated line of a chunked body.
    fn line(&mut self, deadline: Instant) -> Result<String, u16> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.pending, b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Ok(line);
            }
            if self.pending.len() > 4096 {
                return Err(400);
            }
            if self.fill(deadline)? == 0 {
                return Err(400);
            }
        }
    }

    fn want(&mut self, n: usize, deadline: Instant) -> Result<(), u16> {
        while self.pending.len() < n {
            if self.fill(deadline)? == 0 {
                return Err(400);
            }
        }
        Ok(())
    }
}

/// How an answer's body is framed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (as the upstream said, or of a whole body).
    Length(u64),
    /// `Transfer-Encoding: chunked`, one chunk per upstream read.
    Chunked,
    /// No body at all (HEAD, 204, 304).
    Empty,
    /// The body as it comes, ended by closing the connection: an HTTP/1.0
    /// client cannot read chunks.
    UntilClose,
}

/// The writing side of a client connection. The head is held back and
/// leaves with the first body bytes, in one write.
pub struct Client {
    stream: TcpStream,
    /// Close the connection after this answer.
    pub close: bool,
    framing: Framing,
    /// A head not yet written, then reused for chunk framing.
    out: Vec<u8>,
    /// Anything (head included) has been written for this answer.
    pub started: bool,
}

impl Client {
    fn new(stream: TcpStream) -> Client {
        Client { stream, close: false, framing: Framing::Empty, out: Vec::new(), started: false }
    }

    /// Starts an answer; `headers` must hold no framing or hop-by-hop header.
    pub fn head(&mut self, status: u16, headers: &[(String, Vec<u8>)], framing: Framing) {
        self.framing = framing;
        self.started = false;
        self.out.clear();
        let _ = write!(self.out, "HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value);
            self.out.extend_from_slice(b"\r\n");
        }
        match framing {
            Framing::Length(n) => {
                let _ = write!(self.out, "content-length: {n}\r\n");
            }
            Framing::Chunked => self.out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::Empty => {}
            Framing::UntilClose => self.close = true,
        }
        if self.close {
            self.out.extend_from_slice(b"connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Writes `data` (with the held head, if any) and flushes at once.
    pub fn body(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() && self.started {
            return Ok(());
        }
        if self.framing == Framing::Chunked && !data.is_empty() {
            let _ = write!(self.out, "{:x}\r\n", data.len());
            self.out.extend_from_slice(data);
            self.out.extend_from_slice(b"\r\n");
        } else if self.framing != Framing::Empty {
            self.out.extend_from_slice(data);
        }
        self.send()
    }

    /// Ends the answer (the last chunk when chunked).
    pub fn end(&mut self) -> io::Result<()> {
        if self.framing == Framing::Chunked {
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        self.send()
    }

    fn send(&mut self) -> io::Result<()> {
        self.started = true;
        let result = self.stream.write_all(&self.out);
        self.out.clear();
        result
    }

    /// A whole answer with a body.
    pub fn whole(&mut self, status: u16, content_type: &str, body: &[u8]) -> io::Result<()> {
        let headers = [("content-type".to_string(), content_type.as_bytes().to_vec())];
        self.head(status, &headers, Framing::Length(body.len() as u64));
        self.body(body)
    }

    /// An error of the proxy's own, in the profile's API family's shape.
    pub fn error(&mut self, proxy: &Proxy, status: u16, message: &str) -> io::Result<()> {
        self.whole(status, "application/json", &error_body(proxy.config.family, status, message))
    }
}

/// The reason phrase for a status line (clients read only the number).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}
