//! Colour on a terminal: headers, warnings, errors and states. Every command
//! prints through [`out`] (stdout) or [`err`] (stderr), which colour only when
//! the user's choice (`--color`, `NO_COLOR`, `CLICOLOR_FORCE`) and the stream
//! allow it, so pipes and files never get escape codes.
//!
//! The rules, in order: `--color always|never` decides; otherwise
//! `NO_COLOR` set and non-empty turns colour off, `CLICOLOR_FORCE` set and
//! not `0` turns it on, `TERM=dumb` turns it off, and else each stream is
//! coloured when it is a terminal. The decision is made once, in [`init`],
//! before any output.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a piece of text is, which decides its colour.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Table headers and section titles.
    Header,
    /// Good states: ok, running.
    Ok,
    /// Warnings and degraded states.
    Warn,
    /// Errors and failed states.
    Error,
    /// Secondary text: hints, ids.
    Dim,
    /// Names the eye should find: commands in hints, profile names.
    Accent,
}

impl Tone {
    /// The SGR parameters of the tone: bold, green, yellow, bold red, dim,
    /// cyan. Only the 8 basic colours, which every terminal theme maps to
    /// something readable.
    fn sgr(self) -> &'static str {
        match self {
            Tone::Header => "1",
            Tone::Ok => "32",
            Tone::Warn => "33",
            Tone::Error => "1;31",
            Tone::Dim => "2",
            Tone::Accent => "36",
        }
    }
}

/// The user's colour choice (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Always,
    Never,
}

impl Choice {
    /// `auto`, `always` or `never`.
    pub fn parse(text: &str) -> Option<Choice> {
        match text {
            "auto" => Some(Choice::Auto),
            "always" => Some(Choice::Always),
            "never" => Some(Choice::Never),
            _ => None,
        }
    }
}

/// Whether stdout, and stderr, take colour: off until [`init`] says so.
static STDOUT: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(false);

/// Decides once, at start, whether each stream gets colour.
pub fn init(choice: Choice) {
    let env = |name: &str| std::env::var_os(name);
    let (no_color, force, term) = (env("NO_COLOR"), env("CLICOLOR_FORCE"), env("TERM"));
    let decide =
        |tty: bool| wanted(choice, no_color.as_deref(), force.as_deref(), term.as_deref(), tty);
    STDOUT.store(decide(std::io::stdout().is_terminal()), Ordering::Relaxed);
    STDERR.store(decide(std::io::stderr().is_terminal()), Ordering::Relaxed);
}

/// The rules of the module doc, for one stream.
fn wanted(
    choice: Choice,
    no_color: Option<&OsStr>,
    force: Option<&OsStr>,
    term: Option<&OsStr>,
    tty: bool,
) -> bool {
    match choice {
        Choice::Always => return true,
        Choice::Never => return false,
        Choice::Auto => {}
    }
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if force.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if term.is_some_and(|t| t == "dumb") {
        return false;
    }
    tty
}

/// Whether stdout takes colour (for output built another way, e.g. help).
pub fn stdout_coloured() -> bool {
    STDOUT.load(Ordering::Relaxed)
}

/// `text` for stdout, coloured as `tone` when stdout takes colour.
pub fn out(tone: Tone, text: &str) -> Cow<'_, str> {
    paint(STDOUT.load(Ordering::Relaxed), tone, text)
}

/// `text` for stderr, coloured as `tone` when stderr takes colour.
pub fn err(tone: Tone, text: &str) -> Cow<'_, str> {
    paint(STDERR.load(Ordering::Relaxed), tone, text)
}

/// A state printed outside a table (`session t1 (running)`, `installed:
/// yes`), for stdout: in the tone of its first word, as a table's state
/// cell is; text that names no state stays plain.
pub fn state(text: &str) -> Cow<'_, str> {
    match text.split_whitespace().next().and_then(state_tone) {
        Some(tone) => out(tone, text),
        None => Cow::Borrowed(text),
    }
}

/// The tone of a state word in a table or a status line: running, ok,
/// stopped, failed... `None` for words that are no state.
pub fn state_tone(word: &str) -> Option<Tone> {
    match word.to_ascii_lowercase().as_str() {
        "ok" | "running" | "active" | "healthy" | "installed" | "yes" | "up" | "ready"
        | "enabled" => Some(Tone::Ok),
        "warn" | "warning" | "starting" | "stopping" | "restarting" | "degraded" | "stale"
        | "unknown" | "idle" => Some(Tone::Warn),
        "fail" | "failed" | "error" | "crashed" | "dead" | "killed" | "down" => Some(Tone::Error),
        "stopped" | "exited" | "disabled" | "no" | "missing" | "not installed" | "not" => {
            Some(Tone::Dim)
        }
        _ => None,
    }
}

/// `text` wrapped in the tone's SGR sequence and a reset, when `on`. Empty
/// text stays empty, so padding and "-" cells are untouched.
fn paint(on: bool, tone: Tone, text: &str) -> Cow<'_, str> {
    if !on || text.is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("\x1b[{}m{text}\x1b[0m", tone.sgr()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_in_order() {
        let os = |s: &'static str| Some(OsStr::new(s));
        use Choice::*;
        // Auto follows the stream.
        assert!(wanted(Auto, None, None, os("xterm"), true));
        assert!(!wanted(Auto, None, None, os("xterm"), false));
        // NO_COLOR: set and non-empty turns colour off; empty is unset.
        assert!(!wanted(Auto, os("1"), None, None, true));
        assert!(wanted(Auto, os(""), None, None, true));
        // CLICOLOR_FORCE: on even in a pipe, unless `0` or empty.
        assert!(wanted(Auto, None, os("1"), None, false));
        assert!(!wanted(Auto, None, os("0"), None, false));
        assert!(!wanted(Auto, None, os(""), None, false));
        // NO_COLOR wins over CLICOLOR_FORCE.
        assert!(!wanted(Auto, os("1"), os("1"), None, true));
        // A dumb terminal gets none, unless forced.
        assert!(!wanted(Auto, None, None, os("dumb"), true));
        assert!(wanted(Auto, None, os("1"), os("dumb"), true));
        // --color decides over everything.
        assert!(wanted(Always, os("1"), None, os("dumb"), false));
        assert!(!wanted(Never, None, os("1"), None, true));
    }

    #[test]
    fn painting() {
        assert_eq!(paint(false, Tone::Error, "x"), "x");
        assert_eq!(paint(true, Tone::Error, "x"), "\x1b[1;31mx\x1b[0m");
        assert_eq!(paint(true, Tone::Header, "NAME"), "\x1b[1mNAME\x1b[0m");
        assert_eq!(paint(true, Tone::Ok, ""), "");
        assert_eq!(Choice::parse("always"), Some(Choice::Always));
        assert_eq!(Choice::parse("sometimes"), None);
        assert_eq!(state_tone("Running"), Some(Tone::Ok));
        assert_eq!(state_tone("fail"), Some(Tone::Error));
        assert_eq!(state_tone("claude"), None);
        assert_eq!(state_tone("enabled"), Some(Tone::Ok));
    }
}
