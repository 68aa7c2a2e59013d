//! The HTTP front door (design.md §2): one TCP port, by default
//! `127.0.0.1:8765`, for both the REST API and WebSockets.
//!
//! tiny_http cannot give a full-duplex WebSocket (its upgraded stream is
//! blocking and cannot be split), so the daemon owns the listener. Each
//! connection gets a thread that reads the first request head (bounded in
//! size and time): a `GET /ws` upgrade is completed on the raw `TcpStream`
//! and served by `ws`; anything else is bridged, byte for byte, to tiny_http
//! listening on a private socket beside the IPC one (`rest`), so keep-alive,
//! bodies and responses are tiny_http's business. Connections are capped;
//! past the cap a client gets 503 at once. None of it touches the IPC path.

pub mod auth;
pub(crate) mod handshake;
mod rest;
pub mod routes;
mod terminal_ws;
pub(crate) mod ws;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use super::State;

/// Open connections at most; the next one gets 503.
pub const MAX_CONNECTIONS: usize = 128;
/// A request head larger than this gets 431 (tiny_http applies its own
/// limits to later requests on a kept-alive connection).
const MAX_HEAD: usize = 16 * 1024;
/// A client must send its first request head within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection idle for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// tiny_http worker threads (each serves one request at a time).
const REST_WORKERS: usize = 4;

/// Where the front door listens, for status replies and the Host checks.
#[derive(Debug, Clone)]
pub struct HttpInfo {
    pub addr: SocketAddr,
    /// `[daemon] http_bind` as configured.
    pub bind: String,
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
    let listener = match TcpListener::bind((bind.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            crate::warn!("HTTP API disabled: cannot listen on {bind}:{port}: {e}");
            return Ok(None);
        }
    };
    let info = HttpInfo { addr: listener.local_addr()?, bind };

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
    let (state, accept_info) = (state.clone(), info.clone());
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept(listener, &state, &accept_info, internal))?;
    crate::info!("HTTP API on http://{}", info.addr);
    Ok(Some(info))
}

fn accept(listener: TcpListener, state: &Arc<State>, info: &HttpInfo, internal: PathBuf) {
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (state, info, internal, open) =
            (state.clone(), info.clone(), internal.clone(), open.clone());
        let spawned = std::thread::Builder::new().name("http-conn".into()).spawn(move || {
            if let Err(e) = connection(stream, &state, &info, &internal) {
                crate::debug!("http connection: {e:#}");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            crate::warn!("http: cannot start a connection thread");
        }
    }
}

/// The first request head of a connection.
pub struct Head {
    /// Every byte read so far: the head and whatever followed it.
    pub bytes: Vec<u8>,
    pub method: String,
    pub target: String,
    /// Lower-case names.
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
    mut stream: TcpStream,
    state: &State,
    info: &HttpInfo,
    internal: &std::path::Path,
) -> Result<()> {
    // tiny_http and tungstenite write small frames; without this, each reply
    // after the first on a kept-alive connection waits ~40 ms (design.md §5).
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let head = match read_head(&mut stream) {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(()),
        Err(status) => {
            let _ = plain(&mut stream, status);
            return Ok(());
        }
    };
    state.activity.touch();
    let upgrade = head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if head.method == "GET" && head.path() == "/ws" && upgrade {
        return ws::serve(state, info, stream, &head);
    }
    if let Some(id) = head.path().strip_prefix("/ws/terminal/")
        && head.method == "GET"
        && upgrade
    {
        let id = id.to_string();
        return terminal_ws::serve(state, info, stream, &head, &id);
    }
    bridge(stream, &head.bytes, internal)
}

/// Reads up to the end of the first head. `Ok(None)`: the client left or
/// was too slow; `Err(status)`: answer with that status and close.
fn read_head(stream: &mut TcpStream) -> Result<Option<Head>, u16> {
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if bytes.len() > MAX_HEAD {
            return Err(431);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(None),
        }
    };
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(505);
    }
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Some(Head { method: method.into(), target: target.into(), headers, bytes }))
}

/// A bodiless response for errors before any HTTP machinery is involved.
fn plain(stream: &mut TcpStream, status: u16) -> io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    write!(stream, "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Copies both ways between the client and tiny_http until either side
/// closes or the client idles out.
fn bridge(client: TcpStream, already_read: &[u8], internal: &std::path::Path) -> Result<()> {
    let mut upstream = UnixStream::connect(internal).context("connecting to the REST server")?;
    upstream.write_all(already_read)?;
    client.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let (mut client_r, mut client_w) = (client.try_clone()?, client);
    let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
    let back = std::thread::Builder::new().name("http-bridge".into()).spawn(move || {
        let _ = io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Both);
    })?;
    let _ = io::copy(&mut client_r, &mut up_w);
    // Half-close: the response to what was sent can still come back.
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}
