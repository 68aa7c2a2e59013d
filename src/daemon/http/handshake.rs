//! The server side of the WebSocket opening handshake (RFC 6455 §4.2), done
//! here so the daemon needs only tungstenite's frame layer: its `handshake`
//! feature brings the `http` crate and friends, about 0.1 MB of binary for
//! what is one SHA-1 and one base64 line. (The tests' client uses
//! tungstenite's handshake; dev-dependency features stay out of the binary.)

use super::Head;

/// RFC 6455's fixed GUID appended to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `101 Switching Protocols` answer to an upgrade, or why it is not one.
pub fn response(head: &Head, subprotocol: Option<&str>) -> Result<String, &'static str> {
    let connection = head.header("connection").unwrap_or("");
    if !connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")) {
        return Err("Connection: Upgrade is missing");
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err("only Sec-WebSocket-Version 13 is spoken");
    }
    let key = head.header("sec-websocket-key").ok_or("Sec-WebSocket-Key is missing")?;
    let mut text = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept(key)
    );
    if let Some(p) = subprotocol {
        text.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    text.push_str("\r\n");
    Ok(text)
}

/// `base64(sha1(key + GUID))`.
pub(crate) fn accept(key: &str) -> String {
    base64(&sha1(format!("{}{GUID}", key.trim()).as_bytes()))
}

/// SHA-1 (FIPS 180-4). Used only for the handshake's accept value, which
/// proves nothing about security; it only tells the client it reached a
/// WebSocket server.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t =
                a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn sha1_and_base64_known_values() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        let hex: String = sha1(&[b'a'; 1000]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn refuses_what_is_not_an_upgrade() {
        let head = |headers: &[(&str, &str)]| Head {
            method: "GET".into(),
            target: "/ws".into(),
            version: "HTTP/1.1".into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        };
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        let text = response(&head(&good), Some("bearer")).unwrap();
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: bearer\r\n"));
        assert!(response(&head(&good[1..]), None).is_err());
        assert!(
            response(&head(&[good[0], ("sec-websocket-version", "8"), good[2]]), None).is_err()
        );
        assert!(response(&head(&good[..2]), None).is_err());
    }
}
