//! Mock model APIs for end-to-end tests of the real agents (Claude Code, Codex CLI, OpenCode).
//! A [`MockProvider`] is a small HTTP/1.1 server on 127.0.0.1 that speaks either the Anthropic
//! Messages API or the OpenAI Responses API in the shapes agents-verified.md found the agents to
//! accept, answers every model call with a fixed reply and fixed usage ([`ANTHROPIC_USAGE`],
//! [`OPENAI_USAGE`]) so tests can assert token counts exactly, and records every request as a
//! [`Seen`] before answering it, so tests can assert what the agent sent. It owns one accept
//! thread and one thread per connection; dropping the provider shuts them all down. It uses std
//! and serde_json only, because the crate has no async runtime and tests should not add one.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Anthropic usage of every answer: (input_tokens, output_tokens). Cache creation and cache
/// read tokens are always 0.
pub const ANTHROPIC_USAGE: (u64, u64) = (123, 45);

/// OpenAI Responses usage of every answer: (input_tokens, cached_tokens, output_tokens,
/// reasoning_tokens), as in agents-verified.md Appendix A. OpenAI counts cached tokens inside
/// input and reasoning inside output, so total_tokens is input + output = 342.
pub const OPENAI_USAGE: (u64, u64, u64, u64) = (321, 100, 21, 5);

/// What an Anthropic tool mock says in the text block before its tool_use block.
pub const TOOL_PREAMBLE: &str = "Let me use a tool.";

/// Which API a [`MockProvider`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Anthropic,
    OpenAiResponses,
}

/// The tool call an Anthropic tool mock makes on the first turn.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target as sent, query string included (`/v1/messages?beta=true`).
    pub path: String,
    pub authorization: Option<String>,
    pub x_api_key: Option<String>,
    pub model: Option<String>,
    pub stream: Option<bool>,
    /// The JSON body; `Null` when there was none or it was not JSON (e.g. compressed).
    pub body: Value,
    /// Every header in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The text of the last user message that has any text: its text parts joined by "\n",
    /// without the `<system-reminder>` parts Claude Code adds, so usually the prompt as typed.
    pub last_user_text: Option<String>,
    /// The names of the tools the request offers (the `type` for nameless built-in tools).
    pub tool_names: Vec<String>,
    /// The id the mock answered with: the `request-id` (Anthropic) or `x-request-id` (OpenAI)
    /// header, `req_mock_<n>`. The message id of the same answer is `msg_mock_<n>`, the OpenAI
    /// response id `resp_mock_<n>` and a tool_use id `toolu_mock_<n>`, with the same `<n>`.
    pub request_id: String,
}

impl Seen {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A running mock API on 127.0.0.1; see the module docs.
pub struct MockProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MockProvider {
    /// An Anthropic Messages API that answers every message with `reply`.
    pub fn anthropic(reply: &str) -> MockProvider {
        MockProvider::start(Flavor::Anthropic, reply, None)
    }

    /// An Anthropic Messages API that answers [`TOOL_PREAMBLE`] plus a tool_use of `tool`, and
    /// `reply` once the last message carries a tool_result. Requests that offer no tools (the
    /// title requests Claude Code and OpenCode make) always get `reply`, as a real model cannot
    /// call a tool it was not given.
    pub fn anthropic_with_tool(reply: &str, tool: ToolCall) -> MockProvider {
        MockProvider::start(Flavor::Anthropic, reply, Some(tool))
    }

    /// An OpenAI Responses API that answers every response with `reply`.
    pub fn openai_responses(reply: &str) -> MockProvider {
        MockProvider::start(Flavor::OpenAiResponses, reply, None)
    }

