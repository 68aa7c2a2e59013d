//! The front door's connection slots: who may hold a connection open, and
//! who gives way when too many do.
//!
//! Anyone who can reach the port can open connections, another local user
//! included, so a full house must never lock out the owner. A connection
//! that has not shown the token (a *stranger*: every connection starts as
//! one, since the token comes with the first request) lives in a small pool
//! of [`STRANGER_POOL`] slots; a newcomer beyond it closes the oldest
//! stranger, whether that one is idle, sending a request byte by byte, or
//! waiting for an answer. Strangers that have been read go before ones that
//! have not (and those, oldest first, only when there are no others), and
//! one with bytes waiting unread in its socket goes last of all: a
//! newcomer whose request is already in its socket (the owner's) is never
//! closed for others that are silent or still trickling, however fast they
//! reconnect, before its thread has looked at it.
//!
//! Before any of that, on loopback, a connection from a process of the
//! daemon's own uid never gives way to another uid's (`peer`: the kernel
//! says who owns the other end): the owner's client may be descheduled
//! between `connect` and `write` for longer than a crowd takes to reconnect
//! past the whole pool, and until it sends nothing else tells its
//! connection from the crowd's. When only such connections are left to
//! give way, a newcomer of another uid is turned away (503) instead. The
//! kernel is asked only when the pool is full, once per connection at
//! most, so an uncrowded front door never pays for it. A remote peer or a
//! failed lookup is another uid's.
//!
//! A connection that shows the token moves out of the pool into one of
//! [`MAX_TRUSTED`] slots that are never taken away; only the owner's own
//! connections can fill those (then the next one gets 503).
//!
//! Rotating the token ([`Slots::revoke`]) ends that trust: every connection
//! is a stranger again until it shows the new token, and the WebSockets,
//! which showed it once at the upgrade, are woken to close themselves.
//!
//! Added to by the accept thread; each connection's thread marks its own
//! slot and gives it back when it ends.

use std::io::{self, Read as _};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use mio::Waker;

/// Connections that showed the token, at most.
pub const MAX_TRUSTED: usize = 128;
/// Connections that have not, at most: the oldest goes when another comes.
pub const STRANGER_POOL: usize = 32;

#[derive(Debug)]
pub struct Slots {
    open: Mutex<Vec<Arc<Slot>>>,
    /// [`MAX_TRUSTED`] and [`STRANGER_POOL`] unless set otherwise
    /// ([`Slots::with_limits`]).
    max_trusted: usize,
    stranger_pool: usize,
    /// Bumped by every token rotation; a slot trusted under an older one is
    /// a stranger again.
    generation: Arc<AtomicU64>,
    /// Whether a connection's peer runs as the daemon's uid
    /// ([`super::peer::runs_as_us`]; tests pretend).
    ours: fn(&TcpStream) -> bool,
}

impl Default for Slots {
    fn default() -> Self {
        Slots::with_limits(MAX_TRUSTED, STRANGER_POOL)
    }
}

/// One open connection.
#[derive(Debug)]
pub struct Slot {
    /// A handle on the connection's socket, to close it from outside.
    stream: TcpStream,
    accepted: Instant,
    /// Its thread has read it and found no token (yet): it waits for more
    /// of a request, is between requests, or is being served.
    settled: AtomicBool,
    /// Its thread has read bytes from it (until settled: its head is being
    /// read).
    heard: AtomicBool,
    /// Its peer runs as the daemon's uid: asked once, when it might have
    /// to give way.
    ours: OnceLock<bool>,
    /// The generation it showed the token in; 0: never.
    trusted_in: AtomicU64,
    generation: Arc<AtomicU64>,
    /// A WebSocket's loop, woken when the token is rotated.
    waker: Mutex<Option<Arc<Waker>>>,
}

