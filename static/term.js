// ringlet's terminal emulator core: output bytes in, a screen grid out. No
// DOM, so node runs it in the tests (tests/tools/term-screen.js) as the page
// does (app.js renders the grid). It speaks what TERM=xterm-256color
// promises to the agents' TUIs (Claude Code's Ink, Codex, OpenCode): cursor
// motion, erase, insert/delete, scroll regions, the alternate screen, SGR
// with 16/256/true colours, deferred autowrap, wide characters, and answers
// to the queries (cursor position, device attributes) TUIs wait for.
// Not here: mouse reporting (the modes are only recorded), reflow on resize,
// bidi, grapheme clusters (a combining mark joins the cell before it; each
// emoji of a ZWJ sequence takes its own cells), DCS/APC payloads (eaten).
"use strict";
(function (global) { // the whole file, so not indented
// Attributes: interned frozen objects {fg, bg, fl}. A colour is -1 (the
// default), 0..255 (the palette) or RGB | 1 << 24 (true colour).
const BOLD = 1, DIM = 2, ITALIC = 4, UNDERLINE = 8, BLINK = 16, INVERSE = 32, HIDDEN = 64, STRIKE = 128;
const RGB = 1 << 24;
const pens = new Map();
function attr(fg, bg, fl) {
  const key = fg + "," + bg + "," + fl;
  let a = pens.get(key);
  if (!a) {
    if (pens.size > 4096) pens.clear();
    a = Object.freeze({ fg, bg, fl });
    pens.set(key, a);
  }
  return a;
}
const PLAIN = attr(-1, -1, 0);

// Cell widths: 0 for combining marks and format characters, 2 for East
// Asian wide/fullwidth and emoji-presentation characters, else 1.
const WIDE = [0x1100, 0x115f, 0x2329, 0x232a, 0x2e80, 0x303e, 0x3041, 0x33ff, 0x3400, 0x4dbf,
  0x4e00, 0x9fff, 0xa000, 0xa4cf, 0xa960, 0xa97f, 0xac00, 0xd7a3, 0xf900, 0xfaff, 0xfe10, 0xfe19,
  0xfe30, 0xfe6f, 0xff00, 0xff60, 0xffe0, 0xffe6, 0x1f200, 0x1f2ff, 0x20000, 0x3fffd];
const ZERO = /^[\p{Mn}\p{Me}\p{Cf}]$/u;
const EMOJI = /^\p{Emoji_Presentation}$/u;
const widths = new Map();
function charWidth(cp) {
  if (cp < 0x300) return 1;
  let w = widths.get(cp);
  if (w !== undefined) return w;
  const s = String.fromCodePoint(cp);
  w = 1;
  if ((cp >= 0x1160 && cp <= 0x11ff) || ZERO.test(s)) w = 0;
  else if (EMOJI.test(s)) w = 2;
  else for (let i = 0; i < WIDE.length; i += 2) if (cp >= WIDE[i] && cp <= WIDE[i + 1]) { w = 2; break; }
  if (widths.size < 8192) widths.set(cp, w);
  return w;
}

// DEC special graphics (ESC ( 0), 0x60..0x7e: the line-drawing set.
const DEC = "◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·";

// One line: its cells' characters ("" for the right half of a wide
// character) and attributes; `wrapped` when the text ran on to the next
// line; `v` changes with every write, so a renderer redraws only what
// changed.
function line(cols, a) {
  return { c: new Array(cols).fill(" "), a: new Array(cols).fill(a || PLAIN), wrapped: false, v: 0 };
}

// Blanks [x0, x1) of `l`, and the other half of a wide character cut.
function blank(l, x0, x1, a) {
  const n = l.c.length;
  if (x0 > 0 && x0 < n && l.c[x0] === "") l.c[x0 - 1] = " ";
  if (x1 < n && l.c[x1] === "") l.c[x1] = " ";
  for (let x = Math.max(0, x0); x < Math.min(x1, n); x++) { l.c[x] = " "; l.a[x] = a; }
  l.v++;
}

// SGR n: the flags it sets and the flags it clears.
const SGR_FLAGS = { 1: [BOLD, 0], 2: [DIM, 0], 3: [ITALIC, 0], 4: [UNDERLINE, 0], 5: [BLINK, 0],
  6: [BLINK, 0], 7: [INVERSE, 0], 8: [HIDDEN, 0], 9: [STRIKE, 0], 21: [UNDERLINE, 0],
  22: [0, BOLD | DIM], 23: [0, ITALIC], 24: [0, UNDERLINE], 25: [0, BLINK], 27: [0, INVERSE],
  28: [0, HIDDEN], 29: [0, STRIKE] };

// Parser states.
const GROUND = 0, ESC = 1, ESC_INT = 2, CSI = 3, OSC = 4, STR = 5, OSC_ESC = 6, STR_ESC = 7;
const MAX_STRING = 4096;
const MAX_PARAMS = 32;
// Private modes DECRQM can report on (the others: "not recognised").
const KNOWN_MODES = [1, 5, 6, 7, 12, 25, 47, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1047, 1048, 1049, 2004, 2026];

class Terminal {
  // opts: scrollback (lines kept, 1000), onReply(string) for the answers
  // to queries (send them to the program as if typed), onTitle(string),
  // onBell(), fg and bg (0xRRGGBB, what OSC 10/11 queries are told).
  constructor(cols, rows, opts) {
    opts = opts || {};
    this.cols = Math.max(1, cols | 0 || 80);
    this.rows = Math.max(1, rows | 0 || 24);
    this.maxScrollback = opts.scrollback === undefined ? 1000 : opts.scrollback;
    this.onReply = opts.onReply || (() => {});
    this.onTitle = opts.onTitle || (() => {});
    this.onBell = opts.onBell || (() => {});
    this.fg = opts.fg === undefined ? 0xd4d4d4 : opts.fg;
    this.bg = opts.bg === undefined ? 0x1e1e1e : opts.bg;
    this.decoder = new TextDecoder("utf-8");
    this.scrollback = [];
    this.scrolledOff = 0; // lines ever sent to the scrollback
    this.title = "";
    this.reset();
  }

  // ESC c: everything but the scrollback and the title back to the start.
  reset() {
    this.main = this.screen();
    this.altLines = this.screen();
    this.lines = this.main;
    this.x = 0;
    this.y = 0;
    this.wrap = false; // the deferred autowrap: a character was written in the last column
    this.pen = PLAIN;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.charsets = [null, null, null, null];
    this.gl = 0;
    this.saved = { main: null, alt: null };
    this.tabs = [];
    for (let x = 0; x < this.cols; x++) this.tabs[x] = x % 8 === 0;
    this.modes = {}; // DEC private modes seen, number -> on
    this.autowrap = true;
    this.origin = false;
    this.insert = false; // IRM
    this.newline = false; // LNM
    this.appCursor = false;
    this.appKeypad = false;
    this.cursorVisible = true;
    this.cursorStyle = 0;
    this.reverseVideo = false;
    this.bracketedPaste = false;
    this.synced = false; // ?2026: the program is in the middle of a frame
    this.mouse = 0; // the last mouse tracking mode set (not reported)
    this.lastCp = -1;
    this.state = GROUND;
    this.str = "";
    this.strKind = "";
  }

  screen() {
    const lines = [];
    for (let y = 0; y < this.rows; y++) lines.push(line(this.cols));
    return lines;
  }

  get alt() { return this.lines === this.altLines; }

  // The attribute erased cells get: the current background (xterm's bce).
  get erasePen() { return this.pen.bg === -1 ? PLAIN : attr(-1, this.pen.bg, 0); }

  // Output from the program: bytes (UTF-8, a character may be split
  // between calls) or a string.
  write(data) {
    const s = typeof data === "string" ? data : this.decoder.decode(data, { stream: true });
    for (let i = 0; i < s.length; i++) {
      let cp = s.charCodeAt(i);
      if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < s.length) {
        const lo = s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo < 0xe000) { cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00); i++; }
      }
      this.feed(cp);
    }
  }

  feed(cp) {
    const st = this.state;
    if (st === GROUND) {
      if (cp >= 0x20 && cp !== 0x7f) { if (cp < 0x80 || cp > 0x9f) this.print(cp); } else this.control(cp);
      return;
    }
    if (st >= OSC) return this.stringByte(cp);
    // In an escape sequence: CAN and SUB abort it, ESC starts another,
    // other controls act as usual.
    if (cp < 0x20 || cp === 0x7f) {
      if (cp === 0x18 || cp === 0x1a) this.state = GROUND;
      else if (cp === 0x1b) this.state = ESC;
      else if (cp !== 0x7f) this.control(cp);
      return;
    }
    const ch = String.fromCharCode(cp > 0xffff ? 0xfffd : cp);
    if (st === ESC) return this.escape(cp, ch);
    if (st === ESC_INT) {
      if (cp < 0x30) { this.inter += ch; return; }
      this.state = GROUND;
      // G0..G3: ( ) * + (and - . / for G1..G3's 96-character sets).
      const i = "()*+-./".indexOf(this.inter);
      if (i >= 0) this.charsets[i < 4 ? i : i - 3] = ch === "0" ? DEC : null;
      else if (this.inter === "#" && ch === "8") this.align();
      return;
    }
    // CSI: prefix, parameters (; between, : between sub-parameters),
    // intermediates, final.
    if (cp >= 0x30 && cp <= 0x39) {
      this.num = this.num < 0 ? cp - 0x30 : Math.min(this.num * 10 + cp - 0x30, 99999);
    } else if (cp === 0x3a) {
      this.sub.push(this.num);
      this.num = -1;
    } else if (cp === 0x3b) {
      this.sub.push(this.num);
      if (this.params.length < MAX_PARAMS) this.params.push(this.sub);
      this.sub = [];
      this.num = -1;
    } else if (cp >= 0x3c && cp <= 0x3f) {
      if (this.prefix || this.num >= 0 || this.params.length || this.sub.length) this.bad = true;
      else this.prefix = ch;
    } else if (cp >= 0x20 && cp <= 0x2f) {
      this.inter += ch;
    } else if (cp >= 0x40 && cp <= 0x7e) {
      this.sub.push(this.num);
      if (this.params.length < MAX_PARAMS) this.params.push(this.sub);
      this.state = GROUND;
      if (!this.bad) this.csi(ch);
    } else {
      this.bad = true;
    }
  }

  // OSC, DCS, APC, PM, SOS: up to BEL (OSC) or ST (ESC \).
  stringByte(cp) {
    const st = this.state;
    if (st === OSC_ESC || st === STR_ESC) {
      if (cp === 0x5c) { this.state = GROUND; if (st === OSC_ESC) this.osc("\x1b\\"); return; }
      // Anything else ends the string and starts another sequence.
      if (st === OSC_ESC) this.osc("\x1b\\");
      this.state = ESC;
      return this.feed(cp);
    }
    if (cp === 0x1b) this.state = st === OSC ? OSC_ESC : STR_ESC;
    else if (cp === 0x18 || cp === 0x1a) this.state = GROUND;
    else if (cp === 0x07 && st === OSC) { this.state = GROUND; this.osc("\x07"); }
    else if (st === OSC && cp >= 0x20 && this.str.length < MAX_STRING) this.str += String.fromCodePoint(cp);
  }

  control(cp) {
    switch (cp) {
      case 0x07: this.onBell(); break;
      case 0x08: this.wrap = false; if (this.x > 0) this.x--; break;
      case 0x09: this.tab(1); break;
      case 0x0a: case 0x0b: case 0x0c: this.index(); if (this.newline) this.x = 0; break;
      case 0x0d: this.x = 0; this.wrap = false; break;
      case 0x0e: this.gl = 1; break;
      case 0x0f: this.gl = 0; break;
      case 0x1b: this.state = ESC; break;
    }
  }

  escape(cp, ch) {
    this.state = GROUND;
    if (cp <= 0x2f) { this.inter = ch; this.state = ESC_INT; return; }
    switch (ch) {
      case "[":
        this.state = CSI;
        this.params = [];
        this.sub = [];
        this.num = -1;
        this.prefix = "";
        this.inter = "";
        this.bad = false;
        break;
      case "]": this.state = OSC; this.str = ""; break;
      case "P": case "X": case "^": case "_": this.state = STR; this.strKind = ch; break;
      case "7": this.saveCursor(); break;
      case "8": this.restoreCursor(); break;
      case "D": this.index(); break;
      case "E": this.x = 0; this.index(); break;
      case "M": this.reverseIndex(); break;
      case "H": this.tabs[this.x] = true; break;
      case "c": this.reset(); break;
      case "=": this.appKeypad = true; break;
      case ">": this.appKeypad = false; break;
    }
  }

  // A graphic character at the cursor.
  print(cp) {
    const set = this.charsets[this.gl];
    let ch = set && cp >= 0x60 && cp <= 0x7e ? set[cp - 0x60] : String.fromCodePoint(cp);
    let w = charWidth(cp);
    if (w === 0) return this.combine(ch);
    if (w === 2 && this.cols < 2) w = 1;
    if (this.wrap) this.wrapLine();
    if (w === 2 && this.x === this.cols - 1) {
      if (!this.autowrap) return;
      blank(this.lines[this.y], this.x, this.cols, this.erasePen);
      this.wrapLine();
    }
    const l = this.lines[this.y], x = this.x;
    if (this.insert) this.insertCells(l, x, w);
    if (l.c[x] === "" && x > 0) l.c[x - 1] = " ";
    if (x + w < this.cols && l.c[x + w] === "") l.c[x + w] = " ";
    l.c[x] = ch;
    l.a[x] = this.pen;
    if (w === 2) { l.c[x + 1] = ""; l.a[x + 1] = this.pen; }
    l.v++;
    this.lastCp = cp;
    this.x += w;
    if (this.x >= this.cols) {
      this.x = this.cols - 1;
      this.wrap = this.autowrap;
    }
  }

  wrapLine() {
    this.lines[this.y].wrapped = true;
    this.x = 0;
    this.index();
  }

  // A combining mark or format character joins the cell before the cursor.
  combine(ch) {
    let x = this.wrap ? this.x : this.x - 1;
    const l = this.lines[this.y];
    if (x > 0 && l.c[x] === "") x--;
    if (x < 0) return;
    l.c[x] += ch;
    l.v++;
  }

  tab(n) {
    this.wrap = false;
    while (n-- > 0) {
      do this.x++; while (this.x < this.cols - 1 && !this.tabs[this.x]);
      if (this.x >= this.cols - 1) { this.x = this.cols - 1; break; }
    }
  }

  backTab(n) {
    this.wrap = false;
    while (n-- > 0 && this.x > 0) do this.x--; while (this.x > 0 && !this.tabs[this.x]);
  }

  // LF: down a line, scrolling the region at its bottom.
  index() {
    this.wrap = false;
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y++;
  }

  reverseIndex() {
    this.wrap = false;
    if (this.y === this.top) this.scrollDown(1);
    else if (this.y > 0) this.y--;
  }

  // Lines scrolled off the top of the main screen (a region starting at
  // the top included) go to the scrollback.
  scrollUp(n, keep = true) {
    n = Math.min(n, this.bottom - this.top + 1);
    for (let i = 0; i < n; i++) {
      const gone = this.lines.splice(this.top, 1)[0];
      if (keep && this.top === 0 && !this.alt && this.maxScrollback > 0) {
        this.scrollback.push(gone);
        this.scrolledOff++;
        if (this.scrollback.length > this.maxScrollback) this.scrollback.shift();
      }
      this.lines.splice(this.bottom, 0, line(this.cols, this.erasePen));
    }
  }

  scrollDown(n) {
    n = Math.min(n, this.bottom - this.top + 1);
    for (let i = 0; i < n; i++) {
      this.lines.splice(this.bottom, 1);
      this.lines.splice(this.top, 0, line(this.cols, this.erasePen));
    }
  }

  insertCells(l, x, n) {
    if (l.c[x] === "" && x > 0) { l.c[x - 1] = " "; l.c[x] = " "; }
    n = Math.min(n, this.cols - x);
    const pen = this.erasePen;
    l.c.splice(x, 0, ...new Array(n).fill(" "));
    l.a.splice(x, 0, ...new Array(n).fill(pen));
    if (l.c[this.cols] === "") l.c[this.cols - 1] = " ";
    l.c.length = l.a.length = this.cols;
    l.v++;
  }

  deleteCells(l, x, n) {
    if (l.c[x] === "" && x > 0) l.c[x - 1] = " ";
    n = Math.min(n, this.cols - x);
    l.c.splice(x, n);
    l.a.splice(x, n);
    const pen = this.erasePen;
    for (let i = 0; i < n; i++) { l.c.push(" "); l.a.push(pen); }
    if (l.c[x] === "") l.c[x] = " ";
    l.v++;
  }

  // CUP and friends: origin mode counts rows from the region's top.
  moveTo(x, y) {
    this.wrap = false;
    this.x = Math.max(0, Math.min(this.cols - 1, x));
    if (this.origin) this.y = Math.max(this.top, Math.min(this.bottom, y + this.top));
    else this.y = Math.max(0, Math.min(this.rows - 1, y));
  }

  align() { // DECALN: the screen full of E
    for (const l of this.lines) { l.c.fill("E"); l.a.fill(PLAIN); l.wrapped = false; l.v++; }
    this.top = 0;
    this.bottom = this.rows - 1;
    this.moveTo(0, 0);
  }

  saveCursor() {
    this.saved[this.alt ? "alt" : "main"] = {
      x: this.x, y: this.y, wrap: this.wrap, pen: this.pen, origin: this.origin,
      charsets: this.charsets.slice(), gl: this.gl, autowrap: this.autowrap,
    };
  }

  restoreCursor() {
    const s = this.saved[this.alt ? "alt" : "main"];
    if (!s) { this.pen = PLAIN; this.origin = false; return this.moveTo(0, 0); }
    this.pen = s.pen;
    this.charsets = s.charsets.slice();
    this.gl = s.gl;
    this.autowrap = s.autowrap;
    this.origin = false;
    this.moveTo(s.x, s.y);
    this.origin = s.origin;
    this.wrap = s.wrap && s.x === this.x;
  }

  // ?47, ?1047 and ?1049.
  altScreen(on, mode) {
    if (on === this.alt) return;
    if (on) {
      if (mode === 1049) this.saveCursor();
      this.lines = this.altLines;
      if (mode !== 47) for (const l of this.lines) blank(l, 0, this.cols, this.erasePen);
    } else {
      if (mode === 1047) for (const l of this.lines) blank(l, 0, this.cols, this.erasePen);
      this.lines = this.main;
      if (mode === 1049) this.restoreCursor();
    }
    for (const l of this.lines) l.v++;
  }

  // Parameter i, `def` when absent (and when 0, if `zero` is not given).
  p(i, def, zero) {
    const v = i < this.params.length ? this.params[i][0] : -1;
    return v < 0 || (v === 0 && !zero) ? def : v;
  }

  csi(f) {
    const P = this.prefix, I = this.inter, n = this.p(0, 1);
    if (P === "?") {
      if (I === "" && (f === "h" || f === "l")) for (const q of this.params) this.decMode(q[0], f === "h");
      else if (I === "" && f === "n" && n === 6) this.reply(`\x1b[?${this.cursorRow()};${this.x + 1}R`);
      else if (I === "" && (f === "J" || f === "K")) { this.prefix = ""; this.csi(f); }
      else if (I === "$" && f === "p") {
        const m = this.p(0, 0, true);
        const state = KNOWN_MODES.includes(m) ? (this.decOn(m) ? 1 : 2) : 0;
        this.reply(`\x1b[?${m};${state}$y`);
      }
      return;
    }
    if (P === ">") {
      if (f === "c" && I === "" && this.p(0, 0, true) === 0) this.reply("\x1b[>1;10;0c");
      return;
    }
    if (P) return;
    if (I) {
      if (I === " " && f === "q") this.cursorStyle = this.p(0, 0, true);
      else if (I === "!" && f === "p") this.softReset();
      else if (I === "$" && f === "p") {
        const m = this.p(0, 0, true);
        const state = m === 4 ? (this.insert ? 1 : 2) : m === 20 ? (this.newline ? 1 : 2) : 0;
        this.reply(`\x1b[${m};${state}$y`);
      }
      return;
    }
    const l = this.lines[this.y];
    switch (f) {
      case "@": this.insertCells(l, this.x, n); this.wrap = false; break;
      case "A": this.up(n); break;
      case "B": case "e": this.down(n); break;
      case "C": case "a": this.column(this.x + n); break;
      case "D": this.column(this.x - n); break;
      case "E": this.down(n); this.x = 0; break;
      case "F": this.up(n); this.x = 0; break;
      case "G": case "`": this.column(n - 1); break;
      case "H": case "f": this.moveTo(this.p(1, 1) - 1, n - 1); break;
      case "d": this.moveTo(this.x, n - 1); break;
      case "I": this.tab(n); break;
      case "Z": this.backTab(n); break;
      case "J": this.eraseDisplay(this.p(0, 0, true)); break;
      case "K": this.eraseLine(this.p(0, 0, true)); break;
      case "L": case "M":
        if (this.y >= this.top && this.y <= this.bottom) {
          const top = this.top;
          this.top = this.y;
          if (f === "L") this.scrollDown(n); else this.scrollUp(n, false);
          this.top = top;
          this.x = 0;
          this.wrap = false;
        }
        break;
      case "P": this.deleteCells(l, this.x, n); this.wrap = false; break;
      case "X": blank(l, this.x, Math.min(this.cols, this.x + n), this.erasePen); this.wrap = false; break;
      case "S": if (this.params.length === 1) this.scrollUp(n); break;
      case "T": if (this.params.length === 1) this.scrollDown(n); break;
      case "b":
        if (this.lastCp >= 0) for (let i = Math.min(n, this.cols * this.rows); i > 0; i--) this.print(this.lastCp);
        break;
      case "c": if (this.p(0, 0, true) === 0) this.reply("\x1b[?62;22c"); break;
      case "g":
        if (this.p(0, 0, true) === 0) this.tabs[this.x] = false;
        else if (this.p(0, 0, true) === 3) this.tabs.fill(false);
        break;
      case "h": case "l":
        for (const q of this.params) {
          if (q[0] === 4) this.insert = f === "h";
          if (q[0] === 20) this.newline = f === "h";
        }
        break;
      case "m": this.sgr(); break;
      case "n":
        if (n === 5) this.reply("\x1b[0n");
        else if (n === 6) this.reply(`\x1b[${this.cursorRow()};${this.x + 1}R`);
        break;
      case "r": {
        const t = this.p(0, 1), b = Math.min(this.p(1, this.rows), this.rows);
        if (t < b) { this.top = t - 1; this.bottom = b - 1; this.moveTo(0, 0); }
        break;
      }
      case "s": this.saveCursor(); break;
      case "u": this.restoreCursor(); break;
      case "t": if (n === 18) this.reply(`\x1b[8;${this.rows};${this.cols}t`); break;
    }
  }

  column(x) {
    this.wrap = false;
    this.x = Math.max(0, Math.min(this.cols - 1, x));
  }

  cursorRow() { return this.y - (this.origin ? this.top : 0) + 1; }

  // CUU/CUD stop at the region's margin when they start inside it.
  up(n) {
    const limit = this.y >= this.top ? this.top : 0;
    this.wrap = false;
    this.y = Math.max(limit, this.y - n);
  }

  down(n) {
    const limit = this.y <= this.bottom ? this.bottom : this.rows - 1;
    this.wrap = false;
    this.y = Math.min(limit, this.y + n);
  }

  eraseDisplay(mode) {
    const pen = this.erasePen;
    const all = (y0, y1) => {
      for (let y = y0; y < y1; y++) { blank(this.lines[y], 0, this.cols, pen); this.lines[y].wrapped = false; }
    };
    if (mode === 0) {
      blank(this.lines[this.y], this.x, this.cols, pen);
      this.lines[this.y].wrapped = false;
      all(this.y + 1, this.rows);
    } else if (mode === 1) {
      all(0, this.y);
      blank(this.lines[this.y], 0, this.x + 1, pen);
    } else if (mode === 2) {
      all(0, this.rows);
    } else if (mode === 3) {
      this.scrollback = [];
    }
  }

  eraseLine(mode) {
    const l = this.lines[this.y], pen = this.erasePen;
    if (mode === 0) { blank(l, this.x, this.cols, pen); l.wrapped = false; }
    else if (mode === 1) blank(l, 0, this.x + 1, pen);
    else if (mode === 2) { blank(l, 0, this.cols, pen); l.wrapped = false; }
  }

  decOn(m) {
    switch (m) {
      case 1: return this.appCursor;
      case 5: return this.reverseVideo;
      case 6: return this.origin;
      case 7: return this.autowrap;
      case 25: return this.cursorVisible;
      case 47: case 1047: case 1049: return this.alt;
      case 2004: return this.bracketedPaste;
      case 2026: return this.synced;
      default: return !!this.modes[m];
    }
  }

  decMode(m, on) {
    this.modes[m] = on;
    switch (m) {
      case 1: this.appCursor = on; break;
      case 5: this.reverseVideo = on; for (const l of this.lines) l.v++; break;
      case 6: this.origin = on; this.moveTo(0, 0); break;
      case 7: this.autowrap = on; if (!on) this.wrap = false; break;
      case 25: this.cursorVisible = on; break;
      case 47: case 1047: case 1049: this.altScreen(on, m); break;
      case 1048: if (on) this.saveCursor(); else this.restoreCursor(); break;
      case 1000: case 1002: case 1003: this.mouse = on ? m : 0; break;
      case 2004: this.bracketedPaste = on; break;
      case 2026: this.synced = on; break;
    }
  }

  softReset() { // DECSTR
    this.cursorVisible = true;
    this.origin = this.insert = this.appCursor = this.appKeypad = false;
    this.autowrap = true;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.pen = PLAIN;
    this.charsets = [null, null, null, null];
    this.gl = 0;
    this.saved[this.alt ? "alt" : "main"] = null;
  }

  sgr() {
    let { fg, bg, fl } = this.pen;
    const ps = this.params;
    for (let i = 0; i < ps.length; i++) {
      const sub = ps[i], p = Math.max(0, sub[0]);
      if (p === 0) { fg = bg = -1; fl = 0; }
      else if (p === 4 && sub.length > 1 && sub[1] === 0) fl &= ~UNDERLINE; // 4:0; 4:N are styles
      else if (p in SGR_FLAGS) fl = (fl | SGR_FLAGS[p][0]) & ~SGR_FLAGS[p][1];
      else if (p >= 30 && p <= 37) fg = p - 30;
      else if (p === 39) fg = -1;
      else if (p >= 40 && p <= 47) bg = p - 40;
      else if (p === 49) bg = -1;
      else if (p >= 90 && p <= 97) fg = p - 90 + 8;
      else if (p >= 100 && p <= 107) bg = p - 100 + 8;
      else if (p === 38 || p === 48 || p === 58) {
        // 38;5;N 38;2;R;G;B, or with colons: 38:5:N 38:2:R:G:B 38:2:CS:R:G:B
        let v, c = -2;
        if (sub.length > 1) v = sub[1] === 2 && sub.length >= 6 ? [2, sub[3], sub[4], sub[5]] : sub.slice(1);
        else {
          const mode = i + 1 < ps.length ? ps[i + 1][0] : -1;
          const take = mode === 5 ? 2 : mode === 2 ? 4 : 1;
          v = ps.slice(i + 1, i + 1 + take).map((q) => q[0]);
          i += take;
        }
        v = v.map((x) => (x === undefined || x < 0 ? 0 : x));
        if (v[0] === 5 && v.length > 1 && v[1] <= 255) c = v[1];
        else if (v[0] === 2 && v.length > 3 && v[1] <= 255 && v[2] <= 255 && v[3] <= 255) {
          c = RGB | (v[1] << 16) | (v[2] << 8) | v[3];
        }
        if (c !== -2 && p === 38) fg = c;
        else if (c !== -2 && p === 48) bg = c;
      }
    }
    this.pen = attr(fg, bg, fl);
  }

  osc(end) {
    const s = this.str, semi = s.indexOf(";");
    const code = semi < 0 ? s : s.slice(0, semi), arg = semi < 0 ? "" : s.slice(semi + 1);
    this.str = "";
    if (code === "0" || code === "1" || code === "2") {
      this.title = arg;
      this.onTitle(arg);
    } else if ((code === "10" || code === "11") && arg === "?") {
      const hex = (c) => ((c << 8) | c).toString(16).padStart(4, "0");
      const c = code === "10" ? this.fg : this.bg;
      this.reply(`\x1b]${code};rgb:${hex(c >> 16 & 255)}/${hex(c >> 8 & 255)}/${hex(c & 255)}${end}`);
    }
  }

  reply(s) { this.onReply(s); }

  // A new size: the content stays where it is (no reflow); when the
  // screen shrinks below the cursor, lines leave at the top (to the
  // scrollback on the main screen), else empty ones at the bottom.
  resize(cols, rows) {
    cols = Math.max(1, cols | 0);
    rows = Math.max(1, rows | 0);
    if (cols === this.cols && rows === this.rows) return;
    const mainSaved = this.saved.main, past = this.wrap && cols > this.cols;
    for (const lines of [this.main, this.altLines]) {
      const current = lines === this.lines;
      const cursor = current ? this : lines === this.main && mainSaved ? mainSaved : null;
      if (rows < lines.length) {
        const drop = cursor ? Math.max(0, cursor.y - rows + 1) : 0;
        const gone = lines.splice(0, drop);
        if (lines === this.main) for (const l of gone) { this.scrollback.push(l); this.scrolledOff++; }
        lines.length = rows;
        if (cursor) cursor.y -= drop;
      }
      while (lines.length < rows) lines.push(line(cols));
      for (const l of lines) {
        if (cols < l.c.length && l.c[cols] === "") l.c[cols - 1] = " ";
        while (l.c.length < cols) { l.c.push(" "); l.a.push(PLAIN); }
        l.c.length = l.a.length = cols;
        l.v++;
      }
    }
    while (this.scrollback.length > this.maxScrollback) this.scrollback.shift();
    for (let x = this.cols; x < cols; x++) this.tabs[x] = x % 8 === 0;
    this.tabs.length = cols;
    this.cols = cols;
    this.rows = rows;
    this.top = 0;
    this.bottom = rows - 1;
    // A wrap pending at the old last column: the cursor goes on past it.
    this.x = Math.min(this.x + (past ? 1 : 0), cols - 1);
    this.y = Math.max(0, Math.min(this.y, rows - 1));
    this.wrap = false;
    if (mainSaved) {
      mainSaved.x = Math.min(mainSaved.x, cols - 1);
      mainSaved.y = Math.max(0, Math.min(mainSaved.y, rows - 1));
    }
  }

  // Reading the grid.

  // The text of a line (a screen line or a scrollback one), without
  // trailing blanks.
  static text(l) { return l.c.join("").replace(/ +$/, ""); }

  // The screen as text lines.
  screenText() { return this.lines.map(Terminal.text); }

  scrollbackText() { return this.scrollback.map(Terminal.text); }

  // Line `i` of scrollback + screen (0 is the oldest line kept).
  lineAt(i) {
    const n = this.scrollback.length;
    return i < n ? this.scrollback[i] : this.lines[i - n];
  }

  // A line as runs of cells alike: {text, fg, bg, fl}, plus `wide` for a
  // wide character (a run of its own, two cells) and `cursor` for the cell
  // at column `cursorX` (a run of its own). Lines from the scrollback may
  // be wider or narrower than the screen: cut or padded to `cols`.
  runs(l, cursorX) {
    const out = [];
    let run = null, last = null;
    if (cursorX > 0 && l.c[cursorX] === "") cursorX--;
    for (let x = 0; x < this.cols; x++) {
      const ch = x < l.c.length ? l.c[x] : " ";
      if (ch === "") continue;
      const a = x < l.a.length ? l.a[x] : PLAIN;
      const wide = l.c[x + 1] === "", cursor = x === cursorX;
      if (wide || cursor || !run || run.wide || run.cursor || a !== last) {
        run = { text: ch, fg: a.fg, bg: a.bg, fl: a.fl, wide, cursor };
        out.push(run);
        last = a;
      } else {
        run.text += ch;
      }
    }
    return out;
  }
}

