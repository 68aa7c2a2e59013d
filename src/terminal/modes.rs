//! What a terminal session's output turns on that the screen model (avt)
//! does not track, and the terminal queries in it.
//!
//! avt keeps the cells, the cursor (and whether it shows), both buffers,
//! margins, charsets and a few modes; it ignores mouse and focus reporting,
//! bracketed paste, the keypad mode, the kitty keyboard protocol, the cursor
//! shape, the title and the colours a program sets. [`Modes`] follows those
//! in the same stream, so that a client connecting later gets them
//! reproduced and `terminal attach` can undo them on the way out.
//!
//! Queries (DA1, DA2, DSR/CPR, XTVERSION, DECRQM, OSC 10/11/12 and 4 `?`,
//! `OSC 7501 ; ?`, kitty `CSI ? u`, XTGETTCAP, window reports) are taken out
//! of the stream: the daemon answers the ones it can (see `Screen`), and no
//! client ever sees one, so two clients never answer twice and a program
//! with no client attached never waits. What clients send that looks like an
//! answer is dropped from their input ([`filter_input`]).
//!
//! The scanner works on bytes: [`step`] says whether the next piece is plain
//! text, a whole escape sequence, or the start of one that has not ended
//! yet (held back until the next read, so a query split across two reads
//! is still found).

use std::borrow::Cow;
use std::fmt::Write as _;

/// An unfinished escape sequence longer than this is let through as it is
/// (an OSC 52 copy of a big selection, a sixel image): holding more would
/// only delay output.
pub const MAX_SEQUENCE: usize = 64 * 1024;

/// The next piece of a byte stream.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Plain text up to this offset (never ending inside a UTF-8 character).
    Text(usize),
    /// A whole escape sequence ending at this offset.
    Seq(usize),
    /// The rest starts a sequence or a character that has not ended yet.
    Incomplete,
}

/// Looks at `buf[at..]` (not empty).
pub fn step(buf: &[u8], at: usize) -> Step {
    let rest = &buf[at..];
    if rest[0] != 0x1b {
        let end = rest.iter().position(|&b| b == 0x1b).unwrap_or(rest.len());
        let end = if end == rest.len() { end - utf8_tail(rest) } else { end };
        return if end == 0 { Step::Incomplete } else { Step::Text(at + end) };
    }
    match sequence_len(rest) {
        Some(n) => Step::Seq(at + n),
        None if rest.len() > MAX_SEQUENCE => Step::Text(buf.len()),
        None => Step::Incomplete,
    }
}

/// `bytes` after the unfinished end of the last read, if one was held
/// (taken from `held`).
pub fn join<'a>(held: &mut Vec<u8>, bytes: &'a [u8]) -> Cow<'a, [u8]> {
    if held.is_empty() {
        Cow::Borrowed(bytes)
    } else {
        held.extend_from_slice(bytes);
        Cow::Owned(std::mem::take(held))
    }
}

/// Calls `seq(start, end)` for each whole escape sequence of `data`, in
/// order, and returns where the whole part of `data` ends: the rest (to be
/// held for the next read) starts a sequence or a character not finished.
pub fn each_sequence(data: &[u8], mut seq: impl FnMut(usize, usize)) -> usize {
    let mut at = 0;
    while at < data.len() {
        match step(data, at) {
            Step::Text(end) => at = end,
            Step::Seq(end) => {
                seq(at, end);
                at = end;
            }
            Step::Incomplete => break,
        }
    }
    at
}

/// How many bytes at the end of `s` begin a UTF-8 character not yet whole.
fn utf8_tail(s: &[u8]) -> usize {
    for i in 1..=s.len().min(3) {
        let b = s[s.len() - i];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let need = match b {
            0xf0.. => 4,
            0xe0.. => 3,
            0xc0.. => 2,
            _ => 1,
        };
        return if need > i { i } else { 0 };
    }
    0
}

/// The length of the escape sequence `s` starts with, if it is whole. A
/// sequence broken off by a control character ends before it (and passes
/// as it is, like any sequence not recognised).
fn sequence_len(s: &[u8]) -> Option<usize> {
    let second = *s.get(1)?;
    match second {
        b'[' => {
            for (i, &b) in s.iter().enumerate().skip(2) {
                match b {
                    0x20..=0x3f => {}
                    0x40..=0x7e => return Some(i + 1),
                    _ => return Some(i),
                }
            }
            None
        }
        b']' | b'P' | b'X' | b'^' | b'_' => {
            for i in 2..s.len() {
                match s[i] {
                    0x07 | 0x18 | 0x1a => return Some(i + 1),
                    0x1b => {
                        return match s.get(i + 1) {
                            None => None,
                            Some(b'\\') => Some(i + 2),
                            Some(_) => Some(i),
                        };
                    }
                    _ => {}
                }
            }
            None
        }
        0x20..=0x2f => {
            for (i, &b) in s.iter().enumerate().skip(2) {
                match b {
                    0x20..=0x2f => {}
                    0x30..=0x7e => return Some(i + 1),
                    _ => return Some(i),
                }
            }
            None
        }
        0x00..=0x1f => Some(1),
        _ => Some(2),
    }
}

/// A CSI sequence taken apart: `ESC [ <prefix> <params> <intermediates> <final>`.
struct Csi<'a> {
    prefix: u8,
    params: &'a [u8],
    inter: &'a [u8],
    fin: u8,
}

fn csi(seq: &[u8]) -> Option<Csi<'_>> {
    let body = seq.strip_prefix(b"\x1b[")?;
    let (&fin, body) = body.split_last()?;
    if !(0x40..=0x7e).contains(&fin) {
        return None;
    }
    let (prefix, body) = match body.first() {
        Some(&p @ (b'<' | b'=' | b'>' | b'?')) => (p, &body[1..]),
        _ => (0, body),
    };
    let split = body.iter().position(|b| (0x20..=0x2f).contains(b)).unwrap_or(body.len());
    let (params, inter) = body.split_at(split);
    Some(Csi { prefix, params, inter, fin })
}

