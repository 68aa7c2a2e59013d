//! The daemon's event bus: code paths emit typed events, subscribers (IPC
//! `Subscribe` connections and `/ws` clients) receive them as ready-made
//! JSON lines. A subscriber on an event loop gives a waker, rung after each
//! event it is sent, so it sleeps until there is something to do.
//!
//! Emitting never blocks: each subscriber has a bounded queue and one that
//! falls [`QUEUE_BOUND`] events behind is dropped (its connection then ends),
//! so a stalled client cannot delay the code that emits or any other client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use mio::Waker;
use serde_json::Value;

use crate::protocol::EventFrame;

/// Events a subscriber may lag behind before it is dropped. Large enough for
/// bursts (detection of every agent, a usage scan), small enough that a
/// stalled client holds little memory.
pub const QUEUE_BOUND: usize = 256;

/// Every event type of design.md §5. Each is emitted by the code path that
/// its name describes; the ones whose code paths arrive in later issues are
/// listed so that subscribe filters can name them today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ProfileCreated,
    ProfileUpdated,
    ProfileDeleted,
    ProfileStarted,
    ProfileStopped,
    AgentDetected,
    AgentUpdated,
    RegistrySyncStarted,
    RegistrySyncCompleted,
    RegistrySyncFailed,
    /// A registry sync's artifacts and bytes so far (at most every 100 ms).
    RegistrySyncProgress,
    ProxyStarted,
    ProxyStopped,
    ProxyError,
    ProxyBudgetWarning,
    ProxyBudgetExceeded,
    UsageUpdated,
    UsageImported,
    DaemonStarted,
    DaemonShuttingDown,
    TerminalSessionCreated,
    TerminalSessionEnded,
    /// A session's agent went from working to waiting for the user, or
    /// back (`OSC 7501` program status).
    TerminalStateChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 23] = [
        EventKind::ProfileCreated,
        EventKind::ProfileUpdated,
        EventKind::ProfileDeleted,
        EventKind::ProfileStarted,
        EventKind::ProfileStopped,
        EventKind::AgentDetected,
        EventKind::AgentUpdated,
        EventKind::RegistrySyncStarted,
        EventKind::RegistrySyncCompleted,
        EventKind::RegistrySyncFailed,
        EventKind::RegistrySyncProgress,
        EventKind::ProxyStarted,
        EventKind::ProxyStopped,
        EventKind::ProxyError,
        EventKind::ProxyBudgetWarning,
        EventKind::ProxyBudgetExceeded,
        EventKind::UsageUpdated,
        EventKind::UsageImported,
        EventKind::DaemonStarted,
        EventKind::DaemonShuttingDown,
        EventKind::TerminalSessionCreated,
        EventKind::TerminalSessionEnded,
        EventKind::TerminalStateChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProfileCreated => "ProfileCreated",
            EventKind::ProfileUpdated => "ProfileUpdated",
            EventKind::ProfileDeleted => "ProfileDeleted",
            EventKind::ProfileStarted => "ProfileStarted",
            EventKind::ProfileStopped => "ProfileStopped",
            EventKind::AgentDetected => "AgentDetected",
            EventKind::AgentUpdated => "AgentUpdated",
            EventKind::RegistrySyncStarted => "RegistrySyncStarted",
            EventKind::RegistrySyncCompleted => "RegistrySyncCompleted",
            EventKind::RegistrySyncFailed => "RegistrySyncFailed",
            EventKind::RegistrySyncProgress => "RegistrySyncProgress",
            EventKind::ProxyStarted => "ProxyStarted",
            EventKind::ProxyStopped => "ProxyStopped",
            EventKind::ProxyError => "ProxyError",
            EventKind::ProxyBudgetWarning => "ProxyBudgetWarning",
            EventKind::ProxyBudgetExceeded => "ProxyBudgetExceeded",
            EventKind::UsageUpdated => "UsageUpdated",
            EventKind::UsageImported => "UsageImported",
            EventKind::DaemonStarted => "DaemonStarted",
            EventKind::DaemonShuttingDown => "DaemonShuttingDown",
            EventKind::TerminalSessionCreated => "TerminalSessionCreated",
            EventKind::TerminalSessionEnded => "TerminalSessionEnded",
            EventKind::TerminalStateChanged => "TerminalStateChanged",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The receiving end of one subscription: JSON lines, one per event.
#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub rx: Receiver<Arc<str>>,
}

