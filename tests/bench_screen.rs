//! Figures 29 and 30: the screen each terminal session keeps in the daemon.
//!
//! 17 times what a client waits on connecting for the reproduced screen of a
//! 200x60 session whose every cell has its own colours (the largest dump a
//! screen that size makes): from the TCP connect to the screen frame.
//! 18 is what a session with its screen costs the daemon: 20 sessions of a
//! full-screen program (2 MB of lines first, so the history is full, then
//! the coloured screen; no client attached), the daemon's resident memory
//! before and after, divided by 20; the target is 1 MB on top of the history
//! (`scrollback_bytes`, 1 MiB by default).

use std::fs;
use std::time::{Duration, Instant};

use super::{Result, Row, Sandbox, Timings, http_api, http_call, shell_profile, ws_client};

const SNAPSHOT: &str = "29. screen snapshot on connect, 200x60";
const PER_SESSION: &str = "30. daemon memory per session with its screen";
const CONNECTS: usize = 50;
const SESSIONS: usize = 20;
const HISTORY: f64 = (1 << 20) as f64;

pub fn figures(sb: &Sandbox) -> Vec<Row> {
    match measure(sb) {
        Ok(rows) => rows,
        Err(e) => vec![Row::error(SNAPSHOT, e.clone()), Row::error(PER_SESSION, e)],
    }
}

/// 200x60 cells, each with its own 256-colour foreground and background.
fn coloured_screen() -> Vec<u8> {
    let mut s = String::from("\x1b[H");
    for row in 0..60 {
        s.push_str(&format!("\x1b[{};1H", row + 1));
        for col in 0..200 {
            let (fg, bg) = ((row * 7 + col) % 256, (row + col * 3) % 256);
            let ch = char::from(b'!' + ((row + col) % 90) as u8);
            s.push_str(&format!("\x1b[38;5;{fg};48;5;{bg}m{ch}"));
        }
    }
    s.push_str("\x1b[0m");
    s.into_bytes()
}

fn measure(sb: &Sandbox) -> Result<Vec<Row>> {
    shell_profile(sb)?;
    let (addr, token) = http_api(sb)?;
    let screen_file = sb.root.join("screen.txt");
    fs::write(&screen_file, coloured_screen()).map_err(|e| e.to_string())?;
    let create = |script: &str| -> Result<String> {
        let body = serde_json::json!({"profile": "sh", "args": ["-c", script], "sandbox": false,
            "path": "/usr/bin:/bin", "cols": 200, "rows": 60});
        let info = http_call(addr, &token, "POST", "/api/terminal/sessions", &body.to_string())?;
        Ok(info["id"].as_str().unwrap_or_default().to_string())
    };
    // The first two frames after `connected`: the history and the screen.
    let connect = |id: &str| -> Result<(Duration, Vec<u8>)> {
        let t = Instant::now();
        let mut ws = ws_client(addr, &token, &format!("ws://{addr}/ws/terminal/{id}"))?;
        let mut binary = 0;
        loop {
            if let tungstenite::Message::Binary(b) = ws.read().map_err(|e| e.to_string())? {
                binary += 1;
                if binary == 2 {
                    return Ok((t.elapsed(), b.to_vec()));
                }
            }
        }
    };
    let file = screen_file.display().to_string();

    eprintln!("figures: {SNAPSHOT} ({CONNECTS} connects)");
    let id = create(&format!("cat '{file}'; exec sleep 1000"))?;
    // Wait for the program's screen to be in place (a frame that big).
    let deadline = Instant::now() + Duration::from_secs(10);
    while connect(&id)?.1.len() < 200 * 60 * 10 {
        if Instant::now() > deadline {
            return Err("the coloured screen never filled".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut samples = Vec::with_capacity(CONNECTS);
    let mut size = 0;
    for _ in 0..CONNECTS {
        let (took, screen) = connect(&id)?;
        size = screen.len();
        samples.push(took);
    }
    eprintln!("figures: the 200x60 screen frame is {size} bytes");
    let snapshot = Row::timed(SNAPSHOT, &Timings::new(samples), Some(2.0));
    http_call(addr, &token, "DELETE", &format!("/api/terminal/sessions/{id}"), "")?;

    eprintln!("figures: {PER_SESSION} ({SESSIONS} sessions)");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(sb)?;
    let mut ids = Vec::new();
    let mut marks = Vec::new();
    for n in 0..SESSIONS {
        // The mark is made after the output (the screen thread has it
        // soon after); no client connects, so only the sessions are counted.
        let mark = sb.root.join(format!("drawn-{n}"));
        let script =
            format!("seq 1 300000; cat '{file}'; touch '{}'; exec sleep 1000", mark.display());
        ids.push(create(&script)?);
        marks.push(mark);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marks.iter().all(|m| m.exists()) {
        if Instant::now() > deadline {
            return Err("the sessions never drew their screens".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(sb)?;
    for id in &ids {
        http_call(addr, &token, "DELETE", &format!("/api/terminal/sessions/{id}"), "")?;
    }
    let per = (after.saturating_sub(before) * 1024) as f64 / SESSIONS as f64;
    let mut row = Row::amount(PER_SESSION, (per - HISTORY) / 1e6, 1.0, "MB + history");
    row.measured = format!("{:.2} MB ({:.2} MB + 1 MiB history)", per / 1e6, (per - HISTORY) / 1e6);
    Ok(vec![snapshot, row])
}

fn rss_kib(sb: &Sandbox) -> Result<u64> {
    let pid = sb.daemon_pid()?;
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS line in {path}"))
}
