//! Who may talk to the HTTP front door: the bearer token (`<config>/http_token`),
//! compared in constant time, and the browser checks that stop other web
//! pages from reaching a localhost daemon (Host against DNS rebinding, Origin
//! on WebSocket upgrades).
//!
//! The token file is created with mode 0600 in the same `open` call that
//! creates it (never written first and chmod-ed after), kept across restarts,
//! and replaced only by `ringlet daemon token --rotate`.
//!
//! Browsers sign in with a login ticket ([`Tickets`]): `ringlet ui` asks for
//! one and puts it in the URL's fragment; the page trades it once, within a
//! minute, for a browser session token (`POST /api/login`; see
//! `daemon::browser`), never the daemon's own. A browser keeps whole URLs in
//! its history files, so only a spent ticket may ever land there. Every
//! bearer check takes either token ([`authorize`]).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::fsutil::{create_atomic, read_private, write_atomic};

/// 32 random bytes, hex: 256 bits.
const TOKEN_BYTES: usize = 32;

/// Reads the token, creating it (0600) on first use. The file is never
/// followed through a link: a link at its name (dangling, looping or not) or
/// anything but a regular file of ours is a clear error naming the path.
pub fn load_or_create(path: &Path) -> Result<String> {
    // Two rounds at most: a lost creation race means the file now exists.
    for _ in 0..2 {
        let read = read_private(path, 4096).with_context(|| {
            format!("reading the HTTP token (remove {} to get a new one)", path.display())
        })?;
        if let Some(bytes) = read {
            let text = String::from_utf8_lossy(&bytes);
            if valid(text.trim()) {
                return Ok(text.trim().to_string());
            }
            bail!(
                "{} is not a ringlet token; delete it or run `ringlet daemon token --rotate`",
                path.display()
            );
        }
        let token = fresh()?;
        // Appears whole or not at all, so a daemon killed here never leaves
        // an empty token file behind.
        if create_atomic(path, token.as_bytes(), 0o600)? {
            return Ok(token);
        }
        // Another daemon start won the race: use its token.
    }
    bail!("{} appeared and vanished twice while being created; try again", path.display())
}

/// Replaces the token; the old one stops working at once.
pub fn rotate(path: &Path) -> Result<String> {
    let token = fresh()?;
    write_atomic(path, token.as_bytes(), 0o600)?;
    Ok(token)
}

/// 256 random bits, hex (a token or a ticket).
fn fresh() -> Result<String> {
    crate::fsutil::random_hex(TOKEN_BYTES)
}

/// How long a login ticket stays valid: long enough to open a browser.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// Tickets outstanding at once; the oldest goes first beyond this.
const MAX_TICKETS: usize = 16;

/// One-time browser login tickets, in memory only (a restart voids them).
#[derive(Default)]
pub struct Tickets(Mutex<Vec<(String, Instant)>>);

impl Tickets {
    /// A new ticket, valid once within [`TICKET_TTL`].
    pub fn issue(&self) -> Result<String> {
        let ticket = fresh()?;
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < TICKET_TTL);
        if list.len() >= MAX_TICKETS {
            list.remove(0);
        }
        list.push((ticket.clone(), Instant::now()));
        Ok(ticket)
    }

    /// Spends `given`: true once for a live ticket, false ever after, and
    /// for unknown or expired ones. Every entry is compared in full, so the
    /// time taken says nothing about how close a guess was.
    pub fn redeem(&self, given: &str) -> bool {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < TICKET_TTL);
        let mut found = None;
        for (i, (ticket, _)) in list.iter().enumerate() {
            if same_token(given, ticket) {
                found = Some(i);
            }
        }
        found.map(|i| list.remove(i)).is_some()
    }
}

fn valid(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Who a bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// The daemon's own token (`<config>/http_token`).
    Daemon,
    /// A live browser session's.
    Browser(crate::daemon::browser::Live),
}

impl Bearer {
    /// The browser session's id, if it is one.
    pub fn session(&self) -> Option<&str> {
        match self {
            Bearer::Daemon => None,
            Bearer::Browser(live) => Some(&live.id),
        }
    }
}

/// The one bearer check (REST, `/ws`, `/ws/terminal/{id}`, the front
/// door's trust): the daemon's token, or a live browser session's (whose
/// use it records); `None` for anything else. Both compared in constant
/// time.
pub fn authorize(state: &crate::daemon::State, given: &str) -> Option<Bearer> {
    if same_token(given, &state.http_token()) {
        return Some(Bearer::Daemon);
    }
    state.browser.check(given).map(Bearer::Browser)
}

