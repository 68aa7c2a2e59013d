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
//! then [`Screen::reproduce`]: a reset of its screen and modes, avt's state
//! as bytes (`Vt::dump_to`, added to the vendored avt in `src/vendor/avt`:
//! both buffers and which lines wrapped, cursor and its visibility, pen,
//! saved cursors, margins, tab stops, charsets, insert/autowrap/newline/
//! cursor-key modes), then ringlet's tracked modes and the title.
//!
//! Output is fed whole escape sequences and whole UTF-8 characters: the
//! unfinished tail of a read is held until the next one (or until the
//! program has been quiet a moment, [`Screen::flush_held`]).

use std::collections::VecDeque;
use std::io::Write as _;

use avt::{Color, Line, Pen, Vt};

use super::modes::{Action, BlankAttrs, Modes, each_sequence, join};
pub use super::modes::{AgentState, filter_input};

/// The fewest columns the screen model gets, whatever the terminal's
/// width: avt 0.17 panics (and a panic ends the daemon) on a wide character
/// printed with autowrap off on a screen one column wide. A one-column
/// terminal is drawn as two columns wide: nothing else happens there.
const MIN_COLS: u16 = 2;

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
    /// Which character sets avt translates printed text with (see
    /// [`Charsets`]): lines are skipped only when none is in use.
    charsets: Charsets,
    /// Whether runs of plain lines may skip avt (see [`Screen::feed_run`]);
    /// off only in tests, which compare both ways.
    skip_lines: bool,
    /// One history line being formatted (kept to save an allocation per line).
    scratch: Vec<u8>,
}

impl Screen {
    pub fn new(cols: u16, rows: u16, history_cap: usize) -> Screen {
        let vt = Vt::builder()
            .size(cols.max(MIN_COLS) as usize, rows.max(1) as usize)
            .scrollback_limit(0)
            .build();
        Screen {
            vt,
            modes: Modes::default(),
            history: VecDeque::new(),
            history_cap,
            held: Vec::new(),
            blank_attrs: BlankAttrs::default(),
            charsets: Charsets::default(),
            skip_lines: true,
            scratch: Vec::new(),
        }
    }

    /// Takes a piece of the program's output: what clients get is appended
    /// to `out`, the answers to its queries (for the program) to `replies`.
    /// True when the agent state changed.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>, replies: &mut Vec<u8>) -> bool {
        let data = join(&mut self.held, bytes);
        let mut start = 0;
        let whole = each_sequence(&data, |at, end| {
            let seq = &data[at..end];
            let was_alternate = self.modes.alternate();
            match self.modes.classify(seq) {
                Action::Pass => {
                    // avt hands out the lines that scrolled off the main
                    // screen only at the end of a feed, and drops them if
                    // the alternate screen is on by then or a reset
                    // replaced the screen: feed it the output before
                    // either on its own.
                    if (!was_alternate && self.modes.alternate()) || seq == b"\x1bc" {
                        self.emit(&data[start..at], out);
                        start = at;
                    }
                    if let Some((off, on)) = self.blank_attrs.around(seq) {
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
                    // The bytes before it first: a cursor report gives the
                    // position after them.
                    self.emit(&data[start..at], out);
                    start = end;
                    let c = self.vt.cursor();
                    let answer = self.modes.answer(&query, (c.row, c.col), self.vt.size());
                    replies.extend_from_slice(&answer);
                }
            }
        });
        self.held = data[whole..].to_vec();
        self.emit(&data[start..whole], out);
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

    /// Feeds avt alone (clients get `emit`'s bytes). A long run of plain
    /// lines (see [`Screen::feed_run`]) mostly skips avt.
    fn feed_vt(&mut self, bytes: &[u8]) {
        let (cols, rows) = self.vt.size();
        let mut fed = 0;
        let mut at = 0;
        while at < bytes.len() {
            let (end, lines) = plain_lines(&bytes[at..], cols);
            // Worth it only when some lines would scroll off unseen.
            if self.skip_lines && lines > rows + 1 {
                self.feed_avt(&bytes[fed..at]);
                self.feed_run(&bytes[at..at + end]);
                at += end;
                fed = at;
                continue;
            }
            // Past the plain lines (if any) and the line that ended them.
            at += end;
            at += bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len() - at, |i| i + 1);
        }
        self.feed_avt(&bytes[fed..]);
    }

