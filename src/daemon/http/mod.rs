//! The HTTP front door (design.md §2): one TCP port, by default
//! `127.0.0.1:8765`, for both the REST API and WebSockets.
//!
//! tiny_http cannot give a full-duplex WebSocket (its upgraded stream is
//! blocking and cannot be split), so the daemon owns the listener. Each
//! connection gets a thread that reads whole requests, head and body, each
//! bounded in size and time: a `GET /ws` upgrade is completed on the raw
//! `TcpStream` and served by `ws` (or `terminal_ws`); the UI's files are
//! answered on that thread from the binary (`rest::file`, `assets`);
//! anything else is handed, one complete request at a time, to tiny_http
//! listening on a private socket beside the IPC one (`rest`), over private
//! connections kept open for the next request ([`Backend`]), and its whole
//! answer is read, then copied back. tiny_http's few workers therefore never
//! wait on a slow client, in either direction. Connections are capped, and
//! connections without the token can never crowd out those with it
//! (`slots`). None of it touches the IPC path.

pub mod assets;
pub mod auth;
pub(crate) mod handshake;
pub mod owner;
pub(crate) mod peer;
mod rest;
pub mod routes;
pub(crate) mod slots;
mod terminal_ws;
pub(crate) mod ws;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::State;
pub(crate) use rest::holds_key;
use slots::{Slot, SlotReader, Slots};

/// A request head larger than this gets 431 (tiny_http applies its own
/// limits behind it).
const MAX_HEAD: usize = 16 * 1024;
/// A new connection must start its first request within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A request, head and body, must arrive whole within this once its first
/// byte has: a client that trickles gets 408 and loses only its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that leaves an answer unread this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A kept-alive connection idle for this long is closed: short, because
/// browsers reconnect at no cost and every open connection holds one of the
/// [`slots::MAX_TRUSTED`] slots.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// tiny_http worker threads (each serves one request at a time). A few
/// requests wait on purpose (a session kill waits up to 2 s for a stubborn
/// agent), so there are more than cores; an idle one costs only its stack.
const REST_WORKERS: usize = 8;
/// Private connections to tiny_http kept open for the next request, at
/// most; more may be open at once, and are closed after their request.
const BACKEND_IDLE: usize = 16;
/// A head from tiny_http larger than this is an error (they are a few
/// hundred bytes).
const MAX_BACKEND_HEAD: usize = 64 * 1024;

/// Where the front door listens, for status replies and the Host checks.
#[derive(Debug, Clone)]
pub struct HttpInfo {
    pub addr: SocketAddr,
    /// `[daemon] http_bind` as configured.
    pub bind: String,
    /// The open connections (see `slots`), counted for status replies.
    pub slots: Arc<Slots>,
}

/// Binds the front door and starts its threads. A port that cannot be bound
/// (another daemon or program has it) is a warning: the daemon still serves
/// the CLI over IPC.
pub fn start(state: &Arc<State>) -> Result<Option<HttpInfo>> {
    let cfg = &state.config.daemon;
    let port = match std::env::var("RINGLET_HTTP_PORT") {
        Ok(p) => p.parse().with_context(|| format!("RINGLET_HTTP_PORT={p} is not a port"))?,
        Err(_) => cfg.http_port,
    };
    let bind = cfg.http_bind.clone();
    let loopback = bind == "localhost" || bind.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        crate::warn!(
            "HTTP API bound to {bind}: reachable from other machines (only the token protects it)"
        );
    }
    let listener = match super::bind_http(state, &bind, port) {
        Ok(l) => l,
        Err(e) => {
            crate::warn!("HTTP API disabled: cannot listen on {bind}:{port}: {e}");
            return Ok(None);
        }
    };
    let info = HttpInfo { addr: listener.local_addr()?, bind, slots: Arc::default() };
    // Another uid beside us on the port (on `[::1]` while we hold
    // 127.0.0.1) could serve a look-alike page to a browser that opens
    // `localhost`: said in the log (`ringlet ui` refuses to open a link).
    if let Err(why) = owner::check(info.addr.port()) {
        crate::warn!("HTTP port: {why}");
    }

    let internal = state.paths.rest_socket();
    let _ = std::fs::remove_file(&internal);
    let server = match tiny_http::Server::http_unix(&internal) {
        Ok(server) => Arc::new(server),
        Err(e) => {
            crate::warn!("HTTP API disabled: cannot listen on {}: {e}", internal.display());
            return Ok(None);
        }
    };
    for i in 0..REST_WORKERS {
        let (state, server, info) = (state.clone(), server.clone(), info.clone());
        std::thread::Builder::new().name(format!("http-rest-{i}")).spawn(move || {
            while let Ok(request) = server.recv() {
                rest::serve(&state, &info, request);
            }
        })?;
    }
    let backend = Arc::new(Backend::new(internal));
    let (state, accept_info) = (state.clone(), info.clone());
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept(listener, &state, &accept_info, &backend))?;
    crate::info!("HTTP API on http://{}", info.addr);
    Ok(Some(info))
}

