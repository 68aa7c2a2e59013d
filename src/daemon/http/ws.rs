//! `GET /ws`: the event stream (design.md §5) over a WebSocket completed on
//! the front door's raw `TcpStream`.
//!
//! The upgrade needs the daemon's Host, an exact own Origin when one is sent,
//! and the token (an `Authorization: Bearer` header, or the
//! `Sec-WebSocket-Protocol: bearer, <token>` pair a browser can send, which is
//! answered with the `bearer` subprotocol). Then every event arrives as one
//! text frame, `{"type","timestamp","data"}`; a client may narrow them with
//! `{"action":"subscribe","events":[...]}`. A ping goes out every
//! [`HEARTBEAT`].
//!
//! The socket is non-blocking and one thread serves both directions, asleep
//! in a mio poll over the socket and a waker the bus rings with each event.
//! Events are taken from the bus only while the previous ones have been
//! written, so a client that stops reading lets its bounded bus queue fill,
//! and the bus drops it; nobody else waits. A client that takes nothing for
//! [`STALL_LIMIT`] is cut off. Rotating the token closes every WebSocket
//! opened with the old one (1008, policy violation), and ending a browser
//! session closes those opened with its token: the connection's slot wakes
//! its loop ([`Credential`]).

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use anyhow::Result;
use serde_json::{Value, json};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use super::slots::{Slot, Slots};
use super::{Head, HttpInfo, answer_error, auth, handshake};
use crate::daemon::State;
use crate::daemon::events::EventKind;

/// The largest message a `/ws` client may send: a subscribe command is a few
/// hundred bytes.
const MAX_COMMAND: usize = 64 * 1024;

/// A ping this often keeps proxies and the client's idea of liveness happy.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// A client whose socket takes nothing for this long is cut off (the bus
/// has long dropped its queue by then).
const STALL_LIMIT: Duration = Duration::from_secs(30);

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// Replies and pings waiting for a client that does not read, at most; past
/// it the connection ends. Events are only taken while the socket keeps up,
/// so this bounds what a client gets by sending and never reading.
const MAX_OUTPUT: usize = 1 << 20;

/// How long a closing connection may take to carry its last frames and
/// the close frame to a client whose socket is full; then it is cut.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What a WebSocket was opened with: the token (the daemon's or a browser
/// session's), and the generation of the slots' trust when it was checked
/// ([`Slots::revoke`] bumps it at every rotation, revocation or expiry).
pub(crate) struct Credential {
    token: String,
    generation: u64,
}

impl Credential {
    /// True once the token it was opened with has been rotated away, or
    /// its browser session has ended.
    pub(crate) fn revoked(&mut self, state: &State, slots: &Slots) -> bool {
        let now = slots.generation();
        if now == self.generation {
            return false;
        }
        self.generation = now;
        auth::authorize(state, &self.token).is_none()
    }
}

/// `leftover`: what the client sent after the upgrade request, unread.
pub fn serve(
    state: &State,
    info: &HttpInfo,
    slot: &Slot,
    stream: TcpStream,
    head: &Head,
    leftover: Vec<u8>,
) -> Result<()> {
    let Some((stream, credential)) = upgrade(state, info, stream, head, |_| true, "")? else {
        return Ok(());
    };
    let _busy = state.activity.busy();
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    slot.set_waker(waker.clone());
    if !leftover.is_empty() {
        // Frames already here raise no readiness: look at them at once.
        waker.wake()?;
    }
    let sub = state.events.subscribe_woken(&[], Some(waker)).map_err(anyhow::Error::msg)?;
    let config = config(MAX_COMMAND, MAX_OUTPUT);
    let ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config));
    let result = events(state, info, credential, ws, &sub.rx, poll);
    state.events.unsubscribe(sub.id);
    result
}

/// The checks every WebSocket upgrade passes (Host, Origin, token; then
/// `exists(target)`, 404 otherwise), then the 101 answer. `None` when the
/// upgrade was refused (the refusal has been written).
pub(super) fn upgrade(
    state: &State,
    info: &HttpInfo,
    mut stream: TcpStream,
    head: &Head,
    exists: impl Fn(&str) -> bool,
    target: &str,
) -> Result<Option<(TcpStream, Credential)>> {
    let port = info.addr.port();
    if !auth::host_allowed(head.header("host"), &info.bind, port) {
        answer_error(&mut stream, 403, "forbidden", "the Host header does not name this daemon")?;
        return Ok(None);
    }
    if !auth::origin_allowed(head.header("origin"), &info.bind, port) {
        answer_error(
            &mut stream,
            403,
            "forbidden",
            "WebSocket upgrades from this Origin are refused",
        )?;
        return Ok(None);
    }
    // Read before the token: a rotation in between shows as a new one.
    let generation = info.slots.generation();
    let via_protocol = auth::subprotocol_token(head.header("sec-websocket-protocol"));
    let given = auth::bearer(head.header("authorization")).or(via_protocol);
    let Some(given) = given.filter(|t| auth::authorize(state, t).is_some()) else {
        let why = if given.is_some() { "wrong token" } else { "a bearer token is required" };
        answer_error(&mut stream, 401, "unauthorized", why)?;
        return Ok(None);
    };
    let credential = Credential { token: given.to_string(), generation };
    if !exists(target) {
        answer_error(&mut stream, 404, "not_found", &format!("no terminal session {target}"))?;
        return Ok(None);
    }
    let text = match handshake::response(head, via_protocol.map(|_| "bearer")) {
        Ok(text) => text,
        Err(why) => {
            answer_error(
                &mut stream,
                400,
                "bad_request",
                &format!("not a WebSocket upgrade: {why}"),
            )?;
            return Ok(None);
        }
    };
    stream.write_all(text.as_bytes())?;
    Ok(Some((stream, credential)))
}