    /// A run of plain lines (printable ASCII, each ending in CR LF, none
    /// wider than the screen): the lines that would scroll off the top
    /// before anyone could see them go straight to the history, and avt is
    /// fed only the ones still on the screen at the end. At 71 bytes a line
    /// on an 80x24 screen, a 64 KiB read costs avt 24 lines rather than 900.
    ///
    /// avt itself says whether that is exact: the first line is fed to it,
    /// and only if its line feed scrolled exactly one line into the history
    /// with the cursor staying on its row (so that row is the bottom of a
    /// scroll region that starts at the top, on the main screen; margins,
    /// the alternate screen and origin mode can only change through escape
    /// sequences, and a run has none) does every later line print at column
    /// 0 of a fresh blank line in the current pen, scroll once, and push
    /// the top line into the history. The pen is read off that fresh line.
    /// Nothing else can differ: no character set translates the text (that
    /// is followed separately), and insert mode on a blank line prints the
    /// same cells.
    fn feed_run(&mut self, run: &[u8]) {
        let first = run.iter().position(|&b| b == b'\n').map_or(run.len(), |i| i + 1);
        let before = self.vt.cursor();
        let mut scrolled = 0;
        // The run is ASCII: whole characters, no lossy conversion needed.
        let text = std::str::from_utf8(&run[..first]).unwrap_or_default();
        for line in self.vt.feed_str(text).scrollback {
            push_history(&mut self.history, self.history_cap, &line, &mut self.scratch);
            scrolled += 1;
        }
        let after = self.vt.cursor();
        let row = after.row;
        let exact = scrolled == 1
            && after.col == 0
            && before.row == row
            && !self.charsets.translating()
            && first < run.len();
        if !exact {
            self.feed_avt(&run[first..]);
            return;
        }
        let pen = self.vt.view().nth(row).and_then(|l| l.cells().first()).map(|c| *c.pen());
        let pen = match pen {
            Some(pen) => pen,
            None => {
                self.feed_avt(&run[first..]);
                return;
            }
        };
        // The last `row` lines stay on the screen (rows 0..row, the cursor
        // on a fresh line below them); the ones before them scroll off after
        // the lines the screen shows now.
        let rest = &run[first..];
        let mut cut = rest.len();
        for _ in 0..row {
            cut = rest[..cut - 1].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        }
        let (skipped, shown) = rest.split_at(cut);
        self.feed_avt(shown);
        let cols = self.vt.size().0;
        for line in skipped.split_inclusive(|&b| b == b'\n') {
            let text = &line[..line.len() - 2];
            let s = &mut self.scratch;
            s.clear();
            if pen.is_default() {
                // Blanks in the default pen are trimmed, as push_history does.
                let used = text.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
                s.extend_from_slice(&text[..used]);
            } else {
                sgr(&pen, s);
                s.extend_from_slice(text);
                s.resize(s.len() + cols - text.len(), b' ');
                s.extend_from_slice(b"\x1b[0m");
            }
            s.extend_from_slice(b"\r\n");
            push_history_bytes(&mut self.history, self.history_cap, s);
        }
    }

    /// Feeds avt every byte of `bytes`.
    fn feed_avt(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.charsets.follow(bytes);
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
                push_history(&mut self.history, self.history_cap, &line, &mut self.scratch);
            }
            rest = tail;
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let changes = self.vt.resize(cols.max(MIN_COLS) as usize, rows.max(1) as usize);
        for line in changes.scrollback {
            push_history(&mut self.history, self.history_cap, &line, &mut self.scratch);
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
        self.vt.dump_to(&mut out);
        self.modes.reproduce(&mut out);
        out
    }

