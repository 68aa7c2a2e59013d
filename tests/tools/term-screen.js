// The web UI's terminal emulator (static/term.js) in node, for the tests
// (tests/web_terminal.rs):
//   node term-screen.js COLS ROWS CHUNKS [COLS2 ROWS2 [MORE]] < output-bytes
// feeds stdin to a fresh emulator once per size in CHUNKS (comma-separated;
// 0 is all at once), so multi-byte characters and escape sequences arrive
// split, then resizes it to COLS2 x ROWS2 and writes MORE, and prints a JSON
// array with one view per chunk size: the screen as text lines, the cursor,
// the replies it sent back, the title, whether the alternate screen is on,
// some modes, the scrollback and each row's runs of attributes.
//   node term-screen.js --keys < [[event, appCursor], ...]
// prints what each key event (KeyboardEvent fields) sends, and
//   node term-screen.js --paste < [[text, bracketed], ...]
// what each paste sends.
"use strict";
const fs = require("fs");
const path = require("path");
const { Terminal, encodeKey, encodePaste } = require(path.join(__dirname, "../../static/term.js"));

const args = process.argv.slice(2);
const input = fs.readFileSync(0);
if (args[0] === "--keys" || args[0] === "--paste") {
  const encode = args[0] === "--keys" ? encodeKey : encodePaste;
  process.stdout.write(JSON.stringify(JSON.parse(input).map(([a, b]) => encode(a, b))));
  process.exit(0);
}

function view(chunk) {
  let replies = "";
  let title = null;
  let bells = 0;
  const term = new Terminal(Number(args[0]), Number(args[1]), {
    onReply: (s) => { replies += s; },
    onTitle: (s) => { title = s; },
    onBell: () => { bells++; },
  });
  const step = chunk > 0 ? chunk : input.length || 1;
  for (let i = 0; i < input.length; i += step) term.write(input.subarray(i, i + step));
  if (args.length > 3) term.resize(Number(args[3]), Number(args[4]));
  if (args.length > 5) term.write(args[5]);
  return {
    lines: term.screenText(),
    cursor: { x: term.x, y: term.y, visible: term.cursorVisible },
    replies,
    title,
    bells,
    alt: term.alt,
    modes: { appCursor: term.appCursor, bracketedPaste: term.bracketedPaste, autowrap: term.autowrap },
    scrollback: term.scrollbackText(),
    runs: term.lines.map((l) => term.runs(l, -1)),
  };
}

process.stdout.write(JSON.stringify(args[2].split(",").map((c) => view(Number(c)))));
