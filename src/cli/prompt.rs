//! Asking the user: a hidden prompt for API keys (echo off on the
//! terminal, restored however the read ends) and a plain yes/no question for
//! `init`. Both talk to `/dev/tty`, so they work with stdin redirected and
//! never read a key from a pipe by accident.

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
