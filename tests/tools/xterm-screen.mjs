// The web UI's terminal emulator, the vendored xterm.js (static/vendor/
// xterm.mjs, which parses without a DOM), in node for the tests
// (tests/util/xterm.rs):
//   node xterm-screen.mjs COLS ROWS < output-bytes
// writes stdin to a fresh COLS x ROWS terminal and prints, as JSON, the
// screen's lines (trailing blanks cut, spaces a program wrote too), the
// cursor and whether the alternate screen is on.
import fs from "node:fs";
import { fileURLToPath } from "node:url";

const vendor = fileURLToPath(new URL("../../static/vendor/xterm.mjs", import.meta.url));
const { Terminal } = await import(vendor);
const [cols, rows] = process.argv.slice(2).map(Number);
const term = new Terminal({ cols, rows, scrollback: 0, allowProposedApi: true });
term.write(fs.readFileSync(0), () => {
  const b = term.buffer.active;
  const lines = [];
  for (let y = 0; y < term.rows; y++) lines.push((b.getLine(b.baseY + y)?.translateToString(true) ?? "").replace(/[ \u00a0]+$/, ""));
  process.stdout.write(JSON.stringify({ lines, cursor: { x: b.cursorX, y: b.cursorY }, alt: b.type === "alternate" }));
  term.dispose();
});
