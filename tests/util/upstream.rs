//! Programmable mock upstreams for the proxy's tests (and any test that needs an HTTP server
//! whose every answer it decides): a [`MockUpstream`] is an HTTP/1.1 server on 127.0.0.1,
//! optionally behind TLS with a certificate the test made ([`MockUpstream::https`]), that asks
//! a handler what to do with each request ([`Action`]: a [`Reply`] with any status, headers and
//! body, streamed as server-sent events with pauses or handshakes ([`Gate`]), cut off after N
//! body bytes, or a hang-up without an answer) and records every request ([`Recorded`]: method,
//! path, query, headers, body) before answering it. [`dead_url`] is an address where nothing
//! listens (connection refused). A `CONNECT` is answered 200 and the tunnel's requests are
//! served by the same mock, so it doubles as an `HTTPS_PROXY` for plain-HTTP upstreams.
//!
//! Sockets disable Nagle (`TCP_NODELAY`, so a small event is sent at once) and listen with a
//! backlog of 1024 (std's 128 refuses connections under a burst of 100 clients on a loaded
//! machine). One accept thread and one thread per connection; dropping the mock shuts them all
//! down. std, rustix and (for TLS) rustls only: the crate has no async runtime.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::mock::{lock, stop_server};

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query (`/v1/messages`).
    pub path: String,
    /// The query string without its `?` (`beta=true`), if any.
    pub query: Option<String>,
    /// Every header in arrival order, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body as received (chunked bodies decoded).
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `model` of a JSON body.
    pub fn model(&self) -> Option<String> {
        self.json().get("model").and_then(Value::as_str).map(str::to_string)
    }
}

/// What the mock does with one request.
#[derive(Clone)]
pub enum Action {
    Reply(Reply),
    /// Close the connection without a byte of answer (a dead upstream that accepted).
    Hangup,
}

impl From<Reply> for Action {
    fn from(reply: Reply) -> Action {
        Action::Reply(reply)
    }
}

/// A handshake between a test and a streaming reply: the reply waits at a gated chunk until the
/// test has called [`Gate::open`] once for it (each `open` lets one gated chunk through), so a
/// test can prove that a chunk reached the client before the next one was even sent. A gate
/// never opened releases its chunk after 10 s, so a broken proxy fails the test instead of
/// hanging it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<u64>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets one waiting (or the next) gated chunk go.
    pub fn open(&self) {
        *lock(&self.0.0) += 1;
        self.0.1.notify_all();
    }

    /// Takes one permit; false when none came within `timeout`.
    fn pass(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut permits = lock(&self.0.0);
        while *permits == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            permits = match self.0.1.wait_timeout(permits, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *permits -= 1;
        true
    }
}

/// One piece of a reply body, written and flushed on its own (one HTTP chunk when the reply is
/// chunked).
#[derive(Clone)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// Waited before the chunk is written.
    pub pause: Duration,
    /// Waited for (see [`Gate`]) before the chunk is written, after `pause`.
    pub gate: Option<Gate>,
}

/// An answer: status, headers, body pieces.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    /// Sent as given, after the framing header the mock adds (`Content-Length` or
    /// `Transfer-Encoding: chunked`).
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Chunk>,
    /// `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
    /// Close the connection after this many body bytes (framing not counted), without
    /// finishing the body: a failure after the first byte.
    pub cut_after: Option<usize>,
}

impl Reply {
    /// A body sent whole with `Content-Length`.
    pub fn bytes(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: vec![Chunk { bytes: body.to_vec(), pause: Duration::ZERO, gate: None }],
            chunked: false,
            cut_after: None,
        }
    }

    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::bytes(status, "application/json", body.to_string().as_bytes())
    }

    /// A `text/event-stream` of `events` (each a whole `event: ..\ndata: ..\n\n` block), one
    /// HTTP chunk each.
    pub fn sse<S: AsRef<str>>(events: &[S]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: events
                .iter()
                .map(|e| Chunk {
                    bytes: e.as_ref().as_bytes().to_vec(),
                    pause: Duration::ZERO,
                    gate: None,
                })
                .collect(),
            chunked: true,
            cut_after: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Waits `pause` before every chunk but the first.
    pub fn paced(mut self, pause: Duration) -> Reply {
        for chunk in self.chunks.iter_mut().skip(1) {
            chunk.pause = pause;
        }
        self
    }

    /// Every chunk but the first waits for one [`Gate::open`] of `gate`.
    pub fn gated(mut self, gate: &Gate) -> Reply {
        for chunk in self.chunks.iter_mut().skip(1) {
            chunk.gate = Some(gate.clone());
        }
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Reply {
        self.cut_after = Some(bytes);
        self
    }
}

/// An Anthropic-style error reply (`{"type":"error","error":{...}}`).
pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// A complete Anthropic Messages reply (non-streaming) with the given usage.
pub fn anthropic_message(model: &str, text: &str, input: u64, output: u64) -> Reply {
    Reply::json(
        200,
        &serde_json::json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }),
    )
}

