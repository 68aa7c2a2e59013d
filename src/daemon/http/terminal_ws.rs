//! `GET /ws/terminal/{id}`: one client of a terminal session (design.md §5).
//!
//! The server sends `{"type":"connected",...}`, then exactly one binary
//! frame with the history above the screen (lines that scrolled off the
//! main screen, with their colours; possibly empty), then exactly one binary
//! frame with the reproduced screen (it starts by resetting the client's
//! screen and modes, then draws the daemon's virtual screen and sets its
//! modes and title), then live output as binary frames,
//! `{"type":"resized",...}` when another client resizes, and
//! `{"type":"state_changed","state":"exited","exit_code":N}`. Terminal
//! queries never reach a client (the daemon answers them) and what a
//! client's terminal sends in answer to one is dropped from its input.
//! The client sends keystrokes as binary frames, `{"type":"resize","cols",
//! "rows"}` and `{"type":"signal","signal":N or "INT"}`.
//!
//! Each client is a thread with its own mio loop over its socket and a waker
//! the session thread rings after queueing output, so neither side ever
//! waits for the other: keystrokes go to the session as soon as they arrive,
//! output as soon as the session has it. Output is taken from the queue only
//! when the previous frames have been written; a client that stops reading
//! lets its backlog grow past the session's bound and the session drops it,
//! which ends its connection with 1013 (try again later: the web UI
//! reconnects for the screen). That close frame must reach a client
//! whose socket is full, so nothing more is queued and the socket gets a
//! short grace to drain it ([`close_within_grace`]). A rotated token ends
//! the connection with 1008.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{TryRecvError, channel};
use std::time::Duration;

use anyhow::Result;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::{Value, json};
use tungstenite::protocol::Role;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use super::slots::Slot;
use super::ws::{REVOKED, close_within_grace, config, end_on, flush, queue, upgrade, would_block};
use super::{Head, HttpInfo};
use crate::daemon::State;
use crate::terminal::pty::signal_by_name;
use crate::terminal::session::{Backlog, Client, Ctl, Out};

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
const HEARTBEAT: Duration = Duration::from_secs(30);
/// The largest message a client may send: a big paste is one binary frame.
const MAX_INPUT: usize = 1 << 20;

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