/// Ends a connection with a close frame that arrives even when the
/// client's socket is full: nothing more is queued, and what is (the rest
/// of a frame under way, then the close) gets up to [`CLOSE_GRACE`] to drain
/// as the client reads. Then the write side is shut, so the client sees the
/// end either way.
pub(crate) fn close_within_grace(ws: &mut WebSocket<TcpStream>, code: CloseCode, reason: &str) {
    let deadline = Instant::now() + CLOSE_GRACE;
    let _ = ws.get_mut().set_nonblocking(true);
    let mut result = ws.close(Some(CloseFrame { code, reason: reason.to_string().into() }));
    // A second poll, for the socket's writability alone: the connection's
    // own may be registered for reading too.
    let mut waiter = Poll::new().ok().and_then(|poll| {
        let fd = ws.get_ref().as_raw_fd();
        poll.registry().register(&mut SourceFd(&fd), SOCKET, Interest::WRITABLE).ok()?;
        Some(poll)
    });
    let mut ready = Events::with_capacity(1);
    while let Err(e) = &result {
        let left = deadline.saturating_duration_since(Instant::now());
        if !would_block(e) || left.is_zero() {
            break;
        }
        match waiter.as_mut() {
            Some(poll) => {
                let _ = poll.poll(&mut ready, Some(left));
            }
            None => std::thread::sleep(Duration::from_millis(50).min(left)),
        }
        result = ws.flush();
    }
    let _ = ws.get_ref().shutdown(std::net::Shutdown::Write);
}

/// Limits for a server-side WebSocket whose client sends messages of at
/// most `max_message` bytes and is sent at most `max_output` bytes ahead of
/// what it has read (tungstenite's defaults allow 64 MiB messages, an
/// unbounded output buffer, and buffer 128 KiB per connection for reads).
pub(crate) fn config(max_message: usize, max_output: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(max_message.min(64 * 1024))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .max_write_buffer_size(max_output)
}

/// Ends a connection after a read error, with the close frame RFC 6455
/// asks for: 1002 for a protocol violation (unmasked or reserved frames, a
/// bad close code, ...), 1007 for text that is not UTF-8, 1009 for a
/// message over the limit. A peer that left is no error.
pub(crate) fn end_on(
    ws: &mut WebSocket<TcpStream>,
    e: tungstenite::Error,
    max_message: usize,
) -> Result<()> {
    let (code, reason) = match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => return Ok(()),
        tungstenite::Error::Capacity(_) => return too_big(ws, max_message),
        tungstenite::Error::Protocol(p) => (CloseCode::Protocol, p.to_string()),
        tungstenite::Error::Utf8(_) => (CloseCode::Invalid, "text must be UTF-8".to_string()),
        e => return Err(e.into()),
    };
    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() }));
    let _ = ws.flush();
    Ok(())
}

