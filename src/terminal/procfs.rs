//! The process table, read from `/proc` (Linux only): who is still in a
//! terminal session, and every descendant of a process. The daemon uses it
//! to end a session whole (`pty.rs`), the session helper to end what the
//! agent left behind (`helper.rs`). Signals are sent through a pidfd after
//! checking the process again, so a pid reused in between is left alone.

use std::collections::{BTreeMap, BTreeSet};

use rustix::process::{Pid, PidfdFlags, Signal};

/// A live process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// The state, parent, process group and session of a process.
fn stat(pid: i32) -> Option<(u8, Proc)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp session ..."; comm may hold anything.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, Proc { pid, ppid, pgrp, session }))
}

/// This process's group as its pid namespace shows it; none when that is
/// 0 (the group leader is outside the namespace).
pub fn own_group() -> Option<i32> {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    stat(me).map(|(_, p)| p.pgrp).filter(|&g| g > 0)
}

fn alive(state: u8) -> bool {
    !matches!(state, b'Z' | b'X' | b'x')
}

/// Every live (not zombie) process. Empty when /proc cannot be read.
pub fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| stat(pid).filter(|(state, _)| alive(*state)).map(|(_, p)| p))
        .collect()
}

/// The live processes of session `sid`.
pub fn members(sid: Pid) -> Vec<Proc> {
    let sid = sid.as_raw_nonzero().get();
    all().into_iter().filter(|p| p.session == sid).collect()
}

/// The live descendants of `root` in `table`, breadth first (children,
/// then grandchildren, ...), `root` not included.
pub fn descendants_in(table: &[Proc], root: i32) -> Vec<Proc> {
    let mut children: BTreeMap<i32, Vec<Proc>> = BTreeMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(*p);
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([root]);
    let mut parents = vec![root];
    // Breadth first: the shallowest come first.
    while !parents.is_empty() {
        let mut next = Vec::new();
        for parent in parents {
            for child in children.get(&parent).into_iter().flatten() {
                if seen.insert(child.pid) {
                    out.push(*child);
                    next.push(child.pid);
                }
            }
        }
        parents = next;
    }
    out
}

/// The live descendants of `root`.
pub fn descendants(root: Pid) -> Vec<Proc> {
    descendants_in(&all(), root.as_raw_nonzero().get())
}

/// Whether process `pid` runs the same executable file as this process
/// (compared by device and inode, which hold across mount namespaces and
/// bind mounts: Ringlet's binary bound into a sandbox is the same file).
pub fn runs_this_binary(pid: i32) -> bool {
    let id = |path: &str| rustix::fs::stat(path).ok().map(|s| (s.st_dev, s.st_ino));
    let this = id("/proc/self/exe");
    this.is_some() && id(&format!("/proc/{pid}/exe")) == this
}

/// Sends `sig` to `pid` if `still` holds for it once it is pinned with a
/// pidfd (the check and the signal then concern the same process).
pub fn signal_if(pid: i32, sig: Signal, still: impl Fn(&Proc) -> bool) {
    let Some(target) = Pid::from_raw(pid) else { return };
    match rustix::process::pidfd_open(target, PidfdFlags::empty()) {
        Ok(pidfd) => {
            if stat(pid).is_some_and(|(state, p)| alive(state) && still(&p)) {
                let _ = rustix::process::pidfd_send_signal(&pidfd, sig);
            }
        }
        // Kernels before 5.3: no pidfds, a plain kill after the check.
        Err(rustix::io::Errno::NOSYS) => {
            if stat(pid).is_some_and(|(state, p)| alive(state) && still(&p)) {
                let _ = rustix::process::kill_process(target, sig);
            }
        }
        Err(_) => {}
    }
}

/// SIGKILLs every live process of session `sid`.
pub fn kill_session(sid: Pid) {
    let raw_sid = sid.as_raw_nonzero().get();
    for member in members(sid) {
        signal_if(member.pid, Signal::KILL, |p| p.session == raw_sid);
    }
}

/// Sends `sig` to every descendant of `root` but those in `spare`, each
/// checked to still have a parent that is `root` or one of the descendants
/// found. Returns how many it signalled.
pub fn signal_descendants(root: Pid, sig: Signal, spare: &[i32]) -> usize {
    let found = descendants(root);
    let mut family: BTreeSet<i32> = found.iter().map(|p| p.pid).collect();
    family.insert(root.as_raw_nonzero().get());
    let mut sent = 0;
    for p in found.iter().filter(|p| !spare.contains(&p.pid)) {
        signal_if(p.pid, sig, |now| family.contains(&now.ppid));
        sent += 1;
    }
    sent
}

/// SIGKILLs every descendant of `root` but those in `spare`, again and
/// again until none is left (what forks meanwhile is found in the next
/// round; orphans stay below `root` while it is their subreaper). Gives up
/// after `rounds`.
pub fn kill_descendants(root: Pid, spare: &[i32], rounds: usize) {
    for _ in 0..rounds {
        if signal_descendants(root, Signal::KILL, spare) == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32) -> Proc {
        Proc { pid, ppid, pgrp: pid, session: 1 }
    }

    #[test]
    fn descendants_follow_the_parents() {
        let table = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10), p(14, 13)];
        let mut found: Vec<i32> = descendants_in(&table, 10).iter().map(|p| p.pid).collect();
        found.sort();
        assert_eq!(found, [11, 12, 13, 14]);
        assert!(descendants_in(&table, 12).is_empty());
        // A loop in a torn read of the table ends.
        let table = [p(5, 6), p(6, 5)];
        assert_eq!(descendants_in(&table, 5).len(), 1);
    }

    #[test]
    fn this_process_is_in_the_table() {
        let me = std::process::id() as i32;
        let table = all();
        let this = table.iter().find(|p| p.pid == me).expect("this process");
        // The session id is 0 when the session leader lives outside this pid
        // namespace (as on CI machines), so only its parse is checked.
        assert!(this.ppid > 0 && this.session >= 0);
        let parent = Pid::from_raw(this.ppid).unwrap();
        assert!(descendants(parent).iter().any(|p| p.pid == me));
    }
}