fn accept(listener: TcpListener, state: &Arc<State>, info: &HttpInfo, backend: &Arc<Backend>) {
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        let Some(slot) = info.slots.take(&stream) else {
            let why = "cannot serve another connection now; try again shortly";
            let _ = answer_error(&mut stream, 503, "unavailable", why);
            continue;
        };
        let (state, conn_info, backend) = (state.clone(), info.clone(), backend.clone());
        let spawned = std::thread::Builder::new().name("http-conn".into()).spawn({
            let slot = slot.clone();
            move || {
                if let Err(e) = connection(stream, &state, &conn_info, &backend, &slot) {
                    crate::debug!("http connection: {e:#}");
                }
                conn_info.slots.give_back(&slot);
            }
        });
        if spawned.is_err() {
            crate::warn!("http: cannot start a connection thread");
            info.slots.give_back(&slot);
        }
    }
}

/// One request head, as the front door parsed it.
pub struct Head {
    pub method: String,
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// Lower-case names, trimmed values, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

fn connection(
    stream: TcpStream,
    state: &State,
    info: &HttpInfo,
    backend: &Backend,
    slot: &Arc<Slot>,
) -> Result<()> {
    // Answers and tungstenite's frames are small writes; without this, each
    // reply after the first on a kept-alive connection waits ~40 ms
    // (design.md §5).
    stream.set_nodelay(true)?;
    let admit = |slot: &Arc<Slot>, head: &Head| admit(state, info, slot, head);
    let mut reader = Framer { input: SlotReader::new(stream, slot.clone()), admit: &admit };
    let (head, body) = match reader.next(HEAD_TIMEOUT) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(status) => return reader.refuse(status),
    };
    state.activity.touch();
    // Looked at: without the token, it may now give way to newcomers.
    slot.settle();
    let upgrade = head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if head.method == "GET" && upgrade {
        let Framer { input, admit } = reader;
        let SlotReader { stream, pending, slot, started } = input;
        if head.path() == "/ws" {
            return ws::serve(state, info, &slot, stream, &head, pending);
        }
        if let Some(id) = head.path().strip_prefix("/ws/terminal/") {
            let id = id.to_string();
            return terminal_ws::serve(state, info, &slot, stream, &head, &id, pending);
        }
        reader = Framer { input: SlotReader { stream, pending, slot, started }, admit };
    }
    serve(reader, head, body, state, info, backend)
}

/// A connection that sends the right token (the daemon's or a live
/// browser session's) leaves the stranger pool for a
/// slot that is never taken away (`slots`); `Err(503)` when the owner's own
/// connections hold all of those. The REST server and the upgrade check the
/// token again for what they serve.
fn admit(state: &State, info: &HttpInfo, slot: &Arc<Slot>, head: &Head) -> Result<(), u16> {
    // A login ticket travels on the browser opener's command line, which
    // every local user can read: only the daemon's own user may trade it.
    if head.path() == "/api/login" && !auth::login_peer_allowed(slot.stream()) {
        return Err(403);
    }
    if slot.trusted() {
        return Ok(());
    }
    // Read before the token, so a rotation in between leaves it untrusted.
    let generation = info.slots.generation();
    let given = auth::bearer(head.header("authorization"))
        .or_else(|| auth::subprotocol_token(head.header("sec-websocket-protocol")));
    if given.is_some_and(|t| auth::authorize(state, t).is_some())
        && !info.slots.trust(slot, generation)
    {
        return Err(503);
    }
    Ok(())
}