pub fn serve(
    state: &State,
    info: &HttpInfo,
    slot: &Slot,
    stream: TcpStream,
    head: &Head,
    id: &str,
    leftover: Vec<u8>,
) -> Result<()> {
    let Some((stream, mut credential)) =
        upgrade(state, info, stream, head, |id| state.terminals.info(id).is_ok(), id)?
    else {
        return Ok(());
    };
    let _busy = state.activity.busy();
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    slot.set_waker(waker.clone());
    // Unbounded as a channel; the session bounds it by the bytes queued.
    let (tx, rx) = channel();
    let client = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
    stream.set_nonblocking(true)?;
    let fd = stream.as_raw_fd();
    poll.registry().register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)?;
    // Output waits here only until flushed (the next frame is taken after),
    // so one frame, the history or the reproduced screen on attach at most
    // (a few dozen bytes a cell, at worst), plus replies.
    let session = state.terminals.info(id)?;
    let max_output = state.config.terminal.scrollback_bytes as usize
        + (1 << 20)
        + 32 * session.cols as usize * session.rows as usize;
    let config = config(MAX_INPUT, max_output);
    let early = !leftover.is_empty();
    let mut ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config));
    if early {
        // Frames already here raise no readiness: look at them at once.
        waker.wake()?;
    }

    queue(&mut ws, Message::text(json!({"type": "connected", "session": session}).to_string()))?;
    let backlog = Arc::new(Backlog::default());
    // The session gets a clone of the waker, and this thread keeps its own:
    // the session drops its `Client` (and so its clone) right after the
    // last wake, when it drops this client or ends, and if that closed the
    // eventfd the wake not yet collected would vanish with it (closing a
    // file removes it from epoll, pending event and all): no
    // `state_changed`, no close, until the next heartbeat.
    let client_end = Client { id: client, tx, waker: waker.clone(), backlog: backlog.clone() };
    state.terminals.send(id, Ctl::Attach(client_end))?;

    let mut events = Events::with_capacity(8);
    let mut unflushed = false;
    let result = (|| -> Result<()> {
        loop {
            // Checked before each wait: the slot's waker rings on a rotation.
            if credential.revoked(state, &info.slots) {
                close_within_grace(&mut ws, CloseCode::Policy, REVOKED);
                return Ok(());
            }
            if let Err(e) = poll.poll(&mut events, Some(HEARTBEAT)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            if events.is_empty() {
                queue(&mut ws, Message::Ping(Vec::new().into()))?;
            }
            if state.stopping.load(Ordering::Relaxed) {
                let _ = ws.close(None);
                let _ = ws.flush();
                return Ok(());
            }
            // Output: only while the socket keeps up.
            while !unflushed {
                let out = rx.try_recv();
                if let Ok(out) = &out {
                    backlog.taken(out);
                }
                match out {
                    // The session's shared buffer itself, not a copy (the
                    // reproduced screen of a big coloured one is ~250 KB).
                    Ok(Out::Data(bytes)) => queue(&mut ws, Message::Binary(bytes))?,
                    Ok(Out::Resized { cols, rows }) => queue(
                        &mut ws,
                        Message::text(json!({"type": "resized", "cols": cols, "rows": rows}).to_string()),
                    )?,
                    Ok(Out::Ended { exit_code }) => queue(
                        &mut ws,
                        Message::text(
                            json!({"type": "state_changed", "state": "exited", "exit_code": exit_code})
                                .to_string(),
                        ),
                    )?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = ws.close(None);
                        let _ = ws.flush();
                        return Ok(());
                    }
                }
                unflushed = flush(&mut ws)?;
            }
            // Input.
            loop {
                match ws.read() {
                    Ok(Message::Binary(bytes)) => {
                        state.terminals.send(id, Ctl::Input(bytes.to_vec()))?;
                    }
                    Ok(Message::Text(text)) => {
                        if let Some(error) = command(state, id, client, &text) {
                            queue(
                                &mut ws,
                                Message::text(
                                    json!({"type": "error", "message": error}).to_string(),
                                ),
                            )?;
                        }
                    }
                    Ok(Message::Close(_)) => {
                        // tungstenite has queued the answering close frame.
                        let _ = ws.flush();
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(e) => return end_on(&mut ws, e, MAX_INPUT),
                }
            }
            unflushed = flush(&mut ws)?;
            // Dropped by the session for falling behind: its stream has a
            // hole now, and the session will not wake this loop again, so
            // waiting would hold this thread, the socket and the queued
            // output (and keep the daemon busy) until the client reads
            // again, or for good. End the connection now, and tell the
            // client why (it reconnects for the screen): its socket is
            // likely full, so the close frame gets a short grace to drain
            // behind what is already queued. Checked here, just before
            // waiting, because the session's wake may come in the middle
            // of a round.
            if backlog.dropped() {
                let reason = "too far behind the output; reconnect for the screen";
                close_within_grace(&mut ws, CloseCode::Again, reason);
                return Ok(());
            }
            let interest = if unflushed {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            poll.registry().reregister(&mut SourceFd(&fd), SOCKET, interest)?;
        }
    })();
    let _ = state.terminals.send(id, Ctl::Detach(client));
    result
}

/// A JSON message from the client; `Some(error)` to tell it what was wrong.
fn command(state: &State, id: &str, client: u64, text: &str) -> Option<String> {
    let Ok(msg) = serde_json::from_slice::<Value>(text.as_bytes()) else {
        return Some("messages are JSON objects (keystrokes go in binary frames)".into());
    };
    match msg["type"].as_str() {
        Some("resize") => {
            let dim =
                |k: &str| msg[k].as_u64().filter(|n| (1..=1000).contains(n)).map(|n| n as u16);
            let (Some(cols), Some(rows)) = (dim("cols"), dim("rows")) else {
                return Some("resize needs cols and rows between 1 and 1000".into());
            };
            state
                .terminals
                .send(id, Ctl::Resize { cols, rows, from: client })
                .err()
                .map(|e| e.to_string())
        }
        Some("signal") => {
            let signal = match &msg["signal"] {
                Value::Number(n) => n.as_i64().and_then(|n| signal_by_name(&n.to_string())),
                Value::String(s) => signal_by_name(s),
                _ => None,
            };
            let Some(signal) = signal else {
                return Some(
                    "signal must be one of INT, TERM, KILL, HUP, QUIT, WINCH, CONT, STOP".into(),
                );
            };
            state.terminals.send(id, Ctl::Signal(signal)).err().map(|e| e.to_string())
        }
        _ => Some("the message types are \"resize\" and \"signal\"".into()),
    }
}
