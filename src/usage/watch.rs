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

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long events are collected before a scan.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Safety-net full scan interval when inotify works.
const RESCAN: Duration = Duration::from_secs(30);
/// Scan interval without inotify.
const POLL: Duration = Duration::from_secs(1);

/// What a scan tells the watcher to watch next.
#[derive(Debug, Default)]
pub struct WatchSet {
    /// Directories with log files (or that may get some).
    pub dirs: Vec<PathBuf>,
    /// Directories watched only for a root being created in them.
    pub ancestors: Vec<PathBuf>,
}

/// Runs until `stop()` says so. `scan` scans and returns the new watch set
/// (`None` when the scan failed; the previous set is kept).
pub fn run(stop: &dyn Fn() -> bool, scan: &mut dyn FnMut() -> Option<WatchSet>) {
    #[cfg(target_os = "linux")]
    {
        match inotify::Watches::new() {
            Ok(watches) => return inotify::run(watches, stop, scan),
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
    use std::time::Instant;

    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use super::{DEBOUNCE, POLL, RESCAN, WatchSet};

    pub struct Watches {
        fd: OwnedFd,
        /// Path -> (watch descriptor, watched as a log dir).
        wds: HashMap<PathBuf, (i32, bool)>,
        /// Set when the kernel ran out of watches: poll from then on.
        exhausted: bool,
    }

    impl Watches {
        pub fn new() -> rustix::io::Result<Watches> {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            Ok(Watches { fd, wds: HashMap::new(), exhausted: false })
        }

        /// Makes the watch set match `set`; whether it added a watch.
        fn update(&mut self, set: WatchSet) -> bool {
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
                if self.wds.get(&path).is_some_and(|(_, l)| *l == is_log) {
                    continue;
                }
                let flags = if is_log { logs } else { creation };
                match inotify::add_watch(&self.fd, &path, flags) {
                    Ok(wd) => {
                        self.wds.insert(path, (wd, is_log));
                        added = true;
                    }
                    Err(Errno::NOSPC) if !self.exhausted => {
                        crate::warn!(
                            "usage watcher: out of inotify watches (fs.inotify.max_user_watches); \
                             polling every {} s",
                            POLL.as_secs()
                        );
                        self.exhausted = true;
                    }
                    // Deleted since the scan: the next scan catches up.
                    Err(_) => {}
                }
            }
            added
        }

        /// Reads and discards every queued event; returns whether any came.
        fn drain(&self) -> bool {
            let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
            let mut any = false;
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
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
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let ts = Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
        }
    }

    pub fn run(
        mut watches: Watches,
        stop: &dyn Fn() -> bool,
        scan: &mut dyn FnMut() -> Option<WatchSet>,
    ) {
        let mut last_scan = Instant::now();
        // A directory gets its watch only after the scan that found it, so
        // whatever was written there in between raised no event: a scan
        // that added a watch is followed by another one at once (a new
        // profile's log dir is created, and written to, within a second).
        let mut again = scan().is_some_and(|set| watches.update(set));
        while !stop() {
            // Wake at least once a second to notice shutdown.
            let woke = !again && watches.wait(POLL);
            if stop() {
                break;
            }
            let due = if watches.exhausted { POLL } else { RESCAN };
            if !again {
                if woke {
                    std::thread::sleep(DEBOUNCE);
                    if !watches.drain() && last_scan.elapsed() < due {
                        continue;
                    }
                } else if last_scan.elapsed() < due {
                    continue;
                }
            }
            again = scan().is_some_and(|set| watches.update(set));
            last_scan = Instant::now();
        }
    }
}