    #[cfg(test)]
    fn text(&self) -> Vec<String> {
        self.vt.view().map(|l| l.text().trim_end().to_string()).collect()
    }
}

/// Every mode a client may have on, off; the cursor home on a clear
/// screen. `Vt::dump_to` then sets what the session has.
const RESET: &[u8] =
    b"\x1b[H\x1b[2J\x1b[r\x1b[?6l\x1b[?7h\x1b[4l\x1b[20l\x1b[?1l\x1b>\x1b(B\x1b)B\x0f\
\x1b[?25h\x1b[?12l\x1b[?9l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\
\x1b[?1016l\x1b[?1004l\x1b[?2004l\x1b[?2026l\x1b[0 q\x1b[>4m\x1b[H";

/// Appends one line that scrolled off, as text with SGR colours, to the
/// history, dropping whole lines from the front past `cap` bytes. (avt does
/// not say whether a line wrapped, so every line ends with CR LF: the same
/// picture at the session's width, without reflow at another.)
fn push_history(history: &mut VecDeque<u8>, cap: usize, line: &Line, s: &mut Vec<u8>) {
    s.clear();
    let cells = line.cells();
    let used = cells.iter().rposition(|c| !c.is_default()).map_or(0, |i| i + 1);
    let mut pen = Pen::default();
    let mut buf = [0u8; 4];
    for cell in &cells[..used] {
        if cell.width() == 0 {
            continue;
        }
        if *cell.pen() != pen {
            pen = *cell.pen();
            sgr(&pen, s);
        }
        let c = cell.char();
        if c.is_ascii() {
            s.push(c as u8);
        } else {
            s.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    if !pen.is_default() {
        s.extend_from_slice(b"\x1b[0m");
    }
    s.extend_from_slice(b"\r\n");
    push_history_bytes(history, cap, s);
}

/// Appends one formatted line (ending in CR LF) to the history, first
/// dropping whole lines from the front so that it stays within `cap` bytes
/// (so the ring never grows past its first allocation).
fn push_history_bytes(history: &mut VecDeque<u8>, cap: usize, line: &[u8]) {
    if line.len() > cap {
        history.clear();
        return;
    }
    let over = (history.len() + line.len()).saturating_sub(cap);
    if over > 0 {
        // Up to the end of the line the cut falls in.
        match history.range(over - 1..).position(|&b| b == b'\n') {
            Some(i) => drop(history.drain(..over + i)),
            None => history.clear(),
        }
    }
    // Grown by doubling up to exactly the bound, never past it: a
    // `VecDeque` left to grow would double past it, and a ring that wraps
    // touches every page it has.
    let need = history.len() + line.len();
    if history.capacity() < need {
        let most = cap.max(need);
        let want = (history.capacity() * 2).clamp(need.max(4096).min(most), most);
        history.reserve_exact(want - history.len());
    }
    history.extend(line);
}

/// The character sets avt translates printed text with: G0 and G1 set to
/// DEC line drawing (`ESC ( 0`, `ESC ) 0`), and which one is in use (SO,
/// SI). Followed on everything avt is fed, in order, so that a run of
/// plain lines skips avt only when avt would print its bytes as they are.
#[derive(Default)]
struct Charsets {
    g0_drawing: bool,
    g1_drawing: bool,
    shifted: bool,
}

impl Charsets {
    fn translating(&self) -> bool {
        if self.shifted { self.g1_drawing } else { self.g0_drawing }
    }

    fn follow(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while let Some(j) = bytes[i..].iter().position(|&b| matches!(b, 0x0e | 0x0f | 0x1b)) {
            i += j;
            match bytes[i] {
                0x0e => self.shifted = true,
                0x0f => self.shifted = false,
                _ => match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(b'('), Some(&f)) => self.g0_drawing = f == b'0',
                    (Some(b')'), Some(&f)) => self.g1_drawing = f == b'0',
                    // RIS, and DECSTR (`CSI ! p`): avt resets both.
                    (Some(b'c'), _) => *self = Charsets::default(),
                    (Some(b'['), Some(b'!')) if bytes.get(i + 3) == Some(&b'p') => {
                        *self = Charsets::default()
                    }
                    _ => {}
                },
            }
            i += 1;
        }
    }
}