/// The numbers of a parameter string; empty ones are 0.
fn numbers(params: &[u8]) -> impl Iterator<Item = u32> + '_ {
    params.split(|&b| b == b';').map(|p| {
        let p = p.split(|&b| b == b':').next().unwrap_or_default();
        std::str::from_utf8(p).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
    })
}

/// The body of an OSC, DCS or APC string, without its introducer and end.
fn string_body(seq: &[u8]) -> &[u8] {
    let body = &seq[2..];
    body.strip_suffix(b"\x1b\\").or_else(|| body.strip_suffix(b"\x07")).unwrap_or(body)
}

/// Whether a string sequence ended with BEL (its answer ends the same way).
fn ends_with_bel(seq: &[u8]) -> bool {
    seq.last() == Some(&0x07)
}

/// What the program asked, for the session to answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Primary device attributes (`CSI c`).
    Da1,
    /// Secondary device attributes (`CSI > c`).
    Da2,
    /// Operating status (`CSI 5 n`).
    Status,
    /// Cursor position (`CSI 6 n`; `CSI ? 6 n` when `private`).
    Cursor { private: bool },
    /// XTVERSION (`CSI > q`).
    Version,
    /// DECRQM (`CSI ? Ps $ p`, or ANSI `CSI Ps $ p`).
    Mode { private: bool, mode: u32 },
    /// OSC 10/11/12 `?` (foreground, background, cursor colour); `mask`
    /// has bit `n` for OSC `first + n`.
    Colors { first: u8, mask: u8, bel: bool },
    /// OSC 4 `; n ; ?` (a palette entry).
    Palette { index: u8, bel: bool },
    /// `OSC 7501 ; ?`: whether the terminal takes program status.
    ProgramStatus { bel: bool },
    /// XTQMODKEYS (`CSI ? 4 m`).
    ModifyKeys { resource: u32 },
    /// The text area in characters (`CSI 18 t`).
    TextArea,
    /// XTGETTCAP (`DCS + q ...`): answered "not known".
    Termcap,
    /// DECRQSS (`DCS $ q ...`): answered "not valid".
    Setting,
}

/// What becomes of one escape sequence of the output.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// It goes to the clients (after updating the modes it sets).
    Pass,
    /// It is taken out, not answered.
    Strip,
    /// It is taken out and answered.
    Answer(Query),
}

/// The agent's state from `OSC 7501 ; state=...`: Codex and Claude Code
/// say whether they are working or waiting for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Working,
    /// Idle, done or blocked: waiting for the user.
    Waiting,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Working => "working",
            AgentState::Waiting => "waiting",
        }
    }
}

/// The DEC private modes tracked, one bit each (alt screen: one bit for
/// 47, 1047 and 1049).
const DEC: [u32; 17] =
    [1, 6, 7, 9, 12, 25, 1000, 1002, 1003, 1004, 1005, 1006, 1007, 1015, 1016, 1049, 2004];
const SYNC: u32 = 2026;
const MOUSE: [u32; 4] = [9, 1000, 1002, 1003];
const MOUSE_ENCODING: [u32; 4] = [1005, 1006, 1015, 1016];
/// At most this many kitty keyboard entries per screen (kitty's own bound
/// is similar); a program pushing forever does not grow the daemon.
const KITTY_DEPTH: usize = 16;
/// The longest title or colour spec kept.
const MAX_STRING: usize = 1024;

fn dec_bit(mode: u32) -> Option<u32> {
    let mode = if mode == 47 || mode == 1047 { 1049 } else { mode };
    DEC.iter().position(|&m| m == mode).map(|i| 1 << i)
}

/// The modes one terminal's output has on, beyond what avt keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Modes {
    /// Bits of [`DEC`] set.
    dec: u32,
    sync: bool,
    insert: bool,
    newline: bool,
    keypad: bool,
    /// DECSCUSR's parameter (0: the terminal's default).
    cursor_style: u8,
    /// Kitty keyboard flags pushed, per screen (main, alternate).
    kitty: [Vec<u8>; 2],
    /// XTMODKEYS modifyOtherKeys (`CSI > 4 ; v m`).
    modify_other_keys: u8,
    title: Option<String>,
    /// OSC 10, 11, 12 as the program set them.
    colors: [Option<String>; 3],
    state: Option<AgentState>,
    state_changed: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            dec: dec_bit(7).unwrap_or(0) | dec_bit(25).unwrap_or(0),
            sync: false,
            insert: false,
            newline: false,
            keypad: false,
            cursor_style: 0,
            kitty: [Vec::new(), Vec::new()],
            modify_other_keys: 0,
            title: None,
            colors: [None, None, None],
            state: None,
            state_changed: false,
        }
    }
}

impl Modes {
    /// Whether DEC private mode `mode` is on (None: not tracked).
    pub fn dec(&self, mode: u32) -> Option<bool> {
        if mode == SYNC {
            return Some(self.sync);
        }
        dec_bit(mode).map(|bit| self.dec & bit != 0)
    }

    pub fn alternate(&self) -> bool {
        self.dec(1049) == Some(true)
    }

    #[cfg(test)]
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    pub fn kitty_flags(&self) -> u8 {
        self.kitty[self.alternate() as usize].last().copied().unwrap_or(0)
    }

    #[cfg(test)]
    pub fn cursor_style(&self) -> u8 {
        self.cursor_style
    }

    #[cfg(test)]
    pub fn keypad(&self) -> bool {
        self.keypad
    }