/// The end of a connection whose client sent a message over the limit: a
/// close frame saying so (1009), which the client can show.
pub(crate) fn too_big(ws: &mut WebSocket<TcpStream>, max_message: usize) -> Result<()> {
    let reason = format!("messages are limited to {max_message} bytes");
    let _ = ws.close(Some(CloseFrame { code: CloseCode::Size, reason: reason.into() }));
    let _ = ws.flush();
    // Closing a socket with the rest of the message unread would reset the
    // connection, and the client would lose the close frame with it: read
    // what is still coming (bounded) and let the client close first.
    // At most as long and as much as a well-behaved client needs to finish
    // sending a message of tungstenite's own 64 MiB limit.
    let stream = ws.get_mut();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_nonblocking(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = 64usize << 20;
    let mut sink = [0u8; 16 * 1024];
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match io::Read::read(stream, &mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

pub(crate) fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// The close reason of a WebSocket whose token was rotated away (or whose
/// browser session was revoked or expired).
pub(crate) const REVOKED: &str =
    "the token was rotated or the browser session ended; sign in again";

fn events(
    state: &State,
    info: &HttpInfo,
    mut credential: Credential,
    mut ws: WebSocket<TcpStream>,
    rx: &Receiver<Arc<str>>,
    mut poll: Poll,
) -> Result<()> {
    ws.get_mut().set_nonblocking(true)?;
    let fd = ws.get_ref().as_raw_fd();
    poll.registry().register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)?;
    let mut ready = Events::with_capacity(4);
    // None: every kind.
    let mut filter: Option<Vec<EventKind>> = None;
    let mut last_ping = Instant::now();
    // Since when the socket has not taken everything queued.
    let mut stalled: Option<Instant> = None;
    loop {
        // Checked before each wait: the slot's waker rings on a rotation.
        if credential.revoked(state, &info.slots) {
            close_within_grace(&mut ws, CloseCode::Policy, REVOKED);
            return Ok(());
        }
        let wait = HEARTBEAT.saturating_sub(last_ping.elapsed());
        if let Err(e) = poll.poll(&mut ready, Some(wait)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        // Events, only while the client keeps up.
        while stalled.is_none() {
            match rx.try_recv() {
                Ok(line) => {
                    if passes(&filter, &line) {
                        queue(&mut ws, Message::text(line.as_ref()))?;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // The bus dropped this subscriber: it fell too far behind.
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "too slow: events were dropped".into(),
                    }));
                    let _ = ws.flush();
                    return Ok(());
                }
            }
        }
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    let answer = command(&text, &mut filter);
                    queue(&mut ws, Message::text(answer.to_string()))?;
                }
                Ok(Message::Close(_)) => {
                    // tungstenite has queued the answering close frame.
                    let _ = ws.flush();
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => return end_on(&mut ws, e, MAX_COMMAND),
            }
        }
        if last_ping.elapsed() >= HEARTBEAT {
            queue(&mut ws, Message::Ping(Vec::new().into()))?;
            last_ping = Instant::now();
        }
        match ws.flush() {
            Ok(()) => stalled = None,
            Err(e) if would_block(&e) => {
                if stalled.get_or_insert_with(Instant::now).elapsed() >= STALL_LIMIT {
                    return Ok(());
                }
            }
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // Stopping: DaemonShuttingDown (which woke us) is on its way.
        if state.stopping.load(Ordering::Relaxed) && stalled.is_none() {
            let _ = ws.close(None);
            let _ = ws.flush();
            return Ok(());
        }
        let interest = match stalled {
            Some(_) => Interest::READABLE | Interest::WRITABLE,
            None => Interest::READABLE,
        };
        poll.registry().reregister(&mut SourceFd(&fd), SOCKET, interest)?;
    }
}

/// Queues a frame; a full socket only means it is sent later.
pub(crate) fn queue(ws: &mut WebSocket<TcpStream>, message: Message) -> Result<()> {
    match ws.write(message) {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes what is queued; true when the socket could not take all of it.
pub(crate) fn flush(ws: &mut WebSocket<TcpStream>) -> Result<bool> {
    match ws.flush() {
        Ok(()) => Ok(false),
        Err(e) if would_block(&e) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Whether an event line (`{"type":"Kind",...}`) is wanted.
fn passes(filter: &Option<Vec<EventKind>>, line: &str) -> bool {
    let Some(filter) = filter else { return true };
    let kind = line
        .strip_prefix("{\"type\":\"")
        .and_then(|rest| rest.split('"').next())
        .and_then(EventKind::parse);
    kind.is_some_and(|k| filter.contains(&k))
}

/// A client message: `{"action":"subscribe","events":[...]}` (an empty list
/// means every kind). The answer says what the stream now carries.
fn command(text: &str, filter: &mut Option<Vec<EventKind>>) -> Value {
    let Ok(msg) = serde_json::from_slice::<Value>(text.as_bytes()) else {
        return json!({"type": "error", "message": "messages are JSON objects"});
    };
    if msg["action"] != "subscribe" {
        return json!({"type": "error", "message": "the only action is \"subscribe\""});
    }
    let Some(names) = msg["events"].as_array() else {
        return json!({"type": "error", "message": "\"events\" must be an array of event types"});
    };
    let mut kinds = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match name.as_str().and_then(EventKind::parse) {
            Some(kind) => kinds.push(kind),
            None => unknown.push(name.to_string()),
        }
    }
    if !unknown.is_empty() {
        return json!({"type": "error", "message": format!("unknown event type(s): {}", unknown.join(", "))});
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let answer = json!({"type": "subscribed", "events": names});
    *filter = (!kinds.is_empty()).then_some(kinds);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_kind() {
        let line = r#"{"type":"ProfileCreated","timestamp":"t","data":{}}"#;
        assert!(passes(&None, line));
        assert!(passes(&Some(vec![EventKind::ProfileCreated]), line));
        assert!(!passes(&Some(vec![EventKind::UsageUpdated]), line));
    }

    #[test]
    fn subscribe_commands() {
        let mut filter = None;
        let ok = command(r#"{"action":"subscribe","events":["UsageUpdated"]}"#, &mut filter);
        assert_eq!(ok["type"], "subscribed");
        assert_eq!(filter, Some(vec![EventKind::UsageUpdated]));
        let bad = command(r#"{"action":"subscribe","events":["Nope"]}"#, &mut filter);
        assert_eq!(bad["type"], "error");
        assert_eq!(filter, Some(vec![EventKind::UsageUpdated]), "a bad request changes nothing");
        command(r#"{"action":"subscribe","events":[]}"#, &mut filter);
        assert_eq!(filter, None);
        assert_eq!(command("nope", &mut filter)["type"], "error");
    }
}
