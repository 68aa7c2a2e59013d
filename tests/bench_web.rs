//! The web UI's weight on the wire (issue 14): every file under `static/`
//! that the daemon serves (what the UI can load, all pages and the vendored
//! terminal, licences included), fetched from the bench's daemon as a
//! browser asks for it (`Accept-Encoding: gzip`), bytes on the wire summed.
//! The list comes from the checkout's `static/` with the rules of
//! src/build.rs, so a file the binary failed to embed is an error here, not
//! a smaller figure. `app.css` is not one: the build writes it into
//! `index.html`, whose bytes count it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::{Result, Row, Sandbox, http_api};

pub const ASSETS: &str = "26. static assets, compressed, all pages";
/// Kilobytes of gzip the UI may weigh in all.
const TARGET_KB: f64 = 250.0;

pub fn figures(sb: &Sandbox) -> Vec<Row> {
    vec![assets(sb).unwrap_or_else(|e| Row::error(ASSETS, e))]
}

fn assets(sb: &Sandbox) -> Result<Row> {
    let (addr, _token) = http_api(sb)?;
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("static"), "", &mut files)?;
    let mut total = get(addr, "/")?;
    for file in files.iter().filter(|f| !["index.html", "app.css"].contains(&f.as_str())) {
        total += get(addr, &format!("/static/{file}"))?;
    }
    Ok(Row::amount(ASSETS, total as f64 / 1000.0, TARGET_KB, "KB"))
}

/// The files src/build.rs embeds: all but dotfiles and the few that are
/// not the UI.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if entry.path().is_dir() {
            walk(&entry.path(), &format!("{rel}/"), out)?;
        } else if !["README.md", "vendor/update.sh", "favicon.py"].contains(&rel.as_str()) {
            out.push(rel);
        }
    }
    Ok(())
}

/// The body length of a gzip answer to `GET path`.
fn get(addr: SocketAddr, path: &str) -> Result<usize> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept-Encoding: gzip\r\n\
         Connection: close\r\n\r\n",
        addr.port()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no answer head")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") || !head.contains("content-encoding: gzip") {
        return Err(format!("{path}: {head}"));
    }
    Ok(raw.len() - end)
}