    pub fn agent_state(&self) -> Option<AgentState> {
        self.state
    }

    /// Whether the agent state changed since the last call.
    pub fn take_state_change(&mut self) -> bool {
        std::mem::take(&mut self.state_changed)
    }

    fn set_dec(&mut self, mode: u32, on: bool) {
        if mode == SYNC {
            self.sync = on;
            return;
        }
        for group in [&MOUSE, &MOUSE_ENCODING] {
            if group.contains(&mode) {
                // As in xterm: one tracking mode (one encoding) at a time,
                // and resetting any of them turns tracking off.
                for m in group {
                    self.dec &= !dec_bit(*m).unwrap_or(0);
                }
                if on {
                    self.dec |= dec_bit(mode).unwrap_or(0);
                }
                return;
            }
        }
        let Some(bit) = dec_bit(mode) else { return };
        if mode == 47 || mode == 1047 || mode == 1049 {
            // A fresh alternate screen has its own, empty keyboard stack.
            if on && !self.alternate() {
                self.kitty[1].clear();
            }
        }
        if on {
            self.dec |= bit;
        } else {
            self.dec &= !bit;
        }
    }

    /// RIS: everything back to the start (the agent state stays: it is the
    /// program's, not the terminal's).
    fn hard_reset(&mut self) {
        let state = self.state;
        *self = Modes { state, ..Modes::default() };
    }

    /// Follows one whole escape sequence and says what becomes of it.
    pub fn classify(&mut self, seq: &[u8]) -> Action {
        match seq.get(1) {
            Some(b'[') => self.csi(seq),
            Some(b']') => self.osc(seq),
            Some(b'P') => {
                let body = string_body(seq);
                if body.starts_with(b"+q") {
                    Action::Answer(Query::Termcap)
                } else if body.starts_with(b"$q") {
                    Action::Answer(Query::Setting)
                } else {
                    Action::Pass
                }
            }
            Some(b'_') => {
                // A kitty graphics query: no client is asked (none answers
                // twice); ringlet does not claim the protocol.
                let body = string_body(seq);
                let control = body.split(|&b| b == b';').next().unwrap_or_default();
                if body.first() == Some(&b'G')
                    && control[1..].split(|&b| b == b',').any(|kv| kv == b"a=q")
                {
                    Action::Strip
                } else {
                    Action::Pass
                }
            }
            Some(b'=') if seq.len() == 2 => {
                self.keypad = true;
                Action::Pass
            }
            Some(b'>') if seq.len() == 2 => {
                self.keypad = false;
                Action::Pass
            }
            Some(b'c') if seq.len() == 2 => {
                self.hard_reset();
                Action::Pass
            }
            _ => Action::Pass,
        }
    }

    fn csi(&mut self, seq: &[u8]) -> Action {
        let Some(c) = csi(seq) else { return Action::Pass };
        let first = numbers(c.params).next().unwrap_or(0);
        match (c.prefix, c.inter, c.fin) {
            (0, b"", b'c') if first == 0 => Action::Answer(Query::Da1),
            (b'>', b"", b'c') => Action::Answer(Query::Da2),
            (b'=', b"", b'c') => Action::Strip,
            (0, b"", b'n') if first == 5 => Action::Answer(Query::Status),
            (0, b"", b'n') if first == 6 => Action::Answer(Query::Cursor { private: false }),
            (b'?', b"", b'n') if first == 6 => Action::Answer(Query::Cursor { private: true }),
            // Other reports (printer, keyboard, colour scheme): nobody is asked.
            (0 | b'?', b"", b'n') => Action::Strip,
            (b'>', b"", b'q') => Action::Answer(Query::Version),
            (b'?', b"$", b'p') => Action::Answer(Query::Mode { private: true, mode: first }),
            (0, b"$", b'p') => Action::Answer(Query::Mode { private: false, mode: first }),
            (b'?', b"", b'u') => Action::Strip,
            (b'>', b"", b'u') => {
                let stack = &mut self.kitty[self.alternate() as usize];
                if stack.len() == KITTY_DEPTH {
                    stack.remove(0);
                }
                stack.push(first as u8 & 0x1f);
                Action::Pass
            }
            (b'<', b"", b'u') => {
                let stack = &mut self.kitty[self.alternate() as usize];
                let n = (first.max(1) as usize).min(stack.len());
                stack.truncate(stack.len() - n);
                Action::Pass
            }
            (b'=', b"", b'u') => {
                let mut n = numbers(c.params);
                let flags = n.next().unwrap_or(0) as u8 & 0x1f;
                let how = n.next().unwrap_or(1);
                let stack = &mut self.kitty[self.alternate() as usize];
                if stack.is_empty() {
                    stack.push(0);
                }
                if let Some(top) = stack.last_mut() {
                    *top = match how {
                        2 => *top | flags,
                        3 => *top & !flags,
                        _ => flags,
                    };
                }
                Action::Pass
            }
            (b'?', b"", b'h' | b'l') => {
                for mode in numbers(c.params) {
                    self.set_dec(mode, c.fin == b'h');
                }
                Action::Pass
            }
            (0, b"", b'h' | b'l') => {
                for mode in numbers(c.params) {
                    match mode {
                        4 => self.insert = c.fin == b'h',
                        20 => self.newline = c.fin == b'h',
                        _ => {}
                    }
                }
                Action::Pass
            }
            (0, b" ", b'q') => {
                self.cursor_style = first.min(6) as u8;
                Action::Pass
            }
            (b'>', b"", b'm') => {
                let mut n = numbers(c.params);
                if n.next() == Some(4) {
                    self.modify_other_keys = n.next().unwrap_or(0).min(3) as u8;
                } else if c.params.is_empty() {
                    self.modify_other_keys = 0;
                }
                Action::Pass
            }
            (b'?', b"", b'm') => Action::Answer(Query::ModifyKeys { resource: first }),
            (0, b"!", b'p') => {
                // DECSTR, the soft reset.
                self.set_dec(25, true);
                self.set_dec(1, false);
                self.set_dec(6, false);
                self.keypad = false;
                self.insert = false;
                Action::Pass
            }
            (0, b"", b't') => match first {
                18 => Action::Answer(Query::TextArea),
                // Window state, position, pixel sizes, icon and title
                // reports: not known here, and never a client's to answer.
                11 | 13 | 14 | 15 | 16 | 19 | 20 | 21 => Action::Strip,
                _ => Action::Pass,
            },
            _ => Action::Pass,
        }
    }