    pub fn flavor(&self) -> Flavor {
        self.shared.flavor
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash or `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order. Agents also probe: Claude Code sends `HEAD /`
    /// before its first message and Codex's built-in provider a WebSocket `GET`, so filter on
    /// method and path rather than counting everything.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// Waits until at least `n` requests have arrived or `timeout` passes, and returns what has
    /// arrived either way, so the caller's assertion can show it.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Seen> {
        wait_for_len(&self.shared.seen, &self.shared.arrived, n, timeout)
    }

    /// Holds every answer to a POST (a model call) until [`MockProvider::release`]: the agent
    /// stays busy for as long as a test needs to watch it working, however fast the machine.
    pub fn hold(&self) {
        self.shared.held.store(true, Ordering::SeqCst);
    }

    /// Lets the held answers go; answers go at once from then on.
    pub fn release(&self) {
        self.shared.held.store(false, Ordering::SeqCst);
    }

    fn start(flavor: Flavor, reply: &str, tool: Option<ToolCall>) -> MockProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the mock provider");
        let addr = listener.local_addr().expect("mock provider address");
        let shared = Arc::new(Shared {
            flavor,
            reply: reply.to_string(),
            tool,
            seen: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            held: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("mock-accept-{}", addr.port()))
            .spawn(move || {
                // A failing accept loop only means no more connections; the test then fails on
                // what it did not receive, which says more than a panic here would.
                let _ = accept_loop(&listener, &accept_shared);
            })
            .expect("spawning the mock accept thread");
        MockProvider { addr, shared, accept: Some(accept) }
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        stop_server(self.addr, &self.shared.stop, self.accept.take(), &self.shared.conns);
    }
}

/// Stops a mock server (this one or `upstream`'s): raises `stop`, wakes the
/// accept thread to see it and joins it, then ends every connection.
pub(crate) fn stop_server(
    addr: SocketAddr,
    stop: &AtomicBool,
    accept: Option<JoinHandle<()>>,
    conns: &Mutex<Vec<(JoinHandle<()>, TcpStream)>>,
) {
    stop.store(true, Ordering::SeqCst);
    // accept() has no timeout, so a connection of our own wakes it to see the flag. If even
    // that fails, the thread is left detached rather than joined forever.
    let woke = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
    if let Some(accept) = accept
        && woke
    {
        let _ = accept.join();
    }
    // Agents keep idle connections open, and their threads block in read until the socket
    // is shut down under them.
    let conns = std::mem::take(&mut *lock(conns));
    for (_, stream) in &conns {
        let _ = stream.shutdown(Shutdown::Both);
    }
    for (handle, _) in conns {
        let _ = handle.join();
    }
}

/// State shared by the test thread, the accept thread and the connection threads.
struct Shared {
    flavor: Flavor,
    reply: String,
    tool: Option<ToolCall>,
    /// Appended by connection threads, read by the test thread; `arrived` wakes
    /// [`MockProvider::wait_for_requests`].
    seen: Mutex<Vec<Seen>>,
    arrived: Condvar,
    /// Set by `Drop`; the accept thread checks it after every accept.
    stop: AtomicBool,
    /// Set by [`MockProvider::hold`]: answers to POSTs wait while it is (or until `stop`).
    held: AtomicBool,
    /// Each connection thread with a second handle to its socket, pushed by the accept thread
    /// and drained by `Drop`, which shuts the sockets down and joins the threads.
    conns: Mutex<Vec<(JoinHandle<()>, TcpStream)>>,
}

/// A panicking test thread must not turn every later lock into a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits until `seen` holds at least `n` items (`arrived` is notified at
/// each) or `timeout` passes, and returns what is there either way, so the
/// caller's assertion can show it. Shared by the mock providers and upstreams.
pub(crate) fn wait_for_len<T: Clone>(
    seen: &Mutex<Vec<T>>,
    arrived: &Condvar,
    n: usize,
    timeout: Duration,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    let mut seen = lock(seen);
    while seen.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        seen = match arrived.wait_timeout(seen, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    seen.clone()
}

/// Numbers the answers of all mocks in the process, so message and request ids never repeat
/// (transcript readers de-duplicate on them).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Longest request line or header line, and most headers, before a request counts as broken.
const MAX_LINE: usize = 64 * 1024;
const MAX_HEADERS: usize = 256;
/// Claude Code bodies are a few hundred KiB (system prompt and 25 tools); this is far above.
const MAX_BODY: usize = 64 * 1024 * 1024;

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) -> io::Result<()> {
    for (n, conn) in listener.incoming().enumerate() {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Ok(stream) = conn else {
            // Errors such as EMFILE or ECONNABORTED pass; a short pause keeps a persistent one
            // from spinning a core.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(registered) = stream.try_clone() else { continue };
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new().name(format!("mock-conn-{n}")).spawn(move || {
            // A broken request or a vanished peer only ends this connection.
            let _ = serve_connection(stream, &conn_shared);
        });
        let Ok(handle) = spawned else { continue };
        let mut conns = lock(&shared.conns);
        // Join finished threads as we go, so a long test does not pile up sockets.
        let (done, live): (Vec<_>, Vec<_>) = conns.drain(..).partition(|(h, _)| h.is_finished());
        *conns = live;
        conns.push((handle, registered));
        drop(conns);
        for (handle, _) in done {
            let _ = handle.join();
        }
    }
    Ok(())
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let result = serve_requests(&stream, shared);
    // The registered clone keeps the socket open after this thread drops its handle, so close it
    // explicitly, or the client would wait for an EOF that never comes.
    let _ = stream.shutdown(Shutdown::Both);
    result
}

/// Serves requests on one connection until the client closes it, asks to close it, or sends
/// something that is not HTTP/1.x.
fn serve_requests(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // Tell a confused client why before closing; it may be gone already.
                let body = json!({"error": {"message": format!("mock: bad request: {e}")}});
                let _ = Reply::json(400, &body).write(&mut writer, true, false);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let seen = record(shared, &request);
        while request.method == "POST"
            && shared.held.load(Ordering::SeqCst)
            && !shared.stop.load(Ordering::SeqCst)
        {
            thread::sleep(Duration::from_millis(10));
        }
        let reply = answer(shared, &request, &seen);
        reply.write(&mut writer, request.method != "HEAD", request.keep_alive)?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// One parsed HTTP request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The target without its query string.
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// Reads one request; `None` when the connection closed cleanly between requests. Malformed
/// input is an `InvalidData` error.
fn read_request(
    reader: &mut BufReader<&TcpStream>,
    writer: &mut &TcpStream,
) -> io::Result<Option<Request>> {
    // RFC 9112 §2.2: a server should ignore empty lines before a request line.
    let mut line = String::new();
    for _ in 0..8 {
        match read_line(reader)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => {}
            Some(l) => {
                line = l;
                break;
            }
        }
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("request line is not `METHOD TARGET VERSION`"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("bad method"));
    }
    if !target.starts_with('/') {
        return Err(invalid("bad request target"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(invalid("not HTTP/1.0 or HTTP/1.1")),
    };

    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader)? else {
            return Err(invalid("connection closed inside the headers"));
        };
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("header line without a colon"));
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(invalid("bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
        keep_alive: false,
    };

    let connection = request.header("connection").unwrap_or_default().to_ascii_lowercase();
    let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
    request.keep_alive =
        if http11 { !tokens.contains(&"close") } else { tokens.contains(&"keep-alive") };

    // Chunked wins over Content-Length when both are sent (RFC 9112 §6.3).
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        None => 0,
        Some(text) => text.parse::<usize>().map_err(|_| invalid("bad Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(invalid("body too large"));
    }
    let expects_continue =
        request.header("expect").is_some_and(|expect| expect.eq_ignore_ascii_case("100-continue"));
    if http11 && expects_continue && (chunked || length > 0) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    request.body = if chunked { read_chunked(reader)? } else { read_exact(reader, length)? };
    Ok(Some(request))
}

/// One CRLF- or LF-terminated line without its terminator; `None` at EOF before any byte.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid(if buf.len() > MAX_LINE {
            "line too long"
        } else {
            "connection closed mid-line"
        }));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    // Header values may carry obs-text; a lossy string is enough to record them.
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn read_exact(reader: &mut impl Read, length: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|_| invalid("connection closed inside the body"))?;
    Ok(body)
}

/// Decodes a chunked body (RFC 9112 §7.1), ignoring chunk extensions and trailers.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("connection closed in a chunk"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            while !read_line(reader)?.ok_or_else(|| invalid("no end of trailers"))?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("body too large"));
        }
        body.extend(read_exact(reader, size)?);
        if read_line(reader)?.as_deref() != Some("") {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// Turns a request into a [`Seen`], stores it and wakes waiters; the answer comes after.
fn record(shared: &Shared, request: &Request) -> Seen {
    let encoded = request
        .header("content-encoding")
        .is_some_and(|encoding| !encoding.eq_ignore_ascii_case("identity"));
    // Codex can zstd-compress bodies (Appendix A checks for it); std cannot decode that.
    let body = if request.body.is_empty() || encoded {
        Value::Null
    } else {
        serde_json::from_slice(&request.body).unwrap_or(Value::Null)
    };
    let seen = Seen {
        method: request.method.clone(),
        path: request.target.clone(),
        authorization: request.header("authorization").map(str::to_string),
        x_api_key: request.header("x-api-key").map(str::to_string),
        model: body["model"].as_str().map(str::to_string),
        stream: body["stream"].as_bool(),
        last_user_text: last_user_text(&body),
        tool_names: tool_names(&body),
        headers: request.headers.clone(),
        request_id: format!("req_mock_{}", NEXT_ID.fetch_add(1, Ordering::SeqCst)),
        body,
    };
    lock(&shared.seen).push(seen.clone());
    shared.arrived.notify_all();
    seen
}

/// The last user message with text: Anthropic `messages` and OpenAI `input` both hold role-tagged
/// items whose content is a string or a list of parts with a `text`. Claude Code puts a
/// `<system-reminder>` part (the date, context) before the prompt in the same message; leaving
/// those out makes this the prompt as typed.
fn last_user_text(body: &Value) -> Option<String> {
    let items = body.get("messages").or_else(|| body.get("input"))?;
    if let Some(text) = items.as_str() {
        return Some(text.to_string());
    }
    items.as_array()?.iter().rev().filter(|item| item["role"] == "user").find_map(|item| {
        let content = &item["content"];
        if let Some(text) = content.as_str() {
            return Some(text.to_string());
        }
        let texts: Vec<&str> = content
            .as_array()?
            .iter()
            .filter(|part| matches!(part["type"].as_str(), Some("text" | "input_text")))
            .filter_map(|part| part["text"].as_str())
            .filter(|text| !text.starts_with("<system-reminder>"))
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    })
}

fn tool_names(body: &Value) -> Vec<String> {
    let Some(tools) = body["tools"].as_array() else { return Vec::new() };
    tools
        .iter()
        .filter_map(|tool| tool["name"].as_str().or_else(|| tool["type"].as_str()))
        .map(str::to_string)
        .collect()
}

/// An HTTP response with a complete body. Streams are sent whole with a Content-Length too: the
/// answer is known up front, and a sized body keeps the connection reusable.
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn sse(events: String) -> Reply {
        Reply {
            status: 200,
            content_type: "text/event-stream",
            headers: vec![("cache-control", "no-cache".to_string())],
            body: events,
        }
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    /// Sends the reply; a HEAD answer (`with_body` false) carries the headers of the body it
    /// does not send.
    fn write(&self, writer: &mut impl Write, with_body: bool, keep_alive: bool) -> io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            426 => "Upgrade Required",
            _ => "Mock",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: {}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        if with_body {
            head.push_str(&self.body);
        }
        writer.write_all(head.as_bytes())?;
        writer.flush()
    }
}

fn answer(shared: &Shared, request: &Request, seen: &Seen) -> Reply {
    let id = seen.request_id.trim_start_matches("req_mock_");
    let upgrade = request.header("upgrade").unwrap_or_default();
    if upgrade.eq_ignore_ascii_case("websocket") {
        // Codex's built-in provider tries a WebSocket first; a prompt non-101 answer (426 is
        // what servers without one say) sends it to plain HTTP.
        let body = json!({"error": {"message": "mock: no WebSocket here, use HTTP"}});
        return Reply::json(426, &body).with_header("x-request-id", &seen.request_id);
    }
    let path = request.path();
    let get = matches!(request.method.as_str(), "GET" | "HEAD");
    let post = request.method == "POST";
    match shared.flavor {
        Flavor::Anthropic => {
            let reply = if get {
                // Agents probe things like /v1/models; an empty list satisfies them.
                Reply::json(200, &json!({"data": [], "has_more": false}))
            } else if post && path.ends_with("/messages/count_tokens") {
                Reply::json(200, &json!({"input_tokens": 10}))
            } else if post && path.ends_with("/messages") {
                anthropic_message(shared, seen, id, wants_stream(request, seen))
            } else {
                let message = format!("mock: no route for {} {path}", request.method);
                let error = json!({"type": "not_found_error", "message": message});
                Reply::json(404, &json!({"type": "error", "error": error}))
            };
            reply.with_header("request-id", &seen.request_id)
        }
        Flavor::OpenAiResponses => {
            let reply = if get {
                Reply::json(200, &json!({"object": "list", "data": [], "models": []}))
            } else if post && path.trim_end_matches('/').ends_with("/responses") {
                openai_response(shared, seen, id, wants_stream(request, seen))
            } else {
                let message = format!("mock: unknown path {path}");
                Reply::json(404, &json!({"error": {"message": message}}))
            };
            reply.with_header("x-request-id", &seen.request_id)
        }
    }
}

/// The body's `stream` flag; for a body the mock could not read, the Accept header.
fn wants_stream(request: &Request, seen: &Seen) -> bool {
    match seen.stream {
        Some(stream) => stream,
        None => {
            seen.body.is_null()
                && request
                    .header("accept")
                    .is_some_and(|accept| accept.contains("text/event-stream"))
        }
    }
}

/// `text` in pieces that end after each space, so clients must concatenate the deltas.
fn chunks(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

fn sse_event(out: &mut String, data: &Value) {
    let name = data["type"].as_str().unwrap_or("message");
    let _ = write!(out, "event: {name}\ndata: {data}\n\n");
}

/// True when the last message is a user message carrying a tool_result: the model's turn after
/// a tool ran.
fn after_tool_result(body: &Value) -> bool {
    let Some(last) = body["messages"].as_array().and_then(|m| m.last()) else { return false };
    last["role"] == "user"
        && last["content"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|part| part["type"] == "tool_result"))
}

fn anthropic_message(shared: &Shared, seen: &Seen, id: &str, stream: bool) -> Reply {
    let (input_tokens, output_tokens) = ANTHROPIC_USAGE;
    let message_id = format!("msg_mock_{id}");
    let model = seen.model.as_deref().unwrap_or("claude-mock");
    let tool = shared
        .tool
        .as_ref()
        .filter(|_| !seen.tool_names.is_empty() && !after_tool_result(&seen.body));
    let mut blocks = Vec::new();
    match tool {
        Some(tool) => {
            blocks.push(json!({"type": "text", "text": TOOL_PREAMBLE}));
            blocks.push(json!({
                "type": "tool_use",
                "id": format!("toolu_mock_{id}"),
                "name": tool.name,
                "input": tool.input,
            }));
        }
        None => blocks.push(json!({"type": "text", "text": shared.reply})),
    }
    let stop_reason = if tool.is_some() { "tool_use" } else { "end_turn" };
    let usage = json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    });
    if !stream {
        return Reply::json(
            200,
            &json!({
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": usage,
            }),
        );
    }

    let mut out = String::new();
    // Like the real API, message_start reports one output token and message_delta the final
    // count, which the agents keep (agents-verified.md §6).
    let mut start_usage = usage;
    start_usage["output_tokens"] = json!(1);
    let message = json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": start_usage,
    });
    sse_event(&mut out, &json!({"type": "message_start", "message": message}));
    sse_event(&mut out, &json!({"type": "ping"}));
    for (index, block) in blocks.iter().enumerate() {
        if block["type"] == "text" {
            let empty = json!({"type": "text", "text": ""});
            let start =
                json!({"type": "content_block_start", "index": index, "content_block": empty});
            sse_event(&mut out, &start);
            for chunk in chunks(block["text"].as_str().unwrap_or_default()) {
                let delta = json!({"type": "text_delta", "text": chunk});
                let event = json!({"type": "content_block_delta", "index": index, "delta": delta});
                sse_event(&mut out, &event);
            }
        } else {
            let mut empty = block.clone();
            empty["input"] = json!({});
            let start =
                json!({"type": "content_block_start", "index": index, "content_block": empty});
            sse_event(&mut out, &start);
            // Two pieces, as the API splits tool input anywhere, even inside a string.
            let input = block["input"].to_string();
            let middle = (0..=input.len() / 2).rev().find(|&i| input.is_char_boundary(i));
            let (first, second) = input.split_at(middle.unwrap_or(0));
            for piece in [first, second] {
                let delta = json!({"type": "input_json_delta", "partial_json": piece});
                let event = json!({"type": "content_block_delta", "index": index, "delta": delta});
                sse_event(&mut out, &event);
            }
        }
        sse_event(&mut out, &json!({"type": "content_block_stop", "index": index}));
    }
    let delta = json!({"stop_reason": stop_reason, "stop_sequence": null});
    let usage = json!({"output_tokens": output_tokens});
    sse_event(&mut out, &json!({"type": "message_delta", "delta": delta, "usage": usage}));
    sse_event(&mut out, &json!({"type": "message_stop"}));
    Reply::sse(out)
}

/// The Responses answer of agents-verified.md Appendix A, which Codex was verified to accept.
fn openai_response(shared: &Shared, seen: &Seen, id: &str, stream: bool) -> Reply {
    let (input, cached, output, reasoning) = OPENAI_USAGE;
    let usage = json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output,
    });
    let response_id = format!("resp_mock_{id}");
    let item_id = format!("msg_mock_{id}");
    let reply = shared.reply.as_str();
    let part = json!({"type": "output_text", "text": reply, "annotations": []});
    let item_done = json!({
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [part],
    });
    let created_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let model = seen.model.as_deref().unwrap_or("mock-model");
    let final_response = json!({
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "completed",
        "model": model,
        "output": [item_done],
        "usage": usage,
    });
    if !stream {
        return Reply::json(200, &final_response);
    }

    let mut out = String::new();
    let mut sequence = 0;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        sse_event(&mut out, &data);
    };
    let mut created = final_response.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    created["usage"] = Value::Null;
    let at = |extra: Value| {
        let mut data = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        data
    };
    event("response.created", json!({"response": created}));
    event("response.in_progress", json!({"response": created}));
    let item = json!({
        "type": "message",
        "id": item_id,
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    });
    event("response.output_item.added", json!({"output_index": 0, "item": item}));
    let empty = json!({"type": "output_text", "text": "", "annotations": []});
    event("response.content_part.added", at(json!({"part": empty})));
    for chunk in chunks(reply) {
        event("response.output_text.delta", at(json!({"delta": chunk})));
    }
    event("response.output_text.done", at(json!({"text": reply})));
    event("response.content_part.done", at(json!({"part": part})));
    event("response.output_item.done", json!({"output_index": 0, "item": item_done}));
    event("response.completed", json!({"response": final_response}));
    Reply::sse(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw HTTP/1.1 client connection, so the tests see exactly what the server sends.
    struct Client {
        reader: BufReader<TcpStream>,
    }

    impl Client {
        fn connect(mock: &MockProvider) -> Client {
            let stream = TcpStream::connect(mock.addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            Client { reader: BufReader::new(stream) }
        }

        fn send(&mut self, bytes: &str) {
            self.reader.get_mut().write_all(bytes.as_bytes()).unwrap();
        }

        fn line(&mut self) -> String {
            read_line(&mut self.reader).unwrap().expect("a line from the mock")
        }

        /// Reads one response: (status, lower-cased headers, body).
        fn response(&mut self) -> (u16, Vec<(String, String)>, String) {
            let status_line = self.line();
            let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            let mut headers = Vec::new();
            loop {
                let line = self.line();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
            let length = headers.iter().find(|(n, _)| n == "content-length").unwrap().1.clone();
            let body = read_exact(&mut self.reader, length.parse().unwrap()).unwrap();
            (status, headers, String::from_utf8(body).unwrap())
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    fn post(target: &str, extra: &str, body: &Value) -> String {
        let body = body.to_string();
        format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// (event name, data) pairs of an SSE body.
    fn events(body: &str) -> Vec<(String, Value)> {
        body.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_string();
                (name, serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap())
            })
            .collect()
    }

    #[test]
    fn mock_anthropic_streams_the_events_and_usage_claude_code_reads() {
        let mock = MockProvider::anthropic("pong from mock");
        let mut client = Client::connect(&mock);
        let request = json!({
            "model": "claude-test",
            "stream": true,
            "tools": [{"name": "Read"}],
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>\nToday is …\n</system-reminder>"},
                    {"type": "text", "text": "say pong"},
                ]},
            ],
        });
        client.send(&post("/v1/messages?beta=true", "Authorization: Bearer sk-t\r\n", &request));
        let (status, headers, body) = client.response();
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "content-type"), "text/event-stream");

        let events = events(&body);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let start = &events[0].1["message"];
        assert_eq!(start["model"], "claude-test");
        assert_eq!(start["usage"]["input_tokens"], ANTHROPIC_USAGE.0);
        assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
        assert_eq!(start["usage"]["cache_creation_input_tokens"], 0);
        let text: String =
            events.iter().filter_map(|(_, data)| data["delta"]["text"].as_str()).collect();
        assert_eq!(text, "pong from mock");
        assert_eq!(events[7].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(events[7].1["usage"]["output_tokens"], ANTHROPIC_USAGE.1);

        let seen = mock.wait_for_requests(1, Duration::from_secs(5));
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        assert_eq!(header(&headers, "request-id"), seen.request_id);
        let number = seen.request_id.strip_prefix("req_mock_").unwrap();
        assert_eq!(start["id"], format!("msg_mock_{number}"));
        assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/v1/messages?beta=true"));
        assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-t"));
        assert_eq!(seen.x_api_key, None);
        assert_eq!(seen.model.as_deref(), Some("claude-test"));
        assert_eq!(seen.stream, Some(true));
        assert_eq!(seen.last_user_text.as_deref(), Some("say pong"));
        assert_eq!(seen.tool_names, ["Read"]);
        assert_eq!(seen.header("HOST"), Some("x"));
    }

    #[test]
    fn mock_keeps_a_connection_alive_through_a_tool_round_trip() {
        let tool = ToolCall { name: "Read".into(), input: json!({"file_path": "/tmp/ü.txt"}) };
        let mock = MockProvider::anthropic_with_tool("done reading", tool);
        let mut client = Client::connect(&mock);

        let first = json!({
            "model": "m",
            "tools": [{"name": "Read"}],
            "messages": [{"role": "user", "content": "read it"}],
        });
        client.send(&post("/v1/messages", "x-api-key: k\r\n", &first));
        let (status, _, body) = client.response();
        assert_eq!(status, 200, "{body}");
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["content"][0]["text"], TOOL_PREAMBLE);
        let tool_use = &message["content"][1];
        assert_eq!(tool_use["name"], "Read");
        assert_eq!(tool_use["input"]["file_path"], "/tmp/ü.txt");

        // The second request on the same connection: chunked, after a 100 Continue.
        let second = json!({
            "model": "m",
            "stream": true,
            "tools": [{"name": "Read"}],
            "messages": [
                {"role": "user", "content": "read it"},
                {"role": "assistant", "content": message["content"]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "hi"},
                ]},
            ],
        })
        .to_string();
        client.send(
            "POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\
             Expect: 100-continue\r\n\r\n",
        );
        assert_eq!(client.line(), "HTTP/1.1 100 Continue");
        assert_eq!(client.line(), "");
        let (head, tail) = second.split_at(10);
        client.send(&format!("a;ext=1\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n", tail.len()));
        let (status, _, body) = client.response();
        assert_eq!(status, 200, "{body}");
        let text: String =
            events(&body).iter().filter_map(|(_, data)| data["delta"]["text"].as_str()).collect();
        assert_eq!(text, "done reading");

        client.send("GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n");
        let (status, headers, _) = client.response();
        assert_eq!((status, header(&headers, "connection")), (200, "close"));
        let mut rest = String::new();
        let _ = client.reader.read_to_string(&mut rest);
        assert_eq!(rest, "", "the connection closes after `Connection: close`");

        let seen = mock.requests();
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/v1/messages", "/v1/messages", "/v1/models"]);
        assert_eq!(seen[0].x_api_key.as_deref(), Some("k"));
        assert_eq!(seen[1].body.to_string(), second);
        assert_eq!(seen[1].last_user_text.as_deref(), Some("read it"));
    }

    #[test]
    fn mock_openai_survives_malformed_requests_and_streams_appendix_a() {
        let mock = MockProvider::openai_responses("pong from mock responses");
        for garbage in ["NOT HTTP AT ALL\r\n\r\n", "POST /v1/responses HTTP/1.1\r\nbroken\r\n\r\n"]
        {
            let mut client = Client::connect(&mock);
            client.send(garbage);
            let (status, _, _) = client.response();
            assert_eq!(status, 400);
            let mut rest = String::new();
            let _ = client.reader.read_to_string(&mut rest);
            assert_eq!(rest, "");
        }
        let mut client = Client::connect(&mock);
        client.send("POST /v1/responses HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
        drop(client);

        let mut client = Client::connect(&mock);
        client.send(
            "GET /v1/responses HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        assert_eq!(client.response().0, 426);
        let request = json!({
            "model": "mock-model",
            "stream": true,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "say pong"}]}],
            "tools": [{"type": "function", "name": "shell"}, {"type": "web_search"}],
        });
        client.send(&post("/v1/responses", "Authorization: Bearer sk-o\r\n", &request));
        let (status, _, body) = client.response();
        assert_eq!(status, 200, "{body}");
        let events = events(&body);
        let sequence: Vec<u64> =
            events.iter().map(|(_, d)| d["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(sequence, (0..events.len() as u64).collect::<Vec<_>>());
        let (name, completed) = events.last().unwrap();
        assert_eq!(name, "response.completed");
        let usage = &completed["response"]["usage"];
        let (input, cached, output, reasoning) = OPENAI_USAGE;
        assert_eq!(usage["input_tokens"], input);
        assert_eq!(usage["input_tokens_details"]["cached_tokens"], cached);
        assert_eq!(usage["output_tokens"], output);
        assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], reasoning);
        let text: String = events
            .iter()
            .filter(|(name, _)| name == "response.output_text.delta")
            .filter_map(|(_, data)| data["delta"].as_str())
            .collect();
        assert_eq!(text, "pong from mock responses");

        let seen = mock.requests();
        let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
        assert_eq!(methods, ["GET", "POST"], "broken requests are not recorded");
        let post = &seen[1];
        assert_eq!(post.authorization.as_deref(), Some("Bearer sk-o"));
        assert_eq!(post.last_user_text.as_deref(), Some("say pong"));
        assert_eq!(post.tool_names, ["shell", "web_search"]);

        // Dropping the mock closes connections that are open but idle, as agents leave them.
        client.send("GET /v1/models HTTP/1.1\r\n\r\n");
        assert_eq!(client.response().0, 200);
        drop(mock);
        let mut rest = String::new();
        let _ = client.reader.read_to_string(&mut rest);
        assert_eq!(rest, "");
    }
}