/// Cuts a client's byte stream into whole requests (head and body), each
/// read within [`REQUEST_TIMEOUT`], so that tiny_http, whose few workers
/// read bodies themselves, is only ever handed a complete request and can
/// never be held by a client that sends slowly.
struct Framer<'a> {
    /// The connection, what was read past the last request (a pipelining
    /// client's next one) and its slot.
    input: SlotReader,
    /// [`admit`], called with each head before its body is read.
    admit: Admit<'a>,
}

/// What [`Framer::next`] asks of each head: `Err(status)` to refuse it.
type Admit<'a> = &'a dyn Fn(&Arc<Slot>, &Head) -> Result<(), u16>;

impl Framer<'_> {
    /// The next request. `Ok(None)`: the client closed, or sent nothing
    /// within `idle`; `Err(status)`: answer with that status and close.
    fn next(&mut self, idle: Duration) -> Result<Option<(Head, Vec<u8>)>, u16> {
        if self.input.pending.is_empty() {
            match self.input.fill(Instant::now() + idle) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let end = loop {
            if let Some(i) = self.input.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.input.pending.len() > MAX_HEAD {
                return Err(431);
            }
            match self.input.fill(deadline) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(status) => return Err(status),
            }
        };
        if end > MAX_HEAD {
            return Err(431);
        }
        let head_bytes: Vec<u8> = self.input.pending.drain(..end).collect();
        let head = parse_head(&head_bytes)?;
        // The token, if any, is seen before waiting for a body.
        (self.admit)(&self.input.slot, &head)?;
        if head.header("transfer-encoding").is_some() {
            return Err(411);
        }
        let length = content_length(&head)?;
        if length > rest::MAX_BODY {
            return Err(413);
        }
        while self.input.pending.len() < length {
            match self.input.fill(deadline) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(status) => return Err(status),
            }
        }
        let body = self.input.pending.drain(..length).collect();
        Ok(Some((head, body)))
    }

    /// Answers a request the front door will not forward, and closes.
    fn refuse(mut self, status: u16) -> Result<()> {
        let why = match status {
            400 => "a malformed request head".to_string(),
            408 => format!("a request must arrive within {REQUEST_TIMEOUT:?}"),
            403 => "a login ticket is taken only from the user the daemon runs as".to_string(),
            411 => "send the body with a Content-Length".to_string(),
            413 => format!("request bodies are limited to {} bytes", rest::MAX_BODY),
            431 => format!("request heads are limited to {MAX_HEAD} bytes"),
            503 => format!(
                "all {} connections for clients with the token are in use",
                slots::MAX_TRUSTED
            ),
            505 => "HTTP/1.x only".to_string(),
            _ => String::new(),
        };
        let code = reason(status).to_ascii_lowercase().replace(' ', "_");
        let _ = answer_error(&mut self.input.stream, status, &code, &why);
        let _ = self.input.stream.shutdown(Shutdown::Write);
        Ok(())
    }
}

/// The reason phrase of a status the front door answers itself.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A whole error answer in the API's envelope, written before any HTTP
/// machinery is involved (refused requests and upgrades, a full house);
/// the connection is to be closed after it.
pub(super) fn answer_error(
    stream: &mut TcpStream,
    status: u16,
    kind: &str,
    message: &str,
) -> io::Result<()> {
    let body = routes::envelope_error(status, kind, message);
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )?;
    stream.write_all(&body)
}

/// The body's length: 0 without the header; 400 unless every
/// Content-Length header is the same run of digits (Rust would take `+5`,
/// and a backend reading a length differently from the front door would see
/// a body as the next request).
pub(crate) fn content_length(head: &Head) -> Result<usize, u16> {
    let mut values = head.headers.iter().filter(|(n, _)| n == "content-length").map(|(_, v)| v);
    let Some(first) = values.next() else { return Ok(0) };
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) || values.any(|v| v != first)
    {
        return Err(400);
    }
    first.parse().map_err(|_| 413)
}

pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, u16> {
    // ASCII only: nothing here needs other bytes, and a head relayed
    // upstream (the proxy) must mean the same to the next server.
    if !bytes.is_ascii() {
        return Err(400);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let [method, target, version] = first[..] else { return Err(400) };
    // The target is visible ASCII: a control byte in it (a bare LF) would
    // reach the backend, or the proxy's upstream URL, as something else.
    if method.is_empty()
        || !method.bytes().all(is_token_byte)
        || target.is_empty()
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(400);
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") && !v.starts_with("HTTP/1.") => return Err(505),
        _ => return Err(400),
    }
    // Strict, as RFC 9112 asks of a server: a line without a colon, a name
    // that is not a token (a space before the colon, a folded line starting
    // with white space) is a 400. A relayed head is parsed again upstream,
    // and the two must never read one head two ways.
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(400);
        }
        let name = name.to_ascii_lowercase();
        // RFC 9112 §3.2: a request with more than one Host is a 400, even
        // when the first names us (the backend might read the other).
        if name == "host" && headers.iter().any(|(n, _)| n == "host") {
            return Err(400);
        }
        // RFC 9110 §5.5: no CR, LF, NUL or other control byte in a value
        // (tab aside). Lines are cut at CRLF only, so a bare LF stays in the
        // value, and a head relayed upstream (the proxy) would carry it as
        // a line break: a header of the client's making.
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(400);
        }
        headers.push((name, value.trim().to_string()));
    }
    let (method, target, version) = (method.to_string(), target.to_string(), version.to_string());
    Ok(Head { method, target, version, headers })
}

/// RFC 9110's `tchar`: what a header name is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Serves a connection's requests, one at a time: the UI's files are
/// answered here ([`rest::file`]), every other request goes to tiny_http
/// over one of the [`Backend`]'s kept-alive private connections and its
/// answer is read whole, then written back. A client that does not read
/// its answers is cut off after [`WRITE_TIMEOUT`]; since tiny_http's
/// answer has been read by then, no worker of it ever waits on a client.
fn serve(
    mut reader: Framer<'_>,
    mut head: Head,
    mut body: Vec<u8>,
    state: &State,
    info: &HttpInfo,
    backend: &Backend,
) -> Result<()> {
    let mut client_w = reader.input.stream.try_clone()?;
    client_w.set_write_timeout(Some(WRITE_TIMEOUT))?;
    loop {
        let trusted = reader.input.slot.trusted();
        // A connection without the token gets one answer, then is closed,
        // unless the answer was a file of the UI: a browser loads the page's
        // files on a few connections without the token, then calls the API
        // with it on the same ones. It holds a stranger's slot meanwhile,
        // which a newcomer may take (`slots`).
        let (bytes, close) = match rest::file(info, &head) {
            Some(answer) => {
                let close = (!trusted && !answer.file) || wants_close(&head);
                let mut bytes = rest::head_of(&answer, &head.version, close);
                if head.method != "HEAD" {
                    bytes.extend_from_slice(&answer.body);
                }
                (bytes, close)
            }
            None => {
                let close = !trusted || wants_close(&head);
                let answer = backend.ask(&head, &body).context("the REST server")?;
                (answer.for_client(&head.version, close), close)
            }
        };
        if let Err(e) = client_w.write_all(&bytes) {
            let _ = reader.input.stream.shutdown(Shutdown::Both);
            return Err(e.into());
        }
        if close {
            let _ = client_w.shutdown(Shutdown::Write);
            break;
        }
        match reader.next(IDLE_TIMEOUT) {
            Ok(Some((h, b))) => (head, body) = (h, b),
            Ok(None) => break,
            // Answered after the answers already sent.
            Err(status) => return reader.refuse(status),
        }
        state.activity.touch();
    }
    Ok(())
}

