//! The Unix-socket server: bind (recovering a stale socket, never stealing a
//! live one), accept, and serve each connection on its own thread: one JSON
//! request line in, one JSON reply line out ([`crate::protocol`]).
//! `Subscribe` turns the connection into an event stream until the client
//! hangs up.
//!
//! The threads are kept, not started per connection: a few wait in
//! `accept` on the listener together, the kernel hands each connection to
//! one of them, and that thread serves it itself ([`acceptor`]). A CLI's
//! request then wakes one daemon thread, which usually finds the request
//! already there, instead of waking an accept thread that starts a thread
//! (clone, and a stack to map and later give back) that then waits for it:
//! about 0.1 ms of the 0.4 ms round trip of `agents list` before, measured
//! on a small 2-core VM. Whoever takes a
//! connection when no other thread is left waiting starts one first, so a
//! slow request or an event stream never holds up the next connection; at
//! most [`MAX_IDLE`] threads stay waiting once the rush is over.
//!
//! Hygiene: only peers with the daemon's own uid are served; the request
//! must arrive whole within [`REQUEST_DEADLINE`] of the connection (a total,
//! not a per-read limit, so a client sending a byte now and then cannot
//! hold a connection) and within a size cap; a bad request gets an error
//! reply and the daemon carries on. At most [`MAX_CONNECTIONS`] are open;
//! at the cap, the oldest connection still sending its request is closed
//! for the newcomer (a CLI sends its request at once, so only a stuck or
//! runaway client gives way), and only when every connection is being
//! served or streaming events is a newcomer refused. A connection handler
//! never exits the process.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::State;
use super::dispatch;
use crate::protocol::{ErrorCode, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, Request};

/// How long a client may take to send its whole request line, counted from
/// the connection.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client may take to accept our reply (or an event line).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, so a runaway client cannot exhaust threads.
const MAX_CONNECTIONS: usize = 256;
/// How often a subscription checks whether its client has gone.
const SUBSCRIBER_POLL: Duration = Duration::from_millis(500);
/// Threads started waiting in `accept`: two, so that one serving never
/// leaves a CLI's next connection to wait for a thread to start.
const ACCEPTORS: usize = 2;
/// Threads kept waiting once the connections they served have ended; more
/// end (a burst of connections leaves no crowd behind).
const MAX_IDLE: usize = 4;

/// Threads waiting in `accept` (or about to).
static IDLE: AtomicUsize = AtomicUsize::new(0);

/// The open connections.
static OPEN: Mutex<Vec<Arc<ConnSlot>>> = Mutex::new(Vec::new());

/// One open connection.
struct ConnSlot {
    /// A handle on its socket, to close it from outside.
    stream: UnixStream,
    accepted: Instant,
    /// It sent part of a request and is waiting to send more.
    partial: AtomicBool,
    /// Its request is whole (being served, or an event stream).
    read: AtomicBool,
}

fn open_slots() -> MutexGuard<'static, Vec<Arc<ConnSlot>>> {
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A slot for a new connection; at the cap, the oldest connection still
/// sending its request (one that sent part of it first, then one not read
/// yet) is closed for it.
/// `None`: every connection is being served.
fn take_slot(stream: &UnixStream) -> Option<Arc<ConnSlot>> {
    let handle = stream.try_clone().ok()?;
    let mut open = open_slots();
    if open.len() >= MAX_CONNECTIONS {
        let (i, _) = open
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.read.load(Ordering::SeqCst))
            .min_by_key(|(_, s)| (!s.partial.load(Ordering::SeqCst), s.accepted))?;
        let evicted = open.swap_remove(i);
        // Its thread's read ends; the slot is already gone from the count.
        let _ = evicted.stream.shutdown(Shutdown::Both);
        crate::debug!("IPC: closed the oldest unfinished request to make room");
    }
    let slot = Arc::new(ConnSlot {
        stream: handle,
        accepted: Instant::now(),
        partial: AtomicBool::new(false),
        read: AtomicBool::new(false),
    });
    open.push(slot.clone());
    Some(slot)
}

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

/// Starts the threads that accept and serve connections. They run for the
/// daemon's life and are detached on purpose: shutdown removes the socket
/// and the process exit ends them.
pub fn spawn_accept(listener: UnixListener, state: Arc<State>) -> io::Result<()> {
    let listener = Arc::new(listener);
    // The first one must start; the others help.
    spawn_acceptor(&listener, &state)?;
    for _ in 1..ACCEPTORS {
        let _ = spawn_acceptor(&listener, &state);
    }
    Ok(())
}

/// Starts one more thread waiting in `accept`, counted as idle from now.
fn spawn_acceptor(listener: &Arc<UnixListener>, state: &Arc<State>) -> io::Result<()> {
    IDLE.fetch_add(1, Ordering::SeqCst);
    let (listener, state) = (listener.clone(), state.clone());
    let spawned =
        thread::Builder::new().name("ipc-accept".into()).spawn(move || acceptor(&listener, &state));
    if spawned.is_err() {
        IDLE.fetch_sub(1, Ordering::SeqCst);
    }
    spawned.map(drop)
}

/// One kept thread: accept a connection, serve it, accept the next. When it
/// takes the last waiting place it starts another thread first; when
/// [`MAX_IDLE`] others are already waiting after a connection, it ends.
fn acceptor(listener: &Arc<UnixListener>, state: &Arc<State>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                crate::warn!("accepting IPC connection: {e}");
                // EMFILE and friends: back off instead of spinning.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if IDLE.fetch_sub(1, Ordering::SeqCst) == 1
            && let Err(e) = spawn_acceptor(listener, state)
        {
            // Nobody else would accept while this connection is served:
            // turn it away, as before, and stay the one accepting.
            IDLE.fetch_add(1, Ordering::SeqCst);
            crate::error!("starting IPC connection thread: {e}");
            let mut stream = stream;
            let why = format!("the daemon could not start a thread: {e}");
            let _ = write_reply(&mut stream, &Reply::error(ErrorCode::Internal, why));
            continue;
        }
        serve(stream, state);
        if IDLE.fetch_add(1, Ordering::SeqCst) >= MAX_IDLE {
            IDLE.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    }
}

