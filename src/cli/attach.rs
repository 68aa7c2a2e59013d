//! `ringlet terminal attach <id>`: this terminal becomes a client of a
//! daemon terminal session, over the same `/ws/terminal/{id}` WebSocket a
//! browser uses. Raw mode while attached; the window size follows this
//! terminal (SIGWINCH); Ctrl-] detaches (the session keeps running); the
//! terminal is restored however the loop ends: raw mode off, and every mode
//! the session's output turned on undone (alternate screen, hidden cursor,
//! mouse and focus reporting, bracketed paste, keypad and keyboard
//! protocol, cursor shape, colours, margins), found by running the same
//! scanner the daemon uses over what arrives; the title is pushed on
//! attaching and popped after. The daemon sends the reproduced screen,
//! never old queries, and answers new ones itself, so nothing this
//! terminal answers is typed into the program or, after, the shell.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::termios::{self, OptionalActions, Termios};
use serde_json::{Value, json};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::{Ctx, Exit};
use crate::client;
use crate::daemon::http::handshake;
use crate::daemon::http::ws::{flush, queue, would_block};
use crate::protocol::Request;
use crate::terminal::modes::Tracker;

/// Ctrl-] detaches, as in telnet: rarely needed inside an agent.
pub const DETACH: u8 = 0x1d;
/// XTWINOPS: save the window title on attaching, restore it after.
const PUSH_TITLE: &[u8] = b"\x1b[22;0t";
const POP_TITLE: &[u8] = b"\x1b[23;0t";
const STDIN: Token = Token(0);
const SOCKET: Token = Token(1);

/// Puts the terminal back as it was, whatever happens.
struct RawMode {
    saved: Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

pub fn run(ctx: &Ctx, id: &str) -> Result<()> {
    let paths = ctx.paths()?;
    if !termios::isatty(std::io::stdin()) {
        bail!(
            "attach needs a terminal on stdin (a browser or any WebSocket client can attach instead)"
        );
    }
    let token = client::request(&paths, &Request::DaemonToken { rotate: false })?;
    let token = token["token"].as_str().unwrap_or_default().to_string();
    let status = client::request(&paths, &Request::Status)?;
    let Some(addr) = status["http"].as_str() else {
        bail!("the daemon's HTTP API is not listening (`ringlet doctor` says why)");
    };
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut key = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key))?;
    let key = handshake::base64(&key);
    write!(
        stream,
        "GET /ws/terminal/{id} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )?;
    // Byte by byte: the session's first frames follow the head at once.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            bail!("the daemon closed the connection during the upgrade");
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        if head.contains(" 404 ") {
            bail!("no terminal session {id} (`ringlet terminal list`)");
        }
        bail!("the daemon refused the attach: {}", head.lines().next().unwrap_or(""));
    }
    let accept = format!("sec-websocket-accept: {}", handshake::accept(&key)).to_ascii_lowercase();
    if !head.to_ascii_lowercase().lines().any(|l| l.trim() == accept) {
        bail!("the daemon's WebSocket answer did not match our key");
    }
    stream.set_nonblocking(true)?;
    let socket_fd = stream.as_raw_fd();
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);

    let winch = Arc::new(AtomicBool::new(true));
    signal_hook::flag::register(signal_hook::consts::SIGWINCH, winch.clone())?;
    let saved = termios::tcgetattr(std::io::stdin()).context("reading the terminal's mode")?;
    let mut raw = saved.clone();
    raw.make_raw();
    termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &raw)
        .context("entering raw mode")?;
    let guard = RawMode { saved };
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(PUSH_TITLE).and_then(|()| stdout.flush());

    let mut tracker = Tracker::default();
    let ended = attached(&mut ws, socket_fd, &winch, &mut tracker);
    // Whatever ended it, the program's modes do not stay on in this
    // terminal, and the detach line starts on a line of its own.
    let mut restore = tracker.restore();
    restore.extend_from_slice(POP_TITLE);
    let _ = stdout.write_all(&restore).and_then(|()| stdout.flush());
    drop(guard);
    let mut stderr = std::io::stderr();
    match ended? {
        Ended::Detached => {
            let _ = writeln!(stderr, "\r\n[detached from {id}; it keeps running]");
            Ok(())
        }
        Ended::Exited(code) => {
            let _ = writeln!(stderr, "\r\n[{id} exited with {code}]");
            if code == 0 {
                Ok(())
            } else {
                Err(Exit { code: code.clamp(1, 255) as u8, message: None }.into())
            }
        }
        Ended::Closed => {
            let _ = writeln!(stderr, "\r\n[the daemon closed {id}]");
            Ok(())
        }
    }
}

enum Ended {
    Detached,
    Exited(i32),
    Closed,
}

fn attached(
    ws: &mut WebSocket<TcpStream>,
    socket_fd: i32,
    winch: &AtomicBool,
    tracker: &mut Tracker,
) -> Result<Ended> {
    let mut poll = Poll::new()?;
    let stdin_fd = std::io::stdin().as_raw_fd();
    poll.registry().register(&mut SourceFd(&stdin_fd), STDIN, Interest::READABLE)?;
    poll.registry().register(&mut SourceFd(&socket_fd), SOCKET, Interest::READABLE)?;
    let mut events = Events::with_capacity(4);
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        if winch.swap(false, Ordering::Relaxed)
            && let Ok(size) = termios::tcgetwinsize(std::io::stdout())
        {
            let resize =
                json!({"type": "resize", "cols": size.ws_col.max(1), "rows": size.ws_row.max(1)});
            queue(ws, Message::text(resize.to_string()))?;
        }
        for event in events.iter() {
            if event.token() == STDIN {
                let n = rustix::io::read(std::io::stdin(), &mut buf).unwrap_or(0);
                if n == 0 {
                    return Ok(Ended::Detached);
                }
                let input = &buf[..n];
                if let Some(at) = input.iter().position(|&b| b == DETACH) {
                    if at > 0 {
                        queue(ws, Message::Binary(input[..at].to_vec().into()))?;
                    }
                    let _ = ws.flush();
                    return Ok(Ended::Detached);
                }
                queue(ws, Message::Binary(input.to_vec().into()))?;
            }
        }
        loop {
            match ws.read() {
                Ok(Message::Binary(bytes)) => {
                    tracker.feed(&bytes);
                    stdout.write_all(&bytes)?;
                    stdout.flush()?;
                }
                Ok(Message::Text(text)) => {
                    let msg: Value = serde_json::from_slice(text.as_bytes()).unwrap_or_default();
                    if msg["type"] == "state_changed" {
                        return Ok(Ended::Exited(msg["exit_code"].as_i64().unwrap_or(0) as i32));
                    }
                }
                Ok(Message::Close(_)) => return Ok(Ended::Closed),
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Ended::Closed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        flush(ws)?;
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100)))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e.into());
        }
    }
}
