//! A terminal session's screen, kept in the daemon: a client that connects
//! or reconnects gets the screen reproduced, not a tail of raw bytes that
//! may start mid-frame or carry old queries.
//!
//! [`Screen`] feeds the program's output to a virtual terminal (avt) and to
//! [`Modes`] (what avt does not track), takes the queries out (answering
//! them for the program) and hands back what clients get. Lines pushed off
//! the top of the main screen go, as text with their colours, into a ring
//! bounded in bytes (`[terminal] scrollback_bytes`): the history a client
//! gets above the screen. On connect a client gets [`Screen::history`],
//! then [`Screen::reproduce`]: a reset of its screen and modes, avt's dump
//! (both buffers, cursor and its visibility, saved cursor, margins,
//! charsets, insert/autowrap/newline/cursor-key modes), then ringlet's
//! tracked modes and the title.
//!
//! Output is fed whole escape sequences and whole UTF-8 characters: the
//! unfinished tail of a read is held until the next one (or until the
//! program has been quiet a moment, [`Screen::flush_held`]).

use std::collections::VecDeque;
use std::fmt::Write as _;

use avt::{Color, Line, Pen, Vt};

use super::modes::{Action, BlankAttrs, Modes, Step, step};
pub use super::modes::{AgentState, filter_input};

/// Line feeds fed to avt at once, at most (see [`Screen::emit`]).
const FEED_LINES: usize = 32;

/// A session's screen, its history and its modes.
pub struct Screen {
    vt: Vt,
    modes: Modes,
    /// Formatted lines that scrolled off the main screen, oldest first;
    /// every line ends with CR LF, so trimming at a line feed leaves whole
    /// lines with their own colours.
    history: VecDeque<u8>,
    history_cap: usize,
    /// The start of a sequence or character the last read cut off.
    held: Vec<u8>,
    /// What avt would wrongly put on blanked cells (see [`BlankAttrs`]).
    blank_attrs: BlankAttrs,
}

impl Screen {
    pub fn new(cols: u16, rows: u16, history_cap: usize) -> Screen {
        let vt = Vt::builder()
            .size(cols.max(1) as usize, rows.max(1) as usize)
            .scrollback_limit(0)
            .build();
        Screen {
            vt,
            modes: Modes::default(),
            history: VecDeque::new(),
            history_cap,
            held: Vec::new(),
            blank_attrs: BlankAttrs::default(),
        }
    }

    /// Takes a piece of the program's output: what clients get is appended
    /// to `out`, the answers to its queries (for the program) to `replies`.
    /// True when the agent state changed.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>, replies: &mut Vec<u8>) -> bool {
        let owned;
        let data: &[u8] = if self.held.is_empty() {
            bytes
        } else {
            self.held.extend_from_slice(bytes);
            owned = std::mem::take(&mut self.held);
            &owned
        };
        let mut at = 0;
        let mut start = 0;
        while at < data.len() {
            match step(data, at) {
                Step::Text(end) => at = end,
                Step::Seq(end) => {
                    match self.modes.classify(&data[at..end]) {
                        Action::Pass => {
                            if let Some((off, on)) = self.blank_attrs.around(&data[at..end]) {
                                self.emit(&data[start..at], out);
                                self.feed_vt(off);
                                self.emit(&data[at..end], out);
                                self.feed_vt(&on);
                                start = end;
                            }
                        }
                        Action::Strip => {
                            self.emit(&data[start..at], out);
                            start = end;
                        }
                        Action::Answer(query) => {
                            // The bytes before it first: a cursor report
                            // gives the position after them.
                            self.emit(&data[start..at], out);
                            start = end;
                            let c = self.vt.cursor();
                            let answer = self.modes.answer(&query, (c.row, c.col), self.vt.size());
                            replies.extend_from_slice(&answer);
                        }
                    }
                    at = end;
                }
                Step::Incomplete => {
                    self.held = data[at..].to_vec();
                    break;
                }
            }
        }
        self.emit(&data[start..at], out);
        self.modes.take_state_change()
    }

    /// Whether the end of the last read is held back.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// Lets the held bytes through as they are: the program went quiet in
    /// the middle of a sequence (or wrote a lone ESC).
    pub fn flush_held(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        self.emit(&held, out);
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        out.extend_from_slice(bytes);
        self.feed_vt(bytes);
    }

    /// Feeds avt alone (clients get `emit`'s bytes).
    fn feed_vt(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        // avt hands out the lines that scrolled off only at the end of a
        // feed, keeping them (a whole row of cells each) until then: fed a
        // 64 KiB read of short lines at once, it would hold thousands of
        // rows, tens of MB, for a moment. A few lines at a time keep that
        // small (and the memory the allocator keeps after it).
        let mut rest: &str = &text;
        while !rest.is_empty() {
            let cut = rest.match_indices('\n').nth(FEED_LINES).map_or(rest.len(), |(i, _)| i + 1);
            let (piece, tail) = rest.split_at(cut);
            let changes = self.vt.feed_str(piece);
            for line in changes.scrollback {
                push_history(&mut self.history, self.history_cap, &line);
            }
            rest = tail;
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let changes = self.vt.resize(cols.max(1) as usize, rows.max(1) as usize);
        for line in changes.scrollback {
            push_history(&mut self.history, self.history_cap, &line);
        }
    }

    pub fn agent_state(&self) -> Option<AgentState> {
        self.modes.agent_state()
    }

    /// The lines above the screen, oldest first, each ending with CR LF.
    pub fn history(&self) -> Vec<u8> {
        let (a, b) = self.history.as_slices();
        [a, b].concat()
    }

    /// The bytes that make a client's terminal show this screen: after
    /// [`Screen::history`], a reset of the client's screen and modes, the
    /// screen itself, then the modes and the title.
    pub fn reproduce(&self) -> Vec<u8> {
        let (cols, rows) = self.vt.size();
        let mut out = Vec::with_capacity(cols * rows * 2 + 256);
        // Back to the main screen, default colours; then enough line feeds
        // to push whatever the client shows (the history it just got, a
        // shell's screen under `terminal attach`) up into its scrollback,
        // and a clear.
        out.extend_from_slice(b"\x1b[?1047l\x1b[0m\r");
        out.extend(std::iter::repeat_n(b'\n', rows.saturating_sub(1)));
        out.extend_from_slice(RESET);
        translate(&self.vt.dump(), &mut out);
        self.modes.reproduce(&mut out);
        out
    }

    #[cfg(test)]
    fn text(&self) -> Vec<String> {
        self.vt.view().map(|l| l.text().trim_end().to_string()).collect()
    }
}

