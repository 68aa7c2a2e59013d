// One terminal session in the page: an xterm.js terminal connected to
// `/ws/terminal/{id}`. The daemon sends `{"type":"connected","session"}`,
// then the history above the screen and the reproduced screen as binary
// frames, then live output; `resized` when another client resizes,
// `state_changed` when the program exits, `error` for a refused message.
// This side sends keystrokes as binary frames (UTF-8, or the raw bytes of
// xterm's binary mouse reports), `resize` when the box it sits in changes
// size (debounced), and `signal`.
//
// A client the daemon dropped for falling behind (close code 1013, or 1006
// when its socket was too full for the close frame) reconnects by itself:
// the reproduced screen fills the gap. Any other close leaves the view
// saying why, with a Reconnect button.
//
// Keys: xterm captures Tab (the program needs it), so Ctrl+Shift+ArrowUp
// is the way out of the terminal, to its toolbar (then Tab and Shift+Tab
// move on as usual). Ctrl+Shift+F searches, Ctrl+Shift+C copies the
// selection (Ctrl+C stays the program's), Ctrl+Shift+V and Shift+Insert
// paste. With a program tracking the mouse, Shift+drag selects.

import { Terminal } from "../../vendor/xterm.mjs";
import { FitAddon } from "../../vendor/addon-fit.mjs";
import { SearchAddon } from "../../vendor/addon-search.mjs";
import { WebLinksAddon } from "../../vendor/addon-web-links.mjs";
import { socket } from "../api.js";
import { h } from "../ui.js";

export const ESCAPE_KEY_HINT = "Ctrl+Shift+↑ leaves the terminal";

const encoder = new TextEncoder();

/// xterm.css once per page, relative to this module (so a versioned
/// /static/<hash>/ prefix carries over).
function loadCss() {
  if (document.getElementById("xterm-css")) return;
  const link = document.createElement("link");
  link.id = "xterm-css";
  link.rel = "stylesheet";
  link.href = new URL("../../vendor/xterm.css", import.meta.url).href;
  document.head.append(link);
}

// The 16 colours, light and dark, each readable on its background.
const THEMES = {
  dark: {
    background: "#121212", foreground: "#e8e8e8", cursor: "#e8e8e8", cursorAccent: "#121212",
    selectionBackground: "#3a5a8c", selectionInactiveBackground: "#34405a",
    black: "#1e1e1e", red: "#f0716e", green: "#7ee2a8", yellow: "#f5c96b", blue: "#8ab4f8",
    magenta: "#d7a6f5", cyan: "#7fd8e6", white: "#d0d0d0",
    brightBlack: "#8a8a8a", brightRed: "#ff9b98", brightGreen: "#a8f0c6", brightYellow: "#ffe199",
    brightBlue: "#b3ceff", brightMagenta: "#e8c8fa", brightCyan: "#a8ecf5", brightWhite: "#ffffff",
  },
  light: {
    background: "#ffffff", foreground: "#1b1b1b", cursor: "#1b1b1b", cursorAccent: "#ffffff",
    selectionBackground: "#b3d0ff", selectionInactiveBackground: "#d6e2f5",
    black: "#1b1b1b", red: "#b3261e", green: "#1a7f37", yellow: "#8a5a00", blue: "#0b57d0",
    magenta: "#8e24aa", cyan: "#00737d", white: "#6b6b6b",
    brightBlack: "#575757", brightRed: "#d93025", brightGreen: "#188038", brightYellow: "#a86b00",
    brightBlue: "#1a73e8", brightMagenta: "#a142f4", brightCyan: "#007b83", brightWhite: "#3c3c3c",
  },
};