/// The plain lines `bytes` starts with: printable ASCII ending in CR LF,
/// at most `cols` characters each. Returns where they end and how many.
fn plain_lines(bytes: &[u8], cols: usize) -> (usize, usize) {
    let (mut end, mut lines, mut start) = (0, 0, 0);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) {
            i += 1;
            continue;
        }
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') && i - start <= cols {
            i += 2;
            end = i;
            start = i;
            lines += 1;
            continue;
        }
        break;
    }
    (end, lines)
}

/// The SGR sequence that sets exactly `pen`.
fn sgr(pen: &Pen, s: &mut Vec<u8>) {
    s.extend_from_slice(b"\x1b[0");
    let color = |s: &mut Vec<u8>, c: Color, base: u8| match c {
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
            s.extend_from_slice(code.as_bytes());
        }
    }
    s.push(b'm');
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

    /// A small deterministic generator (xorshift) for the stream tests.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Output mixing long runs of plain lines with everything that changes
    /// how they print: colours, cursor moves, scroll regions, the alternate
    /// screen, character sets, insert, autowrap, origin and newline modes,
    /// resets, tabs, wide and non-ASCII characters, lines wider than the
    /// screen and lines ending in a bare LF.
    fn mixed_stream(rng: &mut Rng, cols: usize, rows: usize) -> Vec<u8> {
        mixed_stream_with(rng, cols, rows, &[])
    }

    /// [`mixed_stream`] with `more` operations among its own.
    fn mixed_stream_with(rng: &mut Rng, cols: usize, rows: usize, more: &[&str]) -> Vec<u8> {
        const OPS: &[&str] = &[
            "\x1b[0m",
            "\x1b[31m",
            "\x1b[44;1m",
            "\x1b[7m",
            "\x1b[38;5;200;48;2;1;2;3m",
            "\x1b[?1049h",
            "\x1b[?1049l",
            "\x1b(0",
            "\x1b(B",
            "\x1b)0",
            "\x0e",
            "\x0f",
            "\x1b[4h",
            "\x1b[4l",
            "\x1b[?7l",
            "\x1b[?7h",
            "\x1b[?6h",
            "\x1b[?6l",
            "\x1b[20h",
            "\x1b[20l",
            "\x1bc",
            "\x1b[!p",
            "\x1b[r",
            "\t",
            "é✓界",
            "\x1b7",
            "\x1b8",
            "\x1b[2J",
            "\x1bM",
            "\x1b[3L",
            "\x1b[2S",
        ];
        let mut out = String::new();
        for _ in 0..200 {
            match rng.below(6) {
                0 | 1 => {
                    for _ in 0..rng.below(3 * rows + 10) {
                        let len = rng.below(cols + 4);
                        for _ in 0..len {
                            out.push(char::from(b' ' + rng.below(95) as u8));
                        }
                        out.push_str(if rng.below(20) == 0 { "\n" } else { "\r\n" });
                    }
                }
                2 => {
                    let n = rng.below(OPS.len() + more.len());
                    out.push_str(OPS.get(n).unwrap_or_else(|| &more[n - OPS.len()]))
                }
                3 => {
                    out.push_str(&format!("\x1b[{};{}H", rng.below(rows + 2), rng.below(cols + 2)))
                }
                4 => {
                    let top = rng.below(rows) + 1;
                    out.push_str(&format!("\x1b[{};{}r", top, top + rng.below(rows)));
                }
                _ => out.push_str("partial line "),
            }
        }
        out.into_bytes()
    }

    #[test]
    fn plain_lines_that_skip_avt_leave_the_same_screen_history_and_state() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (cols, rows) = [(20, 5), (80, 24), (10, 1), (30, 3), (7, 2)][seed as usize % 5];
            let cap = [1000, 100_000][seed as usize % 2];
            let stream = mixed_stream(&mut rng, cols, rows);
            let mut fast = Screen::new(cols as u16, rows as u16, cap);
            let mut slow = Screen::new(cols as u16, rows as u16, cap);
            slow.skip_lines = false;
            let mut at = 0;
            while at < stream.len() {
                let end = (at + 1 + rng.below(3000)).min(stream.len());
                let (a, _) = fed(&mut fast, &stream[at..end]);
                let (b, _) = fed(&mut slow, &stream[at..end]);
                assert_eq!(a, b, "seed {seed}: clients get the same bytes");
                at = end;
                assert_eq!(picture(&fast.vt), picture(&slow.vt), "seed {seed} at {at}");
                assert_eq!(fast.history(), slow.history(), "seed {seed} at {at}");
            }
            assert_eq!(fast.reproduce(), slow.reproduce(), "seed {seed}");
        }
    }

    /// What else the reproduced screen must carry: every kind of pen
    /// change, tab stops, saved cursors on either screen, the other ways
    /// to the alternate screen, the cursor outside the scroll region in
    /// origin mode, wide characters, application cursor keys, and the
    /// modes ringlet follows itself (mouse, paste, focus, keypad, cursor
    /// shape, keyboard protocol, colours, title).
    const MORE_OPS: &[&str] = &[
        "\x1b[1m",
        "\x1b[2m",
        "\x1b[22m",
        "\x1b[3;4;5;9m",
        "\x1b[23;24;25;27;29m",
        "\x1b[39m",
        "\x1b[49m",
        "\x1b[91;102m",
        "\x1b[38;5;17m",
        "\x1b[48;2;200;100;0m",
        "\x1b[38:2:1:2:3m",
        "\x1bH",
        "\x1b[g",
        "\x1b[3g",
        "\x1b[5G\x1bH",
        "\x1b[s",
        "\x1b[u",
        "\x1b[?47h",
        "\x1b[?1047h",
        "\x1b[?1047l",
        "\x1b[?1048h",
        "\x1b[?1048l",
        "\x1b[?1h",
        "\x1b[?1l",
        "\x1b[?25l",
        "\x1b[?25h",
        "界界界界界界界界界界界",
        // Blank default cells running to the edge of a line that wraps.
        "\x1b[0mx                                                                                  y",
        "\x1b[K",
        "\x1b[1K",
        "\x1b[3X",
        "\x1b[2P",
        "\x1b[2@",
        "\x1b[1J",
        "\x1b[?1002h\x1b[?1006h",
        "\x1b[?1000l",
        "\x1b[?2004h",
        "\x1b[?1004h",
        "\x1b=",
        "\x1b>",
        "\x1b[4 q",
        "\x1b[>1u",
        "\x1b[<u",
        "\x1b]0;title\x07",
        "\x1b]11;#102030\x1b\\",
    ];

    /// Random output fed to a Screen in random pieces: after each piece, a
    /// fresh terminal fed the history and the reproduced screen (as a
    /// client is) is in the very state of the session's, avt's own dump of
    /// both being the same (both screens' cells, which lines wrapped, the
    /// cursor and its visibility, the pen, saved cursors, margins, tab
    /// stops, charsets, avt's modes), and so are the modes ringlet follows
    /// itself; in the main screen and in the alternate one, and after
    /// resizes.
    #[test]
    fn random_streams_are_reproduced_exactly() {
        let (mut seen, mut exact, mut resized) = ([0; 2], 0, 0);
        for seed in 1..50u64 {
            let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let (cols, rows) = [(20, 5), (80, 24), (10, 1), (30, 3), (7, 2)][seed as usize % 5];
            let stream = mixed_stream_with(&mut rng, cols, rows, MORE_OPS);
            let mut s = Screen::new(cols as u16, rows as u16, 1000);
            let mut at = 0;
            let mut resized_hidden = false;
            while at < stream.len() {
                let end = (at + 1 + rng.below(4000)).min(stream.len());
                fed(&mut s, &stream[at..end]);
                at = end;
                if rng.below(8) == 0 {
                    // A resize reflows both screens, the hidden one too.
                    resized_hidden |= s.modes.alternate();
                    s.resize(1 + rng.below(cols + 10) as u16, 1 + rng.below(rows + 5) as u16);
                    resized += 1;
                }
                let (cols, rows) = s.vt.size();
                let bytes = [s.history(), s.reproduce()].concat();
                let mut client = Screen::new(cols as u16, rows as u16, 1000);
                fed(&mut client, &bytes);
                // The session's very state, unless a resize reflowed the
                // main screen while the alternate one hid it: avt then
                // leaves its lines short of the new width, which no byte
                // stream reproduces and nothing shows (the cells a client
                // has there are blank).
                if !resized_hidden {
                    assert_eq!(client.vt.dump(), s.vt.dump(), "seed {seed} at {at}");
                    exact += 1;
                }
                assert_eq!(picture(&client.vt), picture(&s.vt), "seed {seed} at {at}");
                let modes = |s: &Screen| {
                    let mut out = Vec::new();
                    s.modes.reproduce(&mut out);
                    out
                };
                assert_eq!(modes(&client), modes(&s), "seed {seed} at {at}");
                seen[s.modes.alternate() as usize] += 1;
            }
        }
        assert!(seen[0] > 20 && seen[1] > 20, "both screens: {seen:?}");
        assert!(resized > 20 && exact > (seen[0] + seen[1]) / 2, "{resized} {exact} {seen:?}");
    }

    #[test]
    fn wide_characters_on_a_one_column_terminal_do_not_end_the_daemon() {
        // avt 0.17 underflows (a panic, which ends the daemon) printing a
        // wide character with autowrap off one column wide.
        let mut s = Screen::new(1, 3, 1000);
        fed(&mut s, "\x1b[?7l界界x".as_bytes());
        let mut s = Screen::new(40, 3, 1000);
        s.resize(1, 3);
        fed(&mut s, "\x1b[?7l界界x".as_bytes());
        assert_eq!(picture(&client_of(&s)), picture(&s.vt));
    }

    #[test]
    fn a_flood_of_lines_mostly_skips_avt_and_keeps_history_exact() {
        // 80x24, green on blue, 2,000 lines in one read: the history holds
        // every line in order, coloured, and the screen the last 23.
        let mut s = Screen::new(80, 24, 1 << 20);
        let mut stream = b"\x1b[32;44m".to_vec();
        for i in 0..2000 {
            stream.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        fed(&mut s, &stream);
        let history = String::from_utf8(s.history()).unwrap();
        let lines: Vec<&str> = history.split_terminator("\r\n").collect();
        // The first 23 line feeds move the cursor down a blank screen.
        assert_eq!(lines.len(), 2000 - 23);
        // Printed over the blanks of the first screen (default pen); the
        // later ones on lines scrolled in with the colours on.
        assert_eq!(lines[0], "\x1b[0;32;44mline 0\x1b[0m");
        assert!(lines[1976].starts_with("\x1b[0;32;44mline 1976 "));
        assert!(lines[1976].ends_with(" \x1b[0m"));
        assert_eq!(s.text()[22], "line 1999");
        assert_eq!(s.vt.cursor().row, 23);
        // The ring holds the bound and never allocated past it.
        let mut s = Screen::new(80, 24, 10_000);
        fed(&mut s, &stream);
        assert!(s.history().len() > 9_000);
        assert!(s.history.capacity() <= 10_000, "{}", s.history.capacity());
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
