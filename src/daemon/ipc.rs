//! The Unix-socket server: bind (recovering a stale socket, never stealing a
//! live one), accept, and serve each connection on its own short-lived
//! thread: one JSON request line in, one JSON reply line out
//! ([`crate::protocol`]). `Subscribe` turns the connection into an event
//! stream until the client hangs up.
//!
//! Hygiene: only peers with the daemon's own uid are served; the request is
//! read with a timeout and a size cap; a bad request gets an error reply and
//! the daemon carries on. A connection handler never exits the process.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::State;
use super::dispatch;
use crate::protocol::{ErrorCode, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, ReplyFrame, Request};

/// How long a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to accept our reply (or an event line).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are refused with an error, so a runaway
/// client cannot exhaust threads.
const MAX_CONNECTIONS: usize = 256;
/// How often a subscription checks whether its client has gone.
const SUBSCRIBER_POLL: Duration = Duration::from_millis(500);

static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Binds the socket with mode 0600. A socket file nobody answers on is stale
/// (its daemon was killed) and is replaced; one that answers belongs to a
/// live daemon and is left alone.
pub fn bind(socket: &Path) -> Result<UnixListener> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                bail!("{} exists and is not a socket; remove it first", socket.display());
            }
            if UnixStream::connect(socket).is_ok() {
                bail!(
                    "another daemon is answering on {} without holding its lock; not taking its socket",
                    socket.display()
                );
            }
            crate::info!("removing stale socket {}", socket.display());
            std::fs::remove_file(socket)
                .with_context(|| format!("removing stale socket {}", socket.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", socket.display())),
    }
    // Create the socket 0600 from the start. The umask is process-wide, but
    // no other thread is running yet.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(socket);
    rustix::process::umask(old);
    bound.with_context(|| format!("binding {}", socket.display()))
}

/// Starts the accept thread. It runs for the daemon's life and is detached on
/// purpose: shutdown removes the socket and the process exit ends it.
pub fn spawn_accept(listener: UnixListener, state: Arc<State>) -> io::Result<()> {
    thread::Builder::new().name("ipc-accept".into()).spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => spawn_conn(stream, state.clone()),
                Err(e) => {
                    crate::warn!("accepting IPC connection: {e}");
                    // EMFILE and friends: back off instead of spinning.
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    })?;
    Ok(())
}

fn spawn_conn(stream: UnixStream, state: Arc<State>) {
    if OPEN_CONNECTIONS.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        OPEN_CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
        let mut stream = stream;
        let _ =
            write_reply(&mut stream, &Reply::error(ErrorCode::Internal, "too many connections"));
        return;
    }
    // Released when the thread ends, even by a panic (which, with
    // `panic = "unwind"`, ends only this thread), or if it never starts.
    let slot = ConnSlot;
    let spawned = thread::Builder::new().name("ipc-conn".into()).spawn(move || {
        let _slot = slot;
        if let Err(e) = serve_conn(stream, &state) {
            crate::debug!("IPC connection: {e:#}");
        }
    });
    if let Err(e) = spawned {
        crate::error!("starting IPC connection thread: {e}");
    }
}

/// One of the [`MAX_CONNECTIONS`] slots, taken in `spawn_conn`.
struct ConnSlot;

impl Drop for ConnSlot {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one connection: check the peer, read one request, reply.
fn serve_conn(mut stream: UnixStream, state: &State) -> Result<()> {
    let _busy = state.activity.busy();
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;

    let uid = rustix::process::getuid().as_raw();
    match peer_uid(&stream) {
        Ok(peer) if peer == uid => {}
        Ok(peer) => {
            crate::warn!("refusing IPC peer with uid {peer} (daemon runs as uid {uid})");
            let reply = Reply::error(
                ErrorCode::Forbidden,
                format!("this daemon serves uid {uid} only, not uid {peer}"),
            );
            return write_reply(&mut stream, &reply);
        }
        Err(e) => bail!("reading peer credentials: {e}"),
    }

    let request = match read_request(&stream) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()), // Connected and hung up: a liveness probe.
        Err(reply) => return write_reply(&mut stream, &reply),
    };
    state.requests_served.fetch_add(1, Ordering::Relaxed);
    crate::debug!("request {request:?}");

    match request {
        Request::Subscribe { events } => subscribe(stream, state, &events),
        // Shutdown is served by the dispatcher too: the main thread waits
        // for this connection (it is busy) before the process exits.
        request => write_reply(&mut stream, &dispatch::handle_guarded(state, request)),
    }
}

