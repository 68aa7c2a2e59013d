//! ringlet's addition to avt: [`Terminal::dump_to`], the terminal's whole
//! state as bytes a client's terminal takes, written straight into a buffer.
//!
//! It follows `Terminal::dump` step for step (the same state, in the same
//! order), with these differences, all in the form and none in what a
//! terminal fed it ends up with:
//! - 7-bit `ESC [` rather than the 8-bit C1 CSI (which a UTF-8 terminal
//!   ignores), and colours with `;` rather than `:` (older terminals know
//!   only that form);
//! - no REP (`CSI n b`, not in every terminal): runs are written out, and a
//!   run of blank default cells is skipped with a cursor move instead (the
//!   client's screen was cleared), trailing ones not at all;
//! - a pen change inside a buffer sets only what changed when nothing has
//!   to be turned off (else a reset and the whole pen);
//! - tab stops with TBC, CHA and HTS, which every terminal knows, rather
//!   than CTC;
//! - no allocation but the output's own growth: `dump` formats a few small
//!   strings per change of pen, which made it the slowest part of showing a
//!   200x60 screen whose every cell has its own colours.

use super::{BufferType, CursorKeysMode, SavedCtx, Terminal};
use crate::buffer::Buffer;
use crate::charset::Charset;
use crate::color::Color;
use crate::pen::{Intensity, Pen};
use crate::tabs::Tabs;

/// Blank default cells in the middle of a line shorter than this are
/// written as spaces: a cursor move (`ESC [ n C`) is no shorter.
const SKIP_AT_LEAST: usize = 5;

impl Terminal {
    /// Appends the bytes that give a terminal with a clear screen, the
    /// cursor home, default modes and pen this terminal's state (see the
    /// module's documentation).
    pub fn dump_to(&self, out: &mut Vec<u8>) {
        let (primary_ctx, alternate_ctx): (&SavedCtx, &SavedCtx) = match self.active_buffer_type {
            BufferType::Primary => (&self.saved_ctx, &self.alternate_saved_ctx),
            BufferType::Alternate => (&self.alternate_saved_ctx, &self.saved_ctx),
        };

        // 1. the primary screen buffer
        buffer_to(self.primary_buffer(), self.rows, out);

        // 2. tab stops
        if self.tabs != Tabs::new(self.cols) {
            out.extend_from_slice(b"\x1b[3g");
            for t in &self.tabs {
                csi_num(out, t + 1, b'G');
                out.extend_from_slice(b"\x1bH");
            }
        }

        // 3. the primary screen's saved context
        saved_ctx_to(primary_ctx, out);

        // no pen bleeding into the alternate screen
        out.extend_from_slice(b"\x1b[m");

        // 4. the alternate screen buffer
        if self.active_buffer_type == BufferType::Alternate || !alternate_ctx.is_default() {
            out.extend_from_slice(b"\x1b[?1047h");
        }
        if self.active_buffer_type == BufferType::Alternate {
            out.extend_from_slice(b"\x1b[1;1H");
            buffer_to(self.alternate_buffer(), self.rows, out);
        }

        // 5. the alternate screen's saved context
        saved_ctx_to(alternate_ctx, out);

        // 6. the right buffer active
        if self.active_buffer_type == BufferType::Primary && !alternate_ctx.is_default() {
            out.extend_from_slice(b"\x1b[?1047l");
        }

        // 7. origin mode (it homes the cursor: before the cursor is placed)
        if self.origin_mode {
            out.extend_from_slice(b"\x1b[?6h");
        }

        // 8. margins (they home the cursor too)
        if self.top_margin > 0 || self.bottom_margin < self.rows - 1 {
            out.extend_from_slice(b"\x1b[");
            num(out, self.top_margin + 1);
            out.push(b';');
            num(out, self.bottom_margin + 1);
            out.push(b'r');
        }

        // 9. the cursor
        let col = self.cursor.col;
        let mut row = self.cursor.row;
        if self.origin_mode {
            if row < self.top_margin || row > self.bottom_margin {
                // Outside the scroll region: from the saved cursor, with
                // relative moves, as `dump` does.
                out.extend_from_slice(b"\x1b[u");
                let saved = (self.saved_ctx.cursor_col, self.saved_ctx.cursor_row);
                if col < saved.0 {
                    csi_num(out, saved.0 - col, b'D');
                } else if col > saved.0 {
                    csi_num(out, col - saved.0, b'C');
                }
                if row < saved.1 {
                    csi_num(out, saved.1 - row, b'A');
                } else if row > saved.1 {
                    csi_num(out, row - saved.1, b'B');
                }
            } else {
                row -= self.top_margin;
                cup(out, row, col);
            }
        } else {
            cup(out, row, col);
        }

        if self.cursor.col >= self.cols {
            // Past the right border: the last column's character printed
            // again puts it there.
            let last_cell = self.buffer[(self.cols - 1, self.cursor.row)];
            let width = last_cell.width();
            if width == 1 {
                pen_to(last_cell.pen(), out);
                char_to(last_cell.char(), out);
            } else if width == 0 {
                let prev_cell = self.buffer[(self.cols - 2, self.cursor.row)];
                out.extend_from_slice(b"\x1b[D");
                pen_to(prev_cell.pen(), out);
                char_to(prev_cell.char(), out);
            }
        }

        // the pen
        pen_to(&self.pen, out);

        if !self.cursor.visible {
            out.extend_from_slice(b"\x1b[?25l");
        }

        // 10. charsets (after every print: they change what prints)
        if self.charsets[0] == Charset::Drawing {
            out.extend_from_slice(b"\x1b(0");
        }
        if self.charsets[1] == Charset::Drawing {
            out.extend_from_slice(b"\x1b)0");
        }
        if self.active_charset == 1 {
            out.push(0x0e);
        }

        // 11.-14. insert, auto-wrap, new line and cursor key modes
        if self.insert_mode {
            out.extend_from_slice(b"\x1b[4h");
        }
        if !self.auto_wrap_mode {
            out.extend_from_slice(b"\x1b[?7l");
        }
        if self.new_line_mode {
            out.extend_from_slice(b"\x1b[20h");
        }
        if self.cursor_keys_mode == CursorKeysMode::Application {
            out.extend_from_slice(b"\x1b[?1h");
        }
    }
}