impl Slots {
    /// Slots with other limits (the proxy child's: many more trusted).
    pub fn with_limits(max_trusted: usize, stranger_pool: usize) -> Slots {
        Slots {
            open: Mutex::default(),
            max_trusted,
            stranger_pool,
            generation: Arc::new(AtomicU64::new(1)),
            ours: super::peer::runs_as_us,
        }
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The current token generation: read it before checking a token, and
    /// pass it to [`Slots::trust`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A slot for a new connection (a stranger so far). When the stranger
    /// pool is full, one stranger gives way (see the module's comment for
    /// which) and is shut down. `None`: the newcomer is turned away (answer
    /// 503), because only connections of the daemon's uid could make room
    /// for one of another uid, or its socket cannot be duplicated.
    pub fn take(&self, stream: &TcpStream) -> Option<Arc<Slot>> {
        let handle = stream.try_clone().ok()?;
        let ours = OnceLock::new();
        let mut open = self.lock();
        let strangers = open.iter().filter(|s| !s.trusted()).count();
        if strangers >= self.stranger_pool {
            // One whose request is waiting unread in its socket, or being
            // read, goes last: its thread has not got to its head yet (on a
            // loaded machine a crowd reconnecting fast outpaces it), and the
            // owner's connection is like that until its token is seen.
            let mut ranked: Vec<_> = open
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.trusted())
                .map(|(i, s)| {
                    let settled = s.settled.load(Ordering::SeqCst);
                    let reading = s.heard.load(Ordering::SeqCst) && !settled;
                    ((reading || s.unread_bytes(), !settled, s.accepted), i)
                })
                .collect();
            ranked.sort_unstable();
            // Before all that, one of the daemon's uid never makes room for
            // another uid's: asked in that order, so a crowd's newcomer
            // costs one lookup (of the one that goes).
            let mut first_ours = None;
            let mut victim = None;
            for &(_, i) in &ranked {
                if open[i].ours(self.ours) {
                    first_ours.get_or_insert(i);
                } else {
                    victim = Some(i);
                    break;
                }
            }
            if victim.is_none() {
                if !*ours.get_or_init(|| (self.ours)(stream)) {
                    crate::debug!("http: turned away a connection of another uid (a full pool)");
                    return None;
                }
                victim = first_ours;
            }
            if let Some(i) = victim {
                let evicted = open.swap_remove(i);
                // Its thread sees the end of its stream and ends; the slot is
                // already gone from the count.
                let _ = evicted.stream.shutdown(Shutdown::Both);
                crate::debug!("http: closed the oldest connection without the token");
            }
        }
        let slot = Arc::new(Slot {
            stream: handle,
            accepted: Instant::now(),
            settled: AtomicBool::new(false),
            heard: AtomicBool::new(false),
            ours,
            trusted_in: AtomicU64::new(0),
            generation: self.generation.clone(),
            waker: Mutex::new(None),
        });
        open.push(slot.clone());
        Some(slot)
    }

    /// Moves a connection that showed the token (checked against the token
    /// of `generation`) out of the stranger pool. False when it cannot have
    /// a slot: every trusted one is taken (answer 503), or it was closed
    /// meanwhile.
    pub fn trust(&self, slot: &Arc<Slot>, generation: u64) -> bool {
        let open = self.lock();
        if !open.iter().any(|s| Arc::ptr_eq(s, slot)) {
            return false;
        }
        if slot.trusted() {
            return true;
        }
        if open.iter().filter(|s| s.trusted()).count() >= self.max_trusted {
            return false;
        }
        slot.trusted_in.store(generation, Ordering::SeqCst);
        true
    }

