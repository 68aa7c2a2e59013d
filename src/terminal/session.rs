//! One terminal session: a thread that owns the PTY, the scrollback ring and
//! the list of attached clients (style.md point 10: one owner; everyone else
//! sends it messages with a wake, alacritty's `EventLoopSender`).
//!
//! The thread runs a mio loop over the PTY master and a `Waker`. Output is
//! read in chunks and fed to the session's [`Screen`] (a virtual terminal,
//! the history of lines that scrolled off it, the modes it has on), which
//! takes out the terminal queries and answers them to the program; the rest
//! goes to every client as one shared buffer. A client attaches through the
//! same thread, so it gets the history, the reproduced screen and then every
//! later chunk: no gap, no duplicate. What a client sends that answers a
//! query is dropped (the daemon answered already), and the agent's state
//! from `OSC 7501` is kept in the info (`agent_state`, announced by
//! `on_state`).
//! A client whose backlog passes a bound in bytes (it stopped reading) is
//! dropped and told so, which ends its connection; the others and the agent
//! never wait for it. When the agent exits the thread keeps the
//! screen and the exit code for late attachers until the session is
//! removed.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use serde::{Deserialize, Serialize};

use super::pty::{Exit, Pty};
use super::screen::{Screen, filter_input};

const PTY: Token = Token(0);
const WAKE: Token = Token(1);
/// How far a client may lag behind the output, beyond the scrollback it got
/// on attaching, before it is dropped. Counted in bytes, not chunks: a
/// program writing line by line makes chunks of a few bytes, and a bound in
/// chunks would drop a client that is only a few KiB (a few milliseconds)
/// behind, while 64 KiB chunks would let it hold many MiB.
pub const CLIENT_BACKLOG: usize = 4 << 20;
/// What each queued message counts on top of its bytes, so that a flood of
/// tiny chunks is bounded too (by what the queue's slots take).
const MESSAGE_COST: usize = 64;
/// Input the agent has not read yet, at most: a few big pastes. Past it,
/// clients typing into a program that never reads its terminal would grow
/// the daemon without bound.
const MAX_PENDING_INPUT: usize = 4 << 20;
/// Room in a client's backlog for the reproduced screen it gets on
/// attaching (a full 200x60 screen of coloured cells is a few hundred KiB).
const SCREEN_ALLOWANCE: usize = 1 << 20;
/// How long the program may stay quiet with an escape sequence or a
/// character cut off at the end of its last write before the cut-off bytes
/// go out as they are.
const HELD_FOR: Duration = Duration::from_millis(20);
/// How long `kill` gives the agent between SIGHUP, SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What a client receives, in order.
#[derive(Debug, Clone)]
pub enum Out {
    /// Terminal output. On attaching, first the history above the screen
    /// (possibly empty), then the reproduced screen, one chunk each.
    /// Shared by every client without a copy, and what a WebSocket binary
    /// message holds (tungstenite's `Bytes`: made from the `Vec` as it is).
    Data(tungstenite::Bytes),
    /// Another client resized the terminal.
    Resized { cols: u16, rows: u16 },
    /// The agent exited (also sent on attach to an ended session).
    Ended { exit_code: i32 },
}

/// A client's end as the session sees it: its queue, the wake of the
/// client's own loop, and the backlog both sides keep count of.
pub struct Client {
    pub id: u64,
    pub tx: Sender<Out>,
    pub waker: Arc<Waker>,
    pub backlog: Arc<Backlog>,
}

/// What one client has not taken yet, shared by the session (which adds
/// and drops) and the client's loop (which takes).
#[derive(Default)]
pub struct Backlog {
    /// The cost (see `cost`) of the queued messages.
    queued: AtomicUsize,
    /// Set (then the client's waker rung) when the session drops the client
    /// for falling behind. Dropping the sender alone is not enough: the
    /// loop learns of it only after taking every queued message, and a
    /// client that stopped reading never has them taken, so its connection,
    /// thread and queue would stay until the peer reads again.
    dropped: AtomicBool,
}

impl Backlog {
    /// The client's loop took `out` from the queue.
    pub fn taken(&self, out: &Out) {
        self.queued.fetch_sub(cost(out), Ordering::Relaxed);
    }

    /// Whether the session has dropped the client.
    pub fn dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }
}

fn cost(out: &Out) -> usize {
    match out {
        Out::Data(bytes) => bytes.len() + MESSAGE_COST,
        _ => MESSAGE_COST,
    }
}

impl Client {
    /// Queues `out` unless that puts the client more than `limit` behind;
    /// the error says why it was not queued.
    fn offer(&self, out: Out, limit: usize) -> Result<(), Lag> {
        let cost = cost(&out);
        // Only the session adds, so the check and the add cannot race with
        // another add; the loop's takes only make room.
        if self.backlog.queued.load(Ordering::Relaxed) + cost > limit {
            return Err(Lag::Behind);
        }
        self.backlog.queued.fetch_add(cost, Ordering::Relaxed);
        self.tx.send(out).map_err(|_| Lag::Gone)
    }

