//! The screens the daemon keeps (issue 14, items 3 to 5), proven against a
//! real terminal: tmux. A client that attaches late must see exactly what a
//! client attached from the start sees (`capture-pane -e`, the cursor and
//! the modes tmux reports), whether it is `ringlet terminal attach` in a
//! pane or a browser-style WebSocket client whose bytes are fed into a fresh
//! pane; the real Claude Code, Codex and OpenCode TUIs are the programs.
//! Terminal queries are answered once (by the daemon), with two clients
//! attached or none; `terminal attach` leaves the user's terminal as it
//! found it after a detach; OSC 7501 program status becomes the session's
//! `agent_state` and a `TerminalStateChanged` event.
//!
//! Each check waits for conditions (a pane that holds still, a file with a
//! line in it) with generous limits: nothing here times the machine.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::terminal::{create, sh_session, shell_world};
use crate::util::http::{request, ws_frame, ws_open};
use crate::util::mock::MockProvider;
use crate::util::tmux::{Tmux, sh_quote};
use crate::util::{BIN, Env, real_agents_dir, wait_until};

/// How long an agent may take to draw its UI: seconds on an idle machine,
/// but OpenCode's first start in a fresh home took two minutes on a 2-core
/// machine at load 20 (its `init` alone 38 s).
const AGENT_LIMIT: Duration = Duration::from_secs(180);
/// How long Claude Code may take to report its state after a prompt (the
/// mock answers at once).
const STATE_LIMIT: Duration = Duration::from_secs(60);
/// How long two panes may take to agree once the program is quiet.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// tmux
// ---------------------------------------------------------------------------

/// What tmux says about a pane's modes, `name=value` items separated by
/// `~~` (tmux shows a newline in a format as `_`): the
/// screen a client reproduces must leave the same ones on.
const PANE_STATE: &str = concat!(
    "alternate_on=#{alternate_on}~~",
    "cursor=#{cursor_x},#{cursor_y}~~",
    "cursor_flag=#{cursor_flag}~~",
    "mouse_any_flag=#{mouse_any_flag}~~",
    "mouse_button_flag=#{mouse_button_flag}~~",
    "mouse_standard_flag=#{mouse_standard_flag}~~",
    "mouse_all_flag=#{mouse_all_flag}~~",
    "mouse_sgr_flag=#{mouse_sgr_flag}~~",
    "mouse_utf8_flag=#{mouse_utf8_flag}~~",
    "keypad_flag=#{keypad_flag}~~",
    "keypad_cursor_flag=#{keypad_cursor_flag}~~",
    "insert_flag=#{insert_flag}~~",
    "origin_flag=#{origin_flag}~~",
    "wrap_flag=#{wrap_flag}~~",
    "scroll_region=#{scroll_region_upper}-#{scroll_region_lower}~~",
    "pane_title=#{pane_title}",
);

/// One pane as tmux holds it: the screen with its attributes, and the modes.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Pane {
    screen: String,
    state: String,
}