    fn osc(&mut self, seq: &[u8]) -> Action {
        let body = string_body(seq);
        let bel = ends_with_bel(seq);
        let (code, data) = match body.iter().position(|&b| b == b';') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &b""[..]),
        };
        let Some(code) = std::str::from_utf8(code).ok().and_then(|c| c.parse::<u32>().ok()) else {
            return Action::Pass;
        };
        let text = || {
            let s = String::from_utf8_lossy(data);
            let mut end = s.len().min(MAX_STRING);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        };
        match code {
            0 | 2 => {
                let title = text();
                self.title = (!title.is_empty()).then_some(title);
                Action::Pass
            }
            4 => {
                let mut parts = data.split(|&b| b == b';');
                if let (Some(index), Some(b"?")) = (parts.next(), parts.next()) {
                    let index = std::str::from_utf8(index).ok().and_then(|i| i.parse().ok());
                    return match index {
                        Some(index) => Action::Answer(Query::Palette { index, bel }),
                        None => Action::Strip,
                    };
                }
                Action::Pass
            }
            10..=12 => {
                let mut mask = 0u8;
                for (k, spec) in data.split(|&b| b == b';').enumerate() {
                    let slot = code as usize - 10 + k;
                    if slot > 2 {
                        break;
                    }
                    if spec == b"?" {
                        mask |= 1 << k;
                    } else if !spec.is_empty() && spec.len() <= MAX_STRING {
                        self.colors[slot] = Some(String::from_utf8_lossy(spec).into_owned());
                    }
                }
                if mask == 0 {
                    Action::Pass
                } else {
                    Action::Answer(Query::Colors { first: code as u8, mask, bel })
                }
            }
            110..=112 => {
                self.colors[code as usize - 110] = None;
                Action::Pass
            }
            52 if data.ends_with(b";?") => Action::Strip,
            7501 => {
                if data.starts_with(b"?") {
                    return Action::Answer(Query::ProgramStatus { bel });
                }
                let state = data
                    .split(|&b| b == b';' || b == b':')
                    .find_map(|kv| kv.strip_prefix(b"state="))
                    .and_then(|s| match s {
                        b"working" | b"busy" => Some(Some(AgentState::Working)),
                        b"idle" | b"done" | b"blocked" | b"waiting" => {
                            Some(Some(AgentState::Waiting))
                        }
                        b"" => Some(None),
                        _ => None,
                    });
                if let Some(state) = state
                    && state != self.state
                {
                    self.state = state;
                    self.state_changed = true;
                }
                Action::Pass
            }
            _ => Action::Pass,
        }
    }

    /// The answer to `query`, given the cursor (row, col, 0-based) and the
    /// size (cols, rows) of the screen after what came before it.
    pub fn answer(&self, query: &Query, cursor: (usize, usize), size: (usize, usize)) -> Vec<u8> {
        let mut s = String::new();
        let end = |bel: bool| if bel { "\x07" } else { "\x1b\\" };
        let (row, col) = (cursor.0 + 1, cursor.1.min(size.0.saturating_sub(1)) + 1);
        match query {
            // A VT100 with advanced video, as xterm.js says: no sixel, and
            // programs probing for the kitty protocol take this answer
            // (with no `CSI ? flags u` before it) as "not supported".
            Query::Da1 => s.push_str("\x1b[?1;2c"),
            Query::Da2 => s.push_str("\x1b[>0;276;0c"),
            Query::Status => s.push_str("\x1b[0n"),
            Query::Cursor { private: false } => {
                let _ = write!(s, "\x1b[{row};{col}R");
            }
            Query::Cursor { private: true } => {
                let _ = write!(s, "\x1b[?{row};{col};1R");
            }
            Query::Version => {
                let _ = write!(s, "\x1bP>|ringlet({})\x1b\\", env!("CARGO_PKG_VERSION"));
            }
            Query::Mode { private, mode } => {
                let value = if *private {
                    match self.dec(*mode) {
                        Some(true) => 1,
                        Some(false) => 2,
                        None => 0,
                    }
                } else {
                    match mode {
                        4 => 2 - self.insert as u8,
                        20 => 2 - self.newline as u8,
                        _ => 0,
                    }
                };
                let q = if *private { "?" } else { "" };
                let _ = write!(s, "\x1b[{q}{mode};{value}$y");
            }
            Query::Colors { first, mask, bel } => {
                for k in 0..3u8 {
                    if mask & (1 << k) == 0 {
                        continue;
                    }
                    let code = first + k;
                    let slot = (code - 10) as usize;
                    if slot > 2 {
                        break;
                    }
                    let spec = self.colors[slot].as_deref().unwrap_or(DEFAULT_COLORS[slot]);
                    let _ = write!(s, "\x1b]{code};{spec}{}", end(*bel));
                }
            }
            Query::Palette { index, bel } => {
                let (r, g, b) = palette(*index);
                let _ = write!(
                    s,
                    "\x1b]4;{index};rgb:{r:02x}{r:02x}/{g:02x}{g:02x}/{b:02x}{b:02x}{}",
                    end(*bel)
                );
            }
            Query::ProgramStatus { bel } => {
                let _ = write!(s, "\x1b]7501;?{}", end(*bel));
            }
            Query::ModifyKeys { resource } => {
                let v = if *resource == 4 { self.modify_other_keys } else { 0 };
                let _ = write!(s, "\x1b[>{resource};{v}m");
            }
            Query::TextArea => {
                let _ = write!(s, "\x1b[8;{};{}t", size.1, size.0);
            }
            Query::Termcap => s.push_str("\x1bP0+r\x1b\\"),
            Query::Setting => s.push_str("\x1bP0$r\x1b\\"),
        }
        s.into_bytes()
    }

    /// What a fresh terminal needs, after avt's dump, to have these modes
    /// too: mouse and focus reporting, bracketed paste, keypad, keyboard
    /// protocol, cursor shape, colours, title. (Synchronized output is
    /// left off: a client must never wait for an end that may not come.)
    pub fn reproduce(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        for mode in [9, 1000, 1002, 1003, 1005, 1006, 1015, 1016, 1004, 1007, 12, 2004] {
            if self.dec(mode) == Some(true) {
                let _ = write!(s, "\x1b[?{mode}h");
            }
        }
        if self.keypad {
            s.push_str("\x1b=");
        }
        if self.cursor_style != 0 {
            let _ = write!(s, "\x1b[{} q", self.cursor_style);
        }
        // Only the active screen's entry: the other screen's is lost.
        let flags = self.kitty_flags();
        if flags != 0 {
            let _ = write!(s, "\x1b[>{flags}u");
        }
        if self.modify_other_keys != 0 {
            let _ = write!(s, "\x1b[>4;{}m", self.modify_other_keys);
        }
        for (k, color) in self.colors.iter().enumerate() {
            if let Some(spec) = color {
                let _ = write!(s, "\x1b]{};{spec}\x1b\\", 10 + k);
            }
        }
        if let Some(title) = &self.title {
            let _ = write!(s, "\x1b]2;{title}\x1b\\");
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// What undoes, in the user's own terminal, every mode these say is on:
    /// `terminal attach` writes it on detach or exit. `pushed` is how many
    /// kitty keyboard entries were pushed on each screen while attached.
    pub fn restore(&self, pushed: [usize; 2]) -> Vec<u8> {
        let mut s = String::new();
        if self.sync {
            s.push_str("\x1b[?2026l");
        }
        for mode in [9, 1000, 1002, 1003, 1005, 1006, 1015, 1016, 1004, 1007, 12, 2004, 1] {
            if self.dec(mode) == Some(true) {
                let _ = write!(s, "\x1b[?{mode}l");
            }
        }
        if self.keypad {
            s.push_str("\x1b>");
        }
        if self.alternate() {
            if pushed[1] > 0 {
                let _ = write!(s, "\x1b[<{}u", pushed[1]);
            }
            s.push_str("\x1b[?1049l");
        }
        if pushed[0] > 0 {
            let _ = write!(s, "\x1b[<{}u", pushed[0]);
        }
        if self.modify_other_keys != 0 {
            s.push_str("\x1b[>4m");
        }
        if self.cursor_style != 0 {
            s.push_str("\x1b[0 q");
        }
        for (k, color) in self.colors.iter().enumerate() {
            if color.is_some() {
                let _ = write!(s, "\x1b]{}\x1b\\", 110 + k);
            }
        }
        if self.dec(6) == Some(true) {
            s.push_str("\x1b[?6l");
        }
        if self.insert {
            s.push_str("\x1b[4l");
        }
        if self.newline {
            s.push_str("\x1b[20l");
        }
        // Margins back to the whole screen without moving the cursor
        // (DECSTBM homes it), autowrap on, the cursor shown, default
        // colours, the ASCII charset.
        s.push_str("\x1b7\x1b[r\x1b8\x1b[?7h\x1b[?25h\x1b[0m\x1b(B\x0f");
        s.into_bytes()
    }
}

/// What OSC 10, 11 and 12 `?` get when the program set nothing: a light
/// foreground on a dark background (the web UI's dark theme; the daemon
/// cannot know each client's).
const DEFAULT_COLORS: [&str; 3] =
    ["rgb:d4d4/d4d4/d4d4", "rgb:1e1e/1e1e/1e1e", "rgb:d4d4/d4d4/d4d4"];

/// xterm's default 256-colour palette.
fn palette(index: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0x00, 0x00, 0x00),
        (0xcd, 0x00, 0x00),
        (0x00, 0xcd, 0x00),
        (0xcd, 0xcd, 0x00),
        (0x00, 0x00, 0xee),
        (0xcd, 0x00, 0xcd),
        (0x00, 0xcd, 0xcd),
        (0xe5, 0xe5, 0xe5),
        (0x7f, 0x7f, 0x7f),
        (0xff, 0x00, 0x00),
        (0x00, 0xff, 0x00),
        (0xff, 0xff, 0x00),
        (0x5c, 0x5c, 0xff),
        (0xff, 0x00, 0xff),
        (0x00, 0xff, 0xff),
        (0xff, 0xff, 0xff),
    ];
    match index {
        0..=15 => BASE[index as usize],
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level(i / 6 % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (index - 232) * 10;
            (v, v, v)
        }
    }
}