    /// Marks the client dropped (before the wake that tells its loop).
    fn drop_behind(&self) {
        self.backlog.dropped.store(true, Ordering::Release);
    }
}

/// Why a message was not queued for a client.
enum Lag {
    /// It is too far behind: drop it.
    Behind,
    /// Its loop has ended.
    Gone,
}

/// Messages to the session thread.
pub enum Ctl {
    Attach(Client),
    Detach(u64),
    Input(Vec<u8>),
    Resize {
        cols: u16,
        rows: u16,
        from: u64,
    },
    Signal(i32),
    /// End the process group (SIGHUP, SIGTERM, SIGKILL) and stop the thread.
    Remove,
}

/// What `terminal list/info` and the API show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub id: String,
    pub profile: String,
    pub command: Vec<String>,
    pub working_dir: String,
    pub pid: u32,
    pub cols: u16,
    pub rows: u16,
    /// "running" or "exited".
    pub state: String,
    pub exit_code: Option<i32>,
    /// "bwrap", "sandbox-exec" or "none" (`--no-sandbox`, recorded).
    pub sandbox: String,
    pub created_at: String,
    pub ended_at: Option<String>,
    pub clients: usize,
    /// "working" or "waiting" (for the user), from the program's
    /// `OSC 7501` status; None when it never said.
    #[serde(default)]
    pub agent_state: Option<String>,
}

/// The handle the registry keeps: send + wake, and the shared info.
pub struct Handle {
    tx: Sender<Ctl>,
    waker: Arc<Waker>,
    /// Written by the session thread, read by request handlers.
    pub info: Arc<Mutex<Info>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Sends a message and wakes the session thread. False if it is gone.
    pub fn send(&self, ctl: Ctl) -> bool {
        self.tx.send(ctl).is_ok() && self.waker.wake().is_ok()
    }