/// A buffer's lines from the cursor home, as `Buffer::dump` writes them: up
/// to the last line that is not blank (or ends a wrapped one), each line's
/// cells with the pen changes between them, CR LF after each line that
/// did not wrap (none after the last row). A wrapped line is written out
/// to its last column, so that the next character wraps in the client too.
fn buffer_to(buffer: &Buffer, rows: usize, out: &mut Vec<u8>) {
    let mut cutoff = 0;
    let mut wrapped = false;
    for (i, line) in buffer.view().enumerate() {
        if wrapped || line.wrapped || !line.is_blank() {
            cutoff = i + 1;
        }
        wrapped = line.wrapped;
    }
    let last = rows - 1;
    let mut pen = Pen::default();
    let mut after_wrap = false;
    for (i, line) in buffer.view().take(cutoff).enumerate() {
        let cells = line.cells();
        // Trailing blank default cells are left as the clear left them,
        // unless the line wrapped.
        let end = if line.wrapped {
            cells.len()
        } else {
            cells.iter().rposition(|c| !c.is_default()).map_or(0, |i| i + 1)
        };
        let mut at = 0;
        while at < end {
            let cell = &cells[at];
            if cell.is_default() {
                let run = cells[at..end].iter().take_while(|c| c.is_default()).count();
                // Not up to the end of a wrapped line (the move stops at
                // the last column, short of where the next character
                // wraps), nor first on the line after it (only a printed
                // character wraps).
                let wraps = at + run == cells.len() || (at == 0 && after_wrap);
                if run >= SKIP_AT_LEAST && !wraps {
                    csi_num(out, run, b'C');
                    at += run;
                    continue;
                }
            }
            at += 1;
            if cell.width() == 0 {
                continue;
            }
            if cell.pen() != &pen {
                pen_change_to(&pen, cell.pen(), out);
                pen = *cell.pen();
            }
            char_to(cell.char(), out);
        }
        if i < last && !line.wrapped {
            out.extend_from_slice(b"\r\n");
        }
        after_wrap = line.wrapped;
    }
}

fn saved_ctx_to(ctx: &SavedCtx, out: &mut Vec<u8>) {
    if ctx.is_default() {
        return;
    }
    if !ctx.auto_wrap_mode {
        out.extend_from_slice(b"\x1b[?7l");
    }
    if ctx.origin_mode {
        out.extend_from_slice(b"\x1b[?6h");
    }
    cup(out, ctx.cursor_row, ctx.cursor_col);
    pen_to(&ctx.pen, out);
    out.extend_from_slice(b"\x1b7");
    if !ctx.auto_wrap_mode {
        out.extend_from_slice(b"\x1b[?7h");
    }
    if ctx.origin_mode {
        out.extend_from_slice(b"\x1b[?6l");
    }
}

/// The SGR that sets exactly `pen`, whatever the pen before.
fn pen_to(pen: &Pen, out: &mut Vec<u8>) {
    let mut sgr = Small::default();
    sgr.put(b"\x1b[0");
    pen_params(pen, None, &mut sgr);
    sgr.put(b"m");
    out.extend_from_slice(sgr.bytes());
}

