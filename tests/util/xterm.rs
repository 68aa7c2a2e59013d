//! A session's screen as the web UI draws it: the bytes a client received,
//! written to the vendored xterm.js (`static/vendor/xterm.mjs`) in node by
//! `tests/tools/xterm-screen.mjs`. The browser tests (`tests/browser/`)
//! check the page itself; this is for the tests that read a real agent's
//! screen through a WebSocket (agents.rs, terminal.rs).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The screen's lines (trailing blanks cut) after `bytes` on a `cols` x
/// `rows` terminal.
pub fn screen_lines(bytes: &[u8], cols: u16, rows: u16) -> Vec<String> {
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/xterm-screen.mjs");
    let mut child = Command::new("node")
        .arg(driver)
        .args([cols.to_string(), rows.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running node (tests/setup.sh installs it): {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "xterm-screen.mjs: {}", String::from_utf8_lossy(&out.stderr));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    view["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}