/// Compares in time that depends only on the lengths, never on where the
/// first difference is.
pub fn same_token(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in b.iter().enumerate() {
        diff |= x ^ a.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The token from `Authorization: Bearer <token>`.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The token from `Sec-WebSocket-Protocol: bearer, <token>` (browsers cannot
/// set headers on a WebSocket, only subprotocols).
pub fn subprotocol_token(protocols: Option<&str>) -> Option<&str> {
    let mut parts = protocols?.split(',').map(str::trim);
    match (parts.next(), parts.next()) {
        (Some(p), Some(token)) if p.eq_ignore_ascii_case("bearer") => Some(token),
        _ => None,
    }
}

/// Whether a login may come from the other end of `stream`: a loopback
/// client must be a socket of the daemon's own uid (Linux: looked up in
/// `/proc/net/tcp{,6}`; not found is no). `ringlet ui` hands the ticket to
/// the browser opener on its command line, which every local user can read
/// (`/proc/<pid>/cmdline`), so a ticket alone proves nothing on this
/// machine. A remote client (a non-loopback `http_bind`) and other systems
/// have no such table to ask and are let through, as before.
pub fn login_peer_allowed(stream: &std::net::TcpStream) -> bool {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return false };
    if !cfg!(target_os = "linux") || !peer.ip().to_canonical().is_loopback() {
        return true;
    }
    // A dual-stack listener sees a v4 client as `::ffff:127.0.0.1`; the
    // client's own socket is in the v4 table.
    let canonical =
        |a: std::net::SocketAddr| std::net::SocketAddr::new(a.ip().to_canonical(), a.port());
    socket_uid(canonical(peer), canonical(local)) == Some(rustix::process::geteuid().as_raw())
}

/// The uid owning the TCP socket at `addr` connected to `remote`, from the
/// kernel's socket table (`/proc/net/tcp`, `tcp6`).
fn socket_uid(addr: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<u32> {
    super::owner::connected_uid(&super::owner::table(), addr, remote)
}

/// The names the daemon answers to: its loopback names with its port (and
/// the configured bind address when it is not loopback). Anything else in
/// `Host` is a DNS-rebinding page and gets 403.
pub fn host_allowed(host: Option<&str>, bind: &str, port: u16) -> bool {
    let Some(host) = host else { return false };
    let host = host.trim().to_ascii_lowercase();
    let mut names = vec!["127.0.0.1".to_string(), "localhost".into(), "[::1]".into()];
    if !matches!(bind, "127.0.0.1" | "localhost" | "::1" | "0.0.0.0" | "::") {
        names.push(if bind.contains(':') { format!("[{bind}]") } else { bind.to_string() });
    }
    names.iter().any(|n| host == format!("{n}:{port}"))
}

/// An `Origin` on a WebSocket upgrade must be exactly one of the daemon's
/// own origins; absent (a non-browser client) is fine. Exact match: a
/// prefix test would let `http://localhost.evil.com` in.
pub fn origin_allowed(origin: Option<&str>, bind: &str, port: u16) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim().to_ascii_lowercase();
    origin.strip_prefix("http://").is_some_and(|host| host_allowed(Some(host), bind, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn token_file_is_private_kept_and_rotated() {
        let dir = std::env::temp_dir().join(format!("ringlet-token-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("http_token");
        let first = load_or_create(&path).unwrap();
        assert!(valid(&first));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), first, "kept across restarts");
        let second = rotate(&path).unwrap();
        assert_ne!(second, first);
        assert_eq!(load_or_create(&path).unwrap(), second);
        fs::write(&path, "not a token").unwrap();
        assert!(
            load_or_create(&path).is_err(),
            "a damaged file is an error, not silently replaced"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_ticket_is_spent_once() {
        let tickets = Tickets::default();
        let a = tickets.issue().unwrap();
        let b = tickets.issue().unwrap();
        assert!(valid(&a) && a != b);
        assert!(!tickets.redeem(""));
        assert!(!tickets.redeem(&a[..63]), "a prefix is not the ticket");
        assert!(tickets.redeem(&a));
        assert!(!tickets.redeem(&a), "a spent ticket fails");
        assert!(tickets.redeem(&b), "spending one leaves the others");
        // Expired ones fail (aged by hand rather than by waiting a minute).
        let c = tickets.issue().unwrap();
        tickets.0.lock().unwrap()[0].1 = Instant::now() - TICKET_TTL;
        assert!(!tickets.redeem(&c));
        // Only the newest MAX_TICKETS stay.
        let all: Vec<String> = (0..MAX_TICKETS + 1).map(|_| tickets.issue().unwrap()).collect();
        assert!(!tickets.redeem(&all[0]));
        assert!(tickets.redeem(&all[MAX_TICKETS]));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("abcd", "abc"));
        assert!(!same_token("", "abc"));
    }

    #[test]
    fn bearer_and_subprotocol() {
        assert_eq!(bearer(Some("Bearer xyz")), Some("xyz"));
        assert_eq!(bearer(Some("bearer  xyz ")), Some("xyz"));
        assert_eq!(bearer(Some("Basic xyz")), None);
        assert_eq!(bearer(None), None);
        assert_eq!(subprotocol_token(Some("bearer, xyz")), Some("xyz"));
        assert_eq!(subprotocol_token(Some("chat")), None);
    }

    #[test]
    fn host_and_origin_are_exact() {
        assert!(host_allowed(Some("127.0.0.1:8765"), "127.0.0.1", 8765));
        assert!(host_allowed(Some("LOCALHOST:8765"), "127.0.0.1", 8765));
        assert!(!host_allowed(Some("localhost:8766"), "127.0.0.1", 8765));
        assert!(!host_allowed(Some("evil.com:8765"), "127.0.0.1", 8765));
        assert!(!host_allowed(Some("localhost"), "127.0.0.1", 8765));
        assert!(!host_allowed(None, "127.0.0.1", 8765));
        assert!(host_allowed(Some("192.168.1.5:8765"), "192.168.1.5", 8765));
        assert!(origin_allowed(None, "127.0.0.1", 8765));
        assert!(origin_allowed(Some("http://localhost:8765"), "127.0.0.1", 8765));
        assert!(!origin_allowed(Some("http://localhost.evil.com"), "127.0.0.1", 8765));
        assert!(!origin_allowed(Some("http://localhost.evil.com:8765"), "127.0.0.1", 8765));
        assert!(!origin_allowed(Some("https://localhost:8765"), "127.0.0.1", 8765));
        assert!(!origin_allowed(Some("null"), "127.0.0.1", 8765));
    }
}
