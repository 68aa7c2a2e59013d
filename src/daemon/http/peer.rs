//! Who is at the other end of a loopback TCP connection: the uid that owns
//! the peer's socket, asked of the kernel only when it matters.
//!
//! The front door cannot tell the owner's brand-new connection from a
//! stranger's until the token arrives, and a stranger's crowd reconnecting
//! at full speed outpaces an owner's client descheduled between `connect`
//! and `write`. On loopback both ends of the connection are sockets of this
//! machine, so the kernel knows who opened the other one: Linux answers a
//! `NETLINK_SOCK_DIAG` request for the exact 4-tuple of the peer's socket
//! with its owner (`idiag_uid`), one syscall round trip and no table to
//! scan. [`slots`](super::slots) asks only when a stranger must give way,
//! so an uncrowded front door never pays for it.
//!
//! A remote peer (a non-loopback `http_bind`), a failed lookup and other
//! systems give `None`: such a peer is a stranger, as before.

use std::net::{SocketAddr, TcpStream};

/// Whether the peer of `stream` is a loopback socket owned by the uid this
/// process runs as. A process of that uid can read the token anyway.
pub fn runs_as_us(stream: &TcpStream) -> bool {
    loopback_peer_uid(stream) == Some(rustix::process::geteuid().as_raw())
}

/// The uid owning the peer's socket of a loopback connection; `None` for a
/// remote peer or when the kernel cannot say.
pub fn loopback_peer_uid(stream: &TcpStream) -> Option<u32> {
    let (peer, local) = (stream.peer_addr().ok()?, stream.local_addr().ok()?);
    // A dual-stack listener sees a v4 client as `::ffff:127.0.0.1`; the
    // client's own socket is a v4 one.
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (peer, local) = (canonical(peer), canonical(local));
    if !peer.ip().is_loopback() {
        return None;
    }
    tcp_socket_uid(peer, local)
}