/// Every mode a client may have on, off; the cursor home on a clear
/// screen. avt's dump then sets what the session has.
const RESET: &[u8] =
    b"\x1b[H\x1b[2J\x1b[r\x1b[?6l\x1b[?7h\x1b[4l\x1b[20l\x1b[?1l\x1b>\x1b(B\x1b)B\x0f\
\x1b[?25h\x1b[?12l\x1b[?9l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\
\x1b[?1016l\x1b[?1004l\x1b[?2004l\x1b[?2026l\x1b[0 q\x1b[>4m\x1b[H";

/// avt's dump as bytes real terminals take: its 8-bit C1 controls (which a
/// UTF-8 terminal ignores) as ESC sequences, REP (`CSI n b`, not in every
/// terminal) expanded, and colours with `;` rather than `:` (older
/// terminals know only that form).
fn translate(dump: &str, out: &mut Vec<u8>) {
    let mut chars = dump.chars().peekable();
    let mut last = ' ';
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let csi = match c {
            '\u{9b}' => true,
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                true
            }
            '\u{90}' | '\u{98}' | '\u{9d}' => {
                out.push(0x1b);
                out.push(c as u8 - 0x40);
                continue;
            }
            _ => {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                if !c.is_control() {
                    last = c;
                }
                continue;
            }
        };
        debug_assert!(csi);
        let mut body = String::new();
        let mut fin = None;
        for c in chars.by_ref() {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                fin = Some(c);
                break;
            }
            body.push(c);
        }
        match fin {
            Some('b') if body.bytes().all(|b| b.is_ascii_digit()) => {
                let n: usize = body.parse().unwrap_or(1).max(1);
                let ch = last.encode_utf8(&mut buf);
                for _ in 0..n {
                    out.extend_from_slice(ch.as_bytes());
                }
            }
            Some(f) => {
                out.extend_from_slice(b"\x1b[");
                if f == 'm' {
                    out.extend(body.bytes().map(|b| if b == b':' { b';' } else { b }));
                } else {
                    out.extend_from_slice(body.as_bytes());
                }
                out.push(f as u8);
            }
            None => {
                out.extend_from_slice(b"\x1b[");
                out.extend_from_slice(body.as_bytes());
            }
        }
    }
}