/// "dark" or "light": the page's choice (Settings) or the system's.
export function pageTheme() {
  const set = document.documentElement.dataset.theme;
  if (set === "light" || set === "dark") return set;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function fontSize() {
  const n = Number(localStorage.getItem("ringlet.fontSize"));
  return Number.isFinite(n) && n >= 8 && n <= 40 ? n : 14;
}

function screenReader() {
  return localStorage.getItem("ringlet.screenReader") === "1";
}

/// Opens http(s) links only, in a new tab that cannot reach this one.
function openLink(uri) {
  let url;
  try {
    url = new URL(uri);
  } catch {
    return;
  }
  if (url.protocol === "http:" || url.protocol === "https:") window.open(url.href, "_blank", "noopener,noreferrer");
}

export class TermView {
  /// `session`: the session's info; `onInfo(info)`: the session's state
  /// changed (exited, resized); `onLayout()`: the view's height changed
  /// (search box); `actions`: {kill(), openWindow(), confirmSignal(name)}.
  constructor(session, { onInfo, onLayout, actions, solo = false } = {}) {
    loadCss();
    this.onLayout = onLayout || (() => {});
    this.id = session.id;
    this.info = { ...session };
    this.onInfo = onInfo || (() => {});
    this.actions = actions || {};
    this.ws = null;
    this.closed = false;
    this.fitTimer = 0;
    this.retryTimer = 0;
    this.applyingRemote = false;
    this.frames = 0;
    this.settled = true;
    this.tries = 0;

    this.status = h("span", { class: "term-status", role: "status", "aria-live": "polite" }, "");
    this.reconnectBtn = h("button", { type: "button", onclick: () => this.reconnect() }, "Reconnect");
    this.signalSel = h(
      "select",
      { "aria-label": "Signal to send" },
      ["INT", "TERM", "HUP", "KILL"].map((s) => h("option", { value: s }, `SIG${s}`)),
    );
    this.signalBtn = h("button", { type: "button", onclick: () => this.sendSignal() }, "Send");
    // Shown when another client sized the session differently from this
    // box: takes the size back.
    this.fitBtn = h("button", { type: "button", hidden: true, title: "Size the session to this window", onclick: () => this.takeSize() }, "Fit");
    this.killBtn = h("button", { type: "button", class: "danger", onclick: () => this.actions.kill?.() }, "Kill");
    this.searchBtn = h(
      "button",
      { type: "button", "aria-expanded": "false", title: "Search (Ctrl+Shift+F)", onclick: () => this.toggleSearch() },
      "Search",
    );
    const windowBtn = solo
      ? null
      : h("button", { type: "button", title: "The terminal alone in a new window", onclick: () => this.actions.openWindow?.() }, "New window");
    this.toolbar = h(
      "div",
      { class: "term-bar", role: "toolbar", "aria-label": `Terminal ${this.id}` },
      this.status,
      h("span", { class: "term-tools" }, this.fitBtn, this.reconnectBtn, h("span", { class: "term-signal" }, this.signalSel, this.signalBtn), this.killBtn, this.searchBtn, windowBtn),
    );

    this.searchInput = h("input", { type: "search", "aria-label": "Search the terminal", placeholder: "Search" });
    this.searchCase = h("input", { type: "checkbox", id: `case-${this.id}` });
    this.searchCount = h("span", { class: "muted", "aria-live": "polite" }, "");
    this.searchBox = h(
      "div",
      { class: "term-search", hidden: true, role: "search" },
      this.searchInput,
      h("button", { type: "button", onclick: () => this.find(-1) }, "Previous"),
      h("button", { type: "button", onclick: () => this.find(1) }, "Next"),
      h("span", null, this.searchCase, " ", h("label", { for: `case-${this.id}` }, "Match case")),
      this.searchCount,
      h("button", { type: "button", onclick: () => this.closeSearch() }, "Close"),
    );
    this.searchInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.find(e.shiftKey ? -1 : 1);
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.closeSearch();
      }
    });
    this.searchInput.addEventListener("input", () => this.find(1, true));

    this.host = h("div", { class: "term-host" });
    this.hint = h(
      "p",
      { class: "term-hint hint" },
      `${ESCAPE_KEY_HINT} (to its toolbar). Ctrl+Shift+F search, Ctrl+Shift+C copy, Ctrl+Shift+V paste, Shift+drag selects in programs that use the mouse.`,
    );
    this.el = h("div", { class: `term-view${solo ? " solo" : ""}` }, this.toolbar, this.searchBox, this.host, this.hint);

    this.term = new Terminal({
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: fontSize(),
      scrollback: 10000,
      screenReaderMode: screenReader(),
      theme: THEMES[pageTheme()],
      allowProposedApi: true,
      linkHandler: { activate: (_e, text) => openLink(text), allowNonHttpProtocols: false },
    });
    this.fit = new FitAddon();
    this.search = new SearchAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new WebLinksAddon((_e, uri) => openLink(uri)));
    this.search.onDidChangeResults?.(({ resultIndex, resultCount }) => {
      this.searchCount.textContent = resultCount ? `${resultIndex + 1} of ${resultCount}` : "no match";
    });

    this.term.onData((s) => this.send(encoder.encode(s)));
    // Mouse reports in the X10 encoding: bytes, not text.
    this.term.onBinary((s) => this.send(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => {
      if (!this.applyingRemote) this.sendResize(cols, rows);
    });
    this.term.onResize(() => this.checkFit());
    this.term.onTitleChange((t) => {
      this.title = t;
      this.host.setAttribute("aria-label", `Terminal ${this.id}${t ? `: ${t}` : ""}`);
    });
    this.term.attachCustomKeyEventHandler((e) => this.keys(e));

    this.opened = false;
    this.resizeObserver = new ResizeObserver(() => this.scheduleFit());
    this.settings = (e) => {
      if (e.key === "ringlet.fontSize") {
        this.term.options.fontSize = fontSize();
        this.scheduleFit();
      } else if (e.key === "ringlet.screenReader") {
        this.term.options.screenReaderMode = screenReader();
      }
    };
    window.addEventListener("storage", this.settings);
    this.updateBar();
  }

  /// Puts the terminal in its box (once it is in the document and shown)
  /// and connects.
  show() {
    if (!this.opened) {
      this.opened = true;
      this.term.open(this.host);
      this.host.setAttribute("aria-label", `Terminal ${this.id}`);
      this.resizeObserver.observe(this.host);
      this.connect();
    } else {
      this.scheduleFit();
    }
  }

  focus() {
    this.term.focus();
  }

  setTheme(name) {
    this.term.options.theme = THEMES[name];
  }

  /// Keys xterm would otherwise send to the program. False: not sent.
  keys(e) {
    if (e.type !== "keydown") return true;
    const ctrlShift = e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey;
    if (ctrlShift && e.key === "ArrowUp") {
      e.preventDefault();
      const first = [...this.toolbar.querySelectorAll("button, select")].find((b) => !b.hidden && !b.disabled);
      (first || this.toolbar).focus();
      return false;
    }
    if (ctrlShift && (e.key === "F" || e.key === "f")) {
      e.preventDefault();
      this.toggleSearch(true);
      return false;
    }
    if (ctrlShift && (e.key === "C" || e.key === "c")) {
      e.preventDefault();
      const text = this.term.getSelection();
      if (text) navigator.clipboard?.writeText(text).catch(() => {});
      return false;
    }
    // Ctrl+Shift+V: the browser's paste event (xterm sends it, bracketed
    // when the program asked).
    if (ctrlShift && (e.key === "V" || e.key === "v")) return false;
    return true;
  }

  toggleSearch(open) {
    const show = open === undefined ? this.searchBox.hidden : open;
    this.searchBox.hidden = !show;
    this.searchBtn.setAttribute("aria-expanded", String(show));
    if (show) {
      const sel = this.term.getSelection();
      if (sel && !sel.includes("\n")) this.searchInput.value = sel;
      this.searchInput.focus();
      this.searchInput.select();
    } else {
      this.search.clearDecorations();
      this.term.focus();
    }
    this.onLayout();
    this.scheduleFit();
  }

  closeSearch() {
    this.toggleSearch(false);
  }

  find(direction, incremental = false) {
    const text = this.searchInput.value;
    if (!text) {
      this.search.clearDecorations();
      this.searchCount.textContent = "";
      return;
    }
    const theme = THEMES[pageTheme()];
    const options = {
      caseSensitive: this.searchCase.checked,
      incremental,
      decorations: {
        matchBackground: theme.selectionInactiveBackground,
        matchOverviewRuler: theme.yellow,
        activeMatchBackground: theme.selectionBackground,
        activeMatchColorOverviewRuler: theme.blue,
      },
    };
    const found = direction < 0 ? this.search.findPrevious(text, options) : this.search.findNext(text, options);
    if (!found) this.searchCount.textContent = "no match";
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.closed) return;
    const ws = socket(`/ws/terminal/${encodeURIComponent(this.id)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.setStatus("connecting…");
    ws.addEventListener("message", (m) => {
      if (this.ws !== ws) return;
      if (typeof m.data !== "string") return this.output(new Uint8Array(m.data));
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.type === "connected") {
        this.tries = 0;
        this.connected(msg.session || {});
      }
      else if (msg.type === "resized") {
        this.remoteResize(msg.cols, msg.rows);
        if (!this.fitBtn.hidden) this.setStatus(`sized ${msg.cols}×${msg.rows} by another client`);
      }
      else if (msg.type === "state_changed") this.setInfo({ state: msg.state, exit_code: msg.exit_code });
      else if (msg.type === "error") this.setStatus(`error: ${msg.message}`);
    });
    ws.addEventListener("close", (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      // 1013: dropped for falling behind; the screen on reconnecting fills
      // the gap.
      if (e.code === 1013) {
        this.setStatus("fell behind the output: catching up…");
        this.retryTimer = setTimeout(() => this.connect(), 300);
        return;
      }
      // 1006, no close frame: the daemon may have dropped a lagging client
      // whose socket was too full for its close frame, or be restarting.
      // A few tries, further apart; then the Reconnect button.
      if (e.code === 1006 && this.info.state === "running" && this.tries < 3) {
        const delay = 500 * 2 ** this.tries++;
        this.setStatus("connection lost: reconnecting…");
        this.retryTimer = setTimeout(() => this.connect(), delay);
        return;
      }
      if (this.info.state !== "running") this.setStatus("");
      else this.setStatus(`disconnected (${e.code}${e.reason ? `: ${e.reason}` : ""})`);
      this.updateBar();
    });
  }

  /// A new start: the history and the reproduced screen follow, drawn at
  /// the session's size; then the view fits its box.
  connected(session) {
    Object.assign(this.info, session);
    this.term.reset();
    this.remoteResize(session.cols, session.rows);
    this.frames = 0;
    this.settled = false;
    // The history and screen frames are written at the session's size,
    // and the fit waits for xterm to have parsed them (seconds for a big
    // history on a slow machine); a daemon that sends one frame of
    // scrollback only, then nothing (an idle session), gets its fit after
    // a moment.
    this.settleTimer = setTimeout(() => this.frames < 2 && this.settle(), 400);
    this.setStatus("connected");
    this.onInfo(this.info);
    this.updateBar();
  }

  output(bytes) {
    this.frames++;
    if (!this.settled && this.frames >= 2) this.term.write(bytes, () => this.settle());
    else this.term.write(bytes);
  }

  settle() {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.settleTimer);
    this.fitNow(true);
  }

  remoteResize(cols, rows) {
    if (!cols || !rows || (cols === this.term.cols && rows === this.term.rows)) return;
    this.applyingRemote = true;
    try {
      this.term.resize(cols, rows);
    } finally {
      this.applyingRemote = false;
    }
  }

  scheduleFit() {
    clearTimeout(this.fitTimer);
    this.fitTimer = setTimeout(() => this.fitNow(false), 120);
  }

  /// Fits the terminal to its box (when shown) and tells the daemon;
  /// `force` sends the size even when it did not change (after connecting).
  fitNow(force) {
    if (!this.opened || !this.settled || !this.host.offsetParent) return;
    const dims = this.fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows)) return;
    const cols = Math.max(2, Math.min(1000, dims.cols));
    const rows = Math.max(1, Math.min(1000, dims.rows));
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    else if (force) this.sendResize(cols, rows);
    this.checkFit();
  }

  /// Whether the terminal has the size of its box (else the Fit button).
  checkFit() {
    if (!this.opened || !this.host.offsetParent) return;
    const dims = this.fit.proposeDimensions();
    const fits = !dims || !this.settled || (dims.cols === this.term.cols && dims.rows === this.term.rows);
    this.fitBtn.hidden = fits || this.info.state !== "running";
  }

  takeSize() {
    this.setStatus("");
    this.fitNow(true);
    this.term.focus();
  }

  sendResize(cols, rows) {
    if (this.info.state !== "running" || !this.settled) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "resize", cols, rows }));
    this.info.cols = cols;
    this.info.rows = rows;
  }

  send(bytes) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.info.state === "running") this.ws.send(bytes);
  }

  sendSignal() {
    const name = this.signalSel.value;
    const go = () => {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "signal", signal: name }));
        this.setStatus(`sent SIG${name}`);
      } else this.setStatus("not connected: reconnect first");
    };
    if (name === "KILL" && this.actions.confirmSignal) {
      this.actions.confirmSignal(name).then((yes) => yes && go());
    } else go();
  }

  reconnect() {
    this.tries = 0;
    const old = this.ws;
    this.ws = null;
    if (old) old.close();
    this.connect();
    this.term.focus();
  }

  /// Session info from the page (events, the list).
  setInfo(patch) {
    Object.assign(this.info, patch);
    this.onInfo(this.info);
    this.updateBar();
  }

  setStatus(text) {
    this.statusText = text;
    this.updateBar();
  }

  updateBar() {
    const running = this.info.state === "running";
    const state = running
      ? "running"
      : `exited${this.info.exit_code !== null && this.info.exit_code !== undefined ? ` with code ${this.info.exit_code}` : ""}`;
    const parts = [`${this.id} · ${this.info.profile || ""}`, state];
    if (running && this.info.agent_state) parts.push(this.info.agent_state === "waiting" ? "waiting for you" : this.info.agent_state);
    if (this.statusText) parts.push(this.statusText);
    this.status.textContent = parts.join(" · ");
    this.signalSel.disabled = !running;
    this.signalBtn.disabled = !running;
    this.killBtn.disabled = !running;
    this.reconnectBtn.classList.toggle("primary", running && !this.ws && !this.closed);
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.fitTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.settleTimer);
    window.removeEventListener("storage", this.settings);
    this.resizeObserver.disconnect();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.term.dispose();
    this.el.remove();
  }
}