/// The events of a streamed Anthropic message saying `parts` one text delta each, with the
/// given usage in `message_start` (input) and `message_delta` (output).
pub fn anthropic_stream(model: &str, parts: &[&str], input: u64, output: u64) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            serde_json::json!({"type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        ),
        event(
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": 0,
                               "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for part in parts {
        events.push(event(
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": part}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        serde_json::json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        serde_json::json!({"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                           "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", serde_json::json!({"type": "message_stop"})));
    events
}

type Handler = dyn Fn(&Recorded) -> Action + Send + Sync;

/// A running mock upstream; see the module docs.
pub struct MockUpstream {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// A plain-HTTP mock that asks `handler` what to do with each request.
    pub fn start(handler: impl Fn(&Recorded) -> Action + Send + Sync + 'static) -> MockUpstream {
        MockUpstream::launch(Box::new(handler), None)
    }

    /// A mock that gives every request the same reply.
    pub fn always(reply: Reply) -> MockUpstream {
        MockUpstream::start(move |_| Action::Reply(reply.clone()))
    }

    /// A mock that answers requests with `actions` in order, then with 500 ("mock: no reply
    /// queued") once they run out.
    pub fn queue(actions: Vec<Action>) -> MockUpstream {
        let queue = Mutex::new(VecDeque::from(actions));
        MockUpstream::start(move |_| {
            lock(&queue).pop_front().unwrap_or_else(|| {
                Action::Reply(anthropic_error(500, "api_error", "mock: no reply queued"))
            })
        })
    }

    /// An HTTPS mock serving the PEM certificate chain `cert` with the PEM private key `key`.
    pub fn https(
        cert: &Path,
        key: &Path,
        handler: impl Fn(&Recorded) -> Action + Send + Sync + 'static,
    ) -> MockUpstream {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("reading the mock's certificate")
            .collect::<Result<_, _>>()
            .expect("parsing the mock's certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("reading the mock's key");
        // The one crypto provider built in (ring, through ureq) is the default.
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the mock's certificate and key");
        MockUpstream::launch(Box::new(handler), Some(Arc::new(config)))
    }

    fn launch(handler: Box<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> MockUpstream {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 1024);
        let addr = listener.local_addr().expect("mock upstream address");
        let shared = Arc::new(Shared {
            handler,
            seen: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let is_tls = tls.is_some();
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared, tls.as_ref()))
            .expect("spawning the mock accept thread");
        MockUpstream { addr, tls: is_tls, shared, accept: Some(accept) }
    }

    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.seen).clone()
    }

    /// Waits until at least `n` requests have arrived or `timeout` passes; returns what
    /// arrived either way, for the caller's assertion to show.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        super::mock::wait_for_len(&self.shared.seen, &self.shared.arrived, n, timeout)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        stop_server(self.addr, &self.shared.stop, self.accept.take(), &self.shared.conns);
    }
}

/// A URL where nothing listens: a port bound and released at once (connection refused).
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a throwaway port");
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A TCP listener on `addr` with SO_REUSEADDR and a listen backlog of `backlog` (std's
/// `TcpListener::bind` fixes it at 128).
pub fn listen(addr: SocketAddr, backlog: i32) -> TcpListener {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    // CLOEXEC as std's own sockets: no program a test starts may inherit it.
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .expect("socket");
    sockopt::set_socket_reuseaddr(&fd, true).expect("SO_REUSEADDR");
    rustix::net::bind(&fd, &addr).expect("bind");
    rustix::net::listen(&fd, backlog).expect("listen");
    TcpListener::from(fd)
}

struct Shared {
    handler: Box<Handler>,
    seen: Mutex<Vec<Recorded>>,
    arrived: Condvar,
    stop: AtomicBool,
    /// Each connection thread with a second handle to its socket, for `Drop` to shut down.
    conns: Mutex<Vec<(JoinHandle<()>, TcpStream)>>,
}

fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls: Option<&Arc<rustls::ServerConfig>>,
) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(registered) = stream.try_clone() else { continue };
        let conn_shared = Arc::clone(shared);
        let tls = tls.cloned();
        let spawned = thread::Builder::new().name("upstream-conn".into()).spawn(move || {
            // A broken request or a vanished peer only ends this connection.
            let _ = match tls {
                None => serve(Conn::new(&stream), &conn_shared),
                Some(config) => match rustls::ServerConnection::new(config) {
                    Ok(server) => {
                        serve(Conn::new(rustls::StreamOwned::new(server, &stream)), &conn_shared)
                    }
                    Err(_) => Ok(()),
                },
            };
            let _ = stream.shutdown(Shutdown::Both);
        });
        let Ok(handle) = spawned else { continue };
        let mut conns = lock(&shared.conns);
        let (done, live): (Vec<_>, Vec<_>) = conns.drain(..).partition(|(h, _)| h.is_finished());
        *conns = live;
        conns.push((handle, registered));
        drop(conns);
        for (handle, _) in done {
            let _ = handle.join();
        }
    }
}