/// Serves one accepted connection on this thread, in a connection slot.
fn serve(stream: UnixStream, state: &State) {
    let Some(slot) = take_slot(&stream) else {
        let mut stream = stream;
        let _ =
            write_reply(&mut stream, &Reply::error(ErrorCode::Internal, "too many connections"));
        return;
    };
    // Released when served, also on an early return.
    let guard = SlotGuard(slot);
    if let Err(e) = serve_conn(stream, state, &guard.0) {
        crate::debug!("IPC connection: {e:#}");
    }
}

/// Gives a slot back when dropped (a second time, after an eviction, is a
/// no-op).
struct SlotGuard(Arc<ConnSlot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        open_slots().retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

/// Serves one connection: check the peer, read one request, reply.
fn serve_conn(mut stream: UnixStream, state: &State, slot: &ConnSlot) -> Result<()> {
    let _busy = state.activity.busy();
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

    let request = read_request(&stream, slot.accepted + REQUEST_DEADLINE, &slot.partial);
    slot.read.store(true, Ordering::SeqCst);
    let request = match request {
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
        request => write_reply(&mut stream, &dispatch::handle(state, request)),
    }
}

/// Reads and decodes the request line, which must be whole by `deadline`
/// (`partial` is set when a read brought only part of it). `Ok(None)` is a
/// client that sent nothing; `Err` is the reply to send instead of serving.
fn read_request(
    stream: &UnixStream,
    deadline: Instant,
    partial: &AtomicBool,
) -> Result<Option<Request>, Reply> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 8192];
    // Bytes after the newline are not read: a client sends one request.
    while !line.ends_with(b"\n") && line.len() <= MAX_REQUEST_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = || {
            let why = format!("no complete request line within {} s", REQUEST_DEADLINE.as_secs());
            Reply::error(ErrorCode::BadRequest, why)
        };
        if left.is_zero() {
            return Err(timed_out());
        }
        let _ = stream.set_read_timeout(Some(left));
        // At most the rest of the cap, plus one byte to see it exceeded.
        let room = (MAX_REQUEST_BYTES + 1 - line.len()).min(chunk.len());
        match (&*stream).read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => {
                match chunk[..n].iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        line.extend_from_slice(&chunk[..=end]);
                        break;
                    }
                    None => {
                        // More to wait for: it gives way before connections
                        // whose request came whole (a CLI's) are read.
                        partial.store(true, Ordering::SeqCst);
                        line.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(timed_out());
            }
            Err(e) => {
                let why = format!("reading request: {e}");
                return Err(Reply::error(ErrorCode::BadRequest, why));
            }
        }
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
    crate::protocol::wire::from_value(request)
        .map_err(|e| Reply::error(ErrorCode::BadRequest, format!("invalid request: {e}")))
}

fn write_reply(stream: &mut UnixStream, reply: &Reply) -> Result<()> {
    /// [`crate::protocol::ReplyFrame`], borrowing the reply rather than copying its data.
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        version: u32,
        #[serde(flatten)]
        reply: &'a Reply,
    }
    let mut line = serde_json::to_vec(&Frame { version: PROTOCOL_VERSION, reply })?;
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
        let r = decode_request(br#"{"version":2,"request":{"type":"agents_list"}}"#).unwrap();
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
            code(decode_request(br#"{"version":2,"request":{"type":"fly"}}"#)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(decode_request(br#"{"version":99,"request":{"type":"status"}}"#)),
            ErrorCode::VersionMismatch
        );
    }

    #[test]
    fn a_trickled_request_meets_a_total_deadline() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // A byte every 50 ms, never a newline, for 5 s at most: a limit per
        // read would never fire.
        let trickle = thread::spawn(move || {
            for _ in 0..100 {
                if theirs.write_all(b" ").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let partial = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_millis(400);
        let Err(Reply::Err { error }) = read_request(&ours, deadline, &partial) else {
            panic!("a request that never ends was accepted");
        };
        assert!(error.message.contains("no complete request line"), "{}", error.message);
        assert!(partial.load(Ordering::SeqCst), "caught mid-request");
        drop(ours);
        trickle.join().unwrap();
    }

    #[test]
    fn replies_are_written_as_reply_frames() {
        use crate::protocol::ReplyFrame;
        for reply in [
            Reply::ok(&serde_json::json!({"agents": [{"id": "claude"}], "warnings": []})),
            Reply::ok(&Value::Null),
            Reply::error(ErrorCode::NotFound, "no agent `x`"),
        ] {
            let (mut ours, theirs) = UnixStream::pair().unwrap();
            write_reply(&mut ours, &reply).unwrap();
            drop(ours);
            let written = std::io::read_to_string(theirs).unwrap();
            let frame = ReplyFrame { version: PROTOCOL_VERSION, reply };
            assert_eq!(written, format!("{}\n", serde_json::to_string(&frame).unwrap()));
        }
    }

    #[test]
    fn shutdown_is_honoured_across_versions() {
        let r = decode_request(br#"{"version":99,"request":{"type":"shutdown"}}"#).unwrap();
        assert_eq!(r, Request::Shutdown);
    }
}