/// Reads and decodes the request line. `Ok(None)` is a client that sent
/// nothing; `Err` is the reply to send instead of serving.
fn read_request(stream: &UnixStream) -> Result<Option<Request>, Reply> {
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_BYTES as u64 + 1));
    if let Err(e) = reader.read_until(b'\n', &mut line) {
        let why = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("no complete request line within {} s", READ_TIMEOUT.as_secs())
            }
            _ => format!("reading request: {e}"),
        };
        return Err(Reply::error(ErrorCode::BadRequest, why));
    }
    if line.len() > MAX_REQUEST_BYTES {
        return Err(Reply::error(
            ErrorCode::TooLarge,
            format!("request exceeds {} bytes", MAX_REQUEST_BYTES),
        ));
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    decode_request(&line).map(Some)
}

/// Decodes a request frame, checking the protocol version first so a client
/// of another version gets a clear answer rather than a parse error.
pub fn decode_request(line: &[u8]) -> Result<Request, Reply> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| Reply::error(ErrorCode::BadRequest, format!("malformed request: {e}")))?;
    let Some(version) = value.get("version").and_then(Value::as_u64) else {
        return Err(Reply::error(ErrorCode::BadRequest, "request has no protocol `version`"));
    };
    let request = value.get("request").cloned().unwrap_or(Value::Null);
    let is_shutdown = request.get("type").and_then(Value::as_str) == Some("shutdown");
    if version != u64::from(PROTOCOL_VERSION) && !is_shutdown {
        return Err(Reply::error(
            ErrorCode::VersionMismatch,
            format!(
                "the daemon speaks protocol {PROTOCOL_VERSION}, the client {version}; \
                 restart the daemon with `ringlet daemon stop`"
            ),
        ));
    }
    serde_json::from_value(request)
        .map_err(|e| Reply::error(ErrorCode::BadRequest, format!("invalid request: {e}")))
}

fn write_reply(stream: &mut UnixStream, reply: &Reply) -> Result<()> {
    let frame = ReplyFrame { version: PROTOCOL_VERSION, reply: reply.clone() };
    let mut line = serde_json::to_vec(&frame)?;
    line.push(b'\n');
    stream.write_all(&line).context("writing reply")?;
    Ok(())
}

/// Streams events to the client until it hangs up, falls too far behind, or
/// the daemon shuts down.
fn subscribe(mut stream: UnixStream, state: &State, names: &[String]) -> Result<()> {
    let sub = match state.events.subscribe(names) {
        Ok(sub) => sub,
        Err(why) => return write_reply(&mut stream, &Reply::error(ErrorCode::BadRequest, why)),
    };
    let result = (|| -> Result<()> {
        write_reply(&mut stream, &Reply::ok(&Value::Null))?;
        stream.set_nonblocking(false)?;
        loop {
            match sub.rx.recv_timeout(SUBSCRIBER_POLL) {
                Ok(line) => {
                    let shutting_down = line.contains("\"type\":\"DaemonShuttingDown\"");
                    stream.write_all(line.as_bytes())?;
                    stream.write_all(b"\n")?;
                    if shutting_down {
                        return Ok(());
                    }
                }
                // Dropped by the bus (queue full) or the bus is gone.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    if client_gone(&stream) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    state.events.unsubscribe(sub.id);
    result
}

/// True when the client has closed its end (a read returns EOF or an error).
fn client_gone(stream: &UnixStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    let gone = match (&*stream).read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false, // Clients do not talk after subscribing; ignore it.
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

/// The uid of the process at the other end of the socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn getpeereid(fd: i32, uid: *mut u32, gid: *mut u32) -> i32;
    }
    let (mut uid, mut gid) = (0u32, 0u32);
    // SAFETY: `fd` is a live socket owned by `stream` for the whole call, and
    // both out-pointers point at initialized locals that outlive it.
    let rc = unsafe { getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) };
    if rc == 0 { Ok(uid) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Request, Reply>) -> ErrorCode {
        match r {
            Err(Reply::Err { error }) => error.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_good_request() {
        let r = decode_request(br#"{"version":1,"request":{"type":"agents_list"}}"#).unwrap();
        assert_eq!(r, Request::AgentsList);
    }

    #[test]
    fn bad_requests_get_codes() {
        assert_eq!(code(decode_request(b"{not json")), ErrorCode::BadRequest);
        assert_eq!(
            code(decode_request(br#"{"request":{"type":"status"}}"#)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(decode_request(br#"{"version":1,"request":{"type":"fly"}}"#)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(decode_request(br#"{"version":99,"request":{"type":"status"}}"#)),
            ErrorCode::VersionMismatch
        );
    }

    #[test]
    fn shutdown_is_honoured_across_versions() {
        let r = decode_request(br#"{"version":99,"request":{"type":"shutdown"}}"#).unwrap();
        assert_eq!(r, Request::Shutdown);
    }
}