/// The uid owning the connected TCP socket whose own address is `addr` and
/// whose remote end is `remote`.
#[cfg(target_os = "linux")]
pub fn tcp_socket_uid(addr: SocketAddr, remote: SocketAddr) -> Option<u32> {
    use rustix::net::netlink::{SOCK_DIAG, SocketAddrNetlink};
    use rustix::net::sockopt::{Timeout, set_socket_timeout};
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    use std::sync::atomic::{AtomicU32, Ordering};

    static SEQ: AtomicU32 = AtomicU32::new(1);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(SOCK_DIAG),
    )
    .ok()?;
    // The kernel answers within the `sendto` itself; the timeout only
    // guards the accept thread against one that would not.
    set_socket_timeout(&fd, Timeout::Recv, Some(std::time::Duration::from_millis(200))).ok()?;
    let request = diag::request(seq, addr, remote);
    rustix::net::sendto(&fd, &request, SendFlags::empty(), &SocketAddrNetlink::new(0, 0)).ok()?;
    let mut reply = [0u8; 4096];
    // A datagram each; anything not ours (another sequence number) is
    // skipped, a few times at most.
    for _ in 0..4 {
        let (n, _) = rustix::net::recv(&fd, &mut reply, RecvFlags::empty()).ok()?;
        match diag::uid_in_reply(&reply[..n.min(reply.len())], seq, addr, remote) {
            diag::Reply::Uid(uid) => return Some(uid),
            diag::Reply::NotFound => return None,
            diag::Reply::NotOurs => {}
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
pub fn tcp_socket_uid(_addr: SocketAddr, _remote: SocketAddr) -> Option<u32> {
    None
}

/// The two messages, laid out by hand after the kernel's headers (native
/// byte order except where a field is `__be16`/`__be32`):
///
/// - `linux/netlink.h`: `struct nlmsghdr { __u32 nlmsg_len; __u16
///   nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq; __u32 nlmsg_pid; }`
///   (16 bytes); `NLM_F_REQUEST` 1; `NLMSG_ERROR` 2, followed by an `int`
///   error (negative errno, 0 for an acknowledgement).
/// - `linux/sock_diag.h`: `SOCK_DIAG_BY_FAMILY` 20, the request's type.
/// - `linux/inet_diag.h`: `struct inet_diag_sockid { __be16 idiag_sport;
///   __be16 idiag_dport; __be32 idiag_src[4]; __be32 idiag_dst[4]; __u32
///   idiag_if; __u32 idiag_cookie[2]; }` (48 bytes; a v4 address fills the
///   first word, the rest zero; `INET_DIAG_NOCOOKIE` is `~0U`);
///   `struct inet_diag_req_v2 { __u8 sdiag_family; __u8 sdiag_protocol;
///   __u8 idiag_ext; __u8 pad; __u32 idiag_states; struct inet_diag_sockid
///   id; }` (56 bytes); the answer `struct inet_diag_msg { __u8
///   idiag_family; __u8 idiag_state; __u8 idiag_timer; __u8 idiag_retrans;
///   struct inet_diag_sockid id; __u32 idiag_expires; __u32 idiag_rqueue;
///   __u32 idiag_wqueue; __u32 idiag_uid; __u32 idiag_inode; }` (72 bytes).
/// - `net/tcp_states.h`: `TCP_ESTABLISHED` 1.
///
/// A request without `NLM_F_DUMP` is an exact lookup: the kernel finds the
/// socket whose own address and port are `id.idiag_src`/`idiag_sport` and
/// whose remote ones are `idiag_dst`/`idiag_dport`, or answers `ENOENT`.
#[cfg(any(target_os = "linux", test))]
mod diag {
    use std::net::{IpAddr, SocketAddr};

    const NLMSG_HDRLEN: usize = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const REQ_V2_LEN: usize = 56;
    const MSG_LEN: usize = 72;
    const SOCKID_LEN: usize = 48;
    const NOCOOKIE: u32 = !0;
    const TCP_ESTABLISHED: u8 = 1;
    // linux/socket.h, linux/in.h
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    const IPPROTO_TCP: u8 = 6;

    /// What a reply says about the socket asked for.
    #[derive(Debug, PartialEq)]
    pub(super) enum Reply {
        Uid(u32),
        /// No such connected socket (an error, or not that socket).
        NotFound,
        /// A message of another request: read on.
        NotOurs,
    }

    /// `nlmsghdr` + `inet_diag_req_v2` asking for the TCP socket at `addr`
    /// connected to `remote`.
    pub(super) fn request(seq: u32, addr: SocketAddr, remote: SocketAddr) -> Vec<u8> {
        let mut m = Vec::with_capacity(NLMSG_HDRLEN + REQ_V2_LEN);
        m.extend_from_slice(&((NLMSG_HDRLEN + REQ_V2_LEN) as u32).to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: to the kernel
        m.push(if addr.is_ipv4() { AF_INET } else { AF_INET6 });
        m.push(IPPROTO_TCP);
        m.push(0); // idiag_ext: no extra attributes
        m.push(0); // pad
        m.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: any
        m.extend_from_slice(&addr.port().to_be_bytes());
        m.extend_from_slice(&remote.port().to_be_bytes());
        m.extend_from_slice(&address(addr.ip()));
        m.extend_from_slice(&address(remote.ip()));
        m.extend_from_slice(&0u32.to_ne_bytes()); // idiag_if: any
        m.extend_from_slice(&NOCOOKIE.to_ne_bytes());
        m.extend_from_slice(&NOCOOKIE.to_ne_bytes());
        debug_assert_eq!(m.len(), NLMSG_HDRLEN + REQ_V2_LEN);
        m
    }

    /// `__be32 [4]`: the address's bytes in network order, zero-padded.
    fn address(ip: IpAddr) -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out = v6.octets(),
        }
        out
    }

    /// The owner's uid in a reply to request `seq` for the socket at
    /// `addr` connected to `remote`. Only a connected socket counts: the
    /// kernel's lookup falls back to a listener on `addr`'s port, and a
    /// socket the peer has closed (an orphan, `TIME_WAIT`) reports uid 0.
    pub(super) fn uid_in_reply(
        buf: &[u8],
        seq: u32,
        addr: SocketAddr,
        remote: SocketAddr,
    ) -> Reply {
        let mut rest = buf;
        while rest.len() >= NLMSG_HDRLEN {
            let word = |at: usize| u32::from_ne_bytes(rest[at..at + 4].try_into().unwrap());
            let len = word(0) as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return Reply::NotFound;
            }
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if word(8) == seq {
                // NLMSG_ERROR: ENOENT (no such socket), or the kernel
                // cannot tell (no inet_diag); or something short.
                if kind == NLMSG_ERROR
                    || kind != SOCK_DIAG_BY_FAMILY
                    || len < NLMSG_HDRLEN + MSG_LEN
                {
                    return Reply::NotFound;
                }
                let msg = &rest[NLMSG_HDRLEN..len];
                let id = &msg[4..4 + SOCKID_LEN];
                let sport = u16::from_be_bytes([id[0], id[1]]);
                let dport = u16::from_be_bytes([id[2], id[3]]);
                if msg[1] != TCP_ESTABLISHED || sport != addr.port() || dport != remote.port() {
                    return Reply::NotFound;
                }
                return Reply::Uid(u32::from_ne_bytes(msg[64..68].try_into().unwrap()));
            }
            // Messages are padded to 4 bytes (NLMSG_ALIGN).
            let next = (len + 3) & !3;
            rest = rest.get(next..).unwrap_or(&[]);
        }
        Reply::NotOurs
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn a(s: &str) -> SocketAddr {
            s.parse().unwrap()
        }

        #[test]
        fn the_request_is_laid_out_as_the_kernel_reads_it() {
            let m = request(7, a("127.0.0.1:40000"), a("127.0.0.2:8765"));
            assert_eq!(m.len(), 72);
            assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 72);
            assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 20, "SOCK_DIAG_BY_FAMILY");
            assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 1, "NLM_F_REQUEST, no dump");
            assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7, "seq");
            assert_eq!((m[16], m[17]), (2, 6), "AF_INET, IPPROTO_TCP");
            assert_eq!(&m[24..28], &[0x9c, 0x40, 0x22, 0x3d], "ports, big-endian");
            assert_eq!(&m[28..44], &[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            assert_eq!(&m[44..48], &[127, 0, 0, 2]);
            assert_eq!(&m[64..72], &[0xff; 8], "INET_DIAG_NOCOOKIE");
            let v6 = request(8, a("[::1]:1"), a("[::1]:2"));
            assert_eq!(v6[16], 10, "AF_INET6");
            assert_eq!(v6[43], 1, "::1, the last byte of 16");
        }

        /// A reply as the kernel writes it: `nlmsghdr` + `inet_diag_msg`.
        fn reply(seq: u32, state: u8, sport: u16, dport: u16, uid: u32) -> Vec<u8> {
            let mut m = Vec::new();
            m.extend_from_slice(&88u32.to_ne_bytes());
            m.extend_from_slice(&20u16.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&[2, state, 0, 0]);
            m.extend_from_slice(&sport.to_be_bytes());
            m.extend_from_slice(&dport.to_be_bytes());
            m.extend_from_slice(&[0; 44]);
            m.extend_from_slice(&[0; 12]); // expires, rqueue, wqueue
            m.extend_from_slice(&uid.to_ne_bytes());
            m.extend_from_slice(&99u32.to_ne_bytes()); // inode
            m
        }

        #[test]
        fn a_reply_gives_the_uid_of_that_connected_socket_only() {
            let (addr, remote) = (a("127.0.0.1:40000"), a("127.0.0.1:8765"));
            let uid = |buf: &[u8]| uid_in_reply(buf, 5, addr, remote);
            assert_eq!(uid(&reply(5, 1, 40000, 8765, 1000)), Reply::Uid(1000));
            // Another request's message first, then ours.
            let two = [reply(4, 1, 1, 2, 7), reply(5, 1, 40000, 8765, 1000)].concat();
            assert_eq!(uid(&two), Reply::Uid(1000));
            assert_eq!(uid(&reply(4, 1, 40000, 8765, 1000)), Reply::NotOurs);
            // A listener (state 10, no remote port), TIME_WAIT (6), another
            // socket's ports.
            assert_eq!(uid(&reply(5, 10, 40000, 0, 0)), Reply::NotFound);
            assert_eq!(uid(&reply(5, 6, 40000, 8765, 0)), Reply::NotFound);
            assert_eq!(uid(&reply(5, 1, 40001, 8765, 1000)), Reply::NotFound);
            // NLMSG_ERROR: -ENOENT and the request's header.
            let mut error = Vec::new();
            error.extend_from_slice(&36u32.to_ne_bytes());
            error.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            error.extend_from_slice(&0u16.to_ne_bytes());
            error.extend_from_slice(&5u32.to_ne_bytes());
            error.extend_from_slice(&0u32.to_ne_bytes());
            error.extend_from_slice(&(-2i32).to_ne_bytes());
            error.extend_from_slice(&request(5, addr, remote)[..16]);
            assert_eq!(uid(&error), Reply::NotFound);
            // Truncated or lying about its length.
            assert_eq!(uid(&reply(5, 1, 40000, 8765, 1000)[..40]), Reply::NotFound);
            assert_eq!(uid(&[]), Reply::NotOurs);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    #[test]
    fn an_own_loopback_connection_is_ours_on_both_sides() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(loopback_peer_uid(&server), Some(me()), "the client's socket, from the server");
        assert_eq!(loopback_peer_uid(&client), Some(me()), "the server's socket, from the client");
        assert!(runs_as_us(&server));
        // v6 too, where there is a loopback to bind.
        if let Ok(l6) = TcpListener::bind("[::1]:0") {
            let _c6 = TcpStream::connect(l6.local_addr().unwrap()).unwrap();
            let (s6, _) = l6.accept().unwrap();
            assert_eq!(loopback_peer_uid(&s6), Some(me()));
        }
    }

    /// Another uid's socket gives that uid (as root only: it takes
    /// `setpriv` to be someone else).
    #[test]
    fn another_uids_connection_is_theirs() {
        let python = "/usr/bin/python3";
        if me() != 0 || !std::path::Path::new(python).exists() {
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let connect = "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); sys.stdin.read()";
        let mut child = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", connect])
            .arg(&port)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Not forever, should the child fail to connect.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let server = loop {
            match listener.accept() {
                Ok((server, _)) => break server,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("the other uid never connected: {e}"),
            }
        };
        let uid = loopback_peer_uid(&server);
        drop(child.stdin.take());
        let _ = child.wait();
        assert_eq!(uid, Some(65534));
        assert!(!runs_as_us(&server));
    }

    #[test]
    fn an_unknown_tuple_or_a_listener_is_nobody() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap();
        // No socket has this tuple: a port nothing listens on (the one of a
        // listener just closed), connected to ours.
        let gone = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(tcp_socket_uid(gone, port), None);
        // The listener itself: the kernel's lookup would find it for any
        // remote end, but it is not a connected socket.
        assert_eq!(tcp_socket_uid(port, gone), None);
        // The client's end after it closed (FIN_WAIT, then TIME_WAIT: uid 0
        // there, whoever opened it).
        let client = TcpStream::connect(port).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(client);
        assert_eq!(loopback_peer_uid(&server), None);
    }
}
