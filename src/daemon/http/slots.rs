//! The front door's connection slots: at most [`MAX_CONNECTIONS`] open at
//! once, counted for status replies.
//!
//! A full house must not lock out the user: any local program can open
//! connections without the token, send one request each and sit on them.
//! So when every slot is taken, the connection that has waited longest
//! between requests *without ever showing the token* is closed to make room
//! for the newcomer. Connections that showed the token (the CLI, the web UI
//! once signed in, WebSockets, which need it to upgrade) are never evicted;
//! only when all slots are theirs or busy does a newcomer get 503.
//!
//! Added to by the accept thread; each connection's thread marks its own
//! slot (idle, trusted) and gives it back when it ends.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Open connections at most.
pub const MAX_CONNECTIONS: usize = 128;

#[derive(Default, Debug)]
pub struct Slots {
    open: Mutex<Vec<Arc<Slot>>>,
}

/// One open connection.
#[derive(Debug)]
pub struct Slot {
    /// A handle on the connection's socket, to close it from outside.
    stream: TcpStream,
    /// It has sent a request with the right token.
    trusted: AtomicBool,
    /// Since when it has been waiting for its next request (`None`: a
    /// request is being read or served).
    idle_since: Mutex<Option<Instant>>,
}

impl Slots {
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// A slot for a new connection, or `None` (answer 503): at the cap, the
    /// untrusted connection idle the longest is shut down to make room.
    pub fn take(&self, stream: &TcpStream) -> Option<Arc<Slot>> {
        let handle = stream.try_clone().ok()?;
        let mut open = self.lock();
        if open.len() >= MAX_CONNECTIONS {
            let oldest = open
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.trusted())
                .filter_map(|(i, s)| Some((i, (*s.idle())?)))
                .min_by_key(|&(_, since)| since)
                .map(|(i, _)| i)?;
            let evicted = open.swap_remove(oldest);
            // Its thread sees the end of its stream and ends; the slot is
            // already gone from the count.
            let _ = evicted.stream.shutdown(Shutdown::Both);
            crate::debug!("http: closed an idle connection without the token to make room");
        }
        let slot = Arc::new(Slot {
            stream: handle,
            trusted: AtomicBool::new(false),
            idle_since: Mutex::new(None),
        });
        open.push(slot.clone());
        Some(slot)
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
    pub fn trust(&self) {
        self.trusted.store(true, Ordering::Relaxed);
    }

    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Relaxed)
    }

    /// Marks the connection waiting for its next request, or not.
    pub fn set_idle(&self, idle: bool) {
        *self.idle() = idle.then(Instant::now);
    }

    fn idle(&self) -> MutexGuard<'_, Option<Instant>> {
        self.idle_since.lock().unwrap_or_else(|p| p.into_inner())
    }
}