/// Tracks modes in a stream already free of queries (`terminal attach`
/// runs it over what it receives), counting the kitty keyboard entries
/// pushed on each screen so that the restore pops only those.
#[derive(Default)]
pub struct Tracker {
    pub modes: Modes,
    held: Vec<u8>,
    pushed: [usize; 2],
}

impl Tracker {
    pub fn feed(&mut self, bytes: &[u8]) {
        let data = join(&mut self.held, bytes);
        let whole = each_sequence(&data, |at, end| {
            let seq = &data[at..end];
            let was_alternate = self.modes.alternate();
            self.modes.classify(seq);
            let screen = self.modes.alternate() as usize;
            if !was_alternate && screen == 1 {
                // A fresh alternate screen: nothing pushed on it yet.
                self.pushed[1] = 0;
            }
            if let Some(c) = csi(seq).filter(|c| c.fin == b'u' && c.inter.is_empty()) {
                let n = numbers(c.params).next().unwrap_or(0) as usize;
                match c.prefix {
                    b'>' => self.pushed[screen] += 1,
                    b'<' => self.pushed[screen] = self.pushed[screen].saturating_sub(n.max(1)),
                    _ => {}
                }
            }
        });
        self.held = data[whole..].to_vec();
    }

    /// The bytes that undo every mode on (see [`Modes::restore`]).
    pub fn restore(&self) -> Vec<u8> {
        self.modes.restore(self.pushed)
    }
}