/// Appends one line that scrolled off, as text with SGR colours, to the
/// history, dropping whole lines from the front past `cap` bytes. (avt does
/// not say whether a line wrapped, so every line ends with CR LF: the same
/// picture at the session's width, without reflow at another.)
fn push_history(history: &mut VecDeque<u8>, cap: usize, line: &Line) {
    let mut s = String::with_capacity(line.len() + 16);
    let cells = line.cells();
    let used = cells.iter().rposition(|c| !c.is_default()).map_or(0, |i| i + 1);
    let mut pen = Pen::default();
    for cell in &cells[..used] {
        if cell.width() == 0 {
            continue;
        }
        if *cell.pen() != pen {
            pen = *cell.pen();
            sgr(&pen, &mut s);
        }
        s.push(cell.char());
    }
    if !pen.is_default() {
        s.push_str("\x1b[0m");
    }
    s.push_str("\r\n");
    history.extend(s.as_bytes());
    if history.len() > cap {
        history.drain(..history.len() - cap);
        match history.iter().position(|&b| b == b'\n') {
            Some(i) => drop(history.drain(..=i)),
            None => history.clear(),
        }
    }
}

/// The SGR sequence that sets exactly `pen`.
fn sgr(pen: &Pen, s: &mut String) {
    s.push_str("\x1b[0");
    let color = |s: &mut String, c: Color, base: u8| match c {
        Color::Indexed(i) if i < 8 => {
            let _ = write!(s, ";{}", base + i);
        }
        Color::Indexed(i) if i < 16 => {
            let _ = write!(s, ";{}", base + 52 + i);
        }
        Color::Indexed(i) => {
            let _ = write!(s, ";{};5;{i}", base + 8);
        }
        Color::RGB(c) => {
            let _ = write!(s, ";{};2;{};{};{}", base + 8, c.r, c.g, c.b);
        }
    };
    if let Some(c) = pen.foreground() {
        color(s, c, 30);
    }
    if let Some(c) = pen.background() {
        color(s, c, 40);
    }
    for (on, code) in [
        (pen.is_bold(), ";1"),
        (pen.is_faint(), ";2"),
        (pen.is_italic(), ";3"),
        (pen.is_underline(), ";4"),
        (pen.is_blink(), ";5"),
        (pen.is_inverse(), ";7"),
        (pen.is_strikethrough(), ";9"),
    ] {
        if on {
            s.push_str(code);
        }
    }
    s.push('m');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(screen: &mut Screen, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut replies) = (Vec::new(), Vec::new());
        screen.feed(bytes, &mut out, &mut replies);
        (out, replies)
    }

    /// What a fresh terminal shows after the history and the reproduced
    /// screen: a second avt fed them, as a client would be.
    fn client_of(screen: &Screen) -> Vt {
        let (cols, rows) = screen.vt.size();
        let mut client = Vt::builder().size(cols, rows).scrollback_limit(0).build();
        let bytes = [screen.history(), screen.reproduce()].concat();
        assert!(!bytes.contains(&0x9b), "no 8-bit CSI reaches a client");
        client.feed_str(std::str::from_utf8(&bytes).unwrap());
        client
    }

    /// Cells and cursor of the visible screen, for comparing two terminals.
    /// Every cell (character and pen) of each row, and the cursor.
    type Picture = (Vec<Vec<(char, Pen)>>, usize, usize, bool);

    fn picture(vt: &Vt) -> Picture {
        let lines = vt.view().map(|l| l.cells().iter().map(|c| (c.char(), *c.pen())).collect());
        let c = vt.cursor();
        (lines.collect(), c.col, c.row, c.visible)
    }

    #[test]
    fn blanks_made_with_reverse_or_underline_on_carry_only_the_background() {
        let mut screen = Screen::new(20, 3, 1 << 10);
        // A reversed space (a cursor block) stays reversed; the five cells
        // ECH blanks with reverse on, the rest of the line EL blanks with
        // underline on, and a line IL inserts do not.
        let program = b"ech-reverse-12345tail\x1b[1;12H\x1b[38;5;7;7m\x1b[5X\x1b[27m\
\x1b[2;1H\x1b[7m \x1b[27m-\x1b[4m\x1b[K\x1b[24m\x1b[3;1H\x1b[9;7m\x1b[L\x1b[0m";
        let (out, _) = fed(&mut screen, program);
        assert_eq!(out, program, "clients get the program's bytes as they were");
        let rows: Vec<Vec<(char, Pen)>> = screen
            .vt
            .view()
            .map(|l| l.cells().iter().map(|c| (c.char(), *c.pen())).collect())
            .collect();
        let reversed = |row: usize| -> Vec<usize> {
            (0..20).filter(|&c| rows[row][c].1.is_inverse()).collect()
        };
        assert_eq!(reversed(0), Vec::<usize>::new(), "ECH: {:?}", screen.text());
        assert_eq!(reversed(1), [0], "the printed reversed space stays so");
        assert!((2..20).all(|c| !rows[1][c].1.is_underline()), "EL with underline on");
        assert!((0..20).all(|c| !rows[2][c].1.is_inverse() && !rows[2][c].1.is_strikethrough()));
        // The program's attributes are back on after each operation: the
        // 256-colour 7 was a colour, not reverse video.
        fed(&mut screen, b"\x1b[1;1H\x1b[38;5;7mx\x1b[7my");
        let first: Vec<bool> = screen.vt.view().next().unwrap().cells()[..2]
            .iter()
            .map(|c| c.pen().is_inverse())
            .collect();
        assert_eq!(first, [false, true]);
    }

    #[test]
    fn alternate_screen_and_the_main_one_under_it_are_reproduced() {
        let mut s = Screen::new(20, 5, 1000);
        fed(&mut s, b"shell$ vim\r\n");
        fed(&mut s, b"\x1b[?1049h\x1b[H\x1b[2Jfull screen\x1b[3;4Hx");
        let mut client = client_of(&s);
        assert_eq!(picture(&client), picture(&s.vt));
        // Leaving the alternate screen in both shows the same main screen
        // with the cursor restored.
        client.feed_str("\x1b[?1049l");
        fed(&mut s, b"\x1b[?1049l");
        assert_eq!(picture(&client), picture(&s.vt));
        assert_eq!(s.text()[0], "shell$ vim");
    }

    #[test]
    fn cursor_position_and_visibility_are_reproduced() {
        let mut s = Screen::new(30, 6, 1000);
        fed(&mut s, b"abc\r\ndef\x1b[4;7H\x1b[?25l");
        let client = client_of(&s);
        let c = client.cursor();
        assert_eq!((c.col, c.row, c.visible), (6, 3, false));
        assert_eq!(picture(&client), picture(&s.vt));
    }

    #[test]
    fn colours_and_attributes_are_reproduced() {
        let mut s = Screen::new(40, 4, 1000);
        fed(
            &mut s,
            b"\x1b[1;31mred\x1b[0m \x1b[38;5;208morange\x1b[0m \x1b[38;2;1;2;3;48;2;9;8;7mrgb\x1b[0m \
              \x1b[3;4;7mx\x1b[0m\r\n\x1b[44m          \x1b[0m",
        );
        let client = client_of(&s);
        assert_eq!(picture(&client), picture(&s.vt));
        let bytes = s.reproduce();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("38;5;208") && !text.contains("38:5"), "semicolon colours: {text:?}");
        assert!(!text.contains("\x1b[9b"), "REP is expanded");
    }

    #[test]
    fn scroll_region_and_saved_cursor_are_reproduced() {
        let mut s = Screen::new(20, 8, 1000);
        fed(&mut s, b"top\r\n\x1b[2;6r\x1b[3;5H\x1b7\x1b[6;1Hbottom");
        // Lines fed after connecting scroll only inside the region, and the
        // saved cursor comes back, in the client as in the session.
        let mut client = client_of(&s);
        client.feed_str("\r\nnew1\r\nnew2\x1b8saved");
        fed(&mut s, b"\r\nnew1\r\nnew2\x1b8saved");
        assert_eq!(picture(&client), picture(&s.vt));
        assert_eq!(s.text()[0], "top");
    }

    #[test]
    fn charsets_and_modes_avt_keeps_are_reproduced() {
        let mut s = Screen::new(20, 4, 1000);
        fed(&mut s, b"\x1b(0qqq\x1b[?1h\x1b[4h");
        let mut client = client_of(&s);
        client.feed_str("qq");
        fed(&mut s, b"qq");
        assert_eq!(picture(&client), picture(&s.vt));
        assert!(client.cursor_key_app_mode());
        assert_eq!(s.text()[0], "─────");
    }

    #[test]
    fn tracked_modes_and_title_follow_the_screen() {
        let mut s = Screen::new(20, 4, 1000);
        fed(
            &mut s,
            b"\x1b[?1002h\x1b[?1006h\x1b[?2004h\x1b[?1004h\x1b[>1u\x1b[6 q\x1b]0;agent\x07",
        );
        let bytes = String::from_utf8(s.reproduce()).unwrap();
        // After the reset that turns them all off, the ones on come back on.
        let after_reset = &bytes[bytes.find("\x1b[>4m").unwrap()..];
        for want in
            ["\x1b[?1002h", "\x1b[?1006h", "\x1b[?2004h", "\x1b[?1004h", "\x1b[>1u", "\x1b[6 q"]
        {
            assert!(after_reset.contains(want), "{want:?}");
        }
        assert!(after_reset.ends_with("\x1b]2;agent\x1b\\"));
    }

    #[test]
    fn utf8_split_across_reads_is_kept_whole() {
        let mut s = Screen::new(20, 3, 1000);
        let text = "héllo wörld ✓".as_bytes();
        let mut out = Vec::new();
        for b in text {
            let (o, _) = fed(&mut s, std::slice::from_ref(b));
            out.extend(o);
        }
        assert_eq!(out, text);
        assert_eq!(s.text()[0], "héllo wörld ✓");
    }

    #[test]
    fn queries_are_answered_and_never_reach_clients() {
        let mut s = Screen::new(80, 24, 1000);
        let (out, replies) = fed(
            &mut s,
            b"ab\x1b[6n\x1b[c\x1b[?2004$p\x1b]11;?\x07\x1b]7501;?\x1b\\\x1b[?u\x1b[>0qcd",
        );
        assert_eq!(out, b"abcd");
        let replies = String::from_utf8(replies).unwrap();
        assert!(replies.starts_with("\x1b[1;3R\x1b[?1;2c\x1b[?2004;2$y\x1b]11;"), "{replies:?}");
        assert!(replies.contains("\x1b]7501;?\x1b\\"));
        assert!(replies.ends_with("\x1bP>|ringlet(") || replies.contains("\x1bP>|ringlet("));
        assert!(!replies.contains('u'), "no kitty answer: {replies:?}");
        // Nor in what a reconnecting client gets.
        let all = [s.history(), s.reproduce()].concat();
        assert!(!String::from_utf8(all).unwrap().contains("6n"));
    }

    #[test]
    fn a_query_split_across_reads_is_still_taken_out() {
        let mut s = Screen::new(80, 24, 1000);
        let whole = b"x\x1b[6n\x1b]11;?\x1b\\y";
        for cut in 1..whole.len() {
            let mut s2 = Screen::new(80, 24, 1000);
            let (mut out, mut replies) = fed(&mut s2, &whole[..cut]);
            let (o, r) = fed(&mut s2, &whole[cut..]);
            out.extend(o);
            replies.extend(r);
            assert_eq!(out, b"xy", "cut at {cut}");
            assert!(replies.starts_with(b"\x1b[1;2R"), "cut at {cut}");
        }
        // A lone ESC at the end waits, then goes out when the program is quiet.
        let (out, _) = fed(&mut s, b"z\x1b");
        assert_eq!(out, b"z");
        assert!(s.holds());
        let mut out = Vec::new();
        s.flush_held(&mut out);
        assert_eq!(out, b"\x1b");
    }

    #[test]
    fn lines_off_the_top_go_to_a_bounded_history() {
        let mut s = Screen::new(20, 3, 100);
        fed(&mut s, b"\x1b[32mgreen\x1b[0m\r\n");
        for i in 0..4 {
            fed(&mut s, format!("line {i}\r\n").as_bytes());
        }
        let history = String::from_utf8(s.history()).unwrap();
        assert!(history.starts_with("\x1b[0;32mgreen\x1b[0m\r\nline 0\r\n"), "{history:?}");
        assert_eq!(s.text(), ["line 2", "line 3", ""]);
        for i in 4..100 {
            fed(&mut s, format!("line {i}\r\n").as_bytes());
        }
        let history = s.history();
        assert!(history.len() <= 100);
        let history = String::from_utf8(history).unwrap();
        assert!(history.starts_with("line "), "whole lines: {history:?}");
        assert!(history.ends_with("line 97\r\n"));
        // The alternate screen adds nothing to the history.
        fed(&mut s, b"\x1b[?1049h");
        for i in 0..10 {
            fed(&mut s, format!("alt {i}\r\n").as_bytes());
        }
        assert!(!String::from_utf8(s.history()).unwrap().contains("alt"));
    }

    #[test]
    fn resizing_keeps_the_screen_consistent() {
        let mut s = Screen::new(20, 5, 1000);
        fed(&mut s, b"1\r\n2\r\n3\r\n4\r\n5");
        s.resize(30, 3);
        assert_eq!(s.vt.size(), (30, 3));
        assert!(String::from_utf8(s.history()).unwrap().contains("1\r\n2\r\n"));
        let client = client_of(&s);
        assert_eq!(picture(&client), picture(&s.vt));
    }
}
