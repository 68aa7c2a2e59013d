//! Asking the user: a hidden prompt for API keys (echo off on the
//! terminal, restored however the read ends), plain questions with a
//! default, and questions that re-ask until the answer is valid (a choice
//! from a list, shown in the question, or anything a check accepts), for
//! `init` and confirmations. All talk to `/dev/tty`, so they work with stdin
//! redirected and never read a key from a pipe by accident.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context, Result, bail};
use rustix::termios::{self, LocalModes, OptionalActions};

fn tty() -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("there is no terminal to ask on")
}

/// Restores the terminal's modes when dropped, even on an error or panic.
struct EchoOff<'a> {
    tty: &'a File,
    saved: termios::Termios,
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Prints `label` and reads one line without echo.
pub fn hidden(label: &str) -> Result<String> {
    let mut tty = tty()?;
    write!(tty, "{label}: ")?;
    tty.flush()?;
    let saved = termios::tcgetattr(&tty).context("reading terminal modes")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet).context("turning echo off")?;
    let guard = EchoOff { tty: &tty, saved };
    let mut line = String::new();
    BufReader::new(guard.tty).read_line(&mut line)?;
    drop(guard);
    if line.is_empty() {
        bail!("no key entered");
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks a question with a default answer; returns the answer, or the default
/// on an empty line.
pub fn ask(question: &str, default: &str) -> Result<String> {
    let mut tty = tty()?;
    write!(tty, "{question} [{default}]: ")?;
    tty.flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    let answer = line.trim();
    Ok(if answer.is_empty() { default.to_string() } else { answer.to_string() })
}

/// How many wrong answers a question takes before it gives up: enough for
/// any typist, and a bound if something else is feeding the terminal.
const ATTEMPTS: usize = 10;

/// Asks until `check` accepts the answer (the default on an empty line),
/// saying why after each refusal. End of input is an error, not an answer.
pub fn ask_until(
    question: &str,
    default: &str,
    mut check: impl FnMut(&str) -> Result<String, String>,
) -> Result<String> {
    let mut tty = tty()?;
    for _ in 0..ATTEMPTS {
        if default.is_empty() {
            write!(tty, "{question}: ")?;
        } else {
            write!(tty, "{question} [{default}]: ")?;
        }
        tty.flush()?;
        let mut line = String::new();
        if BufReader::new(&tty).read_line(&mut line)? == 0 {
            writeln!(tty)?;
            bail!("no answer to `{question}` (end of input)");
        }
        let answer = line.trim();
        let answer = if answer.is_empty() { default } else { answer };
        match check(answer) {
            Ok(value) => return Ok(value),
            Err(why) => writeln!(tty, "  {why}; try again (Ctrl-C to stop)")?,
        }
    }
    bail!("no valid answer to `{question}` after {ATTEMPTS} tries")
}

/// Asks for one of `choices`, listed in the question; a choice's number in
/// the list is taken too, and a typo is answered with the closest choice.
pub fn choose(question: &str, choices: &[String], default: &str) -> Result<String> {
    let listed: Vec<String> =
        choices.iter().enumerate().map(|(i, c)| format!("{}) {c}", i + 1)).collect();
    let question = format!("{question} ({})", listed.join(", "));
    ask_until(&question, default, |answer| pick(choices, answer))
}

/// The choice `answer` names (exactly, by number, or case-insensitively), or
/// why not, with a suggestion.
pub fn pick(choices: &[String], answer: &str) -> Result<String, String> {
    if let Some(c) = choices.iter().find(|c| *c == answer) {
        return Ok(c.clone());
    }
    if let Ok(n) = answer.parse::<usize>()
        && (1..=choices.len()).contains(&n)
    {
        return Ok(choices[n - 1].clone());
    }
    if let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(answer)) {
        return Ok(c.clone());
    }
    let hint =
        closest(choices, answer).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
    Err(format!("`{answer}` is not one of {}{hint}", choices.join(", ")))
}

/// The choice within two edits of `answer`, if one is.
fn closest<'a>(choices: &'a [String], answer: &str) -> Option<&'a str> {
    choices
        .iter()
        .map(|c| (edit_distance(c, answer), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Levenshtein distance, with a swap of two neighbours counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Reads a key from stdin: the first line, without its line ending.
pub fn key_from_stdin() -> Result<String> {
    let mut text = String::new();
    // A key is short; a megabyte on stdin is a mistake, not a key.
    std::io::stdin()
        .lock()
        .take(1 << 16)
        .read_to_string(&mut text)
        .context("reading the key from stdin")?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() {
        bail!("--api-key-stdin: stdin was empty");
    }
    Ok(key)
}

/// Whether stdin is a terminal, so a question can be asked and answered.
pub fn is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_named_numbered_or_suggested() {
        let choices: Vec<String> = ["claude", "codex", "opencode"].map(String::from).to_vec();
        assert_eq!(pick(&choices, "codex").unwrap(), "codex");
        assert_eq!(pick(&choices, "3").unwrap(), "opencode");
        assert_eq!(pick(&choices, "Claude").unwrap(), "claude");
        let why = pick(&choices, "cluade").unwrap_err();
        assert!(why.contains("did you mean `claude`"), "{why}");
        assert!(why.contains("claude, codex, opencode"), "{why}");
        assert!(!pick(&choices, "4").unwrap_err().contains("did you mean"));
    }
}
