//! Live usage updates: the watcher thread runs a scan whenever an agent
//! writes to a log dir, so UsageUpdated reaches subscribers within a second
//! or two of the line being written.
//!
//! Linux uses inotify (through rustix): every directory under the scan roots
//! is watched for created, modified and moved-in files, and for a root that
//! does not exist yet (a profile that never ran) its nearest existing
//! ancestor is watched for the root's creation. inotify is not recursive, so
//! each scan reports the directories it walked and the watch set follows.
//! Writes come in bursts (one line per content block), so events are
//! debounced briefly before scanning. A full scan also runs every
//! [`RESCAN`], which picks up new profiles and anything a watch missed.
//! Elsewhere, or when inotify is unavailable or out of watches, the loop
//! polls with a scan every [`POLL`] (a scan of unchanged files is one `stat`
//! each).
//!
//! [`Freshness`] lets a usage request skip its own scan: when inotify
//! watches everything the last scan read and no event has been queued
//! since, nothing changed, and the store already holds the answer.

use std::path::PathBuf;
#[cfg(target_os = "linux")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long events are collected before a scan.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Safety-net full scan interval when inotify works.
const RESCAN: Duration = Duration::from_secs(30);
/// The most inotify watches the watcher takes. They come out of the
/// user's own budget (`fs.inotify.max_user_watches`, 8192 on older
/// kernels), shared with their editor and file manager, and an agent can
/// make any number of directories in its profile's log root. Past this the
/// rest is not watched, and reports scan for themselves.
#[cfg(target_os = "linux")]
const MAX_WATCHES: usize = 4096;
/// Scan interval without inotify.
const POLL: Duration = Duration::from_secs(1);

/// What a scan tells the watcher to watch next.
#[derive(Debug, Default)]
pub struct WatchSet {
    /// Directories with log files (or that may get some).
    pub dirs: Vec<PathBuf>,
    /// Directories watched only for a root being created in them.
    pub ancestors: Vec<PathBuf>,
    /// Some of what was scanned changes without an event in these
    /// directories (see `scan::Outcome::unwatched`).
    pub unwatched: bool,
}