struct Subscriber {
    id: u64,
    /// Empty means every kind.
    filter: Vec<EventKind>,
    tx: SyncSender<Arc<str>>,
    /// Rung after every send to this subscriber, and when it is dropped.
    waker: Option<Arc<Waker>>,
}

/// Shared by every thread that emits (IPC handlers, detection, the main
/// thread at start and shutdown) and every subscriber connection thread.
#[derive(Default)]
pub struct EventBus {
    /// Touched under the lock only to add, remove and fan out; never held
    /// while blocking, since sends are `try_send`.
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
}

impl EventBus {
    /// Subscribes to the named kinds (all when empty). Unknown names are an
    /// error that lists them.
    pub fn subscribe(&self, names: &[String]) -> Result<Subscription, String> {
        self.subscribe_woken(names, None)
    }

    /// [`EventBus::subscribe`], ringing `waker` whenever an event is queued
    /// for this subscriber.
    pub fn subscribe_woken(
        &self,
        names: &[String],
        waker: Option<Arc<Waker>>,
    ) -> Result<Subscription, String> {
        let mut filter = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match EventKind::parse(name) {
                Some(kind) => filter.push(kind),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            return Err(format!("unknown event type(s): {}", unknown.join(", ")));
        }
        let (tx, rx) = sync_channel(QUEUE_BOUND);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Subscriber { id, filter, tx, waker });
        Ok(Subscription { id, rx })
    }

    pub fn unsubscribe(&self, id: u64) {
        self.lock().retain(|s| s.id != id);
    }

    pub fn subscriber_count(&self) -> usize {
        self.lock().len()
    }

    /// Sends an event to every interested subscriber, dropping the ones whose
    /// queue is full or whose connection is gone.
    pub fn emit(&self, kind: EventKind, data: Value) {
        let frame =
            EventFrame { kind: kind.as_str().into(), timestamp: crate::time::now_rfc3339(), data };
        let line: Arc<str> = match serde_json::to_string(&frame) {
            Ok(s) => s.into(),
            Err(e) => {
                crate::error!("encoding {} event: {e}", kind.as_str());
                return;
            }
        };
        crate::debug!("event {line}");
        self.lock().retain(|s| {
            if !s.filter.is_empty() && !s.filter.contains(&kind) {
                return true;
            }
            let kept = match s.tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    crate::warn!("dropping event subscriber {}: {QUEUE_BOUND} events behind", s.id);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            };
            if let Some(waker) = &s.waker {
                let _ = waker.wake();
            }
            kept
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("Nope"), None);
    }

    #[test]
    fn filters_and_frames() {
        let bus = EventBus::default();
        let all = bus.subscribe(&[]).unwrap();
        let some = bus.subscribe(&["AgentDetected".into()]).unwrap();
        assert!(bus.subscribe(&["Bogus".into()]).unwrap_err().contains("Bogus"));
        bus.emit(EventKind::DaemonStarted, json!({"pid": 1}));
        bus.emit(EventKind::AgentDetected, json!({"id": "claude"}));
        let first: EventFrame = serde_json::from_str(&all.rx.try_recv().unwrap()).unwrap();
        assert_eq!(first.kind, "DaemonStarted");
        assert!(first.timestamp.ends_with('Z'));
        assert_eq!(all.rx.try_iter().count(), 1);
        let only: EventFrame = serde_json::from_str(&some.rx.try_recv().unwrap()).unwrap();
        assert_eq!(only.kind, "AgentDetected");
        assert_eq!(only.data, json!({"id": "claude"}));
    }

    #[test]
    fn a_stalled_subscriber_is_dropped_and_others_keep_receiving() {
        let bus = EventBus::default();
        let stalled = bus.subscribe(&[]).unwrap();
        let live = bus.subscribe(&[]).unwrap();
        for i in 0..QUEUE_BOUND + 10 {
            bus.emit(EventKind::UsageUpdated, json!(i));
            // The live subscriber keeps up.
            assert!(live.rx.try_recv().is_ok());
        }
        assert_eq!(bus.subscriber_count(), 1);
        assert_eq!(stalled.rx.try_iter().count(), QUEUE_BOUND);
        drop(live);
        bus.emit(EventKind::UsageUpdated, json!(0));
        assert_eq!(bus.subscriber_count(), 0);
    }
}