/// tiny_http behind the front door: private connections to its socket,
/// kept open between requests (a connection per request cost each REST
/// call a connect, an accept and a thread hand-off: p99 5.2 ms).
///
/// tiny_http 0.12 gives each connection a thread of its pool (`TaskPool`)
/// for as long as it stays open, and a connection that comes while the
/// thread woken for another has not yet taken that one is queued behind it,
/// to wait until some connection closes: with every connection kept open,
/// for ever. So connections are opened one at a time, and each is answered
/// once (a probe) before the next is opened: its thread has taken it.
pub(crate) struct Backend {
    path: PathBuf,
    idle: Mutex<Vec<BufReader<UnixStream>>>,
    /// Held while a connection is opened and probed.
    opening: Mutex<()>,
}

/// tiny_http's answer to one request.
struct BackendAnswer {
    /// Its head's lines, without the blank line that ends it.
    head: Vec<u8>,
    body: Vec<u8>,
    /// Whether the connection may carry another request.
    reusable: bool,
}

impl BackendAnswer {
    /// The bytes for the client: tiny_http's head, what becomes of the
    /// connection (`close`, or `keep-alive` for an HTTP/1.0 client that
    /// asked for it), the body.
    fn for_client(mut self, version: &str, close: bool) -> Vec<u8> {
        if close {
            self.head.extend_from_slice(b"Connection: close\r\n");
        } else if version == "HTTP/1.0" {
            self.head.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.head.extend_from_slice(b"\r\n");
        self.head.extend_from_slice(&self.body);
        self.head
    }
}

impl Backend {
    fn new(path: PathBuf) -> Backend {
        Backend { path, idle: Mutex::default(), opening: Mutex::default() }
    }

    /// Hands one whole request to tiny_http and reads its whole answer. A
    /// connection that fails is dropped, never reused.
    ///
    /// A kept connection that tiny_http closed while it was idle fails
    /// before a byte of answer: the request then goes once more, on a new
    /// connection (tiny_http never saw it, so nothing is done twice).
    fn ask(&self, head: &Head, body: &[u8]) -> io::Result<BackendAnswer> {
        let bodiless = head.method == "HEAD";
        let (mut conn, kept) = self.take()?;
        let mut tried =
            forward(conn.get_mut(), head, body).and_then(|()| read_answer(&mut conn, bodiless));
        let unseen = |e: &io::Error| {
            use io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
            matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset)
        };
        if kept && tried.as_ref().is_err_and(unseen) {
            conn = self.open()?;
            tried =
                forward(conn.get_mut(), head, body).and_then(|()| read_answer(&mut conn, bodiless));
        }
        let answer = tried?;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if answer.reusable && idle.len() < BACKEND_IDLE {
            idle.push(conn);
        }
        Ok(answer)
    }

    /// An idle connection (true), or a new one, opened as [`Backend`] says.
    fn take(&self) -> io::Result<(BufReader<UnixStream>, bool)> {
        let pop = || self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(conn) = pop() {
            return Ok((conn, true));
        }
        Ok((self.open()?, false))
    }

    /// A new connection, opened and probed as [`Backend`] says.
    fn open(&self) -> io::Result<BufReader<UnixStream>> {
        let _one = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = BufReader::new(UnixStream::connect(&self.path)?);
        // Any request does: without a Host it gets a 403 at once.
        conn.get_mut().write_all(b"GET / HTTP/1.1\r\n\r\n")?;
        if !read_answer(&mut conn, false)?.reusable {
            return Err(io::Error::other("tiny_http closed a new connection after one answer"));
        }
        Ok(conn)
    }
}