/// Drops from a client's input what its terminal sent in answer to a
/// query (device attributes, mode reports, colour and palette replies,
/// XTVERSION and other DCS replies, kitty flags, window reports, status
/// reports): the daemon answered the program already. Keys are kept,
/// including `CSI 1 ; 5 R` (Ctrl+F3), which looks like a cursor report
/// (no query reaches a client now, so no real report comes). Returns None
/// when nothing is dropped. A sequence cut at the end of the chunk is
/// kept: a lone ESC there is the Escape key.
pub fn filter_input(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&0x1b) {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut kept_to = 0;
    each_sequence(input, |at, end| {
        if is_reply(&input[at..end]) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(input.len()));
            o.extend_from_slice(&input[kept_to..at]);
            kept_to = end;
        }
    });
    out.map(|mut o| {
        o.extend_from_slice(&input[kept_to..]);
        o
    })
}

fn is_reply(seq: &[u8]) -> bool {
    match seq.get(1) {
        Some(b']' | b'P' | b'_') => true,
        Some(b'[') => match csi(seq) {
            Some(c) => matches!(
                (c.prefix, c.inter, c.fin),
                (b'?' | b'>', b"", b'c')
                    | (_, b"$", b'y')
                    | (b'?', b"", b'u')
                    | (0 | b'?', b"", b'n')
                    | (b'?', b"", b'R')
                    | (0, b"", b't')
                    | (b'>', b"", b'm')
            ),
            None => false,
        },
        _ => false,
    }
}

/// The SGR attributes avt wrongly gives to cells it blanks. Terminals
/// (xterm, tmux, xterm.js) fill erased, inserted and scrolled-in cells with
/// the background colour only; avt uses the whole pen, so a program that
/// erases with reverse video on (Claude Code does, after its cursor block)
/// would leave reversed blanks in the reproduced screen. This follows the
/// three attributes that show on a blank and, around a blanking operation
/// while one is on, gives avt (only avt: clients get the bytes as they
/// were) an SGR that turns them off and one that turns them back on.
#[derive(Default)]
pub struct BlankAttrs {
    inverse: bool,
    underline: bool,
    strike: bool,
}

impl BlankAttrs {
    /// Follows `seq`; for a blanking operation while an attribute is on,
    /// the SGR to feed avt before it and the one to feed after.
    pub fn around(&mut self, seq: &[u8]) -> Option<(&'static [u8], Vec<u8>)> {
        let c = csi(seq)?;
        if c.prefix != 0 || !c.inter.is_empty() {
            return None;
        }
        match c.fin {
            b'm' => {
                self.sgr(c.params);
                None
            }
            b'@' | b'J' | b'K' | b'L' | b'M' | b'P' | b'S' | b'T' | b'X' => {
                if !(self.inverse || self.underline || self.strike) {
                    return None;
                }
                let mut on = b"\x1b[".to_vec();
                let codes: Vec<&str> =
                    [(self.inverse, "7"), (self.underline, "4"), (self.strike, "9")]
                        .into_iter()
                        .filter_map(|(set, code)| set.then_some(code))
                        .collect();
                on.extend_from_slice(codes.join(";").as_bytes());
                on.push(b'm');
                Some((b"\x1b[27;24;29m", on))
            }
            _ => None,
        }
    }