    pub fn info(&self) -> Info {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends the session and waits for its thread.
    pub fn remove(self) {
        self.begin_removal().join();
    }

    /// Tells the session to end (its agent's group gets SIGHUP, SIGTERM,
    /// SIGKILL, up to [`KILL_GRACE`] each) without waiting: many sessions
    /// end in parallel, then each is joined.
    pub fn begin_removal(self) -> Removal {
        self.send(Ctl::Remove);
        Removal(self)
    }
}

/// A session told to end; [`Removal::join`] waits until it has. It keeps
/// the whole handle until then: dropping the waker closes its eventfd, and
/// closing a file removes it from epoll with the wake not yet collected,
/// so the session would sleep through its own removal.
pub struct Removal(Handle);

impl Removal {
    pub fn join(mut self) {
        if let Some(t) = self.0.thread.take() {
            let _ = t.join();
        }
    }
}

/// Called once from the session thread when the agent has ended, with the
/// final info and how it ended.
pub type OnEnd = Box<dyn Fn(&Info, Exit) + Send>;

/// Called from the session thread when the agent state changes, with the
/// info holding the new one.
pub type OnState = Box<dyn Fn(&Info) + Send>;

/// Starts the session thread, which starts the agent: bwrap's
/// `--die-with-parent` ties the sandbox to the *thread* that started it, so
/// that must be the session's own thread, not a short-lived request thread.
/// Returns once the agent runs (its pid is in the info) or failed to start.
pub fn start(
    spawn: Box<dyn FnOnce() -> Result<Pty> + Send>,
    info: Info,
    scrollback: usize,
    on_end: OnEnd,
    on_state: OnState,
) -> Result<Handle> {
    let poll = Poll::new().context("creating the session's poller")?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = mpsc::channel();
    let info = Arc::new(Mutex::new(info));
    let (id, cols, rows) = {
        let i = info.lock().unwrap_or_else(|p| p.into_inner());
        (i.id.clone(), i.cols, i.rows)
    };
    let shared = info.clone();
    let (started_tx, started_rx) = mpsc::sync_channel::<Result<u32, String>>(1);
    let thread = std::thread::Builder::new()
        .name(format!("terminal-{id}"))
        .spawn(move || {
            let pty = match spawn() {
                Ok(pty) => {
                    let _ = started_tx.send(Ok(pty.pid()));
                    pty
                }
                Err(e) => {
                    let _ = started_tx.send(Err(format!("{e:#}")));
                    return;
                }
            };
            let mut session = Session {
                pty,
                poll,
                rx,
                info: shared,
                screen: Screen::new(cols, rows, scrollback.max(1)),
                cap: scrollback.max(1),
                clients: Vec::new(),
                pending: VecDeque::new(),
                exit: None,
                on_end,
                on_state,
            };
            if let Err(e) = session.run() {
                crate::warn!("terminal session: {e:#}");
            }
            // Whatever happened, the agent's group does not outlive it.
            let exit = session.pty.terminate(KILL_GRACE);
            // After an error the session is over too: it must say so (state,
            // exit code, TerminalSessionEnded, the run's record), or it would
            // show "running" forever, keep the daemon from idling out and
            // never be cleaned up.
            if session.exit.is_none() {
                session.ended(exit);
            }
            session.release_clients();
        })
        .context("starting the session thread")?;
    match started_rx.recv() {
        Ok(Ok(pid)) => info.lock().unwrap_or_else(|p| p.into_inner()).pid = pid,
        Ok(Err(e)) => {
            let _ = thread.join();
            anyhow::bail!(e);
        }
        Err(_) => anyhow::bail!("the session thread ended before starting the agent"),
    }
    Ok(Handle { tx, waker, info, thread: Some(thread) })
}

struct Session {
    pty: Pty,
    poll: Poll,
    rx: Receiver<Ctl>,
    info: Arc<Mutex<Info>>,
    /// The screen, its history and modes (the history is bounded by `cap`).
    screen: Screen,
    cap: usize,
    clients: Vec<Client>,
    /// Input not yet accepted by the terminal (a large paste).
    pending: VecDeque<u8>,
    exit: Option<i32>,
    /// Announces the end (TerminalSessionEnded) and records the run.
    on_end: OnEnd,
    /// Announces a new agent state (TerminalStateChanged).
    on_state: OnState,
}

impl Session {
    fn run(&mut self) -> Result<()> {
        let fd = self.pty.master().as_raw_fd();
        self.poll.registry().register(&mut SourceFd(&fd), PTY, Interest::READABLE)?;
        let mut events = Events::with_capacity(16);
        let mut buf = vec![0u8; 64 * 1024];
        let mut pty_open = true;
        let mut shown_clients = 0;
        loop {
            // While the agent runs, look at it now and then even without
            // events: a child that exits without closing the terminal (its
            // own children keep it open) is noticed.
            // Output cut off mid-sequence waits only a moment for the rest.
            let timeout = if self.screen.holds() {
                Some(HELD_FOR)
            } else {
                pty_open.then_some(Duration::from_millis(250))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            if pty_open {
                // The kernel hands out a PTY's output about 4 KiB at a time;
                // gather what is there into one chunk before fanning it out,
                // so clients get fewer, larger frames.
                let mut filled = 0;
                let mut quiet = true;
                loop {
                    match self.pty.read(&mut buf[filled..]) {
                        Ok(0) => {
                            pty_open = false;
                            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                            break;
                        }
                        Ok(n) => {
                            filled += n;
                            quiet = false;
                            if buf.len() - filled < 4096 {
                                self.output(&buf[..filled]);
                                filled = 0;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e).context("reading the terminal"),
                    }
                }
                if filled > 0 {
                    self.output(&buf[..filled]);
                }
                if (quiet || !pty_open) && self.screen.holds() {
                    let mut out = Vec::new();
                    self.screen.flush_held(&mut out);
                    self.broadcast(Out::Data(out.into()), None);
                }
                if pty_open {
                    self.flush_input(fd)?;
                }
            }
            if self.exit.is_none() {
                let exited = if pty_open {
                    self.pty.try_wait()?
                } else {
                    Some(self.pty.terminate(KILL_GRACE))
                };
                if let Some(exit) = exited {
                    // Read what the agent wrote last before announcing it.
                    while let Ok(n) = self.pty.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        self.output(&buf[..n]);
                    }
                    self.ended(exit);
                }
            }
            while let Ok(ctl) = self.rx.try_recv() {
                // What a client's terminal answers to a query never reaches
                // the program: the daemon answered it already.
                let ctl = match ctl {
                    Ctl::Input(bytes) => Ctl::Input(filter_input(&bytes).unwrap_or(bytes)),
                    other => other,
                };
                match ctl {
                    Ctl::Attach(client) => self.attach(client),
                    Ctl::Detach(id) => self.clients.retain(|c| c.id != id),
                    // An ended agent reads nothing more: input is dropped.
                    Ctl::Input(_) if !pty_open || self.exit.is_some() => {}
                    Ctl::Input(bytes) if self.pending.len() + bytes.len() > MAX_PENDING_INPUT => {
                        crate::warn!(
                            "terminal: dropping {} bytes of input: the agent has not read the {} \
                             before them",
                            bytes.len(),
                            self.pending.len()
                        );
                    }
                    Ctl::Input(bytes) => {
                        self.pending.extend(bytes);
                        self.flush_input(fd)?;
                    }
                    Ctl::Resize { cols, rows, from } => {
                        if self.exit.is_none() && self.pty.resize(cols, rows).is_ok() {
                            self.screen.resize(cols, rows);
                            self.update(|i| (i.cols, i.rows) = (cols, rows));
                            self.broadcast(Out::Resized { cols, rows }, Some(from));
                        }
                    }
                    Ctl::Signal(sig) => {
                        if let Err(e) = self.pty.signal(sig) {
                            crate::debug!("terminal signal: {e:#}");
                        }
                    }
                    Ctl::Remove => {
                        let exit = self.pty.terminate(KILL_GRACE);
                        if self.exit.is_none() {
                            self.ended(exit);
                        }
                        return Ok(());
                    }
                }
            }
            // The shared info is locked only when the count changed, not on
            // every chunk of output.
            let n = self.clients.len();
            if n != shown_clients {
                shown_clients = n;
                self.update(|i| i.clients = n);
            }
        }
    }

    /// Writes pending input; whatever the terminal does not take now waits
    /// for its next writable moment.
    fn flush_input(&mut self, fd: i32) -> Result<()> {
        while !self.pending.is_empty() {
            let (front, _) = self.pending.as_slices();
            match self.pty.write(front) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.poll.registry().reregister(
                        &mut SourceFd(&fd),
                        PTY,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    return Ok(());
                }
                Err(_) => {
                    self.pending.clear();
                    break;
                }
            }
        }
        self.poll.registry().reregister(&mut SourceFd(&fd), PTY, Interest::READABLE)?;
        Ok(())
    }