/// Reads one answer off a connection to tiny_http, by its Content-Length
/// (`rest` always gives one): the head and, unless `bodiless` (a HEAD) or
/// its status has none, the body.
fn read_answer(conn: &mut BufReader<UnixStream>, bodiless: bool) -> io::Result<BackendAnswer> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut head = Vec::new();
    let mut length = None;
    let mut status = 0u16;
    let mut reusable = true;
    loop {
        let start = head.len();
        if conn.read_until(b'\n', &mut head)? == 0 {
            // Closed before a byte: tiny_http never answered (see `ask`).
            let kind =
                if start == 0 { io::ErrorKind::UnexpectedEof } else { io::ErrorKind::InvalidData };
            return Err(io::Error::new(kind, "tiny_http closed the connection"));
        }
        if head.len() > MAX_BACKEND_HEAD {
            return Err(bad("an oversized answer head"));
        }
        let line = &head[start..];
        if line == b"\r\n" {
            head.truncate(start);
            break;
        }
        let text = String::from_utf8_lossy(line).to_ascii_lowercase();
        if start == 0 {
            status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else if let Some(v) = text.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().map_err(|_| bad("a bad Content-Length"))?);
        } else if text.starts_with("transfer-encoding:") {
            return Err(bad("a chunked answer"));
        } else if let Some(v) = text.strip_prefix("connection:") {
            // tiny_http ends this connection: it is not kept, and the
            // client's own `Connection` is the front door's to say.
            reusable &= !v.contains("close");
            head.truncate(start);
        }
    }
    let none = bodiless || status < 200 || status == 204 || status == 304;
    let mut body = vec![0; if none { 0 } else { length.ok_or_else(|| bad("no Content-Length"))? }];
    conn.read_exact(&mut body)?;
    Ok(BackendAnswer { head, body, reusable })
}