/// A connection with a read buffer, over plain TCP or TLS.
struct Conn<S> {
    io: S,
    buf: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl<S: Read + Write> Conn<S> {
    fn new(io: S) -> Conn<S> {
        Conn { io, buf: Vec::new() }
    }

    /// Reads more; false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.io.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// One CRLF-terminated line, without its CRLF.
    fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill()? {
                return if self.buf.is_empty() { Ok(None) } else { Err(invalid("EOF mid-line")) };
            }
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(invalid("EOF inside the body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One request; `None` when the client closed between requests.
    fn request(&mut self) -> io::Result<Option<(Recorded, bool)>> {
        let Some(first) = self.line()? else { return Ok(None) };
        let mut parts = first.splitn(3, ' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("bad request line"));
        };
        let mut headers = Vec::new();
        loop {
            let Some(line) = self.line()? else { return Err(invalid("EOF in the head")) };
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let close = get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || version == "HTTP/1.0";
        if get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            self.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.io.flush()?;
        }
        let body = if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let size = self.line()?.ok_or_else(|| invalid("EOF in a chunk size"))?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| invalid("bad chunk size"))?;
                if size == 0 {
                    while self.line()?.is_some_and(|l| !l.is_empty()) {}
                    break;
                }
                if body.len() + size > MAX_BODY {
                    return Err(invalid("body too large"));
                }
                body.extend(self.exact(size)?);
                self.exact(2)?;
            }
            body
        } else {
            let length = get("content-length")
                .map_or(Ok(0), |l| l.parse::<usize>().map_err(|_| invalid("bad Content-Length")))?;
            if length > MAX_BODY {
                return Err(invalid("body too large"));
            }
            self.exact(length)?
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        Ok(Some((Recorded { method: method.to_string(), path, query, headers, body }, close)))
    }
}

fn serve<S: Read + Write>(mut conn: Conn<S>, shared: &Shared) -> io::Result<()> {
    loop {
        let Some((request, close)) = conn.request()? else { return Ok(()) };
        lock(&shared.seen).push(request.clone());
        shared.arrived.notify_all();
        if request.method == "CONNECT" {
            // A forward proxy's tunnel whose far end is this mock itself: the
            // tunnelled plain-HTTP requests are served (and recorded) here.
            conn.io.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            conn.io.flush()?;
            continue;
        }
        let reply = match (shared.handler)(&request) {
            Action::Hangup => return Ok(()),
            Action::Reply(reply) => reply,
        };
        if !write_reply(&mut conn.io, &reply, request.method == "HEAD", close)? || close {
            return Ok(());
        }
    }
}

/// Writes `reply`; false when it was cut off (the connection must close).
fn write_reply(
    io: &mut impl Write,
    reply: &Reply,
    head_only: bool,
    close: bool,
) -> io::Result<bool> {
    let mut head = format!("HTTP/1.1 {} Mock\r\n", reply.status);
    if reply.chunked {
        head.push_str("transfer-encoding: chunked\r\n");
    } else {
        let length: usize = reply.chunks.iter().map(|c| c.bytes.len()).sum();
        head.push_str(&format!("content-length: {length}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    io.write_all(head.as_bytes())?;
    io.flush()?;
    if head_only {
        return Ok(true);
    }
    let mut budget = reply.cut_after.unwrap_or(usize::MAX);
    for chunk in &reply.chunks {
        if !chunk.pause.is_zero() {
            thread::sleep(chunk.pause);
        }
        if let Some(gate) = &chunk.gate {
            gate.pass(Duration::from_secs(10));
        }
        let bytes = &chunk.bytes[..chunk.bytes.len().min(budget)];
        budget -= bytes.len();
        if reply.chunked && !bytes.is_empty() {
            let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
            framed.extend_from_slice(bytes);
            framed.extend_from_slice(b"\r\n");
            io.write_all(&framed)?;
        } else {
            io.write_all(bytes)?;
        }
        io.flush()?;
        if budget == 0 && reply.cut_after.is_some() {
            return Ok(false);
        }
    }
    if reply.chunked {
        io.write_all(b"0\r\n\r\n")?;
        io.flush()?;
    }
    Ok(true)
}

/// A `ringlet proxy serve` child run directly, as the daemon runs it: a listener bound here and
/// inherited as fd 3, the `ServeConfig` JSON on stdin. Killed when dropped.
pub struct ServeChild {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl ServeChild {
    /// Starts the child in `env`'s world with `config` (a `ServeConfig` as JSON) and waits until
    /// `GET /health` answers.
    pub fn start(env: &super::Env, config: &Value) -> ServeChild {
        ServeChild::start_with_env(env, config, &[])
    }

    /// [`ServeChild::start`] with extra environment variables (`HTTPS_PROXY`, `SSL_CERT_FILE`).
    pub fn start_with_env(env: &super::Env, config: &Value, vars: &[(&str, &str)]) -> ServeChild {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let listener = listen("127.0.0.1:0".parse().unwrap(), 1024);
        let addr = listener.local_addr().unwrap();
        let raw = listener.as_raw_fd();
        let mut command = env.program(super::BIN).cmd;
        command.envs(vars.iter().copied());
        command
            .args(["proxy", "serve"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        // SAFETY: between fork and exec only async-signal-safe calls: dup2 (or clearing
        // FD_CLOEXEC when the listener already is fd 3). The OwnedFd for fd 3 is forgotten, never
        // closed here.
        unsafe {
            command.pre_exec(move || {
                let listener = rustix::fd::BorrowedFd::borrow_raw(raw);
                if raw == 3 {
                    rustix::io::fcntl_setfd(listener, rustix::io::FdFlags::empty())?;
                } else {
                    let mut three = OwnedFd::from_raw_fd(3);
                    let result = rustix::io::dup2(listener, &mut three);
                    std::mem::forget(three);
                    result?;
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("spawning ringlet proxy serve");
        drop(listener);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(config.to_string().as_bytes()).unwrap();
        drop(stdin);
        let serve = ServeChild { child, addr };
        let healthy = super::wait_until(Duration::from_secs(20), || {
            let answer = serve.try_request("GET", "/health", &[], b"");
            answer.is_ok_and(|a| a.status == 200)
        });
        assert!(healthy, "proxy serve never answered /health");
        serve
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One request on a fresh connection; the whole answer.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        self.try_request(method, target, headers, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    pub fn try_request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Answer> {
        let mut stream = self.open(method, target, headers, body)?;
        let mut answer = stream.head()?;
        answer.body = stream.rest()?;
        Ok(answer)
    }

    /// Sends a request on a fresh connection and returns the connection, to read the answer
    /// piece by piece.
    pub fn open(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<ClientConn> {
        let stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(8)))?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let framed = headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed && (!body.is_empty() || method == "POST") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        (&stream).write_all(&bytes)?;
        Ok(ClientConn { conn: Conn::new(stream), chunked: false, length: None })
    }

    /// SIGTERM, then the exit status (waiting at most `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        super::kill(self.child.id(), 15);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer as a client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection whose answer is read piece by piece.
pub struct ClientConn {
    conn: Conn<TcpStream>,
    chunked: bool,
    length: Option<usize>,
}

impl ClientConn {
    /// The status and headers.
    pub fn head(&mut self) -> io::Result<Answer> {
        let line = self.conn.line()?.ok_or_else(|| invalid("closed before the status"))?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.conn.line()?.ok_or_else(|| invalid("closed in the head"))?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let answer = Answer { status, headers, body: Vec::new() };
        self.chunked = answer.header("transfer-encoding").is_some_and(|t| t.contains("chunked"));
        self.length = answer.header("content-length").and_then(|l| l.parse().ok());
        Ok(answer)
    }

    /// The next chunk of a chunked body; `Ok(None)` after the last one. An answer cut off
    /// mid-body is an `UnexpectedEof` error.
    pub fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "the answer was cut off");
        let size = self.conn.line()?.ok_or_else(eof)?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            self.conn.line()?;
            return Ok(None);
        }
        let data = self.conn.exact(size + 2).map_err(|_| eof())?;
        Ok(Some(data[..size].to_vec()))
    }

    /// The rest of the body, whole.
    pub fn rest(&mut self) -> io::Result<Vec<u8>> {
        if self.chunked {
            let mut body = Vec::new();
            while let Some(chunk) = self.chunk()? {
                body.extend(chunk);
            }
            return Ok(body);
        }
        match self.length {
            Some(n) => self.conn.exact(n),
            None => {
                while self.conn.fill()? {}
                Ok(std::mem::take(&mut self.conn.buf))
            }
        }
    }
}
