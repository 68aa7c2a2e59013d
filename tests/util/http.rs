//! A plain HTTP/1.1 client for the daemon's API: one request per
//! connection (`Connection: close`), read to EOF, chunked bodies decoded;
//! and WebSockets with the bearer token as a browser sends it. Shared by
//! the HTTP and terminal tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{}\r\n", addr.port()));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Answer { status, head, body }
}

/// The handshake request of a WebSocket to `path`, with `token` as the
/// bearer the way a browser sends it (`Sec-WebSocket-Protocol: bearer,
/// <token>`: a page cannot set an Authorization header on one).
pub fn ws_request(addr: SocketAddr, path: &str, token: &str) -> Request {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("bearer, {token}")).unwrap(),
    );
    req
}

/// A WebSocket to `path` (see [`ws_request`]) whose reads give up after
/// `timeout`; panics when the daemon refuses it.
pub fn ws_open(
    addr: SocketAddr,
    path: &str,
    token: &str,
    timeout: Duration,
) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    let (ws, _) = tungstenite::client(ws_request(addr, path, token), stream)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    ws
}

/// The next frame as it came (None: nothing within the read timeout).
pub fn ws_frame(ws: &mut WebSocket<TcpStream>) -> Option<Message> {
    match ws.read() {
        Ok(message) => Some(message),
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// `POST /api/terminal/sessions` with `token` as the bearer and `body` as
/// the JSON request: a new terminal session, or the daemon's refusal.
pub fn post_session(addr: SocketAddr, token: &str, body: &Value) -> Answer {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        "/api/terminal/sessions",
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    )
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
}

/// Reads one answer (head and `Content-Length` body) off a kept-alive
/// connection; its head, lower-cased.
pub fn read_answer_head(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head
}