/// Whether the logs are known unchanged since the watcher's last scan.
///
/// The kernel queues an inotify event inside the write that causes it, so
/// once an agent's write returns, either its event is queued on the fd, or
/// the watcher has taken it and is scanning. A request that sees neither,
/// with a watch on everything the last scan read, may skip its own scan.
/// `seq` is odd while the watcher is between taking events and finishing
/// the scan they call for; a request reads it on both sides of its look at
/// the fd, so a scan that started in between is noticed (a seqlock).
#[derive(Default)]
pub struct Freshness {
    seq: AtomicU64,
    /// The last scan succeeded and every directory it read is watched.
    covered: AtomicBool,
    #[cfg(target_os = "linux")]
    fd: OnceLock<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl Freshness {
    /// True only when nothing can have changed since the last scan; false
    /// whenever in doubt (no inotify, events pending, a scan under way).
    pub fn unchanged(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            let Some(fd) = self.fd.get() else { return false };
            let before = self.seq.load(Ordering::SeqCst);
            if before % 2 == 1 || !self.covered.load(Ordering::SeqCst) {
                return false;
            }
            !inotify::readable(fd, Duration::ZERO) && self.seq.load(Ordering::SeqCst) == before
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// The watcher is about to take events and scan.
    fn begin(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// The scan is over; `covered` says whether its watches cover it all.
    fn end(&self, covered: bool) {
        self.covered.store(covered, Ordering::SeqCst);
        self.seq.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs until `stop()` says so. `scan` scans and returns the new watch set
/// (`None` when the scan failed; the previous set is kept).
pub fn run(stop: &dyn Fn() -> bool, scan: &mut dyn FnMut() -> Option<WatchSet>, fresh: &Freshness) {
    #[cfg(target_os = "linux")]
    {
        match inotify::Watches::new() {
            Ok(watches) => return inotify::run(watches, stop, scan, fresh),
            Err(e) => crate::warn!("usage watcher: inotify unavailable ({e}); polling instead"),
        }
    }
    poll(stop, scan);
}

/// The fallback: scan every [`POLL`].
fn poll(stop: &dyn Fn() -> bool, scan: &mut dyn FnMut() -> Option<WatchSet>) {
    let mut last = Instant::now() - POLL;
    while !stop() {
        if last.elapsed() >= POLL {
            scan();
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(target_os = "linux")]
mod inotify {
    use std::collections::HashMap;
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Instant;

    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use std::sync::atomic::Ordering;

    use super::{DEBOUNCE, Freshness, MAX_WATCHES, POLL, RESCAN, WatchSet};

    pub struct Watches {
        fd: Arc<OwnedFd>,
        /// Path -> (watch descriptor, watched as a log dir).
        wds: HashMap<PathBuf, (i32, bool)>,
        /// Set when the kernel ran out of watches: poll from then on.
        exhausted: bool,
    }

    impl Watches {
        pub fn new() -> rustix::io::Result<Watches> {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            Ok(Watches { fd: Arc::new(fd), wds: HashMap::new(), exhausted: false })
        }

        /// Makes the watch set match `set`. Returns whether it added a
        /// watch, and whether every directory in `set` is now watched.
        fn update(&mut self, set: WatchSet) -> (bool, bool) {
            let mut complete = !set.unwatched;
            let logs = WatchFlags::CREATE
                | WatchFlags::MODIFY
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::MOVED_TO
                | WatchFlags::ONLYDIR;
            let creation = WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::ONLYDIR;
            let mut wanted: HashMap<PathBuf, bool> = HashMap::new();
            for dir in set.ancestors {
                wanted.insert(dir, false);
            }
            for dir in set.dirs {
                wanted.insert(dir, true);
            }
            if wanted.len() > MAX_WATCHES {
                // The shallowest first: roots and their ancestors before
                // whatever an agent piled up below them.
                let mut all: Vec<(PathBuf, bool)> = wanted.into_iter().collect();
                all.sort_by_cached_key(|(path, _)| (path.components().count(), path.clone()));
                all.truncate(MAX_WATCHES);
                wanted = all.into_iter().collect();
                complete = false;
            }
            self.wds.retain(|path, (wd, _)| {
                let keep = wanted.contains_key(path);
                if !keep {
                    // Already gone when the directory was deleted.
                    let _ = inotify::remove_watch(&self.fd, *wd);
                }
                keep
            });
            let mut added = false;
            for (path, is_log) in wanted {
                // Every time, not only for a path without a watch: a
                // directory replaced at the same path (moved away, made
                // anew) is another inode, which gets a watch of its own;
                // the same inode gives back its watch (MASK_ADD: with the
                // flags it had, plus these).
                let flags = if is_log { logs } else { creation };
                match inotify::add_watch(&self.fd, &path, flags | WatchFlags::MASK_ADD) {
                    Ok(wd) => {
                        let old = self.wds.insert(path, (wd, is_log));
                        if old == Some((wd, is_log)) {
                            continue;
                        }
                        added = true;
                        // The replaced directory's watch, unless another
                        // path still reaches the same directory.
                        if let Some((old, _)) = old
                            && old != wd
                            && !self.wds.values().any(|(w, _)| *w == old)
                        {
                            let _ = inotify::remove_watch(&self.fd, old);
                        }
                    }
                    Err(Errno::NOSPC) if !self.exhausted => {
                        crate::warn!(
                            "usage watcher: out of inotify watches (fs.inotify.max_user_watches); \
                             polling every {} s",
                            POLL.as_secs()
                        );
                        self.exhausted = true;
                        complete = false;
                    }
                    // Deleted since the scan (its parent's watch saw that),
                    // or out of watches: not vouched for.
                    Err(_) => complete = false,
                }
            }
            (added, complete && !self.exhausted)
        }

        /// Reads and discards every queued event; returns whether any came.
        fn drain(&self) -> bool {
            let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
            let mut any = false;
            let mut reader = inotify::Reader::new(&*self.fd, &mut buf);
            loop {
                match reader.next() {
                    Ok(event) => {
                        any |= !event.events().contains(ReadFlags::IGNORED);
                    }
                    Err(_) => return any,
                }
            }
        }

        /// Waits up to `timeout` for events.
        fn wait(&self, timeout: std::time::Duration) -> bool {
            readable(&self.fd, timeout)
        }
    }

    /// Whether an event is queued on `fd` within `timeout` (zero: now). A
    /// failed poll counts as yes: in doubt, scan.
    pub fn readable(fd: &OwnedFd, timeout: std::time::Duration) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        !matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(0))
    }

    pub fn run(
        mut watches: Watches,
        stop: &dyn Fn() -> bool,
        scan: &mut dyn FnMut() -> Option<WatchSet>,
        fresh: &Freshness,
    ) {
        let _ = fresh.fd.set(watches.fd.clone());
        let mut last_scan = Instant::now();
        // A directory gets its watch only after the scan that found it, so
        // whatever was written there in between raised no event: a scan
        // that added a watch is followed by another one at once (a new
        // profile's log dir is created, and written to, within a second).
        // Until that one finds nothing new, the scan is not vouched for.
        let mut scan_and_watch = |watches: &mut Watches| {
            let (added, complete) = match scan() {
                Some(set) => watches.update(set),
                None => (false, false),
            };
            fresh.end(complete && !added);
            added
        };
        fresh.begin();
        let mut again = scan_and_watch(&mut watches);
        while !stop() {
            // Wake at least once a second to notice shutdown.
            let woke = !again && watches.wait(POLL);
            if stop() {
                break;
            }
            let due = if watches.exhausted { POLL } else { RESCAN };
            if !again && !woke && last_scan.elapsed() < due {
                continue;
            }
            if woke {
                std::thread::sleep(DEBOUNCE);
            }
            // From here until the scan ends, what the events were about may
            // not be in the store yet.
            fresh.begin();
            if woke && !watches.drain() && last_scan.elapsed() < due {
                // Only IGNORED (a watched directory went away): nothing new.
                fresh.end(fresh.covered.load(Ordering::SeqCst));
                continue;
            }
            again = scan_and_watch(&mut watches);
            last_scan = Instant::now();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// The watcher's own loop over a real inotify watch, with a slow scan
    /// so that a report could land while events are being taken or read:
    /// `unchanged()` must never say yes before the scan that follows a
    /// write has finished.
    #[test]
    fn unchanged_waits_for_the_scan_after_a_write() {
        let dir = std::env::temp_dir().join(format!("ringlet-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = Arc::new(Freshness::default());
        assert!(!fresh.unchanged(), "nothing is vouched for before the first scan");
        let stop = Arc::new(AtomicBool::new(false));
        let scans = Arc::new(AtomicU64::new(0));
        let watcher = {
            let (fresh, stop, scans, dir) =
                (fresh.clone(), stop.clone(), scans.clone(), dir.clone());
            std::thread::spawn(move || {
                let mut scan = || {
                    std::thread::sleep(Duration::from_millis(300));
                    scans.fetch_add(1, Ordering::SeqCst);
                    Some(WatchSet { dirs: vec![dir.clone()], ..WatchSet::default() })
                };
                run(&|| stop.load(Ordering::SeqCst), &mut scan, &fresh);
            })
        };
        let until = |what: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !what() {
                assert!(Instant::now() < deadline, "timed out");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // The first scan adds the watch, so a second one follows at once.
        until(&|| fresh.unchanged());
        assert_eq!(scans.load(Ordering::SeqCst), 2);

        for round in 1..=2 {
            let done = scans.load(Ordering::SeqCst);
            std::fs::write(dir.join(format!("log-{round}.jsonl")), "{}\n").unwrap();
            // Until the scan after the write is over, never unchanged.
            while !fresh.unchanged() {
                std::thread::sleep(Duration::from_micros(200));
            }
            assert_eq!(scans.load(Ordering::SeqCst), done + 1, "round {round}");
        }

        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