    /// Feeds output to the screen; queues its answers to queries for the
    /// program (written with the next input flush) and sends the rest on.
    fn output(&mut self, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len());
        let mut replies = Vec::new();
        let changed = self.screen.feed(bytes, &mut out, &mut replies);
        if self.exit.is_none() && self.pending.len() + replies.len() <= MAX_PENDING_INPUT {
            self.pending.extend(replies);
        }
        if !out.is_empty() {
            self.broadcast(Out::Data(out.into()), None);
        }
        if changed {
            let state = self.screen.agent_state().map(|s| s.as_str().to_string());
            self.update(|i| i.agent_state = state);
            (self.on_state)(&self.info.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    fn attach(&mut self, client: Client) {
        let history = tungstenite::Bytes::from(self.screen.history());
        let screen = tungstenite::Bytes::from(self.screen.reproduce());
        let limit = self.backlog_limit() + screen.len();
        let mut ok = client.offer(Out::Data(history), limit).is_ok()
            && client.offer(Out::Data(screen), limit).is_ok();
        if let Some(code) = self.exit {
            ok &= client.offer(Out::Ended { exit_code: code }, limit).is_ok();
        }
        if !ok {
            client.drop_behind();
        }
        let _ = client.waker.wake();
        if ok {
            self.clients.push(client);
        }
    }

    fn ended(&mut self, exit: Exit) {
        let code = exit.code();
        self.exit = Some(code);
        self.update(|i| {
            i.state = "exited".into();
            i.exit_code = Some(code);
            i.ended_at = Some(crate::time::now_rfc3339());
        });
        self.broadcast(Out::Ended { exit_code: code }, None);
        (self.on_end)(&self.info.lock().unwrap_or_else(|p| p.into_inner()), exit);
    }

    /// A client may lag by the history it got on attaching plus
    /// `CLIENT_BACKLOG` (and, while it takes them, the reproduced screen).
    fn backlog_limit(&self) -> usize {
        self.cap + CLIENT_BACKLOG + SCREEN_ALLOWANCE
    }

    /// Sends to every client (but `except`), dropping the ones that lag.
    fn broadcast(&mut self, out: Out, except: Option<u64>) {
        let limit = self.backlog_limit();
        self.clients.retain(|c| {
            if Some(c.id) == except {
                return true;
            }
            let kept = match c.offer(out.clone(), limit) {
                Ok(()) => true,
                Err(Lag::Behind) => {
                    crate::warn!("terminal: dropping client {}: {limit} bytes behind", c.id);
                    c.drop_behind();
                    false
                }
                Err(Lag::Gone) => false,
            };
            let _ = c.waker.wake();
            kept
        });
    }

    /// Lets every client go as the session ends: each one's sender is
    /// dropped *before* its loop is woken, so that loop takes what is left
    /// (the end) and then finds the queue closed and closes its connection
    /// at once, rather than at its next heartbeat.
    fn release_clients(&mut self) {
        for Client { tx, waker, .. } in self.clients.drain(..) {
            drop(tx);
            let _ = waker.wake();
        }
    }

    fn update(&self, f: impl FnOnce(&mut Info)) {
        f(&mut self.info.lock().unwrap_or_else(|p| p.into_inner()));
    }
}
