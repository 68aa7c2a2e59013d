//! Who owns a TCP socket on this machine, from the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`: one row per socket with its local
//! and remote address, state and owner's uid).
//!
//! The daemon's HTTP port is fixed, and the web UI keeps its session in
//! the origin's storage (`http://127.0.0.1:<port>`). Any local user may
//! listen on a free loopback port, so while the daemon is down (or beside
//! it, on `[::1]`) another user's program could serve a look-alike page on
//! that origin and read the session. So the daemon names the uid holding
//! its port when it cannot bind it, `ringlet ui` refuses to hand out a link
//! while another uid listens there ([`foreign_listeners`]), and `doctor`
//! can say the same. Linux only; elsewhere there is no table and nothing
//! is found.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `TCP_LISTEN` in the tables' `st` column (`include/net/tcp_states.h`).
const LISTEN: u8 = 0x0A;

/// One socket of the kernel's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The TCP state (`0A`: listening).
    pub state: u8,
    pub uid: u32,
}

/// Every TCP socket of this network namespace, v4 then v6; empty where
/// the tables cannot be read.
pub fn table() -> Vec<Row> {
    let mut rows = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = std::fs::read_to_string(file) {
            rows.extend(parse(&text, v6));
        }
    }
    rows
}

/// The rows of one table's text (`v6`: `tcp6`'s 128-bit addresses).
/// Lines that do not parse are skipped.
pub fn parse(text: &str, v6: bool) -> Vec<Row> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some(Row {
                local: address(cols.get(1)?, v6)?,
                remote: address(cols.get(2)?, v6)?,
                state: u8::from_str_radix(cols.get(3)?, 16).ok()?,
                uid: cols.get(7)?.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:1F90` (each 32-bit word of the address as the kernel holds
/// it, in network byte order, printed as a native integer; then the port)
/// to `127.0.0.1:8080`.
fn address(text: &str, v6: bool) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = if v6 { 4 } else { 1 };
    if addr.len() != 8 * words {
        return None;
    }
    let mut octets = Vec::with_capacity(4 * words);
    for i in 0..words {
        let word = u32::from_str_radix(&addr[8 * i..8 * i + 8], 16).ok()?;
        octets.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(octets).ok()?))
    } else {
        IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(octets).ok()?))
    };
    Some(SocketAddr::new(ip, port))
}

/// The sockets listening on `port` where a browser on this machine can
/// reach them: a loopback address or a wildcard one, either family.
pub fn loopback_listeners(rows: &[Row], port: u16) -> Vec<(SocketAddr, u32)> {
    rows.iter()
        .filter(|r| r.state == LISTEN && r.local.port() == port)
        .filter(|r| {
            let ip = r.local.ip().to_canonical();
            ip.is_loopback() || ip.is_unspecified()
        })
        .map(|r| (r.local, r.uid))
        .collect()
}

/// The listeners on loopback `port` owned by another uid than ours, each
/// with its address and uid; empty when only we (or nobody) listen there.
pub fn foreign_listeners(port: u16) -> Vec<(SocketAddr, u32)> {
    let me = rustix::process::geteuid().as_raw();
    loopback_listeners(&table(), port).into_iter().filter(|&(_, uid)| uid != me).collect()
}

/// The uid listening on loopback `port` when that is another uid than
/// ours (the first such listener), for a message about a busy port.
pub fn foreign_uid(port: u16) -> Option<u32> {
    foreign_listeners(port).first().map(|&(_, uid)| uid)
}

/// One line about who listens on loopback `port`, for `doctor`:
/// `Ok(detail)` when only we do, `Err(detail)` naming another uid (or
/// saying that nothing does).
pub fn check(port: u16) -> Result<String, String> {
    let me = rustix::process::geteuid().as_raw();
    let listeners = loopback_listeners(&table(), port);
    if let Some((addr, uid)) = listeners.iter().find(|(_, uid)| *uid != me) {
        return Err(format!(
            "{addr} is held by uid {uid}, not you (uid {me}): a page served there could pose as \
             Ringlet's and read the web UI's session; stop that process or set [daemon] http_port"
        ));
    }
    if listeners.is_empty() && cfg!(target_os = "linux") {
        return Err(format!("nothing listens on loopback port {port}"));
    }
    Ok(format!("only your uid ({me}) listens on loopback port {port}"))
}

/// The uid owning the TCP socket whose own address is `local` and whose
/// peer is `remote`, if the table has it.
pub fn connected_uid(rows: &[Row], local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    rows.iter().find(|r| r.local == local && r.remote == remote).map(|r| r.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's spelling of `addr` (the inverse of [`address`]).
    fn spelled(addr: SocketAddr) -> String {
        let octets = match addr.ip() {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        let words: String = octets
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        format!("{words}:{:04X}", addr.port())
    }

    // Real lines (a little trimmed) from a little-endian machine.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:223D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6089686 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6096551 1 0 100 0 0 10 0
   2: 0100007F:223D 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   3: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:223D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 7 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 8 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100A8C0:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    44        0 9 1 0 100 0 0 10 0
";

    #[test]
    fn rows_parse_in_both_families() {
        let v4 = parse(TCP, false);
        assert_eq!(v4.len(), 3, "the garbage line is skipped");
        if cfg!(target_endian = "little") {
            assert_eq!(v4[0].local, "127.0.0.1:8765".parse().unwrap());
            assert_eq!((v4[0].state, v4[0].uid), (LISTEN, 1000));
            assert_eq!(v4[2].remote, "127.0.0.1:50000".parse().unwrap());
            let v6 = parse(TCP6, true);
            assert_eq!(v6[0].local, "[::1]:8765".parse().unwrap());
            assert_eq!(v6[0].uid, 65534);
            assert_eq!(v6[2].local, "[::ffff:192.168.0.1]:8080".parse().unwrap());
        }
        for addr in ["127.0.0.1:8765", "[::1]:1", "[fe80::1:2:3:4]:65535", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let v6 = addr.is_ipv6();
            assert_eq!(address(&spelled(addr), v6), Some(addr), "{addr}");
        }
    }

    #[test]
    fn listeners_on_loopback_or_a_wildcard_count_others_do_not() {
        if !cfg!(target_endian = "little") {
            return;
        }
        let mut rows = parse(TCP, false);
        rows.extend(parse(TCP6, true));
        let on = |port| {
            let mut uids: Vec<u32> =
                loopback_listeners(&rows, port).into_iter().map(|(_, u)| u).collect();
            uids.sort();
            uids
        };
        assert_eq!(on(8765), vec![1000, 65534], "v4 loopback and [::1]; not the connection");
        assert_eq!(on(22), vec![0], "0.0.0.0 reaches loopback too");
        assert_eq!(on(80), vec![33], "so does [::]");
        assert_eq!(on(8080), Vec::<u32>::new(), "a LAN address does not");
        let local = "127.0.0.1:8765".parse().unwrap();
        let remote = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(connected_uid(&rows, local, remote), Some(1000));
        assert_eq!(connected_uid(&rows, remote, local), None);
    }

    #[test]
    fn our_own_listener_is_found_in_the_real_table() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(loopback_listeners(&table(), port), vec![(listener.local_addr().unwrap(), me)]);
        assert!(foreign_listeners(port).is_empty());
        assert!(check(port).is_ok());
        drop(listener);
        assert!(check(port).unwrap_err().contains("nothing listens"));
    }
}