    fn sgr(&mut self, params: &[u8]) {
        let mut items = params.split(|&b| b == b';');
        while let Some(item) = items.next() {
            let mut sub = item.split(|&b| b == b':');
            let code = sub.next().and_then(|p| std::str::from_utf8(p).ok()?.parse().ok());
            match code.unwrap_or(0u32) {
                0 => *self = BlankAttrs::default(),
                7 => self.inverse = true,
                27 => self.inverse = false,
                // `4:0` is "no underline"; `4:3` a curly one.
                4 => self.underline = sub.next() != Some(b"0"),
                21 => self.underline = true,
                24 => self.underline = false,
                9 => self.strike = true,
                29 => self.strike = false,
                // Colours: `38;5;n`, `38;2;r;g;b` (with `:` all in one item).
                38 | 48 | 58 if !item.contains(&b':') => {
                    let skip = match items.next() {
                        Some(b"5") => 1,
                        Some(b"2") => 3,
                        _ => 0,
                    };
                    for _ in 0..skip {
                        items.next();
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_all(m: &mut Modes, bytes: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        each_sequence(bytes, |at, end| actions.push(m.classify(&bytes[at..end])));
        actions
    }

    #[test]
    fn steps_split_text_sequences_and_unfinished_ends() {
        let s = b"ab\x1b[1;2Hcd\x1b]0;t\x07\x1b[";
        assert_eq!(step(s, 0), Step::Text(2));
        assert_eq!(step(s, 2), Step::Seq(8));
        assert_eq!(step(s, 8), Step::Text(10));
        assert_eq!(step(s, 10), Step::Seq(16));
        assert_eq!(step(s, 16), Step::Incomplete);
        // A character cut in two is held back, a whole one is not.
        let e = "é".as_bytes();
        assert_eq!(step(&[b'x', e[0]], 0), Step::Text(1));
        assert_eq!(step(&[e[0]], 0), Step::Incomplete);
        assert_eq!(step(e, 0), Step::Text(2));
        // OSC ended by ST, and an OSC broken off by a new escape.
        assert_eq!(step(b"\x1b]2;x\x1b\\", 0), Step::Seq(7));
        assert_eq!(step(b"\x1b]2;x\x1b[m", 0), Step::Seq(5));
        assert_eq!(step(b"\x1b]2;x\x1b", 0), Step::Incomplete);
        // Too long to wait for: it passes as text.
        let mut long = b"\x1b]52;c;".to_vec();
        long.resize(MAX_SEQUENCE + 10, b'A');
        assert_eq!(step(&long, 0), Step::Text(long.len()));
    }

    #[test]
    fn mouse_focus_paste_keypad_and_cursor_shape_are_followed_and_restored() {
        let mut m = Modes::default();
        let all = classify_all(
            &mut m,
            b"\x1b[?1000h\x1b[?1003h\x1b[?1006h\x1b[?1004h\x1b[?2004h\x1b=\x1b[5 q\x1b[?25l",
        );
        assert!(all.iter().all(|a| *a == Action::Pass));
        assert_eq!(m.dec(1000), Some(false), "1003 replaces 1000");
        assert_eq!(m.dec(1003), Some(true));
        assert_eq!(m.dec(1006), Some(true));
        assert_eq!(m.dec(1004), Some(true));
        assert_eq!(m.dec(2004), Some(true));
        assert!(m.keypad());
        assert_eq!(m.cursor_style(), 5);
        let mut out = Vec::new();
        m.reproduce(&mut out);
        let out = String::from_utf8(out).unwrap();
        for want in
            ["\x1b[?1003h", "\x1b[?1006h", "\x1b[?1004h", "\x1b[?2004h", "\x1b=", "\x1b[5 q"]
        {
            assert!(out.contains(want), "{want:?} in {out:?}");
        }
        assert!(!out.contains("1000h"));
        let restore = String::from_utf8(m.restore([0, 0])).unwrap();
        for want in [
            "\x1b[?1003l",
            "\x1b[?1006l",
            "\x1b[?1004l",
            "\x1b[?2004l",
            "\x1b>",
            "\x1b[0 q",
            "\x1b[?25h",
        ] {
            assert!(restore.contains(want), "{want:?} in {restore:?}");
        }
        // Resetting any tracking mode turns tracking off, as in xterm.
        classify_all(&mut m, b"\x1b[?1000l\x1b[?2004l\x1b>");
        assert_eq!(m.dec(1003), Some(false));
        assert_eq!(m.dec(2004), Some(false));
        assert!(!m.keypad());
        // RIS resets everything.
        classify_all(&mut m, b"\x1b[?1004h\x1bc");
        assert_eq!(m, Modes::default());
    }

    #[test]
    fn kitty_keyboard_stacks_per_screen() {
        let mut t = Tracker::default();
        t.feed(b"\x1b[>1u\x1b[>3u");
        assert_eq!(t.modes.kitty_flags(), 3);
        t.feed(b"\x1b[?1049h");
        assert_eq!(t.modes.kitty_flags(), 0, "the alternate screen has its own stack");
        t.feed(b"\x1b[>5u\x1b[=1;2u");
        assert_eq!(t.modes.kitty_flags(), 5);
        let restore = String::from_utf8(t.restore()).unwrap();
        // Pops the alternate screen's entry, leaves it, then pops the two
        // pushed on the main screen, and nothing of the user's own.
        let alt = restore.find("\x1b[<1u").unwrap();
        let leave = restore.find("\x1b[?1049l").unwrap();
        let main = restore.find("\x1b[<2u").unwrap();
        assert!(alt < leave && leave < main, "{restore:?}");
        t.feed(b"\x1b[?1049l\x1b[<u");
        assert_eq!(t.modes.kitty_flags(), 1);
        assert_eq!(String::from_utf8(t.restore()).unwrap().matches("\x1b[<1u").count(), 1);
        // A query is no mode change, and the daemon strips it.
        assert_eq!(Modes::default().classify(b"\x1b[?u"), Action::Strip);
    }

    #[test]
    fn queries_are_answered_from_what_is_tracked() {
        let mut m = Modes::default();
        assert_eq!(m.classify(b"\x1b[c"), Action::Answer(Query::Da1));
        assert_eq!(m.classify(b"\x1b[0c"), Action::Answer(Query::Da1));
        assert_eq!(m.classify(b"\x1b[>c"), Action::Answer(Query::Da2));
        assert_eq!(m.classify(b"\x1b[5n"), Action::Answer(Query::Status));
        assert_eq!(m.classify(b"\x1b[6n"), Action::Answer(Query::Cursor { private: false }));
        assert_eq!(m.classify(b"\x1b[>0q"), Action::Answer(Query::Version));
        assert_eq!(m.classify(b"\x1b[16t"), Action::Strip);
        assert_eq!(m.classify(b"\x1b[18t"), Action::Answer(Query::TextArea));
        assert_eq!(m.classify(b"\x1b]52;c;?\x07"), Action::Strip);
        assert_eq!(m.classify(b"\x1bP+q544e\x1b\\"), Action::Answer(Query::Termcap));
        assert_eq!(m.classify(b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"), Action::Strip);
        assert_eq!(m.classify(b"\x1b_Gi=31,a=T;AAAA\x1b\\"), Action::Pass);
        let a = |m: &Modes, q: Query| String::from_utf8(m.answer(&q, (4, 9), (80, 24))).unwrap();
        assert_eq!(a(&m, Query::Cursor { private: false }), "\x1b[5;10R");
        assert_eq!(a(&m, Query::TextArea), "\x1b[8;24;80t");
        // DECRQM from the tracked modes.
        classify_all(&mut m, b"\x1b[?2004h\x1b[?2026h");
        let Action::Answer(q) = m.classify(b"\x1b[?2004$p") else { panic!() };
        assert_eq!(a(&m, q), "\x1b[?2004;1$y");
        let Action::Answer(q) = m.classify(b"\x1b[?2026$p") else { panic!() };
        assert_eq!(a(&m, q), "\x1b[?2026;1$y");
        let Action::Answer(q) = m.classify(b"\x1b[?1004$p") else { panic!() };
        assert_eq!(a(&m, q), "\x1b[?1004;2$y");
        let Action::Answer(q) = m.classify(b"\x1b[?9999$p") else { panic!() };
        assert_eq!(a(&m, q), "\x1b[?9999;0$y");
        // OSC 10/11: defaults, then what the program set, ending as asked.
        let Action::Answer(q) = m.classify(b"\x1b]11;?\x07") else { panic!() };
        assert_eq!(a(&m, q), "\x1b]11;rgb:1e1e/1e1e/1e1e\x07");
        assert_eq!(m.classify(b"\x1b]11;#ffffff\x1b\\"), Action::Pass);
        let Action::Answer(q) = m.classify(b"\x1b]10;?;?\x1b\\") else { panic!() };
        assert_eq!(a(&m, q), "\x1b]10;rgb:d4d4/d4d4/d4d4\x1b\\\x1b]11;#ffffff\x1b\\");
        let Action::Answer(q) = m.classify(b"\x1b]4;196;?\x07") else { panic!() };
        assert_eq!(a(&m, q), "\x1b]4;196;rgb:ffff/0000/0000\x07");
        // Claude Code's program-status probe: a reply whose data starts with ?.
        let Action::Answer(q) = m.classify(b"\x1b]7501;?\x1b\\") else { panic!() };
        assert_eq!(a(&m, q), "\x1b]7501;?\x1b\\");
    }

    #[test]
    fn program_status_gives_the_agent_state() {
        let mut m = Modes::default();
        assert_eq!(m.agent_state(), None);
        m.classify(b"\x1b]7501;state=working:app=codex\x07");
        assert_eq!(m.agent_state(), Some(AgentState::Working));
        assert!(m.take_state_change());
        assert!(!m.take_state_change());
        m.classify(b"\x1b]7501;state=working;app=claude-code\x1b\\");
        assert!(!m.take_state_change(), "no change, no event");
        m.classify(b"\x1b]7501;state=idle;app=claude-code\x1b\\");
        assert_eq!(m.agent_state(), Some(AgentState::Waiting));
        assert!(m.take_state_change());
        m.classify(b"\x1b]7501;state=done:app=codex\x07");
        assert_eq!(m.agent_state().map(AgentState::as_str), Some("waiting"));
        m.classify(b"\x1b]7501;state=nonsense\x07");
        assert_eq!(m.agent_state(), Some(AgentState::Waiting));
    }

    #[test]
    fn title_and_colours_are_reproduced_and_restored() {
        let mut m = Modes::default();
        classify_all(&mut m, b"\x1b]0;my agent\x07\x1b]10;#112233\x07\x1b]12;red\x07");
        assert_eq!(m.title(), Some("my agent"));
        let mut out = Vec::new();
        m.reproduce(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("\x1b]2;my agent\x1b\\"));
        assert!(out.contains("\x1b]10;#112233\x1b\\"));
        assert!(out.contains("\x1b]12;red\x1b\\"));
        let restore = String::from_utf8(m.restore([0, 0])).unwrap();
        assert!(restore.contains("\x1b]110\x1b\\") && restore.contains("\x1b]112\x1b\\"));
        assert!(!restore.contains("\x1b]111"));
        classify_all(&mut m, b"\x1b]110\x07");
        assert!(!String::from_utf8(m.restore([0, 0])).unwrap().contains("\x1b]110"));
    }

    #[test]
    fn client_answers_are_dropped_and_keys_kept() {
        let answers: &[&[u8]] = &[
            b"\x1b[?1;2c",
            b"\x1b[>0;276;0c",
            b"\x1b[?2004;1$y",
            b"\x1b]11;rgb:0000/0000/0000\x1b\\",
            b"\x1b]10;rgb:ffff/ffff/ffff\x07",
            b"\x1bP>|xterm.js(6.0.0)\x1b\\",
            b"\x1b[?1u",
            b"\x1b[0n",
            b"\x1b[8;24;80t",
            b"\x1b_Gi=31;OK\x1b\\",
        ];
        for answer in answers {
            let mut input = b"a".to_vec();
            input.extend_from_slice(answer);
            input.extend_from_slice(b"b");
            assert_eq!(filter_input(&input).as_deref(), Some(&b"ab"[..]), "{answer:?}");
        }
        // Keys: arrows, Ctrl+F3 (looks like a cursor report), mouse, focus,
        // a kitty-encoded key, Escape at the end of a chunk.
        for keys in [
            &b"\x1b[A\x1b[1;5R"[..],
            b"\x1b[<0;10;5M\x1b[<0;10;5m",
            b"\x1b[I\x1b[O",
            b"\x1b[97;5u",
            b"x\x1b",
            b"plain",
            b"\x1b[200~pasted\x1b[201~",
        ] {
            assert_eq!(filter_input(keys), None, "{keys:?}");
        }
    }
}