impl Pane {
    fn state_map(&self) -> BTreeMap<String, String> {
        self.state
            .trim_end()
            .split("~~")
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A tmux server of the test's own (see `util::tmux`) with no status line,
/// so a pane is exactly the window's size, and a history of 5000 lines.
fn screen_tmux(env: &Env) -> Tmux {
    Tmux::new(&env.root, "scr", "set -g status off\nset -g history-limit 5000\n")
}

impl Tmux {
    /// A session `name` of `cols` x `rows` running `shell_command`, its
    /// pane exactly that size (the comparisons need the sizes equal).
    fn sized_window(&mut self, name: &str, cols: u16, rows: u16, shell_command: &str) {
        self.window(name, cols, rows, shell_command);
        let size = self.display(name, "#{pane_width}x#{pane_height}");
        assert_eq!(size, format!("{cols}x{rows}"), "the pane is not the window's size");
    }

    /// A session like [`Tmux::sized_window`] whose output, from its first byte,
    /// is also appended to `file` (kept with the world when a test fails:
    /// the bytes to replay through `Screen` or a fresh pane). The command
    /// waits until tmux pipes the pane, so nothing is missed.
    fn recorded_window(
        &mut self,
        name: &str,
        cols: u16,
        rows: u16,
        shell_command: &str,
        file: &Path,
    ) {
        let go = format!("{name}-go");
        self.sized_window(name, cols, rows, &format!("tmux wait-for {go}; {shell_command}"));
        let pipe = format!("cat >> {}", sh_quote(&file.display().to_string()));
        self.ok(&["pipe-pane", "-o", "-t", name, &pipe]);
        self.ok(&["wait-for", "-S", &go]);
    }

    /// The pane's cells and modes. `-N` keeps the blanks at the end of a
    /// row: without it tmux trims trailing spaces from the text it built,
    /// SGR codes and all, so a reversed blank that is the last cell written
    /// on a row (Claude Code's cursor after `❯`) vanishes, while the same
    /// cell followed by written default blanks (as a reproduced screen
    /// draws whole rows) stays: equal cells, different captures.
    /// `canonical` drops the default blanks at the end of a row itself.
    fn pane(&self, name: &str) -> Pane {
        Pane {
            screen: canonical(&self.ok(&["capture-pane", "-p", "-e", "-N", "-t", name])),
            state: self.ok(&["display-message", "-p", "-t", name, PANE_STATE]),
        }
    }

    /// The lines of pane `name` that scrolled off its top, oldest first.
    fn history(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-S", "-", "-E", "-1", "-t", name])
    }

    /// Waits until every pane of `names` shows the same screen and modes
    /// and they hold still for a second (the program is quiet); on `limit`,
    /// the differences.
    fn settled(&self, names: &[&str], limit: Duration) -> Result<Pane, String> {
        let deadline = Instant::now() + limit;
        let mut last: Option<Vec<Pane>> = None;
        let mut steady = 0;
        loop {
            let now: Vec<Pane> = names.iter().map(|n| self.pane(n)).collect();
            let equal = now.windows(2).all(|w| w[0] == w[1]);
            if equal && last.as_ref() == Some(&now) {
                steady += 1;
                if steady >= 3 {
                    return Ok(now[0].clone());
                }
            } else {
                steady = 0;
            }
            if Instant::now() >= deadline {
                return Err(differences(names, &now));
            }
            last = Some(now);
            thread::sleep(Duration::from_millis(350));
        }
    }
}

/// The attributes of a cell as SGR sets them: foreground, background, and
/// the flags (bold, dim, italic, underline, blink, reverse, hidden, strike).
#[derive(Clone, Default, PartialEq, Eq)]
struct Attrs {
    fg: String,
    bg: String,
    flags: [bool; 10],
}

impl Attrs {
    fn apply(&mut self, params: &str) {
        let p: Vec<&str> = params.split([';', ':']).collect();
        let mut i = 0;
        while i < p.len() {
            let n: u32 = p[i].parse().unwrap_or(0);
            match n {
                0 => *self = Attrs::default(),
                1..=9 => self.flags[n as usize] = true,
                21 | 22 => (self.flags[1], self.flags[2]) = (false, false),
                23..=29 => self.flags[(n - 20) as usize] = false,
                30..=37 | 90..=97 => self.fg = n.to_string(),
                39 => self.fg.clear(),
                40..=47 | 100..=107 => self.bg = n.to_string(),
                49 => self.bg.clear(),
                38 | 48 | 58 => {
                    // 38;5;n and 38;2;r;g;b take the next 2 or 4.
                    let k = match p.get(i + 1).copied() {
                        Some("5") => 3,
                        Some("2") => 5,
                        _ => 1,
                    };
                    let mut value = p[i..(i + k).min(p.len())].join(";");
                    // The 16 basic colours as palette indices are the
                    // same colours as 30-37 and 90-97 (40-47, 100-107).
                    if k == 3
                        && let Some(c) = p.get(i + 2).and_then(|c| c.parse::<u32>().ok())
                        && c < 16
                    {
                        let base = if n == 38 { 30 } else { 40 };
                        value = (if c < 8 { base + c } else { base + 60 + c - 8 }).to_string();
                    }
                    if n == 38 {
                        self.fg = value;
                    } else if n == 48 {
                        self.bg = value;
                    }
                    i += k - 1;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn show(&self) -> String {
        let flags: Vec<String> =
            (1..10).filter(|&k| self.flags[k]).map(|k| k.to_string()).collect();
        format!("⟦fg={} bg={} {}⟧", self.fg, self.bg, flags.join(","))
    }
}

/// `capture-pane -e` output in a canonical form: tmux writes the same
/// cells differently depending on how they were drawn (a reset at the
/// start of a row after an underlined one; resets after the last cell when
/// the row was filled with blanks). Each row here is its characters with
/// `⟦...⟧` wherever the attributes differ from the cell before (the row
/// starts from the defaults), without the trailing blanks that show at
/// most a background (see below); a blank's foreground colour, which
/// nothing shows, is left out.
fn canonical(captured: &str) -> String {
    let mut state = Attrs::default();
    let mut rows = Vec::new();
    for line in captured.lines() {
        let mut cells: Vec<(char, Attrs)> = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' && chars.peek() == Some(&'[') {
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for d in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&d) {
                        fin = Some(d);
                        break;
                    }
                    params.push(d);
                }
                if fin == Some('m') {
                    state.apply(&params);
                } else {
                    // Not SGR: kept as text, so a difference shows.
                    cells.push(('␛', state.clone()));
                    cells.extend(params.chars().map(|c| (c, state.clone())));
                    cells.extend(fin.map(|f| (f, state.clone())));
                }
            } else if c == ' ' && !(state.flags[4] || state.flags[7] || state.flags[9]) {
                // A blank shows no foreground (unless underlined, reversed
                // or struck through).
                cells.push((c, Attrs { fg: String::new(), ..state.clone() }));
            } else {
                cells.push((c, state.clone()));
            }
        }
        // Trailing blanks that show at most a background go: tmux captures
        // the cells an erase coloured only up to the last cell written on
        // the row (`-N` or not), so how many of them it shows depends on
        // how the row was drawn, not on how it looks. Reversed, underlined
        // or struck-through ones are written cells and stay.
        while cells
            .last()
            .is_some_and(|(c, a)| *c == ' ' && !(a.flags[4] || a.flags[7] || a.flags[9]))
        {
            cells.pop();
        }
        let mut row = String::new();
        let mut last = Attrs::default();
        for (c, a) in cells {
            if a != last {
                row.push_str(&a.show());
                last = a;
            }
            row.push(c);
        }
        rows.push(row);
    }
    rows.join("\n")
}

/// What differs between the first pane and each other one: the modes, and
/// the rows (escapes shown as `\u{1b}`).
fn differences(names: &[&str], panes: &[Pane]) -> String {
    let mut out = String::new();
    let first = &panes[0];
    for (name, pane) in names.iter().zip(panes).skip(1) {
        if pane == first {
            continue;
        }
        out.push_str(&format!("pane {} vs pane {name}:\n", names[0]));
        let (a, b) = (first.state_map(), pane.state_map());
        for (k, v) in &a {
            if b.get(k) != Some(v) {
                out.push_str(&format!("  {k}: {v:?} vs {:?}\n", b.get(k)));
            }
        }
        let (la, lb): (Vec<&str>, Vec<&str>) =
            (first.screen.lines().collect(), pane.screen.lines().collect());
        for row in 0..la.len().max(lb.len()) {
            let (x, y) = (la.get(row).copied(), lb.get(row).copied());
            if x != y {
                out.push_str(&format!("  row {row}:\n    {x:?}\n    {y:?}\n"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("the panes agree but never held still for a second:\n");
        out.push_str(&first.screen);
    }
    out
}

/// `ringlet <args>` in this world, as a shell command for a pane.
fn ringlet_command(env: &Env, args: &str) -> String {
    format!(
        "env -i HOME={} PATH={} RINGLET_CONFIG_DIR={} XDG_RUNTIME_DIR={} RINGLET_HTTP_PORT=0 TERM=screen {} {args}",
        sh_quote(&env.home.display().to_string()),
        sh_quote(env.path_var().to_str().unwrap()),
        sh_quote(&env.config.display().to_string()),
        sh_quote(&env.run.display().to_string()),
        sh_quote(BIN),
    )
}

/// A pane command that attaches to `id` and, once that ends, shows what
/// the shell received as typed input within a second (terminal answers
/// that arrived too late for the attach), then `ATTACH-DONE`.
fn attach_then_shell(env: &Env, id: &str) -> String {
    let script = format!(
        "{}; read -t 1 x; printf 'typed:[%s]\\n' \"$x\" | cat -v; echo ATTACH-DONE; exec sleep 600",
        ringlet_command(env, &format!("terminal attach {id}"))
    );
    format!("bash --norc --noprofile -c {}", sh_quote(&script))
}

/// A pane command that shows the bytes of `file`, raw, and then nothing.
fn replay_command(file: &Path) -> String {
    let script =
        format!("stty raw -echo; cat {}; exec sleep 600", sh_quote(&file.display().to_string()));
    format!("sh -c {}", sh_quote(&script))
}

// ---------------------------------------------------------------------------
// WebSocket clients
// ---------------------------------------------------------------------------

/// A browser-style client of `/ws/terminal/{id}`: every frame as it came.
struct Ws {
    ws: WebSocket<TcpStream>,
}

impl Ws {
    fn open(addr: SocketAddr, token: &str, path: &str) -> Ws {
        Ws { ws: ws_open(addr, path, token, Duration::from_millis(100)) }
    }

    fn terminal(addr: SocketAddr, token: &str, id: &str) -> Ws {
        Ws::open(addr, token, &format!("/ws/terminal/{id}"))
    }

    /// The next frame (None: nothing within the read timeout).
    fn frame(&mut self) -> Option<Message> {
        ws_frame(&mut self.ws)
    }

    /// Frames until none came for `quiet` (at most `limit` in all).
    fn until_quiet(&mut self, quiet: Duration, limit: Duration) -> Vec<Message> {
        let deadline = Instant::now() + limit;
        let mut frames = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet && Instant::now() < deadline {
            if let Some(m) = self.frame()
                && !matches!(m, Message::Ping(_) | Message::Pong(_))
            {
                frames.push(m);
                last = Instant::now();
            }
        }
        frames
    }

    fn type_in(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec().into())).unwrap();
    }
}

/// The terminal queries in `bytes` a client would answer: DA1/DA2, DSR and
/// CPR, XTVERSION, DECRQM, kitty `CSI ? u`, OSC 4/10/11/12 and 7501 `?`.
fn queries_in(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != 0x1b {
            i += 1;
            continue;
        }
        if bytes[i + 1] == b'[' {
            let start = i + 2;
            let mut j = start;
            while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                j += 1;
            }
            if j >= bytes.len() {
                break;
            }
            let params = &bytes[start..j];
            let fin = bytes[j];
            let query = match fin {
                b'c' => params.is_empty() || params == b"0" || params.starts_with(b">"),
                b'n' => params == b"5" || params == b"6" || params == b"?6",
                b'q' => params.starts_with(b">"),
                b'p' => params.ends_with(b"$"),
                b'u' => params == b"?",
                _ => false,
            };
            if query {
                found.push(String::from_utf8_lossy(&bytes[i..=j]).replace('\x1b', "ESC"));
            }
            i = j + 1;
        } else if bytes[i + 1] == b']' {
            let start = i + 2;
            let mut j = start;
            while j < bytes.len() && bytes[j] != 0x07 && bytes[j] != 0x1b {
                j += 1;
            }
            let body = &bytes[start..j.min(bytes.len())];
            let s = String::from_utf8_lossy(body);
            let mut parts = s.split(';');
            let code = parts.next().unwrap_or("");
            if ["4", "10", "11", "12", "7501"].contains(&code) && s.ends_with('?') {
                found.push(format!("OSC {s}"));
            }
            i = j.max(i + 2);
        } else {
            i += 1;
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Findings: checks that go on after a failure, reported together
// ---------------------------------------------------------------------------

/// Checks that do not stop the test, so one run says everything that is
/// wrong; the test fails at the end if any did.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let what = what();
            eprintln!("FAILED: {what}");
            self.0.push(what);
        }
    }

    fn result<T>(&mut self, what: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.check(false, || format!("{what}: {e}"));
                None
            }
        }
    }

    fn done(self) {
        assert!(self.0.is_empty(), "{} check(s) failed:\n\n{}", self.0.len(), self.0.join("\n\n"));
    }
}

// ---------------------------------------------------------------------------
// The checks shared by the agents' tests
// ---------------------------------------------------------------------------

/// A browser-style client connecting now gets `connected`, one binary frame
/// of history, one of the reproduced screen, then live output; none of it a
/// terminal query; and those bytes, fed into a fresh pane of the same size,
/// draw what `live` (a pane attached from the start) shows.
///
/// The program may change its screen after the client's frames went quiet
/// (Claude Code drops its status-line hints seconds after drawing them):
/// while the replay and the live pane differ and the client got more
/// output since, that output is added and the whole replayed again.
fn browser_client_matches(
    env: &Env,
    tmux: &mut Tmux,
    (addr, token): (SocketAddr, &str),
    id: &str,
    live: &str,
    (cols, rows): (u16, u16),
    f: &mut Findings,
) {
    let what = "browser client";
    let mut ws = Ws::terminal(addr, token, id);
    let mut frames = ws.until_quiet(Duration::from_millis(1500), Duration::from_secs(20));
    let mut result = replay(env, tmux, &frames, live, (cols, rows));
    for _ in 0..3 {
        if result.is_ok() {
            break;
        }
        let more = ws.until_quiet(Duration::from_millis(1500), Duration::from_secs(20));
        if !more.iter().any(|m| matches!(m, Message::Binary(_))) {
            break;
        }
        eprintln!("{what}: pane {live} changed after the client went quiet; replaying again");
        frames.extend(more);
        result = replay(env, tmux, &frames, live, (cols, rows));
    }
    frame_checks(&frames, what, f);
    f.result(&format!("{what}: its bytes drawn in a fresh pane vs the live pane"), result);
}

/// `frames` (a browser-style client's, from its first) hold `connected`, a
/// binary history frame, a binary screen frame and the live output, no
/// terminal query; their bytes drawn in a fresh pane of the session's size
/// show what pane `live` shows.
fn replay_matches(
    env: &Env,
    tmux: &mut Tmux,
    frames: &[Message],
    live: &str,
    (cols, rows): (u16, u16),
    what: &str,
    f: &mut Findings,
) {
    frame_checks(frames, what, f);
    let settled = replay(env, tmux, frames, live, (cols, rows));
    f.result(&format!("{what}: its bytes drawn in a fresh pane vs the live pane"), settled);
}

/// `frames` are `connected`, a binary history frame, a binary screen frame
/// and the live output, with no terminal query in them.
fn frame_checks(frames: &[Message], what: &str, f: &mut Findings) {
    let first = frames.first().and_then(|m| match m {
        Message::Text(t) => serde_json::from_str::<Value>(t).ok(),
        _ => None,
    });
    f.check(first.as_ref().is_some_and(|v| v["type"] == "connected"), || {
        format!("{what}: the first frame is not `connected`: {:?}", frames.first())
    });
    let kinds: Vec<String> = frames
        .iter()
        .map(|m| match m {
            Message::Text(t) => format!("text {t}"),
            Message::Binary(b) => format!("binary of {} bytes", b.len()),
            other => format!("{other:?}"),
        })
        .collect();
    f.check(
        frames.len() >= 3
            && matches!(frames[1], Message::Binary(_))
            && matches!(frames[2], Message::Binary(_)),
        || format!("{what}: not connected, history, screen: {kinds:?}"),
    );
    let queries = queries_in(&binary_bytes(frames));
    f.check(queries.is_empty(), || format!("{what}: terminal queries reached it: {queries:?}"));
}

/// The bytes of the binary frames among `frames`, in order.
fn binary_bytes(frames: &[Message]) -> Vec<u8> {
    frames
        .iter()
        .filter_map(|m| match m {
            Message::Binary(b) => Some(&b[..]),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// Draws the bytes of `frames` in a fresh pane of the session's size
/// (the file `ws.bytes` stays in the world's root) and waits for it and
/// pane `live` to agree: the pane they show, or how they differ.
fn replay(
    env: &Env,
    tmux: &mut Tmux,
    frames: &[Message],
    live: &str,
    (cols, rows): (u16, u16),
) -> Result<Pane, String> {
    let file = env.root.join("ws.bytes");
    fs::write(&file, binary_bytes(frames)).unwrap();
    tmux.sized_window("ws", cols, rows, &replay_command(&file));
    let settled = tmux.settled(&[live, "ws"], SETTLE_LIMIT);
    let _ = tmux.command(&["kill-session", "-t", "ws"]);
    settled
}

/// Detaches the `terminal attach` in pane `name` (its command from
/// [`attach_then_shell`]) and checks the terminal it leaves: the main
/// screen, the cursor shown, no mouse or keypad mode, the detach line on a
/// line of its own in the default colours, nothing typed into the shell.
fn detach_leaves_the_terminal_clean(tmux: &Tmux, name: &str, id: &str, f: &mut Findings) {
    tmux.keys(name, &["C-]"]);
    let text = tmux.wait(name, "ATTACH-DONE after Ctrl-]", Duration::from_secs(15), |s| {
        s.contains("ATTACH-DONE")
    });
    let pane = tmux.pane(name);
    let state = pane.state_map();
    for (mode, want) in [
        ("alternate_on", "0"),
        ("cursor_flag", "1"),
        ("mouse_any_flag", "0"),
        ("mouse_button_flag", "0"),
        ("mouse_standard_flag", "0"),
        ("mouse_all_flag", "0"),
        ("mouse_sgr_flag", "0"),
        ("mouse_utf8_flag", "0"),
        ("keypad_flag", "0"),
        ("keypad_cursor_flag", "0"),
        ("insert_flag", "0"),
        ("origin_flag", "0"),
    ] {
        f.check(state.get(mode).map(String::as_str) == Some(want), || {
            format!(
                "after detaching from {id}: {mode} is {:?}, not {want}\n{text}",
                state.get(mode)
            )
        });
    }
    let detach = format!("[detached from {id}");
    let line = text.lines().find(|l| l.contains(&detach));
    f.check(line.is_some_and(|l| l.starts_with(&detach)), || {
        format!("the detach line is not on a fresh line: {line:?}\n{text}")
    });
    // Up to the end of the message: what is right of it on that row is
    // whatever the program had drawn there.
    let coloured = pane.screen.lines().find(|l| l.contains(&detach));
    let plain = |l: &str| {
        let end = l.find(&detach).map_or(0, |at| at + l[at..].find(']').map_or(0, |e| e + 1));
        !l[..end].contains('⟦')
    };
    f.check(coloured.is_some_and(plain), || {
        format!("the detach line is not in the default colours: {coloured:?}")
    });
    let typed = text.lines().find_map(|l| l.strip_prefix("typed:[")?.split(']').next());
    f.check(typed == Some(""), || {
        format!("a terminal answer reached the shell after the detach:\n{text}")
    });
}

/// Terminal answers shown as text in `screen`: what a program shows when
/// a client's answers to replayed queries reached it as typed input (DA1
/// and DA2, DECRQM, XTVERSION, OSC colours, cursor reports).
fn typed_answers(screen: &str) -> Vec<String> {
    let mut found: Vec<String> = ["1;2c", "?62;", "?64;", "?65;", "$y", "tmux 3.", "rgb:", ">|"]
        .iter()
        .filter(|p| screen.contains(**p))
        .map(|p| p.to_string())
        .collect();
    // A cursor report: `<row>;<col>R`.
    let b = screen.as_bytes();
    let digits = |s: &[u8]| s.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    for (i, _) in screen.match_indices('R') {
        let head = &b[..i];
        let col = digits(head);
        if col > 0 && head.len() > col && head[head.len() - col - 1] == b';' {
            let row = digits(&head[..head.len() - col - 1]);
            if row > 0 {
                found.push(String::from_utf8_lossy(&b[i - col - 1 - row..=i]).into_owned());
            }
        }
    }
    found
}

/// No terminal answer shows in pane `name` as typed into its program.
fn nothing_typed(tmux: &Tmux, name: &str, when: &str, f: &mut Findings) {
    let text = tmux.text(name);
    let typed = typed_answers(&text);
    f.check(typed.is_empty(), || {
        format!("{when}: terminal answers typed into the program: {typed:?}\n{text}")
    });
}

/// The mock provider and profile of one agent, in a world with the real
/// agents on PATH and a work directory.
fn agent_world(name: &str, agent: &str, config: &str) -> (Env, MockProvider, PathBuf) {
    let bin = real_agents_dir().join("node_modules").join(".bin");
    assert!(
        bin.join(agent).is_file(),
        "{} is missing: run tests/setup.sh (`make test` does)",
        bin.join(agent).display()
    );
    let mut env = Env::new(name);
    env.extra_path.push(bin);
    env.write_config(config);
    let (mock, kind, endpoint, env_key, model) = match agent {
        "codex" => {
            let mock = MockProvider::openai_responses("pong from the codex mock");
            let url = format!("{}/v1", mock.url());
            (mock, "openai-compatible", url, "MOCK_OPENAI_KEY", "mock-codex-1")
        }
        "claude" => {
            let mock = MockProvider::anthropic("pong from the claude mock");
            let url = mock.url();
            (mock, "anthropic", url, "MOCK_ANTHROPIC_API_KEY", "mock-model-1")
        }
        _ => {
            let mock = MockProvider::anthropic("pong from the opencode mock");
            let url = mock.url();
            (mock, "anthropic-compatible", url, "MOCK_KEY", "mock-model-1")
        }
    };
    let dir = env.config.join("providers.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("mockp.toml"),
        format!(
            "id = \"mockp\"\nname = \"Mock\"\ntype = \"{kind}\"\n\n[endpoints]\ndefault = \"{endpoint}\"\n\n\
             [auth]\nenv_key = \"{env_key}\"\n\n[models]\navailable = [\"{model}\"]\ndefault = \"{model}\"\n"
        ),
    )
    .unwrap();
    // The daemon this starts keeps the file store (no keychain needed).
    env.cmd(&["profiles", "create", agent, "ag", "-p", "mockp", "--api-key-stdin", "--no-alias"])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin("sk-ant-api03-e2e-screen-0123456789abcdefghijKLMN")
        .ok();
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    (env, mock, work)
}

/// The line of Claude Code's selection list the cursor (`❯`) is on.
fn selected(screen: &str) -> Option<&str> {
    screen.lines().map(str::trim_start).find(|l| l.starts_with('❯'))
}

/// Answers Claude Code's folder-trust dialog in pane `name` with "Yes": it
/// selects "No, exit" first and drops keys for a moment after it appears,
/// so this waits, moves down until "Yes" is selected and confirms then (see
/// agents.rs `trust_this_folder`).
fn trust_the_folder(tmux: &Tmux, name: &str) {
    const YES: &str = "Yes, I trust this folder";
    tmux.wait(name, "the folder-trust question", AGENT_LIMIT, |s| s.contains(YES));
    thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + AGENT_LIMIT;
    loop {
        let screen = tmux.text(name);
        assert!(!screen.contains("isn't trusted"), "Claude Code took No:\n{screen}");
        if !screen.contains(YES) {
            return;
        }
        assert!(Instant::now() < deadline, "the trust dialog stayed:\n{screen}");
        let on_yes = selected(&screen).is_some_and(|l| l.contains(YES));
        tmux.keys(name, &[if on_yes { "Enter" } else { "Down" }]);
        let pressed = Instant::now();
        while tmux.text(name) == screen && pressed.elapsed() < Duration::from_secs(3) {
            thread::sleep(Duration::from_millis(100));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Reads `/ws` events until one of `kind` for session `id` satisfies `want`.
fn event_for(
    events: &mut Ws,
    kind: &str,
    id: &str,
    limit: Duration,
    want: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(Message::Text(t)) = events.frame() {
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            if v["type"] == kind && v["data"]["id"] == id && want(&v) {
                return Ok(v);
            }
            if v["type"] == kind {
                seen.push(v);
            }
        }
    }
    Err(format!("no such {kind} for {id} within {limit:?}; {kind} events seen: {seen:?}"))
}

/// Reconnects to a real agent's full-screen UI: pane A attached from the
/// start, pane B attached once A is quiet, a browser-style client after
/// that; all three show what A shows, B's attaching changed nothing on the
/// program's screen, and detaching B leaves its terminal clean.
fn reconnect_to_agent(agent: &str, config: &str, fullscreen: bool, ready: impl Fn(&str) -> bool) {
    let (env, mock, work) = agent_world(&format!("screen-{agent}"), agent, config);
    let (addr, token) = env.http();
    let (cols, rows) = (120, 40);
    let info = create(
        &env,
        addr,
        &token,
        json!({"profile": "ag", "sandbox": false, "cols": cols, "rows": rows,
               "working_dir": work.display().to_string()}),
    );
    let id = info["id"].as_str().unwrap().to_string();
    let mut f = Findings::default();
    let mut events = Ws::open(addr, &token, "/ws");
    let mut tmux = screen_tmux(&env);
    let attach = ringlet_command(&env, &format!("terminal attach {id}"));
    tmux.recorded_window("A", cols, rows, &attach, &env.root.join("A.bytes"));
    let started = Instant::now();
    if agent == "claude" {
        trust_the_folder(&tmux, "A");
    }
    tmux.wait("A", &format!("{agent}'s UI"), AGENT_LIMIT, &ready);
    let before = match tmux.settled(&["A"], AGENT_LIMIT) {
        Ok(p) => p,
        Err(e) => panic!("{agent} never held still: {e}"),
    };
    eprintln!("{agent}: UI quiet after {:?}", started.elapsed());
    let alternate = if fullscreen { "1" } else { "0" };
    f.check(before.state_map()["alternate_on"] == alternate, || {
        format!("{agent}: alternate_on is not {alternate}:\n{}", tmux.text("A"))
    });

    // B attaches late, from a shell.
    tmux.sized_window("B", cols, rows, &attach_then_shell(&env, &id));
    let after = f.result(
        &format!("{agent}: pane B attached late vs pane A attached from the start"),
        tmux.settled(&["A", "B"], SETTLE_LIMIT),
    );
    if after.is_some() {
        nothing_typed(&tmux, "A", &format!("{agent}: after B attached"), &mut f);
    }
    // A browser connects.
    browser_client_matches(&env, &mut tmux, (addr, &token), &id, "A", (cols, rows), &mut f);
    // B leaves.
    detach_leaves_the_terminal_clean(&tmux, "B", &id, &mut f);
    let _ = tmux.settled(&["A"], SETTLE_LIMIT);
    nothing_typed(&tmux, "A", &format!("{agent}: by the end"), &mut f);
    // Claude Code asks for OSC 7501 and reports its state: working while
    // it waits for the model, then waiting for the user. The mock holds
    // its answer until Claude Code said it is working: answered at once,
    // Claude Code may draw the reply before it ever reports working (its
    // fullscreen UI did).
    if agent == "claude" {
        tmux.keys("A", &["-l", "say pong"]);
        tmux.wait("A", "the typed prompt", AGENT_LIMIT, |s| s.contains("say pong"));
        mock.hold();
        tmux.keys("A", &["Enter"]);
        let working = event_for(&mut events, "TerminalStateChanged", &id, STATE_LIMIT, |v| {
            v["data"]["agent_state"] == "working"
        });
        mock.release();
        if f.result("claude: TerminalStateChanged working", working).is_some() {
            let waiting = event_for(&mut events, "TerminalStateChanged", &id, STATE_LIMIT, |v| {
                v["data"]["agent_state"] == "waiting"
            });
            f.result("claude: TerminalStateChanged waiting after the reply", waiting);
        }
        tmux.wait("A", "the mock's reply", AGENT_LIMIT, |s| {
            s.contains("pong from the claude mock")
        });
    }
    drop(mock);
    env.cmd(&["terminal", "kill", &id]).ok();
    drop(tmux);
    f.done();
}

/// `source` as `<name>.py` in the world's root: the shell command that runs it.
fn python(env: &Env, name: &str, source: &str) -> String {
    let script = env.root.join(format!("{name}.py"));
    fs::write(&script, source).unwrap();
    format!("exec python3 {}", sh_quote(&script.display().to_string()))
}

/// Whether `n` clients are attached to session `id` within 10 s.
fn clients_attached(env: &Env, id: &str, n: u64) -> bool {
    wait_until(Duration::from_secs(10), || {
        env.cmd(&["terminal", "info", id, "--json"]).json()["clients"] == n
    })
}

/// Pane `R`: tmux running `command` itself, the reference a client is
/// compared with, once it shows `marker`.
fn reference(tmux: &mut Tmux, (cols, rows): (u16, u16), command: &str, marker: &str) {
    tmux.sized_window("R", cols, rows, &format!("sh -c {}", sh_quote(command)));
    tmux.wait("R", "the program", Duration::from_secs(20), |s| s.contains(marker));
}

/// Ends session `id` and the test: it fails if any finding did.
fn finish(env: &Env, id: &str, f: Findings) {
    env.cmd(&["terminal", "kill", id]).ok();
    f.done();
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Claude Code's prompt, the trust dialog answered.
fn claude_ready(s: &str) -> bool {
    !s.contains("trust this folder") && s.lines().any(|l| l.trim_start().starts_with('❯'))
}

/// Claude Code's fullscreen UI (alternate screen, mouse tracking), which
/// 2.1.332 picks by itself only behind a feature gate (never against a
/// mock base URL): `tui = "fullscreen"` in the settings asks for it.
#[test]
fn reconnecting_to_claude_code_shows_the_screen_tmux_shows() {
    let config = "[agents.claude.settings]\ntui = \"fullscreen\"\n";
    reconnect_to_agent("claude", config, true, claude_ready);
}

/// Claude Code's inline UI (the main screen, its own reverse-video cursor).
#[test]
fn reconnecting_to_inline_claude_code_shows_the_screen_tmux_shows() {
    reconnect_to_agent("claude", "", false, claude_ready);
}

#[test]
fn reconnecting_to_codex_shows_the_screen_tmux_shows() {
    reconnect_to_agent("codex", "", true, |s| {
        s.contains("OpenAI Codex") && s.contains("To get started")
    });
}

#[test]
fn reconnecting_to_opencode_shows_the_screen_tmux_shows() {
    reconnect_to_agent("opencode", "", true, |s| s.contains("Ask anything"));
}

/// A program that turns on every mode it can, then writes well over the
/// scrollback ring (1 MiB) of frames, then draws its last one: a client
/// attaching after that gets the screen and the modes, which the last
/// MiB of bytes alone would not give it (they start mid-frame and hold no
/// mode switch).
#[test]
fn a_late_client_gets_the_screen_and_modes_written_before_the_ring() {
    let env = shell_world("screen-synthetic");
    let (addr, token) = env.http();
    let (cols, rows) = (100u16, 30u16);
    let command = python(
        &env,
        "tui",
        r#"
import os, sys
w = lambda s: os.write(1, s.encode())
sys.stdin.readline()
for i in range(60):
    w("history line %d\r\n" % i)
w("\x1b]2;synthetic-title\x07")
w("\x1b[?1049h\x1b[?25l\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?1h\x1b=\x1b[?2004h\x1b[?1004h")
w("\x1b[2;28r")
frame = 0
written = 0
while written < 3 * 1024 * 1024:
    frame += 1
    out = ["\x1b[H\x1b[4%dm\x1b[2J" % (frame % 8)]
    for r in range(1, 31):
        out.append("\x1b[%d;1H\x1b[3%d;1mframe %d row %d " % (r, r % 8, frame, r) + "x" * (r * 2) + "\x1b[0m")
    s = "".join(out)
    w(s)
    written += len(s)
w("\x1b[0m\x1b[H\x1b[2J")
for r in range(1, 29):
    w("\x1b[%d;1H\x1b[38;5;%dm\x1b[48;2;10;20;%dmfinal row %d\x1b[0m \x1b[7mrev\x1b[0m \x1b[4munder\x1b[0m" % (r, r + 16, r * 8, r))
w("\x1b[30;1Hbottom line outside the region")
w("\x1b[12;34H")
w("\x1b]2;final-title\x07")
os.system("sleep 600")
"#,
    );
    let id = sh_session(&env, (addr, &token), &command);
    let mut f = Findings::default();
    let mut tmux = screen_tmux(&env);
    tmux.sized_window("A", cols, rows, &ringlet_command(&env, &format!("terminal attach {id}")));
    assert!(clients_attached(&env, &id, 1), "pane A did not attach");
    tmux.keys("A", &["go", "Enter"]);
    // A browser-style client connects while the program draws frames: its
    // screen and the live output after it join with no gap and no repeat.
    tmux.wait("A", "the frames", Duration::from_secs(60), |s| s.contains("frame "));
    let mut mid = Ws::terminal(addr, &token, &id);
    // 3 MiB through the PTY and a pane: seconds on a loaded machine.
    let mut mid_frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The program's last write is the title; it may straddle two frames.
    let mut tail: Vec<u8> = Vec::new();
    while !tail.windows(11).any(|w| w == b"final-title") {
        assert!(Instant::now() < deadline, "the mid-stream client never got the last frame");
        if let Some(m) = mid.frame() {
            if let Message::Binary(b) = &m {
                tail.extend_from_slice(b);
                tail.drain(..tail.len().saturating_sub(b.len() + 16));
            }
            mid_frames.push(m);
        }
    }
    mid_frames.extend(mid.until_quiet(Duration::from_millis(1500), Duration::from_secs(20)));
    tmux.wait("A", "the last frame", Duration::from_secs(60), |s| {
        s.contains("final row 28") && s.contains("bottom line outside the region")
    });
    let before = match tmux.settled(&["A"], SETTLE_LIMIT) {
        Ok(p) => p,
        Err(e) => panic!("the program never held still: {e}"),
    };
    let state = before.state_map();
    // What the live pane shows is what the program asked for (the test's own check).
    for (mode, want) in [
        ("alternate_on", "1"),
        ("cursor", "33,11"),
        ("cursor_flag", "0"),
        ("mouse_button_flag", "1"),
        ("mouse_sgr_flag", "1"),
        ("keypad_cursor_flag", "1"),
        ("scroll_region", "1-27"),
        ("pane_title", "final-title"),
    ] {
        assert_eq!(
            state.get(mode).map(String::as_str),
            Some(want),
            "pane A: {mode}\n{}",
            before.state
        );
    }

    tmux.sized_window("B", cols, rows, &attach_then_shell(&env, &id));
    let after = f.result("pane B attached late vs pane A", tmux.settled(&["A", "B"], SETTLE_LIMIT));
    f.check(after.as_ref().is_none_or(|a| *a == before), || {
        "attaching B changed pane A".to_string()
    });
    browser_client_matches(&env, &mut tmux, (addr, &token), &id, "A", (cols, rows), &mut f);
    let what = "the client connected mid-stream";
    replay_matches(&env, &mut tmux, &mid_frames, "A", (cols, rows), what, &mut f);
    detach_leaves_the_terminal_clean(&tmux, "B", &id, &mut f);
    finish(&env, &id, f);
}

/// Erasing and scrolling with a pen on (the background colour is kept,
/// reverse video and underline are not), a reverse-video cell drawn
/// then overwritten, and one left as the last cell written on its row
/// (Claude Code's own cursor, after `❯`): a client attaching afterwards
/// sees what tmux shows running the program itself.
#[test]
fn erased_cells_look_as_tmux_draws_them() {
    let env = shell_world("screen-erase");
    let (addr, token) = env.http();
    let (cols, rows) = (100u16, 30u16);
    let command = python(
        &env,
        "erase",
        r#"
import os
w = lambda s: os.write(1, s.encode())
w("\x1b[?1049h\x1b[H\x1b[2J")
w("el-reverse\x1b[7m\x1b[K\x1b[0m\r\n")
w("el-blue\x1b[44m\x1b[K\x1b[0m\r\n")
w("el-underline-red\x1b[4;41m\x1b[K\x1b[0m\r\n")
w("ech-reverse-12345tail\x1b[9D\x1b[7m\x1b[5X\x1b[0m\r\n")
w("ech-green-12345tail\x1b[9D\x1b[42m\x1b[5X\x1b[0m\r\n")
w("dch-reverse-abcdef\x1b[6D\x1b[7m\x1b[2P\x1b[0m\r\n")
w("cursor-cell:\x1b[7m \x1b[27m\x1b[D \r\n")
w("cursor-cell-2:\x1b[7m \x1b[0m\x1b[D\x1b[K\r\n")
w("cursor-last:\u276f\u00a0\x1b[7m \x1b[27m\r\n")
w("\x1b[12;1H\x1b[7m\x1b[L\x1b[0m")
w("\x1b[20;1H\x1b[45m\x1b[J\x1b[0m")
w("\x1b[25;1Hbelow\x1b[3;5H")
os.system("sleep 600")
"#,
    );
    let id = sh_session(&env, (addr, &token), &command);
    let mut f = Findings::default();
    let mut tmux = screen_tmux(&env);
    reference(&mut tmux, (cols, rows), &command, "below");
    tmux.sized_window("B", cols, rows, &attach_then_shell(&env, &id));
    let settled = tmux.settled(&["R", "B"], SETTLE_LIMIT);
    f.result("`terminal attach` vs tmux running the program", settled);
    browser_client_matches(&env, &mut tmux, (addr, &token), &id, "R", (cols, rows), &mut f);
    finish(&env, &id, f);
}

/// The lines that scrolled off the top come first, in a frame of their
/// own, then the screen: a fresh pane fed both has the history and the
/// screen of tmux running the program itself.
#[test]
fn the_history_above_the_screen_comes_before_it() {
    let env = shell_world("screen-history");
    let (addr, token) = env.http();
    let (cols, rows) = (100u16, 30u16);
    let command = "i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo \"numbered line $i\"; done; \
                   printf '\\033[1;31mred\\033[0m at the end'; exec sleep 600";
    let id = sh_session(&env, (addr, &token), command);
    let mut f = Findings::default();
    let mut tmux = screen_tmux(&env);
    reference(&mut tmux, (cols, rows), command, "at the end");
    let mut ws = Ws::terminal(addr, &token, &id);
    let frames = ws.until_quiet(Duration::from_millis(1500), Duration::from_secs(20));
    let binary = |i: usize| match frames.get(i) {
        Some(Message::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let (history, screen) = (binary(1), binary(2));
    f.check(
        history.contains("numbered line 1\r\n") && history.contains("numbered line 71"),
        || format!("the history frame lacks the lines above the screen: {history:?}"),
    );
    f.check(!history.contains("numbered line 72\r\n"), || {
        format!("the history frame holds a line of the screen: {history:?}")
    });
    f.check(screen.contains("numbered line 72") && screen.contains("at the end"), || {
        format!("the screen frame lacks the screen: {screen:?}")
    });
    replay_matches(&env, &mut tmux, &frames, "R", (cols, rows), "history and screen", &mut f);
    // The replay pane was killed by replay_matches: feed it again to read its history.
    let file = env.root.join("history.bytes");
    fs::write(&file, binary_bytes(&frames)).unwrap();
    tmux.sized_window("H", cols, rows, &replay_command(&file));
    let ok = wait_until(Duration::from_secs(10), || tmux.text("H").contains("at the end"));
    f.check(ok, || format!("the replay pane shows:\n{}", tmux.text("H")));
    let (want, got) = (tmux.history("R"), tmux.history("H"));
    assert!(want.contains("numbered line 1\n"), "tmux's own history: {want}");
    f.check(want.trim_end() == got.trim_end(), || {
        format!("the scrollback differs:\ntmux:\n{want}\nreplayed:\n{got}")
    });
    finish(&env, &id, f);
}

/// The query program: answers to DA1 and CPR are collected for 2 s after
/// the first byte (10 s at most) and logged as hex, one line per query.
const QUERIES: &str = r#"
import os, sys, select, termios, time, tty
log, mode = sys.argv[1], sys.argv[2]
if mode == "go":
    print("ready-for-go", flush=True)
    sys.stdin.readline()
old = termios.tcgetattr(0)
tty.setraw(0)
def ask(name, query):
    os.write(1, query)
    got, first = b"", None
    deadline = time.time() + 10
    while True:
        end = deadline if first is None else min(deadline, first + 2.0)
        left = end - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([0], [], [], left)
        if r:
            chunk = os.read(0, 1024)
            if not chunk:
                break
            if first is None:
                first = time.time()
            got += chunk
    with open(log, "a") as f:
        f.write("%s %s\n" % (name, got.hex()))
ask("da1", b"\x1b[c")
ask("cpr", b"\x1b[6n")
termios.tcsetattr(0, termios.TCSADRAIN, old)
print("queries-done", flush=True)
os.system("sleep 600")
"#;

/// Counts of `(DA1 answers, CPR answers, other bytes)` in the log line of
/// `name` (the bytes as hex).
fn answers(log: &str, name: &str) -> (usize, usize, String) {
    let hex = log
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in the log:\n{log}"));
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (mut da1, mut cpr, mut rest) = (0, 0, String::new());
    let mut s = text.as_str();
    while !s.is_empty() {
        if let Some(tail) = s.strip_prefix("\x1b[") {
            let end = tail.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(tail.len() - 1);
            let (params, fin) = (&tail[..end], &tail[end..=end]);
            match fin {
                "c" if params.starts_with('?') => da1 += 1,
                "R" if params.split(';').count() == 2 => cpr += 1,
                _ => rest.push_str(&format!("ESC[{params}{fin}")),
            }
            s = &tail[end + 1..];
        } else {
            let c = s.chars().next().unwrap();
            rest.push(c);
            s = &s[c.len_utf8()..];
        }
    }
    (da1, cpr, rest.replace('\x1b', "ESC"))
}

/// The program's query log `text`: exactly one answer to each query (DA1,
/// CPR) and no other input.
fn answered_once(text: &str, f: &mut Findings) {
    for (name, query) in [("da1", "DA1"), ("cpr", "CPR")] {
        let (da1, cpr, rest) = answers(text, name);
        let n = if name == "da1" { da1 } else { cpr };
        f.check(n == 1 && rest.is_empty(), || {
            format!("{query}: {n} answers, other input {rest:?}\n{text}")
        });
    }
}

fn query_log(env: &Env, name: &str) -> (PathBuf, String) {
    let log = env.root.join(format!("{name}.log"));
    let command = python(env, "queries", QUERIES);
    (log.clone(), format!("{command} {}", sh_quote(&log.display().to_string())))
}

fn wait_log(log: &Path) -> String {
    // Each query waits 10 s at most for an answer that never comes.
    assert!(
        wait_until(Duration::from_secs(40), || {
            fs::read_to_string(log).unwrap_or_default().lines().count() >= 2
        }),
        "the query program logged nothing: {:?}",
        fs::read_to_string(log)
    );
    fs::read_to_string(log).unwrap()
}

/// Three clients attached (two `terminal attach` in tmux, which answer every
/// query they see, and a browser-style WebSocket client that answers like
/// xterm.js): the program gets exactly one answer to each query, and no
/// query reaches the browser client.
#[test]
fn with_three_clients_each_query_is_answered_once() {
    let env = shell_world("screen-queries");
    let (addr, token) = env.http();
    let (log, command) = query_log(&env, "three");
    let id = sh_session(&env, (addr, &token), &format!("{command} go"));
    let mut tmux = screen_tmux(&env);
    tmux.sized_window("A", 100, 30, &ringlet_command(&env, &format!("terminal attach {id}")));
    tmux.sized_window("B", 100, 30, &ringlet_command(&env, &format!("terminal attach {id}")));
    let mut browser = Ws::terminal(addr, &token, &id);
    assert!(clients_attached(&env, &id, 3), "not all three clients attached");
    tmux.wait("A", "the program", Duration::from_secs(10), |s| s.contains("ready-for-go"));
    browser.type_in(b"go\r");
    // The browser answers what it sees, as xterm.js would, until the program is done.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while fs::read_to_string(&log).unwrap_or_default().lines().count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the program did not finish: {:?}",
            fs::read_to_string(&log)
        );
        if let Some(Message::Binary(b)) = browser.frame() {
            if b.windows(3).any(|w| w == b"\x1b[c") {
                browser.type_in(b"\x1b[?62;22c");
            }
            if b.windows(4).any(|w| w == b"\x1b[6n") {
                browser.type_in(b"\x1b[3;9R");
            }
            seen.extend_from_slice(&b);
        }
    }
    let text = wait_log(&log);
    let mut f = Findings::default();
    answered_once(&text, &mut f);
    let queries = queries_in(&seen);
    f.check(queries.is_empty(), || format!("queries reached the browser client: {queries:?}"));
    finish(&env, &id, f);
}

/// With no client attached, a program's query is still answered (by the
/// daemon), once, and at once: it never waits for a client.
#[test]
fn with_no_client_a_query_is_still_answered() {
    let env = shell_world("screen-queries-none");
    let (addr, token) = env.http();
    let (log, command) = query_log(&env, "none");
    let id = sh_session(&env, (addr, &token), &format!("{command} now"));
    let text = wait_log(&log);
    let mut f = Findings::default();
    answered_once(&text, &mut f);
    let info = env.cmd(&["terminal", "info", &id, "--json"]).json();
    f.check(info["clients"] == 0, || format!("a client was attached: {info}"));
    finish(&env, &id, f);
}

/// OSC 7501 program status (as Codex sends it, BEL- or ST-terminated)
/// becomes the session's `agent_state` in `terminal list --json` and the
/// REST list, announced by `TerminalStateChanged` on `/ws`: null before
/// any, "working", then "waiting" after idle or done.
#[test]
fn program_status_becomes_the_sessions_agent_state() {
    let env = shell_world("screen-state");
    let (addr, token) = env.http();
    let mut events = Ws::open(addr, &token, "/ws");
    let script = "read l; printf '\\033]7501;state=working:app=codex\\007'; echo sent-1; \
                  read l; printf '\\033]7501;state=idle:app=codex\\033\\\\'; echo sent-2; \
                  read l; printf '\\033]7501;state=working:app=codex\\033\\\\'; echo sent-3; \
                  read l; printf '\\033]7501;state=done:app=codex\\007'; echo sent-4; \
                  exec sleep 600";
    let id = sh_session(&env, (addr, &token), script);
    let mut f = Findings::default();
    let listed = |env: &Env| -> Value {
        let list = env.cmd(&["terminal", "list", "--json"]).json();
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let rest = || -> Value {
        let auth = format!("Bearer {token}");
        let answer =
            request(addr, "GET", "/api/terminal/sessions", &[("Authorization", &auth)], b"");
        let v = answer.json();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let first = listed(&env);
    if first.get("agent_state").is_none() {
        panic!("`terminal list --json` has no agent_state: {first}");
    }
    f.check(first["agent_state"].is_null(), || {
        format!("before any status agent_state is not null: {}", first["agent_state"])
    });
    let mut term = Ws::terminal(addr, &token, &id);
    for (n, want) in [(1, "working"), (2, "waiting"), (3, "working"), (4, "waiting")] {
        term.type_in(b"x\r");
        let event =
            event_for(&mut events, "TerminalStateChanged", &id, Duration::from_secs(10), |v| {
                v["data"]["agent_state"] == want
            });
        if let Some(event) = f.result(&format!("status {n}: the event for {want}"), event) {
            f.check(event["data"]["profile"] == "sh1", || {
                format!("the event names no profile: {event}")
            });
        }
        let ok = wait_until(Duration::from_secs(10), || listed(&env)["agent_state"] == want);
        f.check(ok, || {
            format!("status {n}: `terminal list --json` does not say {want}: {}", listed(&env))
        });
        let r = rest();
        f.check(r["agent_state"] == want, || {
            format!("status {n}: GET /api/terminal/sessions: {r}")
        });
    }
    let table = env.cmd(&["terminal", "list"]).ok();
    f.check(table.contains("waiting"), || format!("`terminal list` shows no state:\n{table}"));
    drop(term);
    finish(&env, &id, f);
}