// Keys to bytes, as xterm sends them. `e` is a KeyboardEvent (or an
// object with its key, code, ctrlKey, altKey, shiftKey, metaKey) plus
// `altGraph`; null means the key is not the terminal's: the browser keeps
// it (Cmd combinations, Ctrl+Shift+letter, Ctrl/Shift+Insert, modifiers
// alone, dead keys).
const CURSOR_KEYS = { ArrowUp: "A", ArrowDown: "B", ArrowRight: "C", ArrowLeft: "D", Home: "H", End: "F" };
const SS3_KEYS = { F1: "P", F2: "Q", F3: "R", F4: "S" };
const TILDE_KEYS = { Insert: 2, Delete: 3, PageUp: 5, PageDown: 6, F5: 15, F6: 17, F7: 18, F8: 19,
  F9: 20, F10: 21, F11: 23, F12: 24 };
const CTRL_SYMBOLS = { " ": "\x00", "@": "\x00", "[": "\x1b", "\\": "\x1c", "]": "\x1d", "^": "\x1e",
  "_": "\x1f", "/": "\x1f", "?": "\x7f" };
function encodeKey(e, appCursor) {
  if (e.metaKey || e.isComposing) return null;
  const k = e.key || "";
  const ctrl = e.ctrlKey && !e.altGraph, alt = e.altKey && !e.altGraph, shift = e.shiftKey;
  if (ctrl && shift && [...k].length === 1) return null;
  if ((ctrl || shift) && k === "Insert") return null;
  const mod = 1 + (shift ? 1 : 0) + (alt ? 2 : 0) + (ctrl ? 4 : 0);
  if (k in CURSOR_KEYS) {
    const f = CURSOR_KEYS[k];
    return mod > 1 ? `\x1b[1;${mod}${f}` : (appCursor ? "\x1bO" : "\x1b[") + f;
  }
  if (k in SS3_KEYS) return mod > 1 ? `\x1b[1;${mod}${SS3_KEYS[k]}` : "\x1bO" + SS3_KEYS[k];
  if (k in TILDE_KEYS) return `\x1b[${TILDE_KEYS[k]}${mod > 1 ? ";" + mod : ""}~`;
  const esc = alt ? "\x1b" : "";
  switch (k) {
    case "Enter": return esc + "\r";
    case "Backspace": return esc + (ctrl ? "\x08" : "\x7f");
    case "Tab": return shift ? "\x1b[Z" : esc + "\t";
    case "Escape": return esc + "\x1b";
  }
  if ([...k].length !== 1) return null;
  if (!ctrl) return esc + k;
  let c = k.toLowerCase().charCodeAt(0);
  // Other layouts (Cyrillic, Greek): the key's place on a US keyboard.
  if (!(c >= 97 && c <= 122) && /^Key[A-Z]$/.test(e.code || "")) c = e.code.toLowerCase().charCodeAt(3);
  if (c >= 97 && c <= 122) return esc + String.fromCharCode(c - 96);
  return k in CTRL_SYMBOLS ? esc + CTRL_SYMBOLS[k] : null;
}

// Pasted text as typed: newlines as Enter (CR), between the bracketed
// paste markers when the program asked for them (?2004), never with an
// end marker of its own (it would end the paste early: what followed
// would run as typed).
function encodePaste(text, bracketed) {
  text = text.replace(/\r?\n/g, "\r");
  if (!bracketed) return text;
  return "\x1b[200~" + text.replace(/\x1b\[20[01]~/g, "") + "\x1b[201~";
}

const api = { Terminal, charWidth, encodeKey, encodePaste, RGB, BOLD, DIM, ITALIC, UNDERLINE, BLINK, INVERSE, HIDDEN, STRIKE };
if (typeof module === "object" && module.exports) module.exports = api;
else global.RingletTerm = api;
})(globalThis);
