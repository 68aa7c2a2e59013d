//! Colour on a terminal: headers, warnings, errors and states. Every command
//! prints through [`out`] (stdout) or [`err`] (stderr), which colour only when
//! the user's choice (`--color`, `NO_COLOR`, `CLICOLOR_FORCE`) and the stream
//! allow it, so pipes and files never get escape codes.

use std::borrow::Cow;

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

/// The user's colour choice (`--color`).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Decides once, at start, whether each stream gets colour.
#[allow(dead_code)]
pub fn init(_choice: Choice) {}

/// `text` for stdout, coloured as `tone` when stdout takes colour.
#[allow(dead_code)]
pub fn out(_tone: Tone, text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

/// `text` for stderr, coloured as `tone` when stderr takes colour.
#[allow(dead_code)]
pub fn err(_tone: Tone, text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}