    /// The token was rotated: no connection is trusted any more, and every
    /// WebSocket is woken to see that its token is gone.
    pub fn revoke(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for slot in self.lock().iter() {
            if let Some(waker) = slot.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                let _ = waker.wake();
            }
        }
    }

    /// The connection has ended (a second call, after an eviction, is a
    /// no-op).
    pub fn give_back(&self, slot: &Arc<Slot>) {
        self.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Slot>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Slot {
    /// It showed the current token.
    pub fn trusted(&self) -> bool {
        self.trusted_in.load(Ordering::SeqCst) == self.generation.load(Ordering::SeqCst)
    }

    /// Whether its peer runs as the daemon's uid, asked of `ask` once.
    fn ours(&self, ask: fn(&TcpStream) -> bool) -> bool {
        *self.ours.get_or_init(|| ask(&self.stream))
    }

    /// Its thread has had a look and it may give way to newcomers.
    pub fn settle(&self) {
        self.settled.store(true, Ordering::SeqCst);
    }

    /// Its socket (for looking up who is at the other end).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Its thread has read the first bytes from it.
    pub fn heard(&self) {
        self.heard.store(true, Ordering::SeqCst);
    }

    /// The client has sent bytes its thread has not read yet (not merely
    /// closed: a crowd closes as fast as it connects).
    fn unread_bytes(&self) -> bool {
        use rustix::net::{RecvFlags, recv};
        let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        matches!(recv(&self.stream, &mut [0u8; 1], flags), Ok((n, _)) if n > 0)
    }

    /// A WebSocket's loop: woken by [`Slots::revoke`].
    pub fn set_waker(&self, waker: Arc<Waker>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }
}

/// The read side of a slotted connection, shared by the front door and the
/// proxy child: a read marks the slot heard, and waiting for more settles
/// it, which decides who gives way first when strangers crowd in.
pub(crate) struct SlotReader {
    pub(crate) stream: TcpStream,
    /// Bytes read past the last request.
    pub(crate) pending: Vec<u8>,
    pub(crate) slot: Arc<Slot>,
    /// A read has returned bytes.
    pub(crate) started: bool,
}

impl SlotReader {
    pub(crate) fn new(stream: TcpStream, slot: Arc<Slot>) -> SlotReader {
        SlotReader { stream, pending: Vec::new(), slot, started: false }
    }

    /// One read into `pending`, waiting until `deadline` at most (408 past
    /// it); the number of bytes read, 0 at the end of the stream.
    pub(crate) fn fill(&mut self, deadline: Instant) -> Result<usize, u16> {
        let mut chunk = [0u8; 16 * 1024];
        // Waiting for more than the first read brought, or for a first byte
        // that is not there yet: a connection like any other now (the
        // owner's sends its request at once). A silent one that stayed
        // "not yet read" would rank with the owner's brand-new connection,
        // and a crowd of them reconnecting fast would close it unread.
        if self.started || !self.bytes_waiting() {
            self.slot.settle();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(408);
            }
            // The socket may be shared with a thread that only writes; the
            // timeout applies to reads alone.
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    if n > 0 && !self.started {
                        self.started = true;
                        self.slot.heard();
                    }
                    self.pending.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return Ok(0),
            }
        }
    }

    /// Whether the client has sent something not read yet (or closed).
    fn bytes_waiting(&self) -> bool {
        use rustix::net::{RecvFlags, recv};
        let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        !matches!(recv(&self.stream, &mut [0u8; 1], flags), Err(rustix::io::Errno::AGAIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair: the server's end (for a slot) and the client's.
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    /// True when the server closed the client's connection.
    fn closed(client: &mut TcpStream) -> bool {
        client.set_read_timeout(Some(std::time::Duration::from_millis(50))).unwrap();
        matches!(client.read(&mut [0u8; 1]), Ok(0))
    }

    /// Fills the stranger pool with settled connections, oldest first: each
    /// one's slot, server end and client end.
    fn full_pool(listener: &TcpListener, slots: &Slots) -> Vec<(Arc<Slot>, TcpStream, TcpStream)> {
        let mut conns = Vec::new();
        for _ in 0..STRANGER_POOL {
            let (server, client) = pair(listener);
            let slot = slots.take(&server).unwrap();
            slot.settle();
            conns.push((slot, server, client));
        }
        conns
    }

    #[test]
    fn strangers_give_way_oldest_first_and_the_trusted_stay() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::default();
        let mut conns = full_pool(&listener, &slots);
        // One trusted: it leaves the pool.
        let generation = slots.generation();
        assert!(slots.trust(&conns[0].0, generation));
        // A newcomer not yet read, then another: the oldest stranger read
        // goes each time, never the trusted one nor the unread newcomer.
        let (s1, mut c1) = pair(&listener);
        let unread = slots.take(&s1).unwrap();
        assert_eq!(slots.count(), STRANGER_POOL + 1);
        assert!(!closed(&mut conns[0].2), "the trusted connection stays");
        let (s2, _c2) = pair(&listener);
        slots.take(&s2).unwrap();
        assert!(closed(&mut conns[1].2), "the oldest stranger went");
        assert!(!closed(&mut c1), "the newcomer not yet read stays");
        assert!(!unread.trusted());
        // A rotation makes the trusted one a stranger again.
        slots.revoke();
        assert!(!conns[0].0.trusted());
        assert!(slots.trust(&conns[0].0, slots.generation()));
        // A slot already given back cannot be trusted.
        slots.give_back(&conns[2].0);
        assert!(!slots.trust(&conns[2].0, slots.generation()));
    }

    #[test]
    fn a_stranger_with_a_request_waiting_unread_goes_last() {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::default();
        let mut conns = full_pool(&listener, &slots);
        // The oldest has sent a request its thread has not read yet (a
        // loaded machine); the next oldest is silent.
        conns[0].2.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        conns[0].1.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        assert!(conns[0].1.peek(&mut [0u8; 1]).unwrap() > 0, "the bytes arrived");
        let (s1, _c1) = pair(&listener);
        slots.take(&s1).unwrap();
        assert!(!closed(&mut conns[0].2), "the one with a request waiting stays");
        assert!(closed(&mut conns[1].2), "the silent one went");
    }

    thread_local! {
        /// The client ports of connections that pretend to be another uid's,
        /// and how many times the pretend lookup was asked.
        static THEIRS: std::cell::RefCell<(Vec<u16>, usize)> = Default::default();
    }

    /// [`Slots::ours`] for tests: ours unless its client port is in
    /// `THEIRS`.
    fn pretend(stream: &TcpStream) -> bool {
        let port = stream.peer_addr().unwrap().port();
        THEIRS.with(|t| {
            let mut t = t.borrow_mut();
            t.1 += 1;
            !t.0.contains(&port)
        })
    }

    /// A connected pair whose client pretends to be another uid's.
    fn theirs(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let (server, client) = pair(listener);
        THEIRS.with(|t| t.borrow_mut().0.push(client.local_addr().unwrap().port()));
        (server, client)
    }

    fn lookups() -> usize {
        THEIRS.with(|t| t.borrow().1)
    }

    #[test]
    fn another_uids_newcomers_never_close_a_connection_of_ours() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots { ours: pretend, ..Slots::default() };
        // The oldest is ours and silent (a client descheduled before its
        // first write); the rest of the pool is another uid's crowd.
        let (s0, mut c0) = pair(&listener);
        let mine = slots.take(&s0).unwrap();
        mine.settle();
        let mut crowd = Vec::new();
        for _ in 1..STRANGER_POOL {
            let (server, client) = theirs(&listener);
            let slot = slots.take(&server).unwrap();
            slot.settle();
            crowd.push((slot, server, client));
        }
        assert_eq!(lookups(), 0, "nobody is asked while the pool has room");
        // The crowd reconnects many times over: each newcomer closes one of
        // the crowd, never ours, and costs one lookup.
        for round in 0..3 * STRANGER_POOL {
            let (server, client) = theirs(&listener);
            let slot = slots.take(&server).unwrap();
            slot.settle();
            crowd.push((slot, server, client));
            assert_eq!(lookups(), round + 2, "ours is asked once, then one of the crowd each");
        }
        assert!(!closed(&mut c0), "ours stays");
        assert!(closed(&mut crowd[0].2), "the crowd's oldest went");
        assert_eq!(slots.count(), STRANGER_POOL);
    }

    #[test]
    fn with_only_ours_to_give_way_another_uids_newcomer_is_turned_away() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots { ours: pretend, ..Slots::with_limits(MAX_TRUSTED, 2) };
        let mut mine = Vec::new();
        for _ in 0..2 {
            let (server, client) = pair(&listener);
            let slot = slots.take(&server).unwrap();
            slot.settle();
            mine.push((slot, server, client));
        }
        let (s1, _c1) = theirs(&listener);
        assert!(slots.take(&s1).is_none(), "turned away");
        assert!(!closed(&mut mine[0].2) && !closed(&mut mine[1].2), "ours stay");
        // A newcomer of ours closes the oldest of ours, as before.
        let (s2, _c2) = pair(&listener);
        slots.take(&s2).unwrap();
        assert!(closed(&mut mine[0].2), "the oldest of ours went");
        assert!(!closed(&mut mine[1].2));
    }

    #[test]
    fn trusted_slots_are_capped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::default();
        let mut kept = Vec::new();
        for i in 0..=MAX_TRUSTED {
            let (server, client) = pair(&listener);
            let slot = slots.take(&server).unwrap();
            assert_eq!(slots.trust(&slot, slots.generation()), i < MAX_TRUSTED, "{i}");
            kept.push((slot, server, client));
        }
    }
}