/// The shortest SGR this writes from `from` to `to`: only what changed
/// when nothing has to be turned off (no attribute or colour dropped, no
/// change between bold and faint, which some terminals keep as two
/// attributes), else a reset and the whole of `to`.
fn pen_change_to(from: &Pen, to: &Pen, out: &mut Vec<u8>) {
    let only_added = from.attrs & !to.attrs == 0
        && (from.intensity == to.intensity || from.intensity == Intensity::Normal)
        && (from.foreground.is_none() || to.foreground.is_some())
        && (from.background.is_none() || to.background.is_some());
    if !only_added {
        pen_to(to, out);
        return;
    }
    let mut sgr = Small::default();
    pen_params(to, Some(from), &mut sgr);
    // Every parameter was written with a `;` before it: that one becomes
    // the `[` of the CSI.
    out.push(0x1b);
    match sgr.bytes().split_first() {
        Some((_, params)) => {
            out.push(b'[');
            out.extend_from_slice(params);
        }
        None => out.push(b'['),
    }
    out.push(b'm');
}

/// `;`-led parameters for what `pen` has (and `from`, if given, has not).
fn pen_params(pen: &Pen, from: Option<&Pen>, out: &mut Small) {
    let changed = |f: fn(&Pen) -> bool| f(pen) && !from.is_some_and(f);
    if pen.foreground != from.and_then(|p| p.foreground) {
        if let Some(c) = pen.foreground {
            color_to(c, 30, out);
        }
    }
    if pen.background != from.and_then(|p| p.background) {
        if let Some(c) = pen.background {
            color_to(c, 40, out);
        }
    }
    if pen.intensity != from.map_or(Intensity::Normal, |p| p.intensity) {
        match pen.intensity {
            Intensity::Normal => {}
            Intensity::Bold => out.put(b";1"),
            Intensity::Faint => out.put(b";2"),
        }
    }
    for (on, code) in [
        (changed(Pen::is_italic), &b";3"[..]),
        (changed(Pen::is_underline), b";4"),
        (changed(Pen::is_blink), b";5"),
        (changed(Pen::is_inverse), b";7"),
        (changed(Pen::is_strikethrough), b";9"),
    ] {
        if on {
            out.put(code);
        }
    }
}

fn color_to(color: Color, base: u8, out: &mut Small) {
    match color {
        Color::Indexed(c) if c < 8 => out.num(b';', base + c),
        Color::Indexed(c) if c < 16 => out.num(b';', base + 52 + c),
        Color::Indexed(c) => {
            out.num(b';', base + 8);
            out.put(b";5");
            out.num(b';', c);
        }
        Color::RGB(c) => {
            out.num(b';', base + 8);
            out.put(b";2");
            out.num(b';', c.r);
            out.num(b';', c.g);
            out.num(b';', c.b);
        }
    }
}

/// Each byte's decimal digits: how many, then the digits.
const DIGITS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let d = [b'0' + (n / 100) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        table[n] = match n {
            0..=9 => [1, d[2], 0, 0],
            10..=99 => [2, d[1], d[2], 0],
            _ => [3, d[0], d[1], d[2]],
        };
        n += 1;
    }
    table
};

/// A short sequence built on the stack and appended at once: a pen change
/// is a dozen pieces of a byte or two, each of which would otherwise be a
/// call to copy memory. The longest SGR is about 50 bytes.
struct Small {
    buf: [u8; 64],
    len: usize,
}

impl Default for Small {
    fn default() -> Self {
        Small { buf: [0; 64], len: 0 }
    }
}

impl Small {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `sep` and `n` in decimal (four bytes copied at once, the length
    /// then set to what they hold).
    fn num(&mut self, sep: u8, n: u8) {
        let [len, a, b, c] = DIGITS[n as usize];
        self.buf[self.len..self.len + 4].copy_from_slice(&[sep, a, b, c]);
        self.len += 1 + len as usize;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn cup(out: &mut Vec<u8>, row: usize, col: usize) {
    out.extend_from_slice(b"\x1b[");
    num(out, row + 1);
    out.push(b';');
    num(out, col + 1);
    out.push(b'H');
}

fn csi_num(out: &mut Vec<u8>, n: usize, fin: u8) {
    out.extend_from_slice(b"\x1b[");
    num(out, n);
    out.push(fin);
}

fn char_to(c: char, out: &mut Vec<u8>) {
    if c.is_ascii() {
        out.push(c as u8);
    } else {
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            out.push(b);
        }
    }
}

/// `n` in decimal.
fn num(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