/// Hands one whole request to tiny_http, with a head rebuilt from what the
/// front door parsed, so the two can never read a request differently.
/// Always as HTTP/1.1 without `Connection` (the private connection stays
/// open whatever the client asked; the front door answers for its own).
/// Left out too: `Expect` (the body is already here), `Upgrade` (tiny_http
/// would hand the rest of the connection to the handler as the body) and
/// `TE` (tiny_http would answer chunked).
fn forward(up: &mut UnixStream, head: &Head, body: &[u8]) -> io::Result<()> {
    let mut text = format!("{} {} HTTP/1.1\r\n", head.method, head.target);
    for (name, value) in &head.headers {
        match name.as_str() {
            "expect" | "upgrade" | "connection" | "keep-alive" | "te" => {}
            _ => text.push_str(&format!("{name}: {value}\r\n")),
        }
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    up.write_all(&bytes)
}

/// Whether the client asked for its connection to end with this answer:
/// `Connection: close`, or HTTP/1.0 without `keep-alive`.
fn wants_close(head: &Head) -> bool {
    match head.header("connection").map(str::to_ascii_lowercase) {
        Some(v) if v.contains("close") => true,
        Some(v) => head.version == "HTTP/1.0" && !v.contains("keep-alive"),
        None => head.version == "HTTP/1.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, u16> {
        parse_head(text.as_bytes())
    }

    /// A stand-in for tiny_http: answers each request on a connection with
    /// its number on that connection, and ends every connection after
    /// `per_conn` answers (saying so only when `say` is set).
    fn backend_closing_after(per_conn: usize, say: bool) -> Backend {
        let path = std::env::temp_dir()
            .join(format!("ringlet-backend-{}-{per_conn}-{say}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut w = conn;
                    for n in 1..=per_conn {
                        let mut line = String::new();
                        while line != "\r\n" {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        let last = if say && n == per_conn { "Connection: close\r\n" } else { "" };
                        let body = n.to_string();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\n{last}Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        w.write_all(answer.as_bytes()).unwrap();
                    }
                });
            }
        });
        Backend::new(path)
    }

    #[test]
    fn a_kept_connection_the_rest_server_closed_is_replaced_without_a_lost_request() {
        let get = parse_head(b"GET /api/x HTTP/1.1\r\nHost: h:1\r\n\r\n").unwrap();
        // The probe and one request per connection, closed without a word:
        // every second request meets a dead kept connection.
        let silent = backend_closing_after(2, false);
        for _ in 0..5 {
            let answer = silent.ask(&get, b"").unwrap();
            assert_eq!(answer.body, b"2", "each answer is the second on a fresh connection");
        }
        // Said with `Connection: close`: never kept, never reused.
        let backend = backend_closing_after(3, true);
        let bodies: Vec<Vec<u8>> = (0..4).map(|_| backend.ask(&get, b"").unwrap().body).collect();
        assert_eq!(bodies, [b"2", b"3", b"2", b"3"]);
        let answer = backend.ask(&get, b"").unwrap();
        let text = String::from_utf8(answer.for_client("HTTP/1.1", false)).unwrap();
        assert!(!text.to_ascii_lowercase().contains("connection: close"), "{text}");
        for b in [silent, backend] {
            let _ = std::fs::remove_file(&b.path);
        }
    }

    #[test]
    fn heads_are_read_strictly() {
        let ok = head("GET /a?b HTTP/1.1\r\nHost: x:1\r\nX-Y:  z \r\n\r\n").unwrap();
        assert_eq!((ok.method.as_str(), ok.path()), ("GET", "/a"));
        assert_eq!(ok.header("x-y"), Some("z"));
        for bad in [
            "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n Content-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\n: empty\r\n\r\n",
            "GET /\r\n\r\n",
            "GET  /api HTTP/1.1\r\n\r\n",
            "GET /api HTTP/1.2\r\n\r\n",
            "GET /caf\u{e9} HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nX: \u{e9}\r\n\r\n",
            "EXPECT: / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:1\r\nhost: a:1\r\n\r\n",
        ] {
            assert_eq!(head(bad).err(), Some(400), "{bad:?}");
        }
        assert_eq!(head("GET / HTTP/2.0\r\n\r\n").err(), Some(505));
    }

    #[test]
    fn control_bytes_in_a_value_or_the_target_are_refused() {
        assert!(head("GET / HTTP/1.1\r\nX-A: b\tc\r\n\r\n").is_ok());
        for bad in [
            "GET / HTTP/1.1\r\nX-A: b\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: b\0c\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: b\x7fc\r\n\r\n",
            "GET /a\nb HTTP/1.1\r\n\r\n",
            "GET /a\tb HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(head(bad).map(|_| ()), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn content_length_is_digits_and_agrees_with_itself() {
        let length = |headers: &str| {
            content_length(&head(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).unwrap())
        };
        assert_eq!(length(""), Ok(0));
        assert_eq!(length("Content-Length: 12\r\n"), Ok(12));
        assert_eq!(length("Content-Length: 5\r\ncontent-length: 5\r\n"), Ok(5));
        for bad in ["+5", "-1", "5 5", "0x10", "", " "] {
            assert_eq!(length(&format!("Content-Length: {bad}\r\n")), Err(400), "{bad:?}");
        }
        assert_eq!(length("Content-Length: 5\r\nContent-Length: 6\r\n"), Err(400));
        assert_eq!(length("Content-Length: 99999999999999999999999\r\n"), Err(413));
    }

    #[test]
    fn the_backend_gets_a_head_rebuilt_from_what_was_parsed() {
        use std::io::Read as _;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let h = head(
            "POST /api/x HTTP/1.0\r\nHost: h:1\r\nExpect: 100-continue\r\nTE: chunked\r\n\
             Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
        forward(&mut a, &h, b"{}").unwrap();
        drop(a);
        let mut sent = String::new();
        b.read_to_string(&mut sent).unwrap();
        assert_eq!(sent, "POST /api/x HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n{}");
    }

    #[test]
    fn answers_are_read_by_their_length_and_say_what_becomes_of_the_connection() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 304 Not Modified\r\n\
              ETag: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
        let mut conn = BufReader::new(b);
        let first = read_answer(&mut conn, false).unwrap();
        assert_eq!(first.body, b"{}");
        let bytes = first.for_client("HTTP/1.1", true);
        assert_eq!(bytes, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        let second = read_answer(&mut conn, false).unwrap();
        assert!(second.body.is_empty());
        let kept = second.for_client("HTTP/1.0", false);
        assert!(kept.ends_with(b"ETag: x\r\nConnection: keep-alive\r\n\r\n"));
        // A HEAD's answer has the length of a GET's, and no body.
        assert!(read_answer(&mut conn, true).unwrap().body.is_empty());
    }
}
